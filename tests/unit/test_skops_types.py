"""skops imported with its trusted-type lists remembered per installation: the same lists,
the same recorded types and the same refusals as a plain ``import skops.io``."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

# Runs in a fresh interpreter: skops.io is imported at most once per process.
PROBE = r"""
import json, sys
import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

if sys.argv[1] == "remembered":
    from specloop_sklearn._skops_types import skops_io
    sio = skops_io()
else:
    import skops.io as sio
from skops.io.exceptions import UntrustedTypesFoundException

table = sys.modules["skops.io._trusted_types"]
rng = np.random.default_rng(0)
X, y = rng.normal(size=(200, 3)), rng.integers(0, 2, 200)
model = make_pipeline(StandardScaler(), HistGradientBoostingClassifier(max_iter=5)).fit(X, y)
data = sio.dumps(model)
recorded = sorted(sio.get_untrusted_types(data=data))
loaded = sio.loads(data, trusted=recorded)
try:
    sio.loads(data, trusted=recorded[:-1])
    refused = False
except UntrustedTypesFoundException:
    refused = True
print(json.dumps({
    "stand_in": not hasattr(table, "__file__"),
    "lists": {k: v for k, v in vars(table).items() if k.endswith("_NAMES")},
    "recorded": recorded,
    "same_predictions": bool((loaded.predict_proba(X) == model.predict_proba(X)).all()),
    "refused_without_a_recorded_type": refused,
}))
"""


def _probe(how: str, cache: str) -> dict:
    env = {**os.environ, "SPECLOOP_CACHE_DIR": cache}
    out = subprocess.run([sys.executable, "-c", PROBE, how], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> dict:
    return _probe("plain", "off")


def test_remembered_lists_are_skops_own_and_change_nothing(plain, tmp_path):
    cache = str(tmp_path / "cache")
    first = _probe("remembered", cache)  # a miss: skops builds the lists, they are written
    assert not first["stand_in"]
    [entry] = os.listdir(os.path.join(cache, "skops"))
    second = _probe("remembered", cache)  # a hit: the remembered lists stand in
    assert second["stand_in"]
    for result in (first, second):
        assert result["lists"] == plain["lists"]
        assert result["recorded"] == plain["recorded"]
        assert "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor" in \
            result["recorded"]
        assert result["same_predictions"]
        assert result["refused_without_a_recorded_type"]
    assert json.loads(open(os.path.join(cache, "skops", entry)).read()) == plain["lists"]


def test_a_corrupt_entry_is_a_miss_and_is_rewritten(plain, tmp_path):
    cache = tmp_path / "cache"
    _probe("remembered", str(cache))
    [entry] = (cache / "skops").iterdir()
    entry.write_text('{"SKLEARN_ESTIMATOR_TYPE_NAMES": "builtins.eval"')  # truncated
    result = _probe("remembered", str(cache))
    assert not result["stand_in"] and result["lists"] == plain["lists"]
    assert json.loads(entry.read_text()) == plain["lists"]


def test_switched_off_it_is_the_plain_import(plain):
    result = _probe("remembered", "off")
    assert not result["stand_in"] and result["recorded"] == plain["recorded"]

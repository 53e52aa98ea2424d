"""``specloop runs diff A B``: two recorded runs side by side."""

from __future__ import annotations

import json

import pytest
from test_bad_input import make_project


@pytest.mark.slow
def test_runs_diff_shows_config_choices_keys_metrics_and_versions(tmp_path):
    p = make_project(tmp_path / "proj")
    secret = "+store.storage_options.token=s3cr3t-value"  # local files ignore it; masked
    assert p.cli("run", secret).exit_code == 0
    assert p.cli("run", secret, "model=random_forest",
                 "model.params.n_estimators=20").exit_code == 0
    a, b = (r["run"] for r in json.loads(p.cli("runs", "list", "--json").stdout))

    doc = json.loads(p.cli("runs", "diff", a, b, "--json").stdout)
    assert (doc["a"], doc["b"]) == (a, b)
    assert {"what": "model", "a": "logistic", "b": "random_forest"} in doc["choices"]
    config = {r["what"]: r for r in doc["config"]}
    assert config["model.params.n_estimators"]["b"] == 20
    assert config["model.estimator"]["a"].endswith("LogisticRegression")
    assert "data.path" not in config  # the same in both: left out without --all
    assert doc["data"] == []
    keys = {r["what"] for r in doc["stage keys"]}
    assert {"train", "evaluate"} <= keys and not {"data", "split"} & keys
    roc = next(r for r in doc["metrics"] if r["what"] == "roc_auc")
    assert roc["b - a"] == pytest.approx(roc["b"] - roc["a"], abs=1e-6)
    assert doc["model version"] == [{"what": "model_version", "a": 1, "b": 2, "b - a": 1}]
    assert "s3cr3t-value" not in json.dumps(doc)

    text = p.cli("runs", "diff", a, b)
    assert text.exit_code == 0
    for section in ("overrides:", "choices:", "config:", "data:", "stage keys:", "metrics:"):
        assert section in text.stdout
    assert "model=random_forest model.params.n_estimators=20" in text.stdout
    assert "s3cr3t-value" not in text.stdout
    full = json.loads(p.cli("runs", "diff", a, b, "--all", "--json").stdout)
    assert any(r["what"] == "data.path" for r in full["config"])

    missing = p.cli("runs", "diff", a, "20990101-000000-nothere")
    assert missing.exit_code != 0 and "Traceback" not in missing.output
    assert "no run '20990101-000000-nothere'" in missing.output

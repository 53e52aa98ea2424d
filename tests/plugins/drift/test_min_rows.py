"""Too little data is "insufficient data", for a column and for the data set, never "drift"."""

from __future__ import annotations

import json

import numpy as np
import pytest

from drift_helpers import SEED, drift_monitor
from specloop import ConfigError
from specloop.testing.suites import make_frame
from specloop_drift._stats import column_drift, dataset_drift

pytestmark = pytest.mark.filterwarnings("error")

FEATURES = ["x1", "x2", "color"]


@pytest.fixture
def rng():
    return np.random.default_rng(SEED)


def _check(current, **config) -> dict:
    reference = make_frame(2000)[FEATURES]
    return drift_monitor(**config).check(reference, current[FEATURES], columns=FEATURES,
                                         categorical=["color"])


@pytest.mark.parametrize("rows", [1, 2, 29])
def test_a_tiny_batch_is_insufficient_data_on_every_column(rows):
    report = _check(make_frame(rows, seed=1, shift=3.0))  # shifted, but too small to tell
    assert [c["verdict"] for c in report["columns"]] == ["insufficient data"] * 3
    assert not any(c["drifted"] for c in report["columns"])
    reason = f"{rows} current row(s), fewer than min_rows=30"
    assert all(c["reason"] == reason for c in report["columns"])
    assert report["status"] == "insufficient data" and report["drifted"] is False
    assert report["n_judged"] == 0 and report["n_drifted"] == 0 and report["drift_share"] == 0.0
    assert report["reason"] == f"no feature could be judged: x1: {reason}; 3 insufficient data"
    json.dumps(report, allow_nan=False)


def test_min_rows_rows_are_judged():
    report = _check(make_frame(30, seed=1, shift=3.0))
    assert report["status"] == "drift" and report["n_judged"] == 3
    assert all(c["verdict"] == "drift" for c in report["columns"])


def test_the_schema_and_the_statistics_share_their_defaults():
    from specloop_drift import DriftConf
    from specloop_drift._verdict import DEFAULT_MIN_ROWS, DEFAULT_MISSING_RATE_CHANGE

    assert DriftConf().min_rows == DEFAULT_MIN_ROWS == 30
    assert DriftConf().missing_rate_change == DEFAULT_MISSING_RATE_CHANGE


def test_min_rows_is_configurable_and_validated():
    assert _check(make_frame(10, seed=1, shift=3.0), min_rows=5)["status"] == "drift"
    assert _check(make_frame(100, seed=1, shift=3.0), min_rows=200)["status"] == "insufficient data"
    with pytest.raises(ConfigError) as err:
        drift_monitor(min_rows=0)
    assert err.value.key == "monitor.min_rows"


def test_drift_share_counts_only_the_judged_columns(rng):
    ref = make_frame(3000)[FEATURES]
    cur = make_frame(300, seed=1)[FEATURES]
    cur["x1"] += 3.0  # drifted
    ref["sparse"] = np.where(rng.random(3000) < 0.95, np.nan, rng.normal(size=3000))
    cur["sparse"] = np.where(rng.random(300) < 0.95, np.nan, rng.normal(size=300))  # ~15 values
    report = dataset_drift(ref, cur, columns=[*FEATURES, "sparse"], categorical=["color"])
    verdicts = {c["column"]: c["verdict"] for c in report["columns"]}
    assert verdicts == {"x1": "drift", "x2": "no drift", "color": "no drift",
                        "sparse": "insufficient data"}
    assert report["n_judged"] == 3 and report["drift_share"] == pytest.approx(1 / 3)
    assert report["status"] == "no drift"
    assert report["reason"] == "1 of 3 judged feature(s) drifted (33% < 50%); 1 insufficient data"


def test_a_one_row_batch_would_otherwise_drift_on_every_column(rng):
    # What min_rows guards against: with no minimum, one row against a large reference is
    # "drift" on most columns, whatever the row holds.
    ref = rng.normal(size=5000)
    one_row = [column_drift(ref, rng.normal(size=1), categorical=False, method="wasserstein",
                            min_rows=1) for _ in range(20)]
    assert sum(r["drifted"] for r in one_row) >= 15
    guarded = column_drift(ref, rng.normal(size=1), categorical=False, method="wasserstein")
    assert guarded["verdict"] == "insufficient data" and guarded["drifted"] is False

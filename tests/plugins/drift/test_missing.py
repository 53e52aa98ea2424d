"""Missing values are drift: a feature that goes missing is never reported as stable."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from drift_helpers import SEED, cats, drift_monitor
from specloop.testing.suites import make_frame
from specloop_drift._stats import column_drift

pytestmark = pytest.mark.filterwarnings("error")

FEATURES = ["x1", "x2", "color"]


@pytest.fixture
def rng():
    return np.random.default_rng(SEED)


def _check(current: pd.DataFrame, **config) -> dict:
    reference = make_frame(2000)[FEATURES]
    return drift_monitor(**config).check(reference, current[FEATURES], columns=FEATURES,
                                         categorical=["color"])


@pytest.mark.parametrize("feature", ["x1", "color"])
def test_an_entirely_missing_feature_is_drift(feature):
    current = make_frame(500, seed=1)  # same distribution as the reference
    current[feature] = None if feature == "color" else np.nan
    report = _check(current)
    col = {c["column"]: c for c in report["columns"]}[feature]
    assert col["verdict"] == "drift" and col["drifted"] is True
    assert col["reason"] == "all values missing (missing rate 0% → 100%)"
    assert col["method"] == "missing_rate" and col["statistic"] == 1.0 and col["p_value"] < 1e-12
    assert col["missing_rate_reference"] == 0.0 and col["missing_rate_current"] == 1.0
    assert col["n_current"] == 0 and col["n_missing_current"] == 500
    others = [c for c in report["columns"] if c["column"] != feature]
    assert [c["verdict"] for c in others] == ["no drift", "no drift"]
    assert report["drift_share"] == pytest.approx(1 / 3) and report["n_drifted"] == 1
    json.dumps(report, allow_nan=False)


def test_a_newly_missing_share_is_drift_even_when_the_rest_looks_the_same(rng):
    ref = rng.normal(size=3000)
    cur = rng.normal(size=3000)
    cur[rng.random(3000) < 0.4] = np.nan
    r = column_drift(ref, cur, categorical=False)
    assert r["verdict"] == "drift"
    assert r["reason"].startswith("missing rate 0% → ") and r["reason"].endswith("%")
    assert 0.37 < r["statistic"] < 0.43 and r["threshold"] == 0.1
    # Without the missing values the two samples agree: the distance alone said "no drift".
    assert column_drift(ref, cur[~np.isnan(cur)], categorical=False)["verdict"] == "no drift"


def test_values_coming_back_is_drift_too(rng):
    ref = cats(rng, 2000, list("abc"))
    ref[:1000] = None
    r = column_drift(ref, cats(rng, 2000, list("abc")), categorical=True)
    assert r["verdict"] == "drift" and r["reason"] == "missing rate 50% → 0%"
    assert r["statistic"] == -0.5


def test_a_small_change_of_the_missing_rate_is_judged_on_the_values(rng):
    ref = rng.normal(size=3000)
    ref[:60] = np.nan  # 2 %
    cur = rng.normal(size=3000)
    cur[:150] = np.nan  # 5 %: a real change, but under missing_rate_change
    r = column_drift(ref, cur, categorical=False)
    assert r["method"] == "wasserstein" and r["verdict"] == "no drift"
    assert r["missing_rate_reference"] == 0.02 and r["missing_rate_current"] == 0.05


def test_a_change_of_the_missing_rate_that_may_be_chance_is_not_drift(rng):
    ref = rng.normal(size=3000)
    ref[rng.random(3000) < 0.2] = np.nan
    cur = rng.normal(size=30)
    cur[:9] = np.nan  # 30 % of 30 rows against about 20 %: Z-test p ~ 0.2
    r = column_drift(ref, cur, categorical=False, min_rows=10)
    assert r["method"] == "ks" and r["verdict"] == "no drift"
    cur[:16] = np.nan  # 53 %: no longer chance
    r = column_drift(ref, cur, categorical=False, min_rows=10)
    assert r["verdict"] == "drift" and r["method"] == "missing_rate"


def test_missing_rate_change_is_configurable():
    current = make_frame(500, seed=1)
    current.loc[:199, "x2"] = np.nan  # 40 %
    assert {c["column"]: c["verdict"] for c in _check(current)["columns"]}["x2"] == "drift"
    lenient = _check(current, missing_rate_change=0.5)
    assert {c["column"]: c["verdict"] for c in lenient["columns"]}["x2"] == "no drift"


def test_a_missing_feature_in_a_tiny_batch_is_insufficient_data_not_no_drift():
    current = make_frame(10, seed=1)
    current["x1"] = np.nan
    col = _check(current)["columns"][0]
    assert col["verdict"] == "insufficient data" and col["drifted"] is False

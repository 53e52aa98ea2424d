"""The report's shape: every column says what was measured, against what, and what it means."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from drift_helpers import COLUMN_KEYS, SEED, assert_plain, cats, drift_monitor
from specloop_drift._verdict import VERDICTS

pytestmark = pytest.mark.filterwarnings("error")


@pytest.fixture
def rng():
    return np.random.default_rng(SEED)


def _frames(rng, n_ref: int, n_cur: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    def frame(n, shift):
        sparse = np.full(n, np.nan)
        sparse[:20] = rng.normal(size=20)
        return pd.DataFrame({
            "shifted": rng.normal(shift, 1.0, n),
            "stable": rng.normal(size=n),
            "colour": cats(rng, n, ["red", "green", "blue"]),
            "flag": cats(rng, n, ["y", "n"]),
            "gone": rng.normal(size=n) if not shift else np.full(n, np.nan),
            "sparse": sparse,  # too few values on either side
            "when": pd.date_range("2024-01-01", periods=n, freq="min")
            + pd.Timedelta(days=30 * shift),
        })
    return frame(n_ref, 0), frame(n_cur, 1)


@pytest.mark.parametrize("n_ref, n_cur", [(600, 400), (5000, 3000)])  # tests, then distances
def test_every_column_carries_its_verdict_and_evidence(rng, n_ref, n_cur):
    ref, cur = _frames(rng, n_ref, n_cur)
    columns = list(ref.columns)
    report = drift_monitor().check(ref, cur, columns=columns, categorical=["colour", "flag"])
    by_col = {c["column"]: c for c in report["columns"]}
    assert {c: r["verdict"] for c, r in by_col.items()} == {
        "shifted": "drift", "stable": "no drift", "colour": "no drift", "flag": "no drift",
        "gone": "drift", "sparse": "insufficient data", "when": "not monitored"}
    for c in report["columns"]:
        assert set(c) == COLUMN_KEYS, c["column"]
        assert c["verdict"] in VERDICTS and c["drifted"] is (c["verdict"] == "drift")
        assert isinstance(c["reason"], str) and c["reason"]
        if c["verdict"] in ("drift", "no drift") and c["method"] != "missing_rate":
            p_method = c["statistic_name"] == "p_value"
            assert c["p_value"] == (c["statistic"] if p_method else None)
            assert isinstance(c["threshold"], float) and isinstance(c["psi"], float)
        else:
            assert c["psi"] is None
    small = n_cur <= 1000
    assert by_col["shifted"]["method"] == ("ks" if small else "wasserstein")
    assert by_col["shifted"]["p_value"] == (by_col["shifted"]["statistic"] if small else None)
    expected = "ks p-value " if small else "wasserstein distance "
    assert by_col["shifted"]["reason"].startswith(expected)
    assert by_col["gone"]["method"] == "missing_rate" and by_col["gone"]["p_value"] < 0.05
    assert report["status"] == "no drift" and report["n_judged"] == 5 and report["n_drifted"] == 2
    assert report["drift_share"] == pytest.approx(0.4)
    assert_plain(report)
    assert json.loads(json.dumps(report, allow_nan=False)) == report


def test_numpy_column_names_become_plain_values(rng):
    ref = pd.DataFrame(rng.normal(size=(200, 2)))
    cur = pd.DataFrame(rng.normal(size=(200, 2)))
    ref.columns = cur.columns = [10, 20]
    names = [np.int64(10), np.int64(20)]  # e.g. taken from an array of column labels
    report = drift_monitor().check(ref, cur, columns=names, categorical=[])
    assert [c["column"] for c in report["columns"]] == [10, 20]
    assert_plain(report)

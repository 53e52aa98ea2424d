"""Tests for the data-set verdict (``specloop_drift._stats.dataset_drift``)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from drift_helpers import SEED, assert_plain, cats
from specloop_drift._stats import dataset_drift

pytestmark = pytest.mark.filterwarnings("error")  # no RuntimeWarnings from 0/0, log(0), ...


@pytest.fixture
def rng():
    return np.random.default_rng(SEED)


def _frames(rng, n=3000):
    ref = pd.DataFrame({
        "a": rng.normal(size=n),
        "b": rng.exponential(size=n),
        "c": rng.normal(size=n),
        "colour": cats(rng, n, ["red", "green", "blue"]),
        "flag": cats(rng, n, ["y", "n"]),
    })
    cur = pd.DataFrame({
        "a": rng.normal(1.0, 1.0, n),  # shifted
        "b": rng.exponential(size=n),
        "c": rng.normal(size=n),
        "colour": cats(rng, n, ["red", "green", "blue", "pink"], [0.2, 0.2, 0.2, 0.4]),  # shifted
        "flag": cats(rng, n, ["y", "n"]),
    })
    cur.loc[:99, "c"] = np.nan
    return ref, cur


def test_dataset_drift_report(rng):
    ref, cur = _frames(rng)
    cols = ["a", "b", "c", "colour", "flag"]
    rep = dataset_drift(ref, cur, columns=cols, categorical=["colour", "flag"])
    by_col = {c["column"]: c for c in rep["columns"]}
    assert [c["column"] for c in rep["columns"]] == cols
    assert {c for c, r in by_col.items() if r["drifted"]} == {"a", "colour"}
    assert rep["n_drifted"] == 2 and rep["n_columns"] == 5 and rep["n_judged"] == 5
    assert rep["drift_share"] == pytest.approx(0.4)
    assert rep["drifted"] is False and rep["status"] == "no drift" and rep["threshold_share"] == 0.5
    assert rep["reason"] == "2 of 5 judged feature(s) drifted (40% < 50%)"
    assert rep["reference_rows"] == 3000 and rep["current_rows"] == 3000
    assert by_col["colour"]["type"] == "categorical" and by_col["a"]["type"] == "numeric"
    assert by_col["c"]["n_missing_current"] == 100
    assert dataset_drift(ref, cur, columns=cols, categorical=["colour", "flag"], drift_share=0.4)["drifted"] is True


def test_dataset_drift_is_json_serialisable(rng):
    ref, cur = _frames(rng, n=500)
    cur["c"] = np.nan  # an all-missing column too
    rep = dataset_drift(ref, cur, columns=list(ref.columns), categorical=["colour", "flag"])
    assert_plain(rep)
    assert json.loads(json.dumps(rep, allow_nan=False)) == rep


def test_dataset_drift_empty_current_raises(rng):
    ref, cur = _frames(rng, n=100)
    with pytest.raises(ValueError, match="current frame is empty"):
        dataset_drift(ref, cur.iloc[:0], columns=["a"], categorical=[])


def test_dataset_drift_missing_column_raises(rng):
    ref, cur = _frames(rng, n=100)
    with pytest.raises(ValueError, match="'zzz'"):
        dataset_drift(ref, cur, columns=["a", "zzz"], categorical=[])
    with pytest.raises(ValueError, match="current frame: 'b'"):
        dataset_drift(ref, cur.drop(columns=["b"]), columns=["a", "b"], categorical=[])
    with pytest.raises(ValueError, match="reference frame: 'a'"):
        dataset_drift(ref.drop(columns=["a"]), cur, columns=["a", "b"], categorical=[])


def test_dataset_drift_forced_method(rng):
    ref, cur = _frames(rng, n=800)
    rep = dataset_drift(ref, cur, columns=["a", "colour"], categorical=["colour"], method="psi", threshold=0.2)
    assert [c["method"] for c in rep["columns"]] == ["psi", "psi"]
    assert all(c["threshold"] == 0.2 for c in rep["columns"])
    assert rep["n_drifted"] == 2

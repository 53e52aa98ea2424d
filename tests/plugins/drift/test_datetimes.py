"""Dates and times move with time: not monitored as distributions, only for missing values."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from drift_helpers import SEED, cats
from specloop_drift._stats import column_drift, dataset_drift

pytestmark = pytest.mark.filterwarnings("error")


@pytest.fixture
def rng():
    return np.random.default_rng(SEED)


def _times(start: str, n: int, tz: str | None = None) -> pd.Series:
    # one event a minute: the current batch comes a month after the reference
    return pd.Series(pd.date_range(start, periods=n, freq="min", tz=tz))


@pytest.mark.parametrize("tz", [None, "Europe/Paris"])
@pytest.mark.parametrize("categorical", [False, True])
def test_datetime64_columns_are_not_monitored(tz, categorical):
    r = column_drift(_times("2024-01-01", 2000, tz), _times("2024-02-01", 500, tz),
                     categorical=categorical)
    assert r["type"] == "datetime" and r["verdict"] == "not monitored" and r["drifted"] is False
    assert r["reason"] == ("datetime column: its values move with time, so only its missing rate "
                           "is checked")
    assert r["method"] is None and r["statistic"] is None and r["threshold"] is None
    assert r["n_reference"] == 2000 and r["n_current"] == 500


@pytest.mark.parametrize("fmt", ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S.%f",
                                 "%Y-%m-%dT%H:%M:%SZ"])
def test_iso_date_strings_are_dates_even_when_declared_categorical(fmt):
    ref = _times("2024-01-01", 2000).dt.strftime(fmt).astype(object)
    cur = _times("2024-02-01", 500).dt.strftime(fmt).astype(object)
    assert column_drift(ref, cur, categorical=True)["verdict"] == "not monitored"
    as_strings = column_drift(ref.astype("string"), cur.astype("string"), categorical=True)
    assert as_strings["type"] == "datetime"


def test_date_objects_and_logged_strings_against_a_datetime_reference():
    days = [dt.date(2024, 1, 1) + dt.timedelta(days=i % 300) for i in range(400)]
    assert column_drift(pd.Series(days, dtype=object), pd.Series(days[::-1], dtype=object),
                        categorical=False)["verdict"] == "not monitored"
    # Served requests arrive as JSON, so a datetime feature comes back as strings.
    logged = _times("2024-02-01", 100).dt.strftime("%Y-%m-%dT%H:%M:%S").astype(object)
    assert column_drift(_times("2024-01-01", 2000), logged, categorical=False)["type"] == "datetime"


@pytest.mark.parametrize("values", [
    ["2024-13-45", "2024-01-02"] * 50,  # date-shaped but not dates
    ["01/02/2024", "03/04/2024"] * 50,  # not ISO 8601: ambiguous, left to be categories
    ["c0_v01", "c0_v02"] * 50,
])
def test_other_strings_stay_categorical(values):
    arr = np.array(values, dtype=object)
    r = column_drift(arr, arr.copy(), categorical=True)
    assert r["type"] == "categorical" and r["verdict"] == "no drift"


def test_a_datetime_column_that_goes_missing_is_drift():
    cur = _times("2024-02-01", 500)
    cur[:] = pd.NaT
    r = column_drift(_times("2024-01-01", 2000), cur, categorical=False)
    assert r["type"] == "datetime" and r["verdict"] == "drift"
    assert r["reason"] == "all values missing (missing rate 0% → 100%)"


def test_dates_do_not_count_in_the_drift_share(rng):
    ref = pd.DataFrame({"when": _times("2024-01-01", 2000), "x": rng.normal(size=2000),
                        "c": cats(rng, 2000, list("ab"))})
    cur = pd.DataFrame({"when": _times("2024-02-01", 2000), "x": rng.normal(size=2000),
                        "c": cats(rng, 2000, list("ab"))})
    rep = dataset_drift(ref, cur, columns=["when", "x", "c"], categorical=["c"])
    assert [c["verdict"] for c in rep["columns"]] == ["not monitored", "no drift", "no drift"]
    assert rep["n_judged"] == 2 and rep["drift_share"] == 0.0 and rep["status"] == "no drift"
    assert rep["reason"] == "0 of 2 judged feature(s) drifted (0% < 50%); 1 not monitored"
    only = dataset_drift(ref, cur, columns=["when"], categorical=[])
    assert only["status"] == "not monitored" and only["drifted"] is False
    json.dumps(rep, allow_nan=False)

"""Tests for the drift statistics core (``specloop_drift._stats``)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial import distance

from drift_helpers import SEED, cats
from specloop_drift._stats import DEFAULT_THRESHOLDS, METHODS, column_drift

pytestmark = pytest.mark.filterwarnings("error")  # no RuntimeWarnings from 0/0, log(0), ...


@pytest.fixture
def rng():
    return np.random.default_rng(SEED)


# --------------------------------------------------------------------------
# No drift on identical data
# --------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["ks", "wasserstein", "jensenshannon", "psi"])
def test_identical_numeric_no_drift(rng, method):
    ref = rng.normal(size=3000)
    cur = rng.permutation(ref)
    r = column_drift(ref, cur, categorical=False, method=method)
    assert r["method"] == method
    assert r["drifted"] is False
    if r["statistic_name"] == "p_value":
        assert r["statistic"] == pytest.approx(1.0)
    else:
        assert r["statistic"] == pytest.approx(0.0, abs=1e-12)
    assert r["psi"] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("method", ["chisquare", "z", "jensenshannon", "psi"])
def test_identical_categorical_no_drift(rng, method):
    levels = ["yes", "no"] if method == "z" else ["a", "b", "c", "d"]
    ref = cats(rng, 800, levels)
    cur = rng.permutation(ref)
    r = column_drift(ref, cur, categorical=True, method=method)
    assert r["type"] == "categorical"
    assert r["drifted"] is False
    if r["statistic_name"] == "p_value":
        assert r["statistic"] == pytest.approx(1.0)
    else:
        assert r["statistic"] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("n, categorical", [(400, False), (20_000, False), (20_000, True)])
def test_same_distribution_independent_samples_no_drift(rng, n, categorical):
    if categorical:
        p = [0.5, 0.3, 0.15, 0.05]
        ref, cur = cats(rng, n, list("abcd"), p), cats(rng, n, list("abcd"), p)
    else:
        ref, cur = rng.normal(size=n), rng.normal(size=n)
    r = column_drift(ref, cur, categorical=categorical)
    assert r["drifted"] is False
    assert r["psi"] < 0.05


# --------------------------------------------------------------------------
# Drift is detected
# --------------------------------------------------------------------------


def test_mean_shift_small_sample_ks(rng):
    ref = rng.normal(0.0, 1.0, 500)
    cur = rng.normal(0.6, 1.0, 500)
    r = column_drift(ref, cur, categorical=False)
    assert r["method"] == "ks" and r["statistic_name"] == "p_value"
    assert r["drifted"] is True
    assert r["statistic"] < 1e-6
    assert r["statistic"] == pytest.approx(stats.ks_2samp(ref, cur).pvalue)


def test_mean_shift_large_sample_wasserstein(rng):
    ref = rng.normal(0.0, 2.0, 5000)
    cur = rng.normal(1.0, 2.0, 6000)
    r = column_drift(ref, cur, categorical=False)
    assert r["method"] == "wasserstein" and r["statistic_name"] == "distance"
    assert r["drifted"] is True
    expected = stats.wasserstein_distance(ref, cur) / np.std(ref)
    assert r["statistic"] == pytest.approx(expected, rel=1e-12)
    assert r["statistic"] == pytest.approx(0.5, abs=0.05)


def test_new_category_large_sample_jensenshannon(rng):
    ref = cats(rng, 5000, list("abc"))
    cur = cats(rng, 5000, list("abc"))
    cur[:1500] = "new"
    r = column_drift(pd.Series(ref, name="colour"), pd.Series(cur), categorical=True)
    assert r["column"] == "colour"
    assert r["method"] == "jensenshannon" and r["statistic_name"] == "distance"
    assert r["drifted"] is True
    keys = ["a", "b", "c", "new"]
    p = np.array([np.sum(ref == k) for k in keys]) / ref.size
    q = np.array([np.sum(cur == k) for k in keys]) / cur.size
    assert r["statistic"] == pytest.approx(distance.jensenshannon(p, q), rel=1e-12)


def test_new_category_small_sample_chisquare(rng):
    ref = cats(rng, 600, list("abc"))
    cur = cats(rng, 600, list("abc"))
    cur[:60] = "new"  # unseen in reference: infinite statistic, p = 0
    r = column_drift(ref, cur, categorical=True)
    assert r["method"] == "chisquare" and r["statistic_name"] == "p_value"
    assert r["drifted"] is True
    assert r["statistic"] == 0.0


def test_chisquare_matches_scipy(rng):
    ref = cats(rng, 900, list("abcd"), [0.4, 0.3, 0.2, 0.1])
    cur = cats(rng, 700, list("abcd"), [0.3, 0.3, 0.25, 0.15])
    r = column_drift(ref, cur, categorical=True)
    assert r["method"] == "chisquare"
    rc = np.array([np.sum(ref == k) for k in "abcd"], dtype=float)
    cc = np.array([np.sum(cur == k) for k in "abcd"], dtype=float)
    expected = stats.chisquare(cc, rc * cc.sum() / rc.sum()).pvalue
    assert r["statistic"] == pytest.approx(expected, rel=1e-10)
    assert r["drifted"] is bool(expected < 0.05)


# --------------------------------------------------------------------------
# PSI
# --------------------------------------------------------------------------


def test_psi_identical_and_shifted(rng):
    ref = rng.normal(size=10_000)
    same = column_drift(ref, ref.copy(), categorical=False)
    assert same["psi"] == pytest.approx(0.0, abs=1e-12)
    shifted = column_drift(ref, rng.normal(1.0, 1.0, 10_000), categorical=False)
    assert shifted["psi"] > 0.2


def test_psi_numeric_uses_reference_deciles(rng):
    ref = rng.gamma(2.0, size=4000)
    cur = rng.gamma(2.4, size=3000)
    edges = np.quantile(ref, np.arange(1, 10) / 10)
    rc = np.bincount(np.searchsorted(edges, ref, "right"), minlength=10) / ref.size
    cc = np.bincount(np.searchsorted(edges, cur, "right"), minlength=10) / cur.size
    expected = np.sum((rc - cc) * np.log(rc / cc))
    r = column_drift(ref, cur, categorical=False)
    assert r["psi"] == pytest.approx(expected, rel=1e-10)
    # Values outside the reference range land in the open-ended outer bins.
    far = column_drift(ref, ref + 100.0, categorical=False)
    assert far["psi"] > 5


def test_psi_categorical_per_category_with_epsilon():
    ref = np.array(["a"] * 50 + ["b"] * 50, dtype=object)
    cur = np.array(["a"] * 50 + ["c"] * 50, dtype=object)
    r = column_drift(ref, cur, categorical=True)
    rp = np.array([0.5, 0.5, 1e-4])
    cp = np.array([0.5, 1e-4, 0.5])
    assert r["psi"] == pytest.approx(np.sum((rp - cp) * np.log(rp / cp)))


def test_psi_forced_method(rng):
    ref = rng.normal(size=3000)
    cur = rng.normal(0.8, 1.0, 3000)
    r = column_drift(ref, cur, categorical=False, method="psi")
    assert r["method"] == "psi" and r["statistic_name"] == "psi"
    assert r["statistic"] == r["psi"]
    assert r["threshold"] == 0.1
    assert r["drifted"] is True


# --------------------------------------------------------------------------
# Method selection
# --------------------------------------------------------------------------


@pytest.mark.parametrize("n, expected", [(999, "ks"), (1000, "ks"), (1001, "wasserstein")])
def test_auto_numeric_by_reference_size(rng, n, expected):
    r = column_drift(rng.normal(size=n), rng.normal(size=1500), categorical=False)
    assert r["method"] == expected
    assert r["threshold"] == DEFAULT_THRESHOLDS[expected]


@pytest.mark.parametrize("n, expected", [(1000, "chisquare"), (1001, "jensenshannon")])
def test_auto_categorical_by_reference_size(rng, n, expected):
    r = column_drift(cats(rng, n, list("abc")), cats(rng, 1500, list("abc")), categorical=True)
    assert r["method"] == expected


@pytest.mark.parametrize("n, expected", [(1000, "ks"), (1001, "wasserstein")])
def test_auto_small_current_batch_gets_a_test_not_a_distance(rng, n, expected):
    # Against a large reference the current batch's size decides: the distances have no
    # allowance for a small sample, the tests' p-values do.
    r = column_drift(rng.normal(size=5000), rng.normal(size=n), categorical=False)
    assert r["method"] == expected
    cat = column_drift(cats(rng, 5000, list("abc")), cats(rng, 200, list("abc")), categorical=True)
    assert cat["method"] == "chisquare"


def test_small_batch_from_the_same_distribution_is_not_drift_against_a_large_reference(rng):
    # A normed Wasserstein distance on 100 rows is above 0.1 most of the time even without
    # drift; the KS test chosen instead keeps false alarms near its 5 % level.
    ref = rng.normal(size=20_000)
    flagged = [column_drift(ref, rng.normal(size=100), categorical=False)["drifted"]
               for _ in range(200)]
    assert sum(flagged) <= 25
    assert column_drift(ref, rng.normal(0.8, 1.0, 100), categorical=False)["drifted"] is True


def test_auto_respects_small_sample_and_counts_non_missing(rng):
    ref = rng.normal(size=1200)
    assert column_drift(ref, ref, categorical=False, small_sample=2000)["method"] == "ks"
    ref[:300] = np.nan  # 900 usable values: small sample
    assert column_drift(ref, ref, categorical=False)["method"] == "ks"


def test_binary_categorical_small_sample_uses_z_test(rng):
    ref = cats(rng, 800, ["no", "yes"], [0.7, 0.3])
    cur = cats(rng, 600, ["no", "yes"], [0.6, 0.4])
    r = column_drift(ref, cur, categorical=True)
    assert r["method"] == "z" and r["statistic_name"] == "p_value"
    n1, n2 = ref.size, cur.size
    p1, p2 = np.mean(ref == "yes"), np.mean(cur == "yes")
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    assert r["statistic"] == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-10)
    assert r["drifted"] is True
    # Large samples: Jensen-Shannon instead.
    big = column_drift(cats(rng, 2000, ["no", "yes"]), cats(rng, 2000, ["no", "yes"]),
                       categorical=True)
    assert big["method"] == "jensenshannon"


def test_numeric_with_few_values_gets_categorical_tests(rng):
    # Evidently's rule: numeric with <= 5 distinct values (reference + current).
    binary = column_drift(rng.integers(0, 2, 500), rng.integers(0, 2, 500), categorical=False)
    assert binary["method"] == "z" and binary["type"] == "numeric"
    three = column_drift(rng.integers(0, 3, 500).astype(float), rng.integers(0, 3, 500), categorical=False)
    assert three["method"] == "chisquare"
    large = column_drift(rng.integers(0, 3, 5000), rng.integers(0, 3, 5000), categorical=False)
    assert large["method"] == "jensenshannon"
    six = column_drift(rng.integers(0, 6, 500), rng.integers(0, 6, 500), categorical=False)
    assert six["method"] == "ks"


def test_non_numeric_data_is_categorical():
    r = column_drift(np.array(["x", "y"] * 20), np.array(["x", "y"] * 20), categorical=False)
    assert r["type"] == "categorical" and r["method"] == "z"
    b = column_drift(pd.Series([True, False] * 20), pd.Series([True] * 40), categorical=False)
    assert b["type"] == "categorical" and b["drifted"] is True


@pytest.mark.parametrize("method", METHODS)
def test_forced_method_is_used(rng, method):
    if method == "z":  # a test of one category's share: give it two values
        ref = rng.binomial(1, 0.3, 2000)
        cur = rng.binomial(1, 0.4, 2000)
    else:
        ref = rng.normal(size=2000)
        cur = rng.normal(0.5, 1.0, 2000)
    r = column_drift(ref, cur, categorical=False, method=method)
    assert r["method"] == method
    assert r["statistic_name"] == {"ks": "p_value", "chisquare": "p_value", "z": "p_value", "psi": "psi"}.get(
        method, "distance"
    )
    assert r["threshold"] == DEFAULT_THRESHOLDS[method]
    assert r["drifted"] is True  # the shift is caught by every method
    same = column_drift(ref, rng.permutation(ref), categorical=False, method=method)
    assert same["drifted"] is False


def test_forced_threshold(rng):
    ref = rng.normal(size=3000)
    cur = rng.normal(0.5, 1.0, 3000)
    r = column_drift(ref, cur, categorical=False, threshold=0.9)
    assert r["method"] == "wasserstein" and r["threshold"] == 0.9 and r["drifted"] is False
    r = column_drift(ref[:500], cur[:500], categorical=False, method="ks", threshold=1e-300)
    assert r["drifted"] is False


def test_forced_js_on_continuous_numeric_uses_sturges_histogram(rng):
    ref = rng.normal(size=3000)
    cur = rng.normal(0.3, 1.0, 2000)
    edges = np.histogram_bin_edges(np.concatenate((ref, cur)), bins="sturges")
    p = np.histogram(ref, edges)[0] / ref.size
    q = np.histogram(cur, edges)[0] / cur.size
    r = column_drift(ref, cur, categorical=False, method="jensenshannon")
    assert r["statistic"] == pytest.approx(distance.jensenshannon(p, q), rel=1e-12)


def test_numeric_only_method_on_categorical_raises(rng):
    with pytest.raises(ValueError, match="numeric"):
        column_drift(cats(rng, 100, list("ab")), cats(rng, 100, list("ab")), categorical=True, method="ks")


def test_unknown_method_raises(rng):
    with pytest.raises(ValueError, match="unknown drift method"):
        column_drift(rng.normal(size=10), rng.normal(size=10), categorical=False, method="kl")


# --------------------------------------------------------------------------
# Wasserstein implementation details
# --------------------------------------------------------------------------


@pytest.mark.parametrize("n, m", [(1, 1), (1, 7), (13, 5), (300, 300), (1000, 1501), (2500, 997)])
def test_wasserstein_matches_scipy(rng, n, m):
    ref = np.round(rng.normal(size=n), 1)  # ties included
    cur = np.round(rng.normal(0.2, 1.5, m), 1)
    r = column_drift(ref, cur, categorical=False, method="wasserstein", min_rows=1)
    expected = stats.wasserstein_distance(ref, cur) / max(np.std(ref), 0.001)
    assert r["statistic"] == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_wasserstein_constant_reference_uses_floor():
    ref = np.full(2000, 3.0)
    cur = np.concatenate([np.full(1000, 3.0), np.linspace(3.0, 4.0, 1000)])
    r = column_drift(ref, cur, categorical=False)
    assert r["method"] == "wasserstein"
    assert r["statistic"] == pytest.approx(stats.wasserstein_distance(ref, cur) / 0.001)
    assert r["drifted"] is True


# --------------------------------------------------------------------------
# Missing values
# --------------------------------------------------------------------------


def test_nans_are_dropped_and_counted(rng):
    ref = rng.normal(size=800)
    cur = rng.normal(0.1, 1.0, 700)
    clean = column_drift(ref, cur, categorical=False)
    ref_nan = np.concatenate([ref, [np.nan] * 30])
    cur_nan = np.concatenate([[np.nan] * 20, cur, [np.inf, -np.inf]])
    r = column_drift(pd.Series(ref_nan), pd.Series(cur_nan), categorical=False)
    assert r["n_missing_current"] == 22
    assert r["n_current"] == 700 and r["n_reference"] == 800
    assert r["statistic"] == pytest.approx(clean["statistic"])
    assert r["psi"] == pytest.approx(clean["psi"])


def test_categorical_missing_values(rng):
    ref = cats(rng, 500, list("abc"))
    cur = ref.copy()
    cur[:40] = None
    cur[40:50] = np.nan
    r = column_drift(ref, pd.Series(cur), categorical=True)
    assert r["n_missing_current"] == 50
    assert r["n_current"] == 450


@pytest.mark.parametrize("categorical", [False, True])
@pytest.mark.parametrize("cur", [np.array([np.nan] * 10), np.array([], dtype=float)])
def test_too_few_current_rows_is_insufficient_data(rng, cur, categorical):
    r = column_drift(rng.normal(size=100), cur, categorical=categorical)
    assert r["verdict"] == "insufficient data" and r["drifted"] is False
    assert r["reason"] == f"{cur.size} current row(s), fewer than min_rows=30"
    assert r["statistic"] is None and r["psi"] is None
    json.dumps(r, allow_nan=False)


def test_too_few_reference_values_is_insufficient_data(rng):
    ref = np.concatenate([rng.normal(size=20), [np.nan] * 80])  # as often missing as current
    cur = np.concatenate([rng.normal(size=40), [np.nan] * 160])
    r = column_drift(ref, cur, categorical=False)
    assert r["verdict"] == "insufficient data" and r["drifted"] is False
    assert r["reason"] == "20 non-missing reference value(s), fewer than min_rows=30"


def test_forced_z_with_many_categories_tests_first_sorted_category():
    # Share of "a" (first in sorted order) against all others, as Evidently does.
    ref = np.array(["c"] * 30 + ["a"] * 40 + ["b"] * 30, dtype=object)
    cur = np.array(["c"] * 10 + ["a"] * 40 + ["b"] * 50, dtype=object)
    r = column_drift(ref, cur, categorical=True, method="z")
    assert r["statistic"] == pytest.approx(1.0)  # share of "a" is unchanged
    assert r["drifted"] is False


def test_object_column_of_numbers_is_numeric(rng):
    ref = rng.normal(size=300).astype(object)
    ref[:5] = None
    r = column_drift(pd.Series(ref), rng.normal(size=300), categorical=False)
    assert r["type"] == "numeric" and r["method"] == "ks" and r["n_reference"] == 295

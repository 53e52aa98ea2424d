"""Statistical tests that return a p-value: Kolmogorov-Smirnov, chi-square, proportions Z.

Evidently's defaults for small samples; drift is flagged when ``p < threshold``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from ._prepare import Column


def ks_p_value(col: Column) -> float:
    """Two-sample Kolmogorov-Smirnov p-value of a numeric column."""
    return float(stats.ks_2samp(col.ref, col.cur).pvalue)


def chisquare_p_value(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Pearson chi-square of current counts against reference proportions.

    The reference proportions are scaled to the current size, as
    ``scipy.stats.chisquare(f_obs, f_exp)``.  A category absent from the reference but
    present in current gives an infinite statistic, i.e. p = 0.
    """
    k = ref_counts.size
    if k < 2:
        return 1.0
    obs = cur_counts.astype(np.float64)
    exp = ref_counts * (obs.sum() / ref_counts.sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = (obs - exp) ** 2 / exp
    terms[(obs == exp)] = 0.0
    return float(stats.chi2.sf(float(terms.sum()), k - 1))


def _sort_order(labels: np.ndarray) -> np.ndarray:
    try:
        return np.array(sorted(range(len(labels)), key=lambda i: labels[i]), dtype=np.intp)
    except TypeError:
        return np.array(sorted(range(len(labels)), key=lambda i: str(labels[i])), dtype=np.intp)


def two_proportions_p_value(p1: float, n1: float, p2: float, n2: float) -> float:
    """Two-sided pooled Z-test of proportion ``p1`` among ``n1`` against ``p2`` among ``n2``."""
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    # max(): rounding must not push the variance below zero.
    denom = math.sqrt(max(pooled * (1.0 - pooled), 0.0) * (1.0 / n1 + 1.0 / n2))
    if denom == 0.0:
        return 1.0  # both proportions 0 or both 1: nothing changed
    z = (p1 - p2) / denom
    return float(2.0 * stats.norm.sf(abs(z)))


def z_p_value(ref_counts: np.ndarray, cur_counts: np.ndarray, labels: np.ndarray) -> float:
    """Proportions Z-test on the share of the first category (in sorted order) versus the rest."""
    if ref_counts.size < 2:
        return 1.0  # one category on both sides: nothing changed
    first = int(_sort_order(labels)[0])
    n1, n2 = float(ref_counts.sum()), float(cur_counts.sum())
    p1 = 1.0 - ref_counts[first] / n1
    p2 = 1.0 - cur_counts[first] / n2
    return two_proportions_p_value(p1, n1, p2, n2)

"""Distances between the reference and current distributions: Wasserstein, Jensen-Shannon, PSI.

Evidently's defaults for large samples; drift is flagged when ``value >= threshold``.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import distance

from ._prepare import Column
from ._sorted import (
    binned_counts_sorted,
    n_distinct_sorted,
    quantile_edges,
    value_counts_sorted,
    wasserstein_sorted,
)

# Forced Jensen-Shannon on a numeric column bins it (Sturges) only when the
# reference has more distinct values than this; otherwise it uses the values.
_JS_HISTOGRAM_MIN_VALUES = 20
# Floor for the reference standard deviation that normalises Wasserstein, so a
# constant reference does not divide by zero.
_WASSERSTEIN_MIN_STD = 0.001
# Replacement for empty bins / categories in PSI, whose log would be infinite.
_PSI_EPS = 1e-4


def wasserstein_norm(col: Column) -> float:
    """Wasserstein distance of a numeric column, in units of the reference's standard deviation."""
    std = float(np.std(col.ref))
    return wasserstein_sorted(col.ref, col.cur) / max(std, _WASSERSTEIN_MIN_STD)


def js_distance(col: Column) -> float:
    """Jensen-Shannon distance (natural log) of the two value distributions."""
    if col.discrete:
        rc, cc = col.ref_counts, col.cur_counts
    elif col.kind == "numeric":
        if n_distinct_sorted(col.ref) > _JS_HISTOGRAM_MIN_VALUES:
            edges = np.histogram_bin_edges(np.concatenate((col.ref, col.cur)), bins="sturges")
            rc = np.histogram(col.ref, edges)[0]
            cc = np.histogram(col.cur, edges)[0]
        else:
            rc, cc, _ = value_counts_sorted(col.ref, col.cur)
    else:
        rc, cc = col.ref_counts, col.cur_counts
    p = rc / float(col.n_ref)
    q = cc / float(col.n_cur)
    return float(distance.jensenshannon(p, q))


def _psi_from_counts(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    r = ref_counts / float(ref_counts.sum())
    c = cur_counts / float(cur_counts.sum())
    r[r == 0] = _PSI_EPS
    c[c == 0] = _PSI_EPS
    return float(np.sum((r - c) * np.log(r / c)))


def psi(col: Column, n_bins: int) -> float:
    """Population stability index: per category, or over ``n_bins`` reference-quantile bins."""
    if col.discrete or col.kind == "categorical":
        return _psi_from_counts(col.ref_counts, col.cur_counts)
    edges = quantile_edges(col.ref, n_bins)
    return _psi_from_counts(binned_counts_sorted(col.ref, edges),
                            binned_counts_sorted(col.cur, edges))

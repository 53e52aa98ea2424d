"""Vectorized helpers on sorted samples.

Each numeric column is sorted once (see ``_columns``); everything here then works on the
sorted arrays with ``searchsorted``, ``diff`` and closed-form index arithmetic instead of
sorting or searching again per statistic.
"""

from __future__ import annotations

import numpy as np


def n_distinct_sorted(a: np.ndarray) -> int:
    """Number of distinct values of a sorted array."""
    if a.size == 0:
        return 0
    return 1 + int(np.count_nonzero(a[1:] != a[:-1]))


def value_counts_sorted(ref: np.ndarray,
                        cur: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts of every distinct value of two sorted samples, aligned on their union.

    Returns ``ref_counts, cur_counts, labels``.
    """
    labels = np.union1d(np.unique(ref), np.unique(cur))
    ref_counts = np.searchsorted(ref, labels, "right") - np.searchsorted(ref, labels, "left")
    cur_counts = np.searchsorted(cur, labels, "right") - np.searchsorted(cur, labels, "left")
    return ref_counts, cur_counts, labels


def wasserstein_sorted(u: np.ndarray, v: np.ndarray) -> float:
    """First Wasserstein distance of two non-empty *sorted* samples.

    Same value as :func:`scipy.stats.wasserstein_distance`, computed as the
    integral of ``|Qu(t) - Qv(t)|`` over ``t`` in [0, 1), where ``Qu`` and
    ``Qv`` are the empirical quantile functions (step functions jumping at
    ``i/n`` and ``j/m``).  In units of ``1/(n*m)`` the jumps are the integers
    ``i*m`` and ``j*n``, whose merged order is known in closed form, so no
    sort or binary search is needed: everything is O(n + m).
    """
    n, m = u.size, v.size
    if n == m:
        return float(np.abs(u - v).sum() / n)
    size = n + m
    i = np.arange(n, dtype=np.int64)
    j = np.arange(m, dtype=np.int64)
    t_u = i * m
    t_v = j * n
    # Merged position of each jump (ties: u's jump first).
    #   u_i is preceded by #{j : j*n < i*m} = ceil(i*m / n) jumps of v,
    #   v_j is preceded by #{i : i*m <= j*n} = floor(j*n / m) + 1 jumps of u.
    pos_u = i + (t_u + (n - 1)) // n
    pos_v = j + t_v // m + 1
    t = np.empty(size + 1, dtype=np.int64)
    t[pos_u] = t_u
    t[pos_v] = t_v
    t[size] = n * m
    is_u = np.zeros(size, dtype=np.int64)
    is_u[pos_u] = 1
    n_u_jumps = np.cumsum(is_u)
    iu = n_u_jumps - 1  # position 0 is always u's first jump, so iu >= 0
    iv = np.arange(size, dtype=np.int64) - n_u_jumps
    np.maximum(iv, 0, out=iv)  # only where the interval has zero length
    widths = np.diff(t).astype(np.float64)
    return float(np.dot(widths, np.abs(u[iu] - v[iv])) / (float(n) * float(m)))


def quantile_edges(sorted_ref: np.ndarray, n_bins: int) -> np.ndarray:
    """Inner bin edges at reference quantiles, duplicates removed.

    Linear interpolation, as ``np.quantile``, but on an already sorted array.  The outer
    bins are open-ended, so values outside the reference range still land in a bin.
    """
    q = np.arange(1, n_bins) / n_bins
    pos = q * (sorted_ref.size - 1)
    lo = np.floor(pos).astype(np.intp)
    hi = np.minimum(lo + 1, sorted_ref.size - 1)
    frac = pos - lo
    edges = sorted_ref[lo] + (sorted_ref[hi] - sorted_ref[lo]) * frac
    return np.unique(edges)


def binned_counts_sorted(sorted_x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts per bin of a sorted sample; bin ``i`` holds ``edges[i-1] <= x < edges[i]``."""
    cum = np.searchsorted(sorted_x, edges, "left")
    return np.diff(np.concatenate(([0], cum, [sorted_x.size])))

"""Statistical core of the drift monitor.

Pure numpy / scipy / pandas; nothing here imports from the rest of specloop.

Test selection mirrors Evidently's data-drift defaults:

========================  ==============================  ==============================
column                    reference rows <= small_sample  reference rows > small_sample
========================  ==============================  ==============================
numeric                   Kolmogorov-Smirnov (p < 0.05)   Wasserstein / std (>= 0.1)
categorical, <= 2 values  proportions Z-test (p < 0.05)   Jensen-Shannon (>= 0.1)
categorical, > 2 values   chi-square (p < 0.05)           Jensen-Shannon (>= 0.1)
========================  ==============================  ==============================

A numeric column with at most 5 distinct values (reference and current
together) is tested like a categorical one, again as Evidently does.  The
population stability index (PSI) is computed for every column in addition to
the selected test.

Missing values (NaN/None, and +-inf for numeric columns) are dropped per
column before testing; the number dropped from the current data is reported.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial import distance

__all__ = [
    "DEFAULT_THRESHOLDS",
    "METHODS",
    "column_drift",
    "dataset_drift",
]

METHODS: tuple[str, ...] = ("ks", "chisquare", "z", "wasserstein", "jensenshannon", "psi")

DEFAULT_THRESHOLDS: dict[str, float] = {
    "ks": 0.05,
    "chisquare": 0.05,
    "z": 0.05,
    "wasserstein": 0.1,
    "jensenshannon": 0.1,
    "psi": 0.1,
}

_STATISTIC_NAMES = {
    "ks": "p_value",
    "chisquare": "p_value",
    "z": "p_value",
    "wasserstein": "distance",
    "jensenshannon": "distance",
    "psi": "psi",
}

_P_VALUE_METHODS = frozenset({"ks", "chisquare", "z"})
_NUMERIC_ONLY_METHODS = frozenset({"ks", "wasserstein"})

# Numeric columns with at most this many distinct values (reference and
# current together) get the categorical tests.
_DISCRETE_MAX_VALUES = 5
# Forced Jensen-Shannon on a numeric column bins it (Sturges) only when the
# reference has more distinct values than this; otherwise it uses the values.
_JS_HISTOGRAM_MIN_VALUES = 20
# Floor for the reference standard deviation that normalises Wasserstein.
_WASSERSTEIN_MIN_STD = 0.001
# Replacement for empty bins / categories in PSI.
_PSI_EPS = 1e-4


# --------------------------------------------------------------------------
# Column preparation: convert once to numpy, drop missing values, and derive
# either sorted numeric samples or aligned category counts.
# --------------------------------------------------------------------------


class _Column:
    """A column pair reduced to what the tests need."""

    __slots__ = (
        "kind",
        "ref",
        "cur",
        "ref_counts",
        "cur_counts",
        "labels",
        "n_ref",
        "n_cur",
        "n_missing_cur",
    )

    def __init__(self) -> None:
        self.kind = "numeric"  # "numeric" | "categorical" (declared / inferred type)
        self.ref: np.ndarray | None = None  # sorted finite float64 (numeric only)
        self.cur: np.ndarray | None = None
        self.ref_counts: np.ndarray | None = None  # aligned counts (categorical / discrete)
        self.cur_counts: np.ndarray | None = None
        self.labels: np.ndarray | None = None
        self.n_ref = 0
        self.n_cur = 0
        self.n_missing_cur = 0

    @property
    def discrete(self) -> bool:
        return self.ref_counts is not None


def _is_numeric_dtype(dtype: Any) -> bool:
    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)


_NUMERIC_INFERRED = frozenset({"integer", "floating", "mixed-integer-float", "decimal"})


def _as_float(values: np.ndarray | pd.Series) -> np.ndarray | None:
    """float64 copy/view of numeric data (missing -> NaN), ``None`` if the
    data is not numeric.  Object data counts as numeric only when every
    non-missing value is a number."""
    if isinstance(values, (pd.Series, pd.Index)):
        dtype = values.dtype
        if _is_numeric_dtype(dtype):
            return values.to_numpy(dtype=np.float64, na_value=np.nan)
        arr = values.to_numpy() if dtype == object else None
    else:
        arr = np.asarray(values)
        if arr.ndim != 1:
            arr = arr.reshape(-1)
        if _is_numeric_dtype(arr.dtype):
            return arr.astype(np.float64, copy=False)
        if arr.dtype != object:
            return None
    if arr is None or pd.api.types.infer_dtype(arr, skipna=True) not in _NUMERIC_INFERRED:
        return None
    return pd.to_numeric(pd.Series(arr, copy=False), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _finite_sorted(arr: np.ndarray) -> tuple[np.ndarray, int]:
    """Sorted copy without NaN/inf, and the number of values dropped."""
    finite = np.isfinite(arr)
    n_bad = arr.size - int(np.count_nonzero(finite))
    out = arr[finite] if n_bad else arr.copy()
    out.sort()
    return out, n_bad


def _n_distinct_sorted(a: np.ndarray) -> int:
    if a.size == 0:
        return 0
    return 1 + int(np.count_nonzero(a[1:] != a[:-1]))


def _value_counts_sorted(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts of every distinct value of two sorted samples, aligned."""
    labels = np.union1d(np.unique(ref), np.unique(cur))
    ref_counts = np.searchsorted(ref, labels, "right") - np.searchsorted(ref, labels, "left")
    cur_counts = np.searchsorted(cur, labels, "right") - np.searchsorted(cur, labels, "left")
    return ref_counts, cur_counts, labels


def _to_1d(values: np.ndarray | pd.Series) -> np.ndarray | pd.api.extensions.ExtensionArray:
    if isinstance(values, (pd.Series, pd.Index)):
        return values.array
    arr = np.asarray(values)
    return arr.reshape(-1) if arr.ndim != 1 else arr


def _category_counts(ref: Any, cur: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Aligned category counts over the union of categories (missing excluded).

    Returns ``ref_counts, cur_counts, labels, n_missing_ref, n_missing_cur``.
    """
    ref_a, cur_a = _to_1d(ref), _to_1d(cur)
    n_r = len(ref_a)

    ref_cat = isinstance(ref_a, pd.Categorical)
    cur_cat = isinstance(cur_a, pd.Categorical)
    if ref_cat and cur_cat and ref_a.categories.equals(cur_a.categories):
        # Same category set on both sides: use the integer codes directly.
        k = len(ref_a.categories)
        ref_counts = np.bincount(ref_a.codes.astype(np.intp) + 1, minlength=k + 1)
        cur_counts = np.bincount(cur_a.codes.astype(np.intp) + 1, minlength=k + 1)
        labels = np.asarray(ref_a.categories, dtype=object)
    else:
        ref_np = np.asarray(ref_a, dtype=object) if ref_cat else np.asarray(ref_a)
        cur_np = np.asarray(cur_a, dtype=object) if cur_cat else np.asarray(cur_a)
        if ref_np.dtype != cur_np.dtype:
            # Avoid numpy's implicit coercion (e.g. int + str -> str).
            ref_np = ref_np.astype(object)
            cur_np = cur_np.astype(object)
        codes, uniques = pd.factorize(np.concatenate((ref_np, cur_np)), use_na_sentinel=True)
        k = len(uniques)
        codes = codes.astype(np.intp, copy=False) + 1  # 0 == missing
        ref_counts = np.bincount(codes[:n_r], minlength=k + 1)
        cur_counts = np.bincount(codes[n_r:], minlength=k + 1)
        labels = np.asarray(uniques, dtype=object)

    n_missing_ref, n_missing_cur = int(ref_counts[0]), int(cur_counts[0])
    ref_counts, cur_counts = ref_counts[1:], cur_counts[1:]
    present = (ref_counts + cur_counts) > 0
    if not present.all():
        ref_counts, cur_counts, labels = ref_counts[present], cur_counts[present], labels[present]
    return ref_counts, cur_counts, labels, n_missing_ref, n_missing_cur


def _prepare(ref: Any, cur: Any, categorical: bool) -> _Column:
    col = _Column()
    ref_f = cur_f = None
    if not categorical:
        ref_f = _as_float(ref)
        if ref_f is not None:
            cur_f = _as_float(cur)
    if ref_f is None or cur_f is None:
        col.kind = "categorical"
        rc, cc, labels, _, n_missing_cur = _category_counts(ref, cur)
        col.ref_counts, col.cur_counts, col.labels = rc, cc, labels
        col.n_ref, col.n_cur = int(rc.sum()), int(cc.sum())
        col.n_missing_cur = n_missing_cur
        return col

    col.ref, _ = _finite_sorted(ref_f)
    col.cur, col.n_missing_cur = _finite_sorted(cur_f)
    col.n_ref, col.n_cur = col.ref.size, col.cur.size
    # Few distinct values: keep value counts for the categorical tests.
    if _n_distinct_sorted(col.ref) <= _DISCRETE_MAX_VALUES and _n_distinct_sorted(col.cur) <= _DISCRETE_MAX_VALUES:
        rc, cc, labels = _value_counts_sorted(col.ref, col.cur)
        if labels.size <= _DISCRETE_MAX_VALUES:
            col.ref_counts, col.cur_counts, col.labels = rc, cc, labels
    return col


# --------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------


def _wasserstein_sorted(u: np.ndarray, v: np.ndarray) -> float:
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


def _wasserstein_norm(col: _Column) -> float:
    std = float(np.std(col.ref))
    return _wasserstein_sorted(col.ref, col.cur) / max(std, _WASSERSTEIN_MIN_STD)


def _ks_p_value(col: _Column) -> float:
    return float(stats.ks_2samp(col.ref, col.cur).pvalue)


def _chisquare_p_value(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Pearson chi-square of current counts against reference proportions
    scaled to the current size (``scipy.stats.chisquare(f_obs, f_exp)``).

    A category absent from the reference but present in current gives an
    infinite statistic, i.e. p = 0.
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


def _z_p_value(ref_counts: np.ndarray, cur_counts: np.ndarray, labels: np.ndarray) -> float:
    """Two-sided two-proportion Z-test on the share of the first category
    (in sorted order) versus all the others."""
    if ref_counts.size < 2:
        return 1.0  # one category on both sides: nothing changed
    first = int(_sort_order(labels)[0])
    n1, n2 = float(ref_counts.sum()), float(cur_counts.sum())
    p1 = 1.0 - ref_counts[first] / n1
    p2 = 1.0 - cur_counts[first] / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    denom = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2))
    if denom == 0.0:
        return 1.0
    z = (p1 - p2) / denom
    return float(2.0 * stats.norm.sf(abs(z)))


def _js_distance(col: _Column) -> float:
    if col.discrete:
        rc, cc = col.ref_counts, col.cur_counts
    elif col.kind == "numeric":
        if _n_distinct_sorted(col.ref) > _JS_HISTOGRAM_MIN_VALUES:
            edges = np.histogram_bin_edges(np.concatenate((col.ref, col.cur)), bins="sturges")
            rc = np.histogram(col.ref, edges)[0]
            cc = np.histogram(col.cur, edges)[0]
        else:
            rc, cc, _ = _value_counts_sorted(col.ref, col.cur)
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


def _quantile_edges(sorted_ref: np.ndarray, n_bins: int) -> np.ndarray:
    """Inner bin edges at reference quantiles (linear interpolation, as
    ``np.quantile``), duplicates removed.  Outer bins are open-ended."""
    q = np.arange(1, n_bins) / n_bins
    pos = q * (sorted_ref.size - 1)
    lo = np.floor(pos).astype(np.intp)
    hi = np.minimum(lo + 1, sorted_ref.size - 1)
    frac = pos - lo
    edges = sorted_ref[lo] + (sorted_ref[hi] - sorted_ref[lo]) * frac
    return np.unique(edges)


def _psi(col: _Column, n_bins: int) -> float:
    if col.discrete or col.kind == "categorical":
        return _psi_from_counts(col.ref_counts, col.cur_counts)
    edges = _quantile_edges(col.ref, n_bins)
    # Bin i holds edges[i-1] <= x < edges[i]; both samples are sorted.
    ref_cum = np.searchsorted(col.ref, edges, "left")
    cur_cum = np.searchsorted(col.cur, edges, "left")
    rc = np.diff(np.concatenate(([0], ref_cum, [col.n_ref])))
    cc = np.diff(np.concatenate(([0], cur_cum, [col.n_cur])))
    return _psi_from_counts(rc, cc)


def _auto_method(col: _Column, small_sample: int) -> str:
    small = col.n_ref <= small_sample
    if col.kind == "categorical" or col.discrete:
        if not small:
            return "jensenshannon"
        n_values = col.labels.size
        return "chisquare" if n_values > 2 else "z"
    return "ks" if small else "wasserstein"


def _run_method(col: _Column, method: str, psi_value: float) -> float:
    if method == "ks":
        return _ks_p_value(col)
    if method == "wasserstein":
        return _wasserstein_norm(col)
    if method == "psi":
        return psi_value
    if method == "jensenshannon":
        return _js_distance(col)
    # chisquare / z on category (or distinct-value) counts
    if col.discrete or col.kind == "categorical":
        rc, cc, labels = col.ref_counts, col.cur_counts, col.labels
    else:
        rc, cc, labels = _value_counts_sorted(col.ref, col.cur)
    if method == "chisquare":
        return _chisquare_p_value(rc, cc)
    return _z_p_value(rc, cc, labels)


def _check_options(method: str, threshold: float | None, small_sample: int, psi_bins: int) -> None:
    if method != "auto" and method not in METHODS:
        raise ValueError(f"unknown drift method {method!r}; expected 'auto' or one of {', '.join(METHODS)}")
    if threshold is not None and not math.isfinite(float(threshold)):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    if int(small_sample) < 0:
        raise ValueError(f"small_sample must be >= 0, got {small_sample!r}")
    if int(psi_bins) < 1:
        raise ValueError(f"psi_bins must be >= 1, got {psi_bins!r}")


def _column_result(
    name: Any,
    ref: Any,
    cur: Any,
    *,
    categorical: bool,
    method: str,
    threshold: float | None,
    small_sample: int,
    psi_bins: int,
) -> dict:
    col = _prepare(ref, cur, categorical)

    if method == "auto":
        chosen = _auto_method(col, small_sample)
    else:
        chosen = method
        if chosen in _NUMERIC_ONLY_METHODS and col.kind != "numeric":
            raise ValueError(
                f"method {chosen!r} needs a numeric column; column {name!r} is categorical "
                "(use 'chisquare', 'z', 'jensenshannon' or 'psi')"
            )
    thr = DEFAULT_THRESHOLDS[chosen] if threshold is None else float(threshold)

    result = {
        "column": name,
        "type": col.kind,
        "method": chosen,
        "statistic_name": _STATISTIC_NAMES[chosen],
        "statistic": None,
        "threshold": thr,
        "drifted": False,
        "psi": None,
        "n_reference": int(col.n_ref),
        "n_current": int(col.n_cur),
        "n_missing_current": int(col.n_missing_cur),
        "note": None,
    }
    if col.n_cur == 0:
        result["note"] = "no values"
        return result
    if col.n_ref == 0:
        result["note"] = "no reference values"
        return result

    psi_value = _psi(col, int(psi_bins))
    statistic = _run_method(col, chosen, psi_value)
    if chosen in _P_VALUE_METHODS:
        drifted = statistic < thr
    else:
        drifted = statistic >= thr
    result["statistic"] = float(statistic)
    result["drifted"] = bool(drifted)
    result["psi"] = float(psi_value)
    return result


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


def column_drift(
    ref: np.ndarray | pd.Series,
    cur: np.ndarray | pd.Series,
    *,
    categorical: bool,
    method: str = "auto",
    threshold: float | None = None,
    small_sample: int = 1000,
    psi_bins: int = 10,
) -> dict:
    """Drift test for one column.

    ``method`` is ``"auto"`` (Evidently's defaults, see the module docstring)
    or one of :data:`METHODS`; ``threshold=None`` uses the method's default
    from :data:`DEFAULT_THRESHOLDS`.  A p-value method flags drift when
    ``p < threshold``, a distance method (and ``"psi"``) when
    ``value >= threshold``.  A column that is not numeric is treated as
    categorical even with ``categorical=False``.

    Returns a JSON-serialisable dict with ``column`` (the Series name or
    ``None``), ``type``, ``method``, ``statistic_name`` (``"p_value"``,
    ``"distance"`` or ``"psi"``), ``statistic``, ``threshold``, ``drifted``,
    ``psi`` (always computed), ``n_reference`` / ``n_current`` (non-missing
    values used), ``n_missing_current`` and ``note``.  When either side has no
    usable values, ``drifted`` is ``False``, ``statistic``/``psi`` are ``None``
    and ``note`` is ``"no values"`` (current) or ``"no reference values"``.
    """
    _check_options(method, threshold, small_sample, psi_bins)
    name = getattr(ref, "name", None) if isinstance(ref, pd.Series) else None
    return _column_result(
        name,
        ref,
        cur,
        categorical=bool(categorical),
        method=method,
        threshold=threshold,
        small_sample=small_sample,
        psi_bins=psi_bins,
    )


def dataset_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    columns: list[str],
    categorical: list[str],
    method: str = "auto",
    threshold: float | None = None,
    drift_share: float = 0.5,
    small_sample: int = 1000,
    psi_bins: int = 10,
) -> dict:
    """Drift test for each of ``columns``; the dataset counts as drifted when
    the share of drifted columns is at least ``drift_share``.

    Columns named in ``categorical`` are tested as categorical; the others as
    numeric (non-numeric data falls back to categorical).

    Raises ``ValueError`` if a column is missing from either frame, if no
    columns are given, or if either frame has no rows.
    """
    if not isinstance(reference, pd.DataFrame) or not isinstance(current, pd.DataFrame):
        raise TypeError("reference and current must be pandas DataFrames")
    _check_options(method, threshold, small_sample, psi_bins)
    columns = list(columns)
    if not columns:
        raise ValueError("dataset_drift needs at least one column to test")

    missing_ref = [c for c in columns if c not in reference.columns]
    missing_cur = [c for c in columns if c not in current.columns]
    if missing_ref or missing_cur:
        parts = []
        if missing_ref:
            parts.append(f"missing from the reference frame: {', '.join(map(repr, missing_ref))}")
        if missing_cur:
            parts.append(f"missing from the current frame: {', '.join(map(repr, missing_cur))}")
        raise ValueError("drift columns " + "; ".join(parts))
    for frame_name, frame in (("reference", reference), ("current", current)):
        dup = [c for c in columns if isinstance(frame[c], pd.DataFrame)]
        if dup:
            raise ValueError(f"column(s) {', '.join(map(repr, dup))} appear more than once in the {frame_name} frame")
    if len(current) == 0:
        raise ValueError("current frame is empty (0 rows); nothing to compare against the reference")
    if len(reference) == 0:
        raise ValueError("reference frame is empty (0 rows); cannot test drift")

    cat = set(categorical)
    results = [
        _column_result(
            c,
            reference[c],
            current[c],
            categorical=c in cat,
            method=method,
            threshold=threshold,
            small_sample=small_sample,
            psi_bins=psi_bins,
        )
        for c in columns
    ]
    n_drifted = sum(1 for r in results if r["drifted"])
    share = n_drifted / len(results)
    return {
        "drift_share": float(share),
        "drifted": bool(share >= drift_share),
        "n_drifted": int(n_drifted),
        "n_columns": len(results),
        "threshold_share": float(drift_share),
        "columns": results,
        "reference_rows": int(len(reference)),
        "current_rows": int(len(current)),
    }

"""Column preparation: each column pair is converted once to what the statistics need.

A numeric column becomes two sorted finite float64 samples (and, with few distinct values,
aligned value counts); any other column becomes aligned category counts.  Missing values
(NaN/None, and +-inf for numeric columns) are dropped here and counted.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ._sorted import n_distinct_sorted, value_counts_sorted

# Numeric columns with at most this many distinct values (reference and
# current together) get the categorical tests, as Evidently does.
DISCRETE_MAX_VALUES = 5

_NUMERIC_INFERRED = frozenset({"integer", "floating", "mixed-integer-float", "decimal"})


class Column:
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
        "n_missing_ref",
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
        self.n_missing_ref = 0  # NaN/None, and +-inf for numeric columns
        self.n_missing_cur = 0

    @property
    def discrete(self) -> bool:
        """Whether aligned counts are kept (categorical, or numeric with few values)."""
        return self.ref_counts is not None


def _is_numeric_dtype(dtype: Any) -> bool:
    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)


def _as_float(values: np.ndarray | pd.Series) -> np.ndarray | None:
    """float64 copy/view of numeric data (missing -> NaN), ``None`` if the data is not numeric.

    Object data counts as numeric only when every non-missing value is a number.
    """
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
    numbers = pd.to_numeric(pd.Series(arr, copy=False), errors="coerce")
    return numbers.to_numpy(dtype=np.float64, na_value=np.nan)


def _finite_sorted(arr: np.ndarray) -> tuple[np.ndarray, int]:
    """Sorted copy without NaN/inf, and the number of values dropped."""
    finite = np.isfinite(arr)
    n_bad = arr.size - int(np.count_nonzero(finite))
    out = arr[finite] if n_bad else arr.copy()
    out.sort()
    return out, n_bad


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


def prepare(ref: Any, cur: Any, categorical: bool) -> Column:
    """Reduce a reference / current column pair to sorted samples or aligned counts.

    Args:
        ref: The reference values (array-like or Series).
        cur: The current values.
        categorical: Whether the column is declared categorical; a column that is not
            numeric is categorical either way.

    Returns:
        The prepared :class:`Column`.
    """
    col = Column()
    ref_f = cur_f = None
    if not categorical:
        ref_f = _as_float(ref)
        if ref_f is not None:
            cur_f = _as_float(cur)
    if ref_f is None or cur_f is None:
        col.kind = "categorical"
        rc, cc, labels, n_missing_ref, n_missing_cur = _category_counts(ref, cur)
        col.ref_counts, col.cur_counts, col.labels = rc, cc, labels
        col.n_ref, col.n_cur = int(rc.sum()), int(cc.sum())
        col.n_missing_ref, col.n_missing_cur = n_missing_ref, n_missing_cur
        return col

    col.ref, col.n_missing_ref = _finite_sorted(ref_f)
    col.cur, col.n_missing_cur = _finite_sorted(cur_f)
    col.n_ref, col.n_cur = col.ref.size, col.cur.size
    # Few distinct values: keep value counts for the categorical tests.
    if (n_distinct_sorted(col.ref) <= DISCRETE_MAX_VALUES
            and n_distinct_sorted(col.cur) <= DISCRETE_MAX_VALUES):
        rc, cc, labels = value_counts_sorted(col.ref, col.cur)
        if labels.size <= DISCRETE_MAX_VALUES:
            col.ref_counts, col.cur_counts, col.labels = rc, cc, labels
    return col

"""Which columns hold dates and times.

A date or time column is not monitored for distribution drift: an event time, a signup date
or a billing period moves forward with every batch, so a two-sample test or a distance flags
it whether or not anything is wrong, and as categories every new date is an unseen one.  The
monitor still checks such a column's missing rate.

A column counts as dates and times when either side has a pandas datetime64 dtype (naive or
with a time zone) or a period dtype, or when the first non-missing values of the reference
(of the current data when the reference has none) are Python ``date``/``datetime`` objects or
strings in ISO 8601 form: ``YYYY-MM-DD``, optionally followed by a time and an offset.  Only
a sample is read, so checking a large categorical column costs microseconds.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

# How many non-missing values decide whether an object/string column holds ISO dates.
_SAMPLE = 20
# Rows looked at to find them before falling back to the whole column.
_HEAD = 512

_ISO_DATE = re.compile(
    r"\d{4}-\d{2}-\d{2}"  # date
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?"  # time
    r"(?:Z|[+-]\d{2}(?::?\d{2})?)?"  # offset
)

_DATE_INFERRED = frozenset({"datetime64", "datetime", "date"})


def _is_datetime_dtype(dtype: Any) -> bool:
    return pd.api.types.is_datetime64_any_dtype(dtype) or isinstance(dtype, pd.PeriodDtype)


def _sample(values: Any) -> np.ndarray:
    """Up to ``_SAMPLE`` non-missing values, from the head of the column when it has them."""
    if isinstance(values, (pd.Series, pd.Index)):
        full = values.array
    else:
        full = np.asarray(values).reshape(-1)
    found = np.asarray(full[:_HEAD], dtype=object)
    found = found[~pd.isna(found)]
    if found.size == 0 and len(full) > _HEAD:
        found = np.asarray(full, dtype=object)
        found = found[~pd.isna(found)]
    return found[:_SAMPLE]


def _looks_like_dates(sample: np.ndarray) -> bool:
    kind = pd.api.types.infer_dtype(sample, skipna=True)
    if kind in _DATE_INFERRED:
        return True
    if kind != "string" or not all(_ISO_DATE.fullmatch(v) for v in sample):
        return False
    try:  # the pattern admits 2024-13-45; the parser does not
        pd.to_datetime(pd.Series(sample), format="ISO8601")
    except (ValueError, OverflowError):
        return False
    return True


def is_datetime(ref: Any, cur: Any) -> bool:
    """Whether a reference / current column pair holds dates and times.

    Args:
        ref: Reference values (array-like or Series).
        cur: Current values.

    Returns:
        ``True`` for a datetime64 or period dtype on either side, or for object/string values
        that are dates, datetimes or ISO 8601 date strings (see the module docstring).
    """
    for values in (ref, cur):
        if _is_datetime_dtype(getattr(values, "dtype", None)):
            return True
    for values in (ref, cur):
        dtype = getattr(values, "dtype", None)
        if dtype is None:
            dtype = np.asarray(values).dtype
        if dtype != object and not pd.api.types.is_string_dtype(dtype):
            return False  # numeric, bool or categorical data: not dates
        sample = _sample(values)
        if sample.size:
            return _looks_like_dates(sample)
    return False

"""Missing values as drift: a feature that goes missing in the current data has drifted.

The statistics drop missing values before comparing distributions, so on their own they
would call a feature that arrives entirely empty "no drift" while the model loses it.  A
change of at least ``missing_rate_change`` in the share of missing values (absolute: 0.1 is
ten percentage points), either way, is drift when a two-proportion Z-test also says it is not
chance (p < 0.05), so a 30-row batch with two missing values where the reference has one in
a hundred is not an alarm, and a batch where the feature is gone is.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._significance import two_proportions_p_value

# Significance of a change in the missing rate (the Z-test's p-value must be below it).
P_VALUE = 0.05


def missing_count(values: object) -> int:
    """Missing values (NaN, None, NaT, pandas NA) of a column or array."""
    if isinstance(values, (pd.Series, pd.Index)):
        return int(values.isna().sum())
    arr = np.asarray(values)
    return int(np.count_nonzero(pd.isna(arr.reshape(-1))))


def missing_rate_check(
    n_missing_ref: int, n_ref_rows: int, n_missing_cur: int, n_cur_rows: int, min_change: float
) -> tuple[float, float | None, bool]:
    """Compare the missing rates of the reference and the current data.

    Args:
        n_missing_ref: Missing values in the reference.
        n_ref_rows: Rows of the reference (at least 1).
        n_missing_cur: Missing values in the current data.
        n_cur_rows: Rows of the current data (at least 1).
        min_change: Smallest absolute change of the missing rate that counts as drift.

    Returns:
        ``(change, p_value, drifted)``: the current rate minus the reference rate, the
        two-sided Z-test p-value (``None`` when the change is below ``min_change``), and
        whether the change is drift.
    """
    rate_ref = n_missing_ref / n_ref_rows
    rate_cur = n_missing_cur / n_cur_rows
    change = rate_cur - rate_ref
    if abs(change) < min_change:
        return change, None, False  # too small to matter, significant or not: skip the test
    p_value = two_proportions_p_value(rate_ref, float(n_ref_rows), rate_cur, float(n_cur_rows))
    return change, p_value, p_value < P_VALUE


def describe_rates(rate_ref: float, rate_cur: float, all_missing: bool) -> str:
    """The reason text of a missing-rate drift, e.g. ``missing rate 0% → 35%``."""
    text = f"missing rate {_percent(rate_ref)} → {_percent(rate_cur)}"
    return f"all values missing ({text})" if all_missing else text


def _percent(rate: float) -> str:
    # Whole percents, except that a small non-zero rate is not shown as 0% or 100%.
    pct = rate * 100.0
    if 0.0 < pct < 1.0:
        return f"{pct:.1g}%" if pct >= 0.1 else "<0.1%"
    if 99.0 < pct < 100.0:
        return ">99%"
    return f"{pct:.0f}%"

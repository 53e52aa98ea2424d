"""One column's verdict: ``drift``, ``no drift``, ``insufficient data`` or ``not monitored``.

In order:

1. fewer than ``min_rows`` rows on either side: ``insufficient data``;
2. a significant change of the missing rate (``_missing``): ``drift`` (method ``missing_rate``);
3. dates and times (``_datetimes``): ``not monitored``;
4. fewer than ``min_rows`` non-missing values on either side: ``insufficient data``;
5. the distribution test or distance against its threshold: ``drift`` or ``no drift``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ._datetimes import is_datetime
from ._distances import psi
from ._methods import (
    DEFAULT_THRESHOLDS,
    NUMERIC_ONLY_METHODS,
    P_VALUE_METHODS,
    STATISTIC_NAMES,
    auto_method,
    check_options,
    run_method,
)
from ._missing import describe_rates, missing_count, missing_rate_check
from ._prepare import prepare

VERDICTS: tuple[str, ...] = ("drift", "no drift", "insufficient data", "not monitored")

# Below this many rows (or non-missing values) a column is not judged.  30 is where the
# normal approximations behind the Z-tests and the chi-square test start to hold; below it
# the tests catch only shifts large enough to be seen anyway, and the distances are noise.
# (Above it, small batches get the tests, not the distances: ``_methods.auto_method``.)
# The monitor's schema (``DriftConf`` in ``__init__``) repeats both defaults, since the
# plugin module must import without numpy.
DEFAULT_MIN_ROWS = 30
# Change of the missing rate (absolute) that counts as drift when it is significant.
DEFAULT_MISSING_RATE_CHANGE = 0.1


def _plain(value: Any) -> Any:
    """A JSON-native value: Python floats and ints, no numpy scalars, no NaN or infinity."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _rate(n_missing: int, n_rows: int) -> float | None:
    return n_missing / n_rows if n_rows else None


def _decide(result: dict, verdict: str, reason: str) -> dict:
    result["verdict"] = verdict
    result["drifted"] = verdict == "drift"
    result["reason"] = reason
    return result


def _n_rows(values: Any) -> int:
    if isinstance(values, (pd.Series, pd.Index)):
        return len(values)
    return int(np.asarray(values).size)


def _test_reason(method: str, statistic: float, threshold: float, drifted: bool) -> str:
    # e.g. "ks p-value 0.0012 < 0.05", "wasserstein distance 0.031 < 0.1", "psi 0.27 >= 0.1"
    what = method if method == "psi" else f"{method} {STATISTIC_NAMES[method].replace('_', '-')}"
    if method in P_VALUE_METHODS:
        op = "<" if drifted else ">="
    else:
        op = ">=" if drifted else "<"
    return f"{what} {statistic:.3g} {op} {threshold:g}"


def column_result(
    name: Any,
    ref: Any,
    cur: Any,
    *,
    categorical: bool,
    method: str,
    threshold: float | None,
    small_sample: int,
    psi_bins: int,
    min_rows: int = DEFAULT_MIN_ROWS,
    missing_rate_change: float = DEFAULT_MISSING_RATE_CHANGE,
) -> dict:
    """The result dict of one column (options already checked); see :func:`column_drift`."""
    n_ref_rows, n_cur_rows = _n_rows(ref), _n_rows(cur)
    result: dict[str, Any] = {
        "column": _plain(name),
        "type": "datetime",
        "verdict": None,
        "drifted": False,
        "reason": None,
        "method": None,
        "statistic_name": None,
        "statistic": None,
        "p_value": None,
        "threshold": None,
        "psi": None,
        "n_reference": 0,
        "n_current": 0,
        "n_missing_current": 0,
        "missing_rate_reference": None,
        "missing_rate_current": None,
    }

    dates = is_datetime(ref, cur)
    if dates:
        col = None
        n_missing_ref, n_missing_cur = missing_count(ref), missing_count(cur)
        result["n_reference"] = n_ref_rows - n_missing_ref
        result["n_current"] = n_cur_rows - n_missing_cur
    else:
        col = prepare(ref, cur, categorical)
        n_missing_ref, n_missing_cur = col.n_missing_ref, col.n_missing_cur
        chosen = auto_method(col, small_sample) if method == "auto" else method
        if chosen in NUMERIC_ONLY_METHODS and col.kind != "numeric":
            raise ValueError(
                f"method {chosen!r} needs a numeric column; column {name!r} is categorical "
                "(use 'chisquare', 'z', 'jensenshannon' or 'psi')"
            )
        thr = DEFAULT_THRESHOLDS[chosen] if threshold is None else float(threshold)
        result.update(type=col.kind, method=chosen, statistic_name=STATISTIC_NAMES[chosen],
                      threshold=thr, n_reference=int(col.n_ref), n_current=int(col.n_cur))
    result["n_missing_current"] = int(n_missing_cur)
    result["missing_rate_reference"] = _rate(n_missing_ref, n_ref_rows)
    result["missing_rate_current"] = _rate(n_missing_cur, n_cur_rows)

    if n_cur_rows < min_rows or n_ref_rows < min_rows:
        side, n = ("current", n_cur_rows) if n_cur_rows < min_rows else ("reference", n_ref_rows)
        return _decide(result, "insufficient data",
                       f"{n} {side} row(s), fewer than min_rows={min_rows}")

    change, p_missing, missing_drift = missing_rate_check(
        n_missing_ref, n_ref_rows, n_missing_cur, n_cur_rows, missing_rate_change)
    if missing_drift:
        # The distribution of what is left is beside the point: the model lost the values.
        result.update(method="missing_rate", statistic_name="missing_rate_change",
                      statistic=_plain(change), p_value=_plain(p_missing),
                      threshold=float(missing_rate_change))
        reason = describe_rates(n_missing_ref / n_ref_rows, n_missing_cur / n_cur_rows,
                                all_missing=n_missing_cur == n_cur_rows)
        return _decide(result, "drift", reason)

    if dates:
        return _decide(result, "not monitored",
                       "datetime column: its values move with time, so only its missing rate is "
                       "checked")

    if col.n_cur < min_rows or col.n_ref < min_rows:
        side, n = ("current", col.n_cur) if col.n_cur < min_rows else ("reference", col.n_ref)
        return _decide(result, "insufficient data",
                       f"{n} non-missing {side} value(s), fewer than min_rows={min_rows}")

    chosen, thr = result["method"], result["threshold"]
    psi_value = psi(col, int(psi_bins))
    statistic = run_method(col, chosen, psi_value)
    drifted = statistic < thr if chosen in P_VALUE_METHODS else statistic >= thr
    result.update(statistic=_plain(float(statistic)), psi=_plain(float(psi_value)),
                  p_value=_plain(float(statistic)) if chosen in P_VALUE_METHODS else None)
    verdict = "drift" if drifted else "no drift"
    return _decide(result, verdict, _test_reason(chosen, float(statistic), thr, bool(drifted)))


def column_drift(
    ref: np.ndarray | pd.Series,
    cur: np.ndarray | pd.Series,
    *,
    categorical: bool,
    method: str = "auto",
    threshold: float | None = None,
    small_sample: int = 1000,
    psi_bins: int = 10,
    min_rows: int = DEFAULT_MIN_ROWS,
    missing_rate_change: float = DEFAULT_MISSING_RATE_CHANGE,
) -> dict:
    """Drift verdict for one column.

    A p-value method flags drift when ``p < threshold``, a distance method (and ``"psi"``)
    when ``value >= threshold``.  A column that is not numeric is treated as categorical even
    with ``categorical=False``; dates and times are not tested (see ``_datetimes``).

    Args:
        ref: Reference values (the Series name, if any, becomes ``column``).
        cur: Current values.
        categorical: Whether to test the column as categorical.
        method: ``"auto"`` (Evidently's defaults, see ``_stats``) or one of ``METHODS``.
        threshold: The per-column threshold; ``None`` uses the method's default from
            ``DEFAULT_THRESHOLDS``.
        small_sample: Sample sizes (the smaller of the two) up to which ``"auto"`` picks
            statistical tests.
        psi_bins: Reference-quantile bins for the PSI of a numeric column.
        min_rows: Fewest rows, and non-missing values, on each side for a verdict.
        missing_rate_change: Smallest significant change of the missing rate that is drift.

    Returns:
        A JSON-serialisable dict: ``column``; ``type`` (``numeric``, ``categorical`` or
        ``datetime``); ``verdict`` (one of ``VERDICTS``); ``drifted`` (``verdict ==
        "drift"``); ``reason`` (one line, e.g. ``ks p-value 0.0012 < 0.05`` or ``all values
        missing (missing rate 0% → 100%)``); ``method`` (or ``"missing_rate"``, or ``None``
        when not monitored); ``statistic_name`` and ``statistic`` (the value compared with
        ``threshold``); ``p_value`` (``None`` for distances); ``threshold``; ``psi``;
        ``n_reference`` / ``n_current`` (non-missing values); ``n_missing_current``;
        ``missing_rate_reference`` / ``missing_rate_current``.  Values not computed are
        ``None``, never NaN.

    Raises:
        ValueError: For an unknown method, a bad option, or a numeric-only method on a
            categorical column.
    """
    check_options(method, threshold, small_sample, psi_bins, min_rows, missing_rate_change)
    name = getattr(ref, "name", None) if isinstance(ref, pd.Series) else None
    return column_result(
        name,
        ref,
        cur,
        categorical=bool(categorical),
        method=method,
        threshold=threshold,
        small_sample=small_sample,
        psi_bins=psi_bins,
        min_rows=min_rows,
        missing_rate_change=missing_rate_change,
    )

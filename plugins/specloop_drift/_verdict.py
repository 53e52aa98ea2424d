"""One column's drift result: prepare the pair, pick the method, compare with the threshold."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ._prepare import prepare
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
) -> dict:
    """The result dict of one column (options already checked); see :func:`column_drift`."""
    col = prepare(ref, cur, categorical)

    if method == "auto":
        chosen = auto_method(col, small_sample)
    else:
        chosen = method
        if chosen in NUMERIC_ONLY_METHODS and col.kind != "numeric":
            raise ValueError(
                f"method {chosen!r} needs a numeric column; column {name!r} is categorical "
                "(use 'chisquare', 'z', 'jensenshannon' or 'psi')"
            )
    thr = DEFAULT_THRESHOLDS[chosen] if threshold is None else float(threshold)

    result = {
        "column": name,
        "type": col.kind,
        "method": chosen,
        "statistic_name": STATISTIC_NAMES[chosen],
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

    psi_value = psi(col, int(psi_bins))
    statistic = run_method(col, chosen, psi_value)
    if chosen in P_VALUE_METHODS:
        drifted = statistic < thr
    else:
        drifted = statistic >= thr
    result["statistic"] = float(statistic)
    result["drifted"] = bool(drifted)
    result["psi"] = float(psi_value)
    return result


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

    A p-value method flags drift when ``p < threshold``, a distance method (and ``"psi"``)
    when ``value >= threshold``.  A column that is not numeric is treated as categorical even
    with ``categorical=False``.

    Args:
        ref: Reference values (the Series name, if any, becomes ``column``).
        cur: Current values.
        categorical: Whether to test the column as categorical.
        method: ``"auto"`` (Evidently's defaults, see ``_stats``) or one of ``METHODS``.
        threshold: The per-column threshold; ``None`` uses the method's default from
            ``DEFAULT_THRESHOLDS``.
        small_sample: Reference sizes up to which ``"auto"`` picks statistical tests.
        psi_bins: Reference-quantile bins for the PSI of a numeric column.

    Returns:
        A JSON-serialisable dict with ``column``, ``type``, ``method``, ``statistic_name``
        (``"p_value"``, ``"distance"`` or ``"psi"``), ``statistic``, ``threshold``,
        ``drifted``, ``psi`` (always computed), ``n_reference`` / ``n_current`` (non-missing
        values used), ``n_missing_current`` and ``note``.  When either side has no usable
        values, ``drifted`` is ``False``, ``statistic``/``psi`` are ``None`` and ``note`` is
        ``"no values"`` (current) or ``"no reference values"``.

    Raises:
        ValueError: For an unknown method, a bad option, or a numeric-only method on a
            categorical column.
    """
    check_options(method, threshold, small_sample, psi_bins)
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
    )

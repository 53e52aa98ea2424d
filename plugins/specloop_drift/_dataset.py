"""The data-set verdict: every feature's result and the share of drifted features."""

from __future__ import annotations

import pandas as pd

from ._methods import check_options
from ._verdict import DEFAULT_MIN_ROWS, DEFAULT_MISSING_RATE_CHANGE, column_result


def _check_frames(reference: pd.DataFrame, current: pd.DataFrame, columns: list[str]) -> None:
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
            raise ValueError(f"column(s) {', '.join(map(repr, dup))} appear more than once in the "
                             f"{frame_name} frame")
    if len(current) == 0:
        raise ValueError("current frame is empty (0 rows); nothing to compare against the "
                         "reference")
    if len(reference) == 0:
        raise ValueError("reference frame is empty (0 rows); cannot test drift")


def _summary(results: list[dict], n_judged: int, n_drifted: int, share: float,
             drift_share: float) -> str:
    counts = {v: sum(1 for r in results if r["verdict"] == v)
              for v in ("insufficient data", "not monitored")}
    tail = "".join(f"; {n} {v}" for v, n in counts.items() if n)
    if n_judged:
        op = ">=" if share >= drift_share else "<"
        return (f"{n_drifted} of {n_judged} judged feature(s) drifted "
                f"({share:.0%} {op} {drift_share:.0%}){tail}")
    # Nothing judged: the first unjudged column's reason says why (usually the batch's size).
    first = next((r for r in results if r["verdict"] == "insufficient data"), results[0])
    return f"no feature could be judged: {first['column']}: {first['reason']}{tail}"


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
    min_rows: int = DEFAULT_MIN_ROWS,
    missing_rate_change: float = DEFAULT_MISSING_RATE_CHANGE,
) -> dict:
    """Drift verdict for each of ``columns``, and the data-set verdict.

    Only the judged columns (verdict ``drift`` or ``no drift``) count: the data set has
    drifted when the share of drifted ones among them is at least ``drift_share``.  When no
    column can be judged, ``status`` is ``"insufficient data"`` (or ``"not monitored"`` when
    every column is a date), ``drifted`` is ``False`` and ``drift_share`` is 0.0 (a float, as
    consumers of a monitor's report expect).

    Args:
        reference: The reference frame (the champion's training data).
        current: The batch to check.
        columns: The columns to test, in report order.
        categorical: Columns tested as categorical; the others are tested as numeric
            (non-numeric data falls back to categorical, dates are not tested).
        method: See :func:`column_drift`.
        threshold: See :func:`column_drift`.
        drift_share: Share of drifted judged columns that makes the data set drifted.
        small_sample: See :func:`column_drift`.
        psi_bins: See :func:`column_drift`.
        min_rows: See :func:`column_drift`.
        missing_rate_change: See :func:`column_drift`.

    Returns:
        A JSON-serialisable dict: ``status`` (``"drift"``, ``"no drift"``, ``"insufficient
        data"`` or ``"not monitored"``), ``drifted``, ``drift_share`` (over judged columns),
        ``reason`` (one line), ``n_drifted``, ``n_judged``, ``n_columns``,
        ``threshold_share``, ``columns`` (one :func:`column_drift` result per column),
        ``reference_rows`` and ``current_rows``.

    Raises:
        TypeError: If either frame is not a DataFrame.
        ValueError: If a column is missing from either frame or duplicated, if no columns are
            given, if either frame has no rows, or for a bad option.
    """
    if not isinstance(reference, pd.DataFrame) or not isinstance(current, pd.DataFrame):
        raise TypeError("reference and current must be pandas DataFrames")
    check_options(method, threshold, small_sample, psi_bins, min_rows, missing_rate_change)
    columns = list(columns)
    _check_frames(reference, current, columns)

    cat = set(categorical)
    results = [
        column_result(
            c,
            reference[c],
            current[c],
            categorical=c in cat,
            method=method,
            threshold=threshold,
            small_sample=small_sample,
            psi_bins=psi_bins,
            min_rows=min_rows,
            missing_rate_change=missing_rate_change,
        )
        for c in columns
    ]
    n_judged = sum(1 for r in results if r["verdict"] in ("drift", "no drift"))
    n_drifted = sum(1 for r in results if r["drifted"])
    share = n_drifted / n_judged if n_judged else 0.0
    if n_judged:
        status = "drift" if share >= drift_share else "no drift"
    else:
        unjudged = {r["verdict"] for r in results}
        status = "insufficient data" if "insufficient data" in unjudged else "not monitored"
    return {
        "status": status,
        "drifted": status == "drift",
        "drift_share": float(share),
        "reason": _summary(results, n_judged, n_drifted, share, float(drift_share)),
        "n_drifted": int(n_drifted),
        "n_judged": int(n_judged),
        "n_columns": len(results),
        "threshold_share": float(drift_share),
        "columns": results,
        "reference_rows": int(len(reference)),
        "current_rows": int(len(current)),
    }

"""The data-set verdict: every feature's result and the share of drifted features."""

from __future__ import annotations

import pandas as pd

from ._verdict import column_result
from ._methods import check_options


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
            raise ValueError(f"column(s) {', '.join(map(repr, dup))} appear more than once in the {frame_name} frame")
    if len(current) == 0:
        raise ValueError("current frame is empty (0 rows); nothing to compare against the reference")
    if len(reference) == 0:
        raise ValueError("reference frame is empty (0 rows); cannot test drift")


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
    """Drift test for each of ``columns``, and the data-set verdict.

    The data set counts as drifted when the share of drifted columns is at least
    ``drift_share``.

    Args:
        reference: The reference frame (the champion's training data).
        current: The batch to check.
        columns: The columns to test, in report order.
        categorical: Columns tested as categorical; the others are tested as numeric
            (non-numeric data falls back to categorical).
        method: See :func:`column_drift`.
        threshold: See :func:`column_drift`.
        drift_share: Share of drifted columns that makes the data set drifted.
        small_sample: See :func:`column_drift`.
        psi_bins: See :func:`column_drift`.

    Returns:
        A JSON-serialisable dict with ``drift_share``, ``drifted``, ``n_drifted``,
        ``n_columns``, ``threshold_share``, ``columns`` (one :func:`column_drift` result per
        column), ``reference_rows`` and ``current_rows``.

    Raises:
        TypeError: If either frame is not a DataFrame.
        ValueError: If a column is missing from either frame or duplicated, if no columns are
            given, if either frame has no rows, or for a bad option.
    """
    if not isinstance(reference, pd.DataFrame) or not isinstance(current, pd.DataFrame):
        raise TypeError("reference and current must be pandas DataFrames")
    check_options(method, threshold, small_sample, psi_bins)
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

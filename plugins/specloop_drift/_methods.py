"""The drift methods: their names, default thresholds, Evidently's automatic choice, dispatch."""

from __future__ import annotations

import math

from ._prepare import Column
from ._distances import js_distance, wasserstein_norm
from ._significance import chisquare_p_value, ks_p_value, z_p_value
from ._sorted import value_counts_sorted

METHODS: tuple[str, ...] = ("ks", "chisquare", "z", "wasserstein", "jensenshannon", "psi")

DEFAULT_THRESHOLDS: dict[str, float] = {
    "ks": 0.05,
    "chisquare": 0.05,
    "z": 0.05,
    "wasserstein": 0.1,
    "jensenshannon": 0.1,
    "psi": 0.1,
}

STATISTIC_NAMES = {
    "ks": "p_value",
    "chisquare": "p_value",
    "z": "p_value",
    "wasserstein": "distance",
    "jensenshannon": "distance",
    "psi": "psi",
}

P_VALUE_METHODS = frozenset({"ks", "chisquare", "z"})
NUMERIC_ONLY_METHODS = frozenset({"ks", "wasserstein"})


def auto_method(col: Column, small_sample: int) -> str:
    """Evidently's choice by column type and sample size.

    Evidently looks at the reference size only.  Here the smaller of the two samples decides,
    because the distances have no allowance for sample size: against a large reference, a
    100-row batch from the same distribution is at a normed Wasserstein distance above 0.1
    about two times in three, while the tests' p-values account for the batch's size.  With
    samples of similar size (the usual case, and Evidently's assumption) the choice is the same.
    """
    small = min(col.n_ref, col.n_cur) <= small_sample
    if col.kind == "categorical" or col.discrete:
        if not small:
            return "jensenshannon"
        n_values = col.labels.size
        return "chisquare" if n_values > 2 else "z"
    return "ks" if small else "wasserstein"


def run_method(col: Column, method: str, psi_value: float) -> float:
    """The method's statistic (a p-value, a distance or the PSI) for a prepared column."""
    if method == "ks":
        return ks_p_value(col)
    if method == "wasserstein":
        return wasserstein_norm(col)
    if method == "psi":
        return psi_value
    if method == "jensenshannon":
        return js_distance(col)
    # chisquare / z on category (or distinct-value) counts
    if col.discrete or col.kind == "categorical":
        rc, cc, labels = col.ref_counts, col.cur_counts, col.labels
    else:
        rc, cc, labels = value_counts_sorted(col.ref, col.cur)
    if method == "chisquare":
        return chisquare_p_value(rc, cc)
    return z_p_value(rc, cc, labels)


def check_options(method: str, threshold: float | None, small_sample: int, psi_bins: int,
                  min_rows: int = 1, missing_rate_change: float = 0.1) -> None:
    """Raise ``ValueError`` for an unknown method or an out-of-range option."""
    if method != "auto" and method not in METHODS:
        raise ValueError(f"unknown drift method {method!r}; expected 'auto' or one of "
                         f"{', '.join(METHODS)}")
    if threshold is not None and not math.isfinite(float(threshold)):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    if int(small_sample) < 0:
        raise ValueError(f"small_sample must be >= 0, got {small_sample!r}")
    if int(psi_bins) < 1:
        raise ValueError(f"psi_bins must be >= 1, got {psi_bins!r}")
    if int(min_rows) < 1:
        raise ValueError(f"min_rows must be >= 1, got {min_rows!r}")
    if not 0.0 < float(missing_rate_change) <= 1.0:
        raise ValueError(f"missing_rate_change must be in (0, 1], got {missing_rate_change!r}")

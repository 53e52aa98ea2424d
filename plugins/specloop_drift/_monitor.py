"""The drift monitor component."""

from __future__ import annotations

from typing import Any


class DriftMonitor:
    """Compares a batch with the champion's training reference."""

    def __init__(self, config: Any) -> None:
        self.config = config

    def check(self, reference: Any, current: Any, *, columns: list[str],
              categorical: list[str]) -> dict:
        """Return the data-set drift report (see ``_stats.dataset_drift``)."""
        from ._stats import dataset_drift

        c = self.config
        return dataset_drift(reference, current, columns=list(columns),
                             categorical=list(categorical), method=c.method,
                             threshold=c.threshold, drift_share=c.drift_share,
                             small_sample=c.small_sample, psi_bins=c.psi_bins,
                             min_rows=c.min_rows, missing_rate_change=c.missing_rate_change)

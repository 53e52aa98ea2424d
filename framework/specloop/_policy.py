"""What a retraining policy sees for a batch, and what it answers. Kept apart from the loop
so that plugins importing these types stay cheap to import."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Observation:
    """What a retraining policy sees for one batch.

    Attributes:
        batch_id: The batch's id (e.g. its file stem).
        rows: Rows in the batch.
        drift: The monitor's report (``drift_share``, ``drifted``, ``columns`` …) or ``None``.
        metrics: The champion's metrics on the batch (when labels are present) or ``None``.
        champion_metrics: The champion's metrics at registration (its own evaluation).
        primary: The primary metric's name.
        greater_is_better: Whether a larger primary metric is better.
        batches_since_retrain: Batches processed since the champion was trained.
    """

    batch_id: str
    rows: int
    drift: dict | None
    metrics: dict | None
    champion_metrics: dict
    primary: str
    greater_is_better: bool
    batches_since_retrain: int


@dataclass(frozen=True)
class Decision:
    """A retraining policy's answer: whether to retrain, and why (one line)."""

    retrain: bool
    reason: str
    details: dict = field(default_factory=dict)

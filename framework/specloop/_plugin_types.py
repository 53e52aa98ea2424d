"""What data sources and retraining policies exchange with the loop (:class:`Batch`,
:class:`Observation`, :class:`Decision`), the files' fingerprint they give (:func:`file_md5`)
and the progress bar of long work (:func:`progress`). Kept apart from the engine so that plugin
modules importing them stay cheap to import."""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable


@dataclass(frozen=True)
class Batch:
    """One incoming batch.

    Attributes:
        id: A stable id (e.g. the file's stem); the loop processes each id once.
        fingerprint: A hash of the batch's bytes as listed (e.g. the file's md5).
        read: Reads the batch once and returns ``(frame, fingerprint)``, where the fingerprint
            is of exactly the bytes parsed; raise :class:`specloop.BatchNotReady` when the
            batch is incomplete (a file still being written).
        modified: UNIX time of its last change, for the settle rule (``None``: settled).
    """

    id: str
    fingerprint: str
    read: Callable[[], tuple[Any, str]]
    modified: float | None = None


def as_batch(item: Any) -> Batch:
    """A source's batch: a :class:`Batch`, or the older ``(id, fingerprint, load)`` tuple."""
    if isinstance(item, Batch):
        return item
    batch_id, fingerprint, load = item
    return Batch(batch_id, fingerprint, lambda: (load(), fingerprint))


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


def file_md5(path: str | os.PathLike) -> str:
    """MD5 of a file's bytes, as DVC records it for a file output (a data fingerprint)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "md5").hexdigest()


def progress(items: Iterable | None = None, *, total: int | None = None, desc: str = "",
             unit: str = "it", disable: bool = False) -> Any:
    """``items`` with a progress bar (tqdm) on standard error when that is a terminal; none
    with ``--quiet`` or ``--json`` (``SPECLOOP_QUIET=1``) or in a sweep's worker processes.
    Without ``items``, call ``update(n)`` on what it returns."""
    from tqdm import tqdm  # ~15 ms, only for work that shows progress

    quiet = disable or os.environ.get("SPECLOOP_QUIET", "") not in ("", "0")
    return tqdm(items, total=total, desc=desc, unit=unit, file=sys.stderr, leave=False,
                dynamic_ncols=True, disable=True if quiet else None)

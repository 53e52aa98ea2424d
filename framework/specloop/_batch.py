"""What an incoming-data source hands the loop: one :class:`Batch` per unit of new data.

Kept apart from the loop so that data plugins importing it stay cheap to import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


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

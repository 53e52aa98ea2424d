"""What an incoming-data source hands the loop (one :class:`Batch` per unit of new data), and
when the loop takes a batch it lists. Kept apart from the loop so that data plugins importing
it stay cheap to import."""

from __future__ import annotations

import time
from dataclasses import dataclass
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


def settled(listed: list[Batch], relist: Callable[[], Iterable[Any]], settle: float,
            done: Any, say: Callable[[str], None]) -> list:
    """The settle rule: a batch not in ``done`` that changed less than ``settle`` seconds ago
    is taken only if it is unchanged once that time has passed (``relist`` after a wait); one
    still changing is left for a later pass (``None`` in its place)."""
    now = time.time()
    fresh = {b.id: now - b.modified for b in listed
             if b.id not in done and b.modified is not None and now - b.modified < settle}
    if not fresh:
        return listed
    time.sleep(settle - min(fresh.values()))
    again = {b.id: b for b in map(as_batch, relist())}
    out = []
    for b in listed:
        new = again.get(b.id)
        moving = b.id in fresh and (new is None or (new.fingerprint, new.modified) !=
                                    (b.fingerprint, b.modified))
        if moving:
            say(f"{b.id}  still being written: left for a later pass "
                f"(loop.settle_seconds: {settle:g})")
        out.append(None if moving else new or b)
    return out

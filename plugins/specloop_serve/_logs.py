"""Request logs: rows queued in memory on the request path, written to the store by a
background thread as JSON Lines, in rotated parts.

Layout under the store root::

    logs/<model>/<YYYY-MM-DD>/part-<HHMMSS>-<pid>-<seq>.jsonl.open   being written
    logs/<model>/<YYYY-MM-DD>/part-<HHMMSS>-<pid>-<seq>.jsonl        sealed

One line per scored row: ``{"ts", "request_id", "row", "version", "inputs", "prediction",
"probabilities"}``. On a local store the writer appends to the open part and renames it to
``.jsonl`` when it reaches ``rotate_bytes`` or ``rotate_seconds`` or the server stops; on an
object store (no append, no rename) each flush writes one sealed part. A sealed part never
changes again, so the loop can take it as a batch; ``monitor --from-logs`` also reads the
open part (and skips a torn last line).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import deque
from datetime import datetime, timezone
from typing import Any, Iterator


try:  # orjson (in the serve extra) writes a row several times faster than json
    import orjson

    def _line(rec: dict) -> bytes:
        return orjson.dumps(rec, option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS)
except ImportError:  # pragma: no cover
    def _line(rec: dict) -> bytes:
        return json.dumps(rec, separators=(",", ":")).encode() + b"\n"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds")


class RequestLogger:
    """Queue of scored requests and the thread that writes them.

    Args:
        store: The artifact store.
        model: The model name (a folder under ``logs/``).
        settings: :class:`specloop_serve._settings.LogSettings`.
    """

    def __init__(self, store: Any, model: str, settings: Any) -> None:
        self.store, self.model, self.s = store, model, settings
        self._queue: deque = deque()
        self._queued_rows = 0
        self._count_lock = threading.Lock()  # the counter is shared by two threads
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seq = 0
        self._part: dict | None = None  # {"path", "date", "bytes", "opened", "fh"}
        self.written = 0
        self.dropped = 0
        self.errors = 0

    # -- request path ------------------------------------------------------------------------
    def log(self, ts: float, request_id: str, version: int, rows: list, preds: list,
            probas: list | None) -> None:
        """Queue one request's rows (never blocks; drops and counts when the queue is full)."""
        n = len(rows)
        if self._queued_rows + n > self.s.max_queue:
            self.dropped += n
            return
        self._queue.append((ts, request_id, version, rows, preds, probas))
        with self._count_lock:
            self._queued_rows += n
            queued = self._queued_rows
        if queued >= self.s.flush_records:
            self._wake.set()

    # -- writer thread -----------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="specloop-request-log",
                                        daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Flush what is queued, seal the open part and stop the thread."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._flush()
        self._seal()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.s.flush_seconds)
            self._wake.clear()
            try:
                self._flush()
                part = self._part
                if part and time.time() - part["opened"] >= self.s.rotate_seconds:
                    self._seal()
            except Exception:  # a full disk must not take the server down; counted
                self.errors += 1

    def _lines(self) -> dict[str, list[bytes]]:
        by_date: dict[str, list[bytes]] = {}
        while self._queue:
            ts, rid, version, rows, preds, probas = self._queue.popleft()
            with self._count_lock:
                self._queued_rows -= len(rows)
            stamp = _iso(ts)
            out = by_date.setdefault(stamp[:10], [])
            for i, row in enumerate(rows):
                rec = {"ts": stamp, "request_id": rid, "row": i, "version": version,
                       "inputs": row, "prediction": preds[i]}
                if probas is not None:
                    rec["probabilities"] = probas[i]
                out.append(_line(rec))
        return by_date

    def _new_name(self, date: str) -> str:
        self._seq += 1
        name = time.strftime("part-%H%M%S-", time.gmtime()) + f"{os.getpid()}-{self._seq:04d}"
        return self.store.path("logs", self.model, date, name + ".jsonl")

    def _flush(self) -> None:
        for date, lines in self._lines().items():
            data = b"".join(lines)
            if not self.store.local:  # one sealed object per flush
                self.store.fs.pipe_file(self._new_name(date), data)
                self.written += len(lines)
                continue
            part = self._part
            if part is not None and part["date"] != date:
                self._seal()
                part = None
            if part is None:
                path = self._new_name(date)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                part = self._part = {"path": path, "date": date, "bytes": 0,
                                     "opened": time.time(),
                                     "fh": open(path + ".open", "ab")}  # noqa: SIM115
            part["fh"].write(data)
            part["fh"].flush()
            part["bytes"] += len(data)
            self.written += len(lines)
            if part["bytes"] >= self.s.rotate_bytes:
                self._seal()

    def _seal(self) -> None:
        part, self._part = self._part, None
        if part is not None:
            part["fh"].close()
            os.replace(part["path"] + ".open", part["path"])


# -- reading ---------------------------------------------------------------------------------
def log_parts(store: Any, model: str, *, sealed_only: bool = False) -> list[str]:
    """Paths of the log parts of ``model``, oldest first (by date folder, then name)."""
    out = []
    for date in store.list_dir(f"logs/{model}"):
        for name in store.list_dir(f"logs/{model}/{date}"):
            if name.endswith(".jsonl") or (not sealed_only and name.endswith(".jsonl.open")):
                out.append(store.path("logs", model, date, name))
    return out


def read_part(store: Any, path: str) -> Iterator[dict]:
    """The records of one part; a torn last line of an open part is skipped."""
    if store.local:
        with open(path, "rb") as fh:
            data = fh.read()
    else:
        data = store.fs.cat_file(path)
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except ValueError:
            continue


def parse_when(text: str | None, now: float | None = None) -> datetime | None:
    """``2h``, ``30m``, ``7d`` (ago) or an ISO date/time (UTC unless it says otherwise)."""
    if text is None:
        return None
    now_dt = datetime.fromtimestamp(time.time() if now is None else now, timezone.utc)
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    t = text.strip()
    if len(t) > 1 and t[-1] in units and t[:-1].replace(".", "", 1).isdigit():
        from datetime import timedelta

        return now_dt - timedelta(seconds=float(t[:-1]) * units[t[-1]])
    try:
        dt = datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"cannot read {text!r} as a time: use an ISO date/time such as "
                         "2026-11-27T09:00 or a duration such as 2h, 30m, 7d") from None
    return dt.astimezone(timezone.utc) if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def read_logs(store: Any, model: str, *, since: datetime | None = None,
              until: datetime | None = None, version: int | None = None,
              sealed_only: bool = False) -> list[dict]:
    """Logged rows of ``model`` in ``[since, until)``, optionally of one version only."""
    lo = since.isoformat(timespec="milliseconds") if since else None
    hi = until.isoformat(timespec="milliseconds") if until else None
    rows = []
    for path in log_parts(store, model, sealed_only=sealed_only):
        date = path.rsplit("/", 2)[-2]
        if lo and date < lo[:10]:
            continue
        if hi and date > hi[:10]:
            continue
        for rec in read_part(store, path):
            ts = rec.get("ts", "")
            if (lo and ts < lo) or (hi and ts >= hi):
                continue
            if version is not None and rec.get("version") != version:
                continue
            rows.append(rec)
    return rows


def inputs_frame(records: list[dict], features: list[str]) -> Any:
    """The logged inputs as a DataFrame with the model's feature columns."""
    import pandas as pd

    return pd.DataFrame([r["inputs"] for r in records], columns=features)

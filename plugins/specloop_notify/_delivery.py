"""Sending events to sinks: bounded timeouts, retries with exponential backoff, and an outbox
of failed deliveries (``.specloop/notify/failed.jsonl``) that ``specloop notify retry``
re-sends. Nothing here raises into specloop: a notification never stops a run or the loop.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

from ._events import chat_text

OUTBOX = Path(".specloop") / "notify" / "failed.jsonl"


class DeliveryError(Exception):
    """A delivery that failed for good (after its retries)."""


def sink_id(sink: Any) -> str:
    """A stable, non-secret name of a sink: its kind and a digest of where it points."""
    where = sink.url if sink.kind in ("webhook", "chat") else sink.path
    return f"{sink.kind}-{hashlib.sha256(str(where).encode()).hexdigest()[:12]}"


def wants(sink: Any, event: str) -> bool:
    """Whether ``sink`` subscribed to ``event`` (no list: every event)."""
    return not sink.events or event in sink.events


def _post(url: str, body: dict, timeout: float, token: str | None) -> None:
    headers = {"Content-Type": "application/json", "User-Agent": "specloop-notify"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, json.dumps(body, default=str).encode(), headers,
                                 method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (http/https only)
        resp.read()


def append_line(path: Path, doc: dict) -> None:
    """Append one JSON line atomically: O_APPEND and a single ``write`` per line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(doc, default=str, sort_keys=True) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _once(sink: Any, event: dict, project_dir: Path) -> None:
    if sink.kind == "log":
        path = Path(sink.path)
        append_line(path if path.is_absolute() else project_dir / path, event)
    elif sink.kind == "chat":
        _post(sink.url, {"text": chat_text(event)}, sink.timeout, sink.token)
    else:
        _post(sink.url, event, sink.timeout, sink.token)


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, urllib.error.HTTPError):  # a 4xx other than 408/429 will not get better
        return exc.code >= 500 or exc.code in (408, 429)
    return True


def _describe(exc: BaseException, sink: Any) -> str:
    text = f"HTTP {exc.code}" if isinstance(exc, urllib.error.HTTPError) else \
        f"{type(exc).__name__}: {getattr(exc, 'reason', None) or exc}"
    for secret in (getattr(sink, "url", None), getattr(sink, "token", None)):
        if secret:
            text = text.replace(str(secret), "***")
    return text


def deliver(sink: Any, event: dict, project_dir: Path,
            sleep: Callable[[float], None] = time.sleep) -> int:
    """Send ``event`` to ``sink``: ``1 + retries`` attempts at most, waiting ``backoff``,
    ``2 * backoff``, ``4 * backoff`` … between them. Returns the attempts made; raises
    :class:`DeliveryError` (with a masked message) when every attempt failed."""
    attempts = 0
    while True:
        attempts += 1
        try:
            _once(sink, event, project_dir)
            return attempts
        except Exception as exc:  # noqa: BLE001 - any failure is a failed delivery
            if attempts > sink.retries or not _retryable(exc):
                raise DeliveryError(f"{_describe(exc, sink)} after {attempts} attempt(s)") \
                    from None
        sleep(sink.backoff * 2 ** (attempts - 1))


def _lock(project_dir: Path) -> Any:
    from filelock import FileLock  # a specloop dependency

    path = project_dir / OUTBOX
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path) + ".lock", timeout=30)


def record_failure(project_dir: Path, sink: Any, index: int, event: dict, error: str,
                   mask: Callable[[Any], Any]) -> None:
    """Keep a failed delivery in the outbox, secrets masked."""
    # a webhook URL is a secret field (it often carries a token): only a log path is shown
    target = sink.path if sink.kind == "log" else "***"
    entry = {"failed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
             "sink": {"id": sink_id(sink), "kind": sink.kind, "index": index, "target": target},
             "error": error, "event": mask(event)}
    with _lock(project_dir):
        append_line(project_dir / OUTBOX, entry)


def read_outbox(project_dir: Path) -> list[dict]:
    """The failed deliveries kept so far (a torn last line is skipped)."""
    path = project_dir / OUTBOX
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def retry_outbox(project_dir: Path, sinks: list, sleep: Callable[[float], None] = time.sleep
                 ) -> tuple[int, list[tuple[dict, str]]]:
    """Re-send every kept delivery to the configured sink it was meant for; rewrite the
    outbox with what still failed. Returns ``(delivered, [(entry, why), ...])``."""
    by_id = {sink_id(s): s for s in sinks}
    delivered, left = 0, []
    with _lock(project_dir):
        for entry in read_outbox(project_dir):
            sink = by_id.get(entry.get("sink", {}).get("id"))
            if sink is None:
                left.append((entry, "its sink is no longer configured"))
                continue
            try:
                deliver(sink, entry["event"], project_dir, sleep)
                delivered += 1
            except DeliveryError as exc:
                entry = {**entry, "error": str(exc),
                         "retried_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
                left.append((entry, str(exc)))
        path = project_dir / OUTBOX
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(e, default=str, sort_keys=True) + "\n"
                               for e, _ in left), encoding="utf-8")
        os.replace(tmp, path)
    return delivered, left


def warn(text: str) -> None:
    """One warning line on stderr (never raises)."""
    try:
        print(f"specloop: warning: {text}", file=sys.stderr, flush=True)
    except Exception:  # noqa: BLE001 - a closed stderr must not stop the loop
        pass

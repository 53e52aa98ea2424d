"""The request log writer and reader, on a real local store (no server)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from specloop._store import ArtifactStore
from specloop_serve._logs import RequestLogger, log_parts, parse_when, read_logs
from specloop_serve._settings import LogSettings


def _logger(tmp_path, **kw) -> tuple[RequestLogger, ArtifactStore]:
    store = ArtifactStore(".specloop", tmp_path)
    settings = LogSettings(**{"flush_records": 10, "flush_seconds": 0.05, **kw})
    return RequestLogger(store, "m", settings), store


def test_rows_are_written_rotated_by_size_and_sealed_on_close(tmp_path):
    log, store = _logger(tmp_path, rotate_bytes=2000, flush_seconds=60)
    log.start()
    now = time.time()
    for i in range(40):
        log.log(now, f"r{i}", 1, [{"a": i, "b": "x"}, {"a": -i, "b": "y"}], [0, 1],
                [{"0": 0.9, "1": 0.1}, {"0": 0.2, "1": 0.8}])
        if i % 5 == 4:  # ten rows queued: the writer flushes; wait for it
            deadline = time.monotonic() + 10
            while log.written < 2 * (i + 1) and time.monotonic() < deadline:
                time.sleep(0.01)
    log.close()
    parts = log_parts(store, "m")
    assert len(parts) > 1 and all(p.endswith(".jsonl") for p in parts)
    rows = read_logs(store, "m")
    assert len(rows) == 80 and log.written == 80 and log.dropped == 0
    assert rows[1] == {"ts": rows[1]["ts"], "request_id": "r0", "row": 1, "version": 1,
                       "inputs": {"a": 0, "b": "y"}, "prediction": 1,
                       "probabilities": {"0": 0.2, "1": 0.8}}


def test_a_full_queue_drops_and_counts_instead_of_blocking(tmp_path):
    log, store = _logger(tmp_path, max_queue=5, flush_records=1000, flush_seconds=60)
    for i in range(4):
        log.log(time.time(), str(i), 1, [{"a": 1}, {"a": 2}], [0, 0], None)
    assert log.dropped == 4  # two requests of two rows fit, two do not
    log.close()
    assert len(read_logs(store, "m")) == 4


def test_open_part_is_read_and_a_torn_last_line_skipped(tmp_path):
    log, store = _logger(tmp_path)
    log.log(time.time(), "a", 2, [{"a": 1}], [5.0], None)
    log._flush()  # written, not sealed
    [part] = log_parts(store, "m")
    assert part.endswith(".jsonl.open") and log_parts(store, "m", sealed_only=True) == []
    with open(part, "ab") as fh:
        fh.write(b'{"ts": "2026-')
    assert [r["request_id"] for r in read_logs(store, "m")] == ["a"]
    log.close()


def test_time_window_and_version_filters(tmp_path):
    log, store = _logger(tmp_path)
    now = time.time()
    log.log(now - 7200, "old", 1, [{"a": 1}], [0], None)
    log.log(now, "new", 2, [{"a": 1}], [0], None)
    log.close()
    assert [r["request_id"] for r in read_logs(store, "m", since=parse_when("1h"))] == ["new"]
    assert [r["request_id"] for r in read_logs(store, "m", until=parse_when("1h"))] == ["old"]
    assert [r["request_id"] for r in read_logs(store, "m", version=1)] == ["old"]


def test_parse_when():
    now = datetime(2026, 1, 2, 12, 0, tzinfo=timezone.utc).timestamp()
    assert parse_when("2h", now) == datetime(2026, 1, 2, 10, 0, tzinfo=timezone.utc)
    assert parse_when("7d", now) == datetime(2025, 12, 26, 12, 0, tzinfo=timezone.utc)
    assert parse_when("2026-01-01") == datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert parse_when("2026-01-01T10:00+02:00") == datetime(2026, 1, 1, 8, tzinfo=timezone.utc)
    assert parse_when(None) is None
    with pytest.raises(ValueError, match="ISO date/time"):
        parse_when("last tuesday")
    assert parse_when("90m", now) == datetime(2026, 1, 2, 12, tzinfo=timezone.utc) - \
        timedelta(minutes=90)


def test_object_store_gets_one_sealed_part_per_flush(tmp_path):
    import uuid

    store = ArtifactStore(f"memory://logs-{uuid.uuid4().hex}/store", tmp_path)
    assert not store.local
    log = RequestLogger(store, "m", LogSettings(flush_records=1000, flush_seconds=60))
    for batch in range(3):
        log.log(time.time(), f"r{batch}", 1, [{"a": batch}], [batch], None)
        log._flush()
    log.close()
    parts = log_parts(store, "m", sealed_only=True)
    assert len(parts) == 3 and log_parts(store, "m") == parts
    assert [r["prediction"] for r in read_logs(store, "m")] == [0, 1, 2]

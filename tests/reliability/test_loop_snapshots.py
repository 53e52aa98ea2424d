"""Exactly once over immutable snapshots: the loop processes a batch from the very bytes it
hashed. A file replaced between listing and reading, one still being written, or a CSV whose
last line has no newline is left for a later pass and picked up once complete; a processed
batch that changes later is reported and recorded, never silently skipped or processed
again."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path

import pytest

from rel_helpers import ext  # noqa: F401 - a fixture
from rel_helpers import (assert_refused, make_project, ok, query, spawn, store_dir, wait_for,
                         write_csv)


def loop_project(root: Path, batches: int = 2, **extra):
    return make_project(root, batches=batches, retrain={"kind": "never"}, **extra)


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def records(p) -> dict[str, dict]:
    return {b["batch_id"]: json.loads(b["record"]) for b in
            query(p.root, "SELECT * FROM loop_batches ORDER BY rowid")}


def events(p) -> list[dict]:
    return query(p.root, "SELECT * FROM loop_events ORDER BY id")


def stored_frame_rows(p, fingerprint: str, batch: str) -> int:
    from specloop._plan import cache_key

    import pandas as pd

    key = cache_key("batch", batch, fingerprint)
    return len(pd.read_parquet(store_dir(p.root) / key / "frame.parquet"))


@pytest.fixture
def trained(tmp_path):
    p = loop_project(tmp_path / "p")
    ok(p.cli("run"))
    return p


@pytest.mark.slow
def test_a_batch_replaced_between_listing_and_reading_waits_for_a_later_pass(trained, ext,
                                                                           tmp_path):
    p = trained
    b1 = p.root / "data" / "incoming" / "b1.csv"
    hold = tmp_path / "hold"
    hold.mkdir()
    proc = spawn(p.root, "loop", ext=ext, REL_HOLD="after:score@1", REL_DIR=hold)
    try:  # b0 is being processed; b1 was listed with its old bytes
        wait_for(lambda: os.listdir(hold) or proc.poll() is not None, "the loop at b0")
        write_csv(b1, rows=90, seed=99)
    finally:
        (hold / "release").touch()
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert "b1  changed while it was being read: left for a later pass" in stdout
    assert list(records(p)) == ["b0"]
    res = p.cli("loop")
    ok(res)
    rec = records(p)["b1"]
    assert rec["fingerprint"] == md5(b1) and rec["rows"] == 90
    assert stored_frame_rows(p, rec["fingerprint"], "b1") == 90


def test_a_csv_without_its_last_newline_is_left_until_complete(trained):
    p = trained
    b1 = p.root / "data" / "incoming" / "b1.csv"
    full = b1.read_bytes()
    b1.write_bytes(full[:-1])
    res = p.cli("loop")
    ok(res)
    assert "b1  not complete yet (its last line has no newline): left for a later pass" \
        in res.stdout
    assert list(records(p)) == ["b0"]
    b1.write_bytes(full)
    ok(p.cli("loop"))
    assert records(p)["b1"]["fingerprint"] == md5(b1)
    assert records(p)["b1"]["rows"] == 120


def test_a_csv_cut_in_the_middle_of_a_row_is_not_read_as_a_short_batch(trained):
    p = trained
    b1 = p.root / "data" / "incoming" / "b1.csv"
    full = b1.read_bytes()
    b1.write_bytes(full[: len(full) // 2])  # ends inside a line
    ok(p.cli("loop"))
    assert "b1" not in records(p)
    b1.write_bytes(full)
    ok(p.cli("loop"))
    assert records(p)["b1"]["rows"] == 120


@pytest.mark.slow
def test_a_file_still_being_written_is_left_for_a_later_pass(tmp_path):
    p = loop_project(tmp_path / "p", extra_conf=None)
    conf = (p.root / "conf" / "config.yaml").read_text().replace("settle_seconds: 0",
                                                                  "settle_seconds: 1.0")
    (p.root / "conf" / "config.yaml").write_text(conf)
    ok(p.cli("run"))
    b1 = p.root / "data" / "incoming" / "b1.csv"
    lines = b1.read_text().splitlines(keepends=True)
    b1.write_text("".join(lines[:10]))
    stop = threading.Event()

    def writer() -> None:  # appends whole lines until told to stop: always parseable
        i = 10
        while not stop.is_set():
            if i < len(lines):
                with open(b1, "a") as fh:
                    fh.write(lines[i])
                i += 1
            else:
                os.utime(b1)
            time.sleep(0.05)

    t = threading.Thread(target=writer)
    t.start()
    try:
        res = p.cli("loop")
    finally:
        stop.set()
        t.join()
    ok(res)
    assert "b1  still being written: left for a later pass" in res.stdout
    assert "b1" not in records(p)
    b1.write_text("".join(lines))
    ok(p.cli("loop"))  # settles (nothing changes during the wait) and is processed whole
    assert records(p)["b1"]["rows"] == 120 and records(p)["b1"]["fingerprint"] == md5(b1)


def test_a_processed_batch_that_changes_is_reported_and_recorded_once(trained):
    p = trained
    ok(p.cli("loop"))
    first = records(p)
    b0 = p.root / "data" / "incoming" / "b0.csv"
    write_csv(b0, rows=80, seed=55)
    res = p.cli("loop")
    ok(res)
    assert "b0  changed after it was processed" in res.stdout
    assert "processed 0 batch(es)" in res.stdout
    assert records(p) == first  # not processed again, the record unchanged
    [ev] = events(p)
    detail = json.loads(ev["detail"])
    assert ev["batch_id"] == "b0" and ev["event"] == "changed"
    assert detail == {"processed": first["b0"]["fingerprint"], "fingerprint": md5(b0)}
    again = p.cli("loop")  # the same change is not reported twice
    assert "changed after it was processed" not in again.stdout and len(events(p)) == 1
    write_csv(b0, rows=70, seed=56)  # a further change is
    assert "b0  changed after it was processed" in p.cli("loop").stdout
    assert len(events(p)) == 2
    status = json.loads(p.cli("loop", "--status").stdout)
    assert status["processed"] == 2 and len(status["events"]) == 2


def test_a_processed_batch_restored_to_its_bytes_is_quiet(trained):
    p = trained
    ok(p.cli("loop"))
    b0 = p.root / "data" / "incoming" / "b0.csv"
    data = b0.read_bytes()
    b0.write_bytes(data + b"")  # same bytes, new mtime
    res = p.cli("loop")
    assert "changed" not in res.stdout and not events(p)


def test_a_new_batch_is_processed_once_and_only_once(trained):
    p = trained
    ok(p.cli("loop"))
    write_csv(p.root / "data" / "incoming" / "b2.csv", rows=100, seed=30)
    res = p.cli("loop")
    assert "processed 1 batch(es)" in res.stdout
    assert "processed 0 batch(es)" in p.cli("loop").stdout
    assert list(records(p)) == ["b0", "b1", "b2"]


def test_a_batch_that_vanishes_after_listing_is_not_recorded(trained, ext, tmp_path):
    p = trained
    b1 = p.root / "data" / "incoming" / "b1.csv"
    hold = tmp_path / "hold"
    hold.mkdir()
    proc = spawn(p.root, "loop", ext=ext, REL_HOLD="after:score@1", REL_DIR=hold)
    try:
        wait_for(lambda: os.listdir(hold) or proc.poll() is not None, "the loop at b0")
        data = b1.read_bytes()
        b1.unlink()
    finally:
        (hold / "release").touch()
    stdout, stderr = proc.communicate(timeout=120)
    assert "Traceback" not in stdout + stderr
    assert proc.returncode == 0, stderr  # left for later, as a batch not written yet
    assert "went away" in stdout + stderr
    assert list(records(p)) == ["b0"]
    b1.write_bytes(data)
    ok(p.cli("loop"))
    assert list(records(p)) == ["b0", "b1"]


def test_a_batch_with_a_duplicate_header_is_refused_not_deferred(trained):
    p = trained
    b1 = p.root / "data" / "incoming" / "b1.csv"
    text = b1.read_text().split("\n", 1)
    b1.write_text(text[0].replace("x2", "x1") + "\n" + text[1])
    res = p.cli("loop")
    assert_refused(res, 2, "more than once in its header", "x1", str(b1))
    assert list(records(p)) == ["b0"]

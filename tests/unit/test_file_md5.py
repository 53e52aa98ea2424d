"""Data fingerprints remembered per file state: never the md5 of other content."""

from __future__ import annotations

import hashlib
import os
import time

import pytest

from specloop import _hashing, file_md5


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SPECLOOP_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(_hashing, "_SETTLED", -1.0)  # remember even a file written just now
    return tmp_path / "cache" / "md5"


def _md5(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_a_remembered_md5_is_reused_and_correct(tmp_path, cache):
    data = tmp_path / "train.csv"
    data.write_text("a,b\n1,2\n")
    assert file_md5(data) == _md5(data)
    [entry] = cache.iterdir()
    assert entry.read_text() == _md5(data)
    assert file_md5(data) == _md5(data)


def test_same_size_rewrite_with_the_old_mtime_is_noticed(tmp_path, cache):
    data = tmp_path / "train.csv"
    data.write_text("a,b\n1,2\n")
    before = os.stat(data)
    first = file_md5(data)
    time.sleep(0.05)  # past the file system's timestamp tick (what _SETTLED guards in use)
    data.write_text("a,b\n3,4\n")  # same size
    os.utime(data, ns=(before.st_atime_ns, before.st_mtime_ns))  # mtime set back
    assert file_md5(data) == _md5(data) != first


def test_a_corrupt_entry_is_hashed_again(tmp_path, cache):
    data = tmp_path / "train.csv"
    data.write_text("a,b\n1,2\n")
    file_md5(data)
    [entry] = cache.iterdir()
    entry.write_text("not an md5")
    assert file_md5(data) == _md5(data)


def test_a_fresh_file_is_not_remembered(tmp_path, monkeypatch):
    monkeypatch.setenv("SPECLOOP_CACHE_DIR", str(tmp_path / "cache"))
    data = tmp_path / "train.csv"
    data.write_text("a,b\n1,2\n")  # written just now: its timestamps may not have ticked yet
    assert file_md5(data) == _md5(data)
    assert not (tmp_path / "cache" / "md5").exists()


def test_switched_off(tmp_path, monkeypatch):
    monkeypatch.setenv("SPECLOOP_CACHE_DIR", "off")
    data = tmp_path / "train.csv"
    data.write_text("a,b\n1,2\n")
    assert file_md5(data) == _md5(data)

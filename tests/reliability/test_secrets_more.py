"""Secrets, where ``tests/integration/test_secrets.py`` does not look: the objects of an S3
store (manifests, artifacts, the published bundle), the registry's bytes while a run is still
writing them (its write-ahead log), a registry backup, and the loop's records."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from moto_s3 import bucket, s3, s3_endpoint, s3_env, s3_options  # noqa: F401
from rel_helpers import ext  # noqa: F401 - a fixture
from rel_helpers import make_project, ok, sl, spawn, wait_for

SECRET = "s3cr3t-Value-7d1e"
KEY_ID = "AKIARELIABILITY7D1E"
OVERRIDES = [f"+store.storage_options.secret={SECRET}", f"+store.storage_options.key={KEY_ID}"]


def assert_no_secret_in_files(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file() and "data" not in path.relative_to(root).parts:
            data = path.read_bytes()
            assert SECRET.encode() not in data and KEY_ID.encode() not in data, path


@pytest.mark.slow
def test_s3_objects_and_the_local_registry_hold_no_credentials(tmp_path, ext, s3_env, s3,
                                                               bucket, monkeypatch):
    p = make_project(tmp_path / "p", batches=1, retrain={"kind": "every", "batches": 1})
    res = sl(p.root, "run", "stack=s3", *OVERRIDES, ext=ext)
    ok(res)
    monkeypatch.syspath_prepend(str(ext))
    loop = p.cli("loop", "stack=s3", *OVERRIDES)
    ok(loop)
    shown = p.cli("runs", "list", "stack=s3")
    objects = s3.find(bucket)
    assert any(o.endswith("manifest.json") for o in objects)
    assert any(o.endswith("deploy/champion/metadata.json") for o in objects)
    for obj in objects:
        data = s3.cat_file(obj)
        assert SECRET.encode() not in data and KEY_ID.encode() not in data, obj
    assert_no_secret_in_files(p.root)
    for text in (res.stdout, res.stderr, loop.output, shown.output):
        assert SECRET not in text and KEY_ID not in text


@pytest.mark.slow
def test_the_registry_bytes_hold_no_secret_while_a_run_is_writing(tmp_path, ext):
    p = make_project(tmp_path / "p")
    hold = tmp_path / "hold"
    hold.mkdir()
    proc = spawn(p.root, "run", "+plugins.serve.token=" + SECRET, ext=ext,
                 REL_HOLD="after:register", REL_DIR=hold)
    try:
        wait_for(lambda: os.listdir(hold) or proc.poll() is not None, "the run at register")
        assert proc.poll() is None
        wal = p.root / ".specloop" / "registry.db-wal"
        assert wal.is_file() or (p.root / ".specloop" / "registry.db").is_file()
        assert_no_secret_in_files(p.root)  # the db, its -wal, manifests, artifacts
    finally:
        (hold / "release").touch()
    assert proc.wait(timeout=120) == 0, proc.communicate()
    backup = tmp_path / "backup.db"
    ok(p.cli("registry", "backup", str(backup)))
    assert SECRET.encode() not in backup.read_bytes()
    assert_no_secret_in_files(p.root)


def test_a_secret_from_the_environment_stays_out_of_the_loop_records(tmp_path,
                                                                   monkeypatch):
    monkeypatch.setenv("REL_TOKEN", SECRET)
    p = make_project(tmp_path / "p", batches=1, retrain={"kind": "never"})
    conf = (p.root / "conf" / "config.yaml").read_text()
    p.write_conf("config.yaml", conf + "plugins:\n  serve:\n    token: ${oc.env:REL_TOKEN}\n")
    ok(p.cli("run"))
    res = p.cli("loop")
    ok(res)
    assert SECRET not in res.output
    assert_no_secret_in_files(p.root)

"""Tampering outside the store: the deploy folder and the registry file itself.

A deployment that was changed, removed or swapped for another version's bundle is deployed
again by the next ``run`` (``plan`` says why, ``registry check`` fails until then). A
registry file that is empty, not a database, or gone while its ``.id`` marker remains is
refused with exit 2, naming the file and the way back; ``registry backup`` makes a copy that
works as the registry."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3

import pytest

from rel_helpers import (assert_refused, code, db_path, deployed, make_project, ok, out,
                         plan_rows, sha, stage_actions)

BUNDLE = ("model.bin", "metadata.json", "signature.json", "MODEL_CARD.md")


@pytest.fixture
def trained(tmp_path):
    p = make_project(tmp_path / "p")
    ok(p.cli("run"))
    return p


def bundle_intact(p, version: int) -> None:
    folder = p.root / "deploy" / "champion"
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["version"] == version
    for name, digest in meta["files"].items():
        assert sha(folder / name) == digest, name
    assert not [n for n in os.listdir(p.root / "deploy") if n.startswith(".")]


def expect_redeploy(p, reason: str, version: int = 1) -> None:
    row = plan_rows(p.cli("plan", "--json"))["deploy"]
    assert row["action"] == "run" and reason in row["reason"], row
    check = p.cli("registry", "check", "--json")
    assert check.exit_code == 1
    [bad] = [r for r in json.loads(check.stdout) if r["status"] != "ok"]
    assert bad["what"] == "champion deployment" and reason in bad["detail"]
    res = p.cli("run")
    ok(res)
    assert stage_actions(res.stdout)["deploy"] == "ran"
    assert f"deployed v{version}" in res.stdout
    bundle_intact(p, version)
    ok(p.cli("registry", "check"))
    assert plan_rows(p.cli("plan", "--json"))["deploy"]["action"] == "cached"


@pytest.mark.parametrize("how", ["edit", "delete", "truncate"])
@pytest.mark.parametrize("name", BUNDLE)
def test_a_tampered_or_missing_bundle_file_is_deployed_again(trained, name, how):
    p = trained
    path = p.root / "deploy" / "champion" / name
    if how == "delete":
        path.unlink()
    elif how == "truncate":
        path.write_bytes(path.read_bytes()[:10])
    else:
        path.write_bytes(path.read_bytes().replace(b"1", b"2", 1) + b" ")
    expect_redeploy(p, "does not match the record (missing or tampered with)")


def test_a_removed_deploy_folder_is_deployed_again(trained):
    shutil.rmtree(trained.root / "deploy")
    expect_redeploy(trained, "missing or tampered with")


def test_metadata_rewritten_to_match_a_tampered_model_is_still_caught(trained):
    """Whoever edits model.bin and fixes metadata.json's hashes to match still differs from
    the registry's record of the deployment."""
    p = trained
    folder = p.root / "deploy" / "champion"
    (folder / "model.bin").write_bytes(b"another model")
    meta = json.loads((folder / "metadata.json").read_text())
    meta["model_sha256"] = meta["files"]["model.bin"] = sha(folder / "model.bin")
    (folder / "metadata.json").write_text(json.dumps(meta, indent=2))
    expect_redeploy(p, "missing or tampered with")


def test_an_older_versions_whole_bundle_put_back_is_deployed_over(trained, tmp_path):
    """A bundle that is whole and genuine, but of another version, is not the champion's."""
    p = trained
    old = tmp_path / "v1-bundle"
    shutil.copytree(p.root / "deploy" / "champion", old)
    res = p.cli("registry", "promote", "1", "--alias", "champion")
    assert "already v1" in res.stdout
    ok(p.cli("run", "model.params.C=0.2"))
    v2 = deployed(p.root)["version"]
    if v2 == 1:  # the gate kept v1: force the newer one, with a reason
        ok(p.cli("registry", "promote", "2", "--force", "--reason", "test"))
    assert deployed(p.root)["version"] == 2
    shutil.rmtree(p.root / "deploy" / "champion")
    shutil.copytree(old, p.root / "deploy" / "champion")
    expect_redeploy(p, "missing or tampered with", version=2)


# -- the registry file ----------------------------------------------------------------------
def break_registry(p, how: str) -> None:
    path = db_path(p.root)
    for extra in ("-wal", "-shm"):
        (path.parent / (path.name + extra)).unlink(missing_ok=True)
    if how == "empty":
        path.write_bytes(b"")
    elif how == "garbage":
        path.write_bytes(os.urandom(8192))
    elif how == "deleted":
        path.unlink()
    assert (path.parent / (path.name + ".id")).is_file()


@pytest.mark.parametrize("command", [("run",), ("plan",), ("registry", "list"),
                                     ("registry", "check"), ("runs", "list")])
@pytest.mark.parametrize("how", ["empty", "garbage", "deleted"])
def test_a_broken_registry_file_is_refused_by_name(trained, how, command):
    p = trained
    break_registry(p, how)
    size = db_path(p.root).stat().st_size if db_path(p.root).exists() else None
    res = p.cli(*command)
    if command == ("registry", "check"):  # the check reports it as its finding, exit 1
        text = out(res)
        assert code(res) == 1 and "Traceback" not in text, text
        assert "failed" in text and str(db_path(p.root)) in text
        assert "specloop registry backup" in text and "will not start a new one" in text
    else:
        assert_refused(res, 2, str(db_path(p.root)), "specloop registry backup",
                       "specloop registry check", "will not start a new one")
    # nothing replaced it
    assert (db_path(p.root).stat().st_size if db_path(p.root).exists() else None) == size


def test_registry_check_reports_a_damaged_page(trained):
    """One byte of an index page changed (the file still opens): the check says so."""
    p = trained
    path = db_path(p.root)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page = conn.execute("PRAGMA page_size").fetchone()[0]
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name='versions_by_key'"
                        ).fetchone()[0]
    key = conn.execute("SELECT model_key FROM versions").fetchone()[0].encode()
    conn.close()
    data = bytearray(path.read_bytes())
    start = (root - 1) * page
    at = data.index(key, start, start + page)
    data[at] = ord("z") if data[at] != ord("z") else ord("y")
    path.write_bytes(bytes(data))
    res = p.cli("registry", "check", "--json")
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output
    rows = {r["what"]: r for r in json.loads(res.stdout)}
    assert rows[f"registry file {path}"]["status"] == "failed"
    assert "versions_by_key" in rows[f"registry file {path}"]["detail"]


def test_a_backup_is_a_working_registry(trained, tmp_path):
    p = trained
    copy = tmp_path / "backup.db"
    res = p.cli("registry", "backup", str(copy))
    ok(res)
    assert str(copy) in res.stdout
    before = json.loads(p.cli("registry", "history", "--json").stdout)
    break_registry(p, "garbage")
    assert p.cli("registry", "list").exit_code == 2
    shutil.copyfile(copy, db_path(p.root))
    ok(p.cli("registry", "check"))
    assert json.loads(p.cli("registry", "history", "--json").stdout) == before
    res = p.cli("run")
    ok(res)
    assert set(stage_actions(res.stdout).values()) == {"cached"}


def test_a_backup_taken_while_another_process_writes_is_consistent(trained, tmp_path):
    p = trained
    from rel_helpers import spawn

    proc = spawn(p.root, "run", "model.params.C=0.3")
    copies = []
    while proc.poll() is None and len(copies) < 20:
        copy = tmp_path / f"b{len(copies)}.db"
        ok(p.cli("registry", "backup", str(copy)))
        copies.append(copy)
    assert proc.wait(timeout=120) == 0
    for copy in copies:
        conn = sqlite3.connect(copy)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            versions = {r[0] for r in conn.execute("SELECT version FROM versions")}
            audited = {r[0] for r in conn.execute(
                "SELECT version FROM audit WHERE action='register'")}
            assert versions == audited  # a version and its audit row: both or neither
        finally:
            conn.close()

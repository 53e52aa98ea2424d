"""The SQLite registry: versions, aliases, rollback, append-only audit, and its CLI."""

from __future__ import annotations

import json
import sqlite3

import pytest

from specloop import RegistryError
from specloop._registry import Registry


def _reg(tmp_path) -> Registry:
    return Registry(tmp_path / "r" / "registry.db")


def _add(reg: Registry, key: str, auc: float) -> int:
    return reg.register("m", model_key=key, metrics={"roc_auc": auc}, reference_key=None,
                        data_fingerprint="d", run_id="r", config={}, gate=None)["version"]


def test_versions_aliases_history_and_rollback(tmp_path):
    reg = _reg(tmp_path)
    v1, v2 = _add(reg, "k1", 0.8), _add(reg, "k2", 0.9)
    assert (v1, v2) == (1, 2)
    assert reg.set_alias("m", "champion", 1, reason="first") is None
    assert reg.set_alias("m", "champion", 2, reason="better") == 1
    assert reg.resolve("m", "champion")["version"] == 2
    assert reg.rollback_target("m") == (2, 1)
    reg.set_alias("m", "champion", 1, reason="bad in production", action="rollback", expect=2)
    assert reg.aliases("m") == {"champion": 1}
    hist = [(h["previous"], h["version"]) for h in reg.alias_history("m")]
    assert hist == [(None, 1), (1, 2), (2, 1)]
    actions = [a["action"] for a in reg.audit("m")]
    assert actions == ["register", "register", "promote", "promote", "rollback"]
    assert reg.find_by_key("m", "k2")["version"] == 2


def test_audit_log_is_append_only(tmp_path):
    reg = _reg(tmp_path)
    _add(reg, "k1", 0.8)
    conn = sqlite3.connect(reg.path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE audit SET reason='x'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM audit")


def test_rollback_without_history_and_bad_names_are_refused(tmp_path):
    reg = _reg(tmp_path)
    with pytest.raises(RegistryError, match="no 'champion'"):
        reg.rollback_target("m")
    _add(reg, "k1", 0.8)
    reg.set_alias("m", "champion", 1, reason="x")
    with pytest.raises(RegistryError, match="no earlier version"):
        reg.rollback_target("m")
    for bad in ("../etc", "a/b", "", ".hidden"):
        with pytest.raises(RegistryError, match="invalid alias"):
            reg.set_alias("m", bad, 1, reason="x")
    with pytest.raises(RegistryError, match="has no version 7"):
        reg.set_alias("m", "champion", 7, reason="x")


def test_rollback_walks_back_and_never_returns_to_the_version_rolled_back_from(tmp_path):
    reg = _reg(tmp_path)
    for i in range(1, 5):
        _add(reg, f"k{i}", 0.8)
    for v in (1, 2, 3):
        reg.set_alias("m", "champion", v, reason="promote")
    reg.set_alias("m", "champion", 4, reason="forced", action="force-promote")

    def rollback() -> int:
        current, target = reg.rollback_target("m")
        reg.set_alias("m", "champion", target, reason="rb", action="rollback", expect=current)
        return target

    assert rollback() == 3  # v4 failed its gate: back to v3
    assert rollback() == 2  # and further back, never forward to v4 again
    assert rollback() == 1
    with pytest.raises(RegistryError, match="no earlier version"):
        reg.rollback_target("m")


def test_compare_and_set_refuses_an_alias_that_moved(tmp_path):
    reg = _reg(tmp_path)
    _add(reg, "k1", 0.8), _add(reg, "k2", 0.9)
    reg.set_alias("m", "champion", 1, reason="x")
    with pytest.raises(RegistryError, match="moved from v2 to v1"):
        reg.set_alias("m", "champion", 2, reason="y", expect=2)
    assert reg.aliases("m") == {"champion": 1}
    assert [a["action"] for a in reg.audit("m")] == ["register", "register", "promote"]


@pytest.mark.parametrize("damage", ["empty", "garbage", "deleted"])
def test_a_broken_registry_is_never_silently_replaced(tmp_path, damage):
    reg = _reg(tmp_path)
    _add(reg, "k1", 0.8)
    reg.close()
    path = reg.path
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    if damage == "empty":
        path.write_bytes(b"")
    elif damage == "garbage":
        path.write_bytes(b"not a database" * 100)
    else:
        path.unlink()
    with pytest.raises(RegistryError) as info:
        Registry(path)
    text = info.value.render()
    assert info.value.exit_code == 2 and str(path) in text
    assert "specloop registry backup" in text and "registry check" in text
    assert path.exists() == (damage != "deleted")  # nothing was created in its place


def test_backup_is_a_consistent_copy(tmp_path):
    reg = _reg(tmp_path)
    _add(reg, "k1", 0.8)
    reg.set_alias("m", "champion", 1, reason="x")
    copy = Registry(reg.backup(tmp_path / "backup" / "registry.db"))
    assert copy.aliases("m") == {"champion": 1} and copy.integrity() == []
    assert [a["action"] for a in copy.audit("m")] == ["register", "promote"]


def test_loop_batches_are_recorded_once(tmp_path):
    reg = _reg(tmp_path)
    reg.record_batch("m", "2024-07", 1, {"x": 1})
    [(batch, record)] = reg.processed_batches("m").items()
    assert batch == "2024-07" and record["x"] == 1 and record["processed_at"].startswith("20")
    with pytest.raises(sqlite3.IntegrityError):
        reg.record_batch("m", "2024-07", 1, {"x": 2})


def test_registry_cli_promote_rollback_history(project):
    project.run()
    project.run(["model.params.C=0.01", "gate.beat_champion_by=null"])
    listed = json.loads(project.cli("registry", "list", "--json").stdout)
    assert [v["version"] for v in listed] == [1, 2]
    res = project.cli("registry", "promote", "1", "--reason", "manual pick")
    assert res.exit_code == 0, res.output
    res = project.cli("registry", "rollback")
    assert res.exit_code == 0 and "rolled back" in res.stdout
    shown = project.cli("registry", "show")
    assert shown.stdout.startswith("small v2")
    hist = json.loads(project.cli("registry", "history", "--json").stdout)
    moves = [a for a in hist["audit"] if a["action"] != "deploy"]
    assert [a["action"] for a in moves][-2:] == ["promote", "rollback"]
    assert moves[-2]["reason"] == "manual pick"
    bad = project.cli("registry", "promote", "9")
    assert bad.exit_code == 2 and "has no version 9" in bad.stderr

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
    assert reg.rollback("m", reason="bad in production") == (2, 1)
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
        reg.rollback("m", reason="x")
    _add(reg, "k1", 0.8)
    reg.set_alias("m", "champion", 1, reason="x")
    with pytest.raises(RegistryError, match="no earlier version"):
        reg.rollback("m", reason="x")
    for bad in ("../etc", "a/b", "", ".hidden"):
        with pytest.raises(RegistryError, match="invalid alias"):
            reg.set_alias("m", bad, 1, reason="x")
    with pytest.raises(RegistryError, match="has no version 7"):
        reg.set_alias("m", "champion", 7, reason="x")


def test_loop_batches_are_recorded_once(tmp_path):
    reg = _reg(tmp_path)
    reg.record_batch("m", "2024-07", 1, {"x": 1})
    assert reg.processed_batches("m") == {"2024-07": {"x": 1}}
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
    assert [a["action"] for a in hist["audit"]][-2:] == ["promote", "rollback"]
    assert hist["audit"][-2]["reason"] == "manual pick"
    bad = project.cli("registry", "promote", "9")
    assert bad.exit_code == 2 and "has no version 9" in bad.stderr

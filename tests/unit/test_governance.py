"""Governed registry: gated manual promotion, forced promotion with a reason, rollback, model
cards, the append-only audit log and name validation, through the CLI."""

from __future__ import annotations

import json
import sqlite3

import pytest

from specloop import ConfigError, RegistryError
from specloop._registry import Registry


@pytest.fixture
def two_versions(project):
    """v1 (champion) and a clearly worse v2 that its gate refused."""
    project.run()
    project.run(["model.params.C=0.0001"])
    listed = json.loads(project.cli("registry", "list", "--json").stdout)
    assert [(v["version"], v["aliases"]) for v in listed] == [(1, ["champion"]), (2, [])]
    assert listed[1]["gate"]["passed"] is False  # the gate result of the registration
    return project


def _history(p) -> dict:
    return json.loads(p.cli("registry", "history", "--json").stdout)


def _moves(p) -> list[dict]:
    """The audit log without its deploy rows (each alias move of champion is followed by
    one: the record of what the target serves)."""
    return [a for a in _history(p)["audit"] if a["action"] != "deploy"]


def test_promote_runs_the_gate_and_refuses_a_worse_version(two_versions):
    p = two_versions
    before = _history(p)
    res = p.cli("registry", "promote", "2")
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output
    assert "the gate refuses to promote v2" in res.stderr
    assert "roc_auc beats champion by >= 0.0" in res.stderr  # the gate's reason
    assert "--force --reason" in res.stderr
    assert _history(p) == before  # nothing changed, nothing audited


def test_promote_passes_when_the_gate_passes(two_versions):
    p = two_versions
    # with the comparison switched off by an override, the declared gate accepts v2
    res = p.cli("registry", "promote", "2", "gate.beat_champion_by=null", "--project",
                str(p.root))
    assert res.exit_code == 0, res.output
    assert "gate: passed" in res.stdout and "champion: v1 → v2" in res.stdout
    audit = _moves(p)[-1]
    assert (audit["action"], audit["version"], audit["alias"]) == ("promote", 2, "champion")
    deployed = _history(p)["audit"][-1]
    assert (deployed["action"], deployed["version"]) == ("deploy", 2)
    assert audit["gate"]["passed"] is True and audit["gate"]["champion"] == 1


def test_force_needs_a_reason_and_is_audited(two_versions):
    p = two_versions
    res = p.cli("registry", "promote", "2", "--force")
    assert res.exit_code == 2, res.output
    assert "--force needs --reason" in res.stderr
    res = p.cli("registry", "promote", "2", "--force", "--reason", "   ")
    assert res.exit_code == 2, res.output

    res = p.cli("registry", "promote", "2", "--force", "--reason", "incident 42: v1 leaks")
    assert res.exit_code == 0, res.output
    assert "gate FAILED (forced)" in res.stdout
    hist = _history(p)
    last = _moves(p)[-1]
    assert last["action"] == "force-promote" and last["reason"] == "incident 42: v1 leaks"
    assert last["gate"]["passed"] is False and last["gate"]["forced"] is True
    assert last["gate"]["force_reason"] == "incident 42: v1 leaks"
    assert hist["aliases"][-1]["version"] == 2 and hist["aliases"][-1]["previous"] == 1


def test_rollback_moves_champion_back_in_one_command(two_versions):
    p = two_versions
    assert p.cli("registry", "promote", "2", "--force", "--reason", "try it").exit_code == 0
    res = p.cli("registry", "rollback", "--reason", "worse in production")
    assert res.exit_code == 0, res.output
    assert "champion: v2 → v1 (rolled back)" in res.stdout
    hist = _history(p)
    assert [(h["previous"], h["version"]) for h in hist["aliases"]] == \
        [(None, 1), (1, 2), (2, 1)]
    assert [a["action"] for a in hist["audit"]] == \
        ["register", "promote", "deploy", "register", "force-promote", "deploy", "rollback",
         "deploy"]
    assert _moves(p)[-1]["reason"] == "worse in production"


def _deployed_version(p) -> int:
    return json.loads((p.root / "deploy" / "champion" / "metadata.json").read_text())["version"]


def test_promote_and_rollback_redeploy_the_champion(two_versions):
    p = two_versions
    assert _deployed_version(p) == 1
    res = p.cli("registry", "promote", "2", "--force", "--reason", "ship v2")
    assert res.exit_code == 0, res.output
    assert "deployed v2 → " in res.stdout
    assert _deployed_version(p) == 2  # the bundle follows the alias
    res = p.cli("registry", "rollback", "--reason", "v2 misbehaves")
    assert res.exit_code == 0, res.output
    assert "champion: v2 → v1 (rolled back)" in res.stdout and "deployed v1" in res.stdout
    assert _deployed_version(p) == 1


def test_no_deploy_moves_the_alias_only(two_versions):
    p = two_versions
    res = p.cli("registry", "promote", "2", "--force", "--reason", "stage it", "--no-deploy")
    assert res.exit_code == 0, res.output
    assert "deployed" not in res.stdout
    assert _deployed_version(p) == 1
    assert _history(p)["aliases"][-1]["version"] == 2
    # moving another alias never deploys
    res = p.cli("registry", "promote", "1", "--alias", "stable")
    assert res.exit_code == 0 and "deployed" not in res.stdout


def test_a_failing_redeploy_says_so_and_keeps_the_alias_move(two_versions):
    p = two_versions
    (p.root / "deploy").rename(p.root / "deploy-old")
    (p.root / "deploy").write_text("a file where the bundle folder should be")
    res = p.cli("registry", "promote", "2", "--force", "--reason", "ship v2")
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output
    assert "champion: v1 → v2" in res.stdout
    assert "deploy/bundle failed in deploy()" in res.stderr and "stage:" in res.stderr
    assert _history(p)["aliases"][-1]["version"] == 2  # the audited move stands


def test_show_prints_the_model_card(two_versions):
    p = two_versions
    assert p.cli("registry", "promote", "2", "--force", "--reason", "card test").exit_code == 0
    res = p.cli("registry", "show", "2")
    assert res.exit_code == 0, res.output
    out = res.stdout
    card = json.loads(p.cli("registry", "show", "2", "--json").stdout)
    model = card["model"]
    for needle in ("small v2  aliases: champion", f"run {card['run_id']} (run, succeeded",
                   "overrides: model.params.C=0.0001", f"data:     {card['data_fingerprint']}",
                   "roc_auc", "gate:     failed", "[FAIL] roc_auc beats champion",
                   "model:    model.bin (skops)", f"sha256:   {model['sha256']}",
                   "trusted types:", "champion: v1 → v2  (card test)",
                   "config (run manifest):", "C: 0.0001"):
        assert needle in out, (needle, out)
    assert card["config"]["model"]["params"]["C"] == 0.0001
    assert p.cli("registry", "show", "--alias", "champion").stdout == out
    bad = p.cli("registry", "show", "--alias", "../x")
    assert bad.exit_code == 2 and "invalid alias" in bad.stderr


def test_audit_log_and_recorded_hashes_are_append_only(two_versions):
    p = two_versions
    conn = sqlite3.connect(p.root / ".specloop" / "registry.db")
    for sql in ("UPDATE audit SET reason='x'", "DELETE FROM audit",
                "UPDATE version_artifacts SET sha256='0'", "DELETE FROM version_artifacts"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only|immutable"):
            conn.execute(sql)
    conn.close()


@pytest.mark.parametrize("bad", ["../x", "a/b", "a\\b", "..", ""])
def test_model_and_alias_names_are_validated(tmp_path, bad):
    reg = Registry(tmp_path / "registry.db")
    with pytest.raises(RegistryError, match="invalid model name"):
        reg.register(bad, model_key="k", metrics={}, reference_key=None, data_fingerprint=None,
                     run_id=None, config=None, gate=None)
    reg.register("m", model_key="k", metrics={}, reference_key=None, data_fingerprint=None,
                 run_id=None, config=None, gate=None)
    with pytest.raises(RegistryError, match="invalid alias"):
        reg.set_alias("m", bad, 1, reason="x")
    reg.close()


def test_bad_project_name_is_a_config_error(project):
    project.write_conf("config.yaml", {
        "defaults": [{"data": "small"}, {"model": "logistic"}, {"metrics": "classification"},
                     "_self_"], "project": {"name": "../escape", "seed": 0}})
    with pytest.raises(ConfigError) as info:
        project.context()
    assert info.value.key == "project.name" and "conf/config.yaml" in str(info.value.file)
    res = project.cli("validate", "project.name=a/b")
    assert res.exit_code == 2 and "invalid model name 'a/b'" in res.stderr


def test_an_alias_moved_meanwhile_is_not_overwritten(tmp_path):
    """The gate judged against one champion; if another took its place, nothing changes."""
    reg = Registry(tmp_path / "registry.db")
    for key in ("k1", "k2", "k3"):
        reg.register("m", model_key=key, metrics={}, reference_key=None, data_fingerprint=None,
                     run_id=None, config=None, gate=None)
    reg.set_alias("m", "champion", 1, reason="first")
    reg.set_alias("m", "champion", 2, reason="someone else")
    with pytest.raises(RegistryError, match="moved from v1 to v2"):
        reg.set_alias("m", "champion", 3, reason="judged against v1", expect=1)
    assert reg.aliases("m") == {"champion": 2}
    assert [a["action"] for a in reg.audit("m")][-1] == "promote"
    assert len(reg.alias_history("m")) == 2
    reg.close()

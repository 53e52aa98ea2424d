"""Sixteen real ``specloop`` processes at once on one project — runs with different
parameters (new versions, some promoted), promotions, rollbacks and loops — released
together from a start barrier. Afterwards the record must be whole: the champion is what
``deploy/champion`` serves, every alias move has its audit row and follows the one before
it, no process crashed (exit codes 0/1/2/3 with specloop's own messages), and
``specloop registry check`` passes."""

from __future__ import annotations

import json
import os
import sys

import pytest

from rel_helpers import ext  # noqa: F401 - a fixture
from rel_helpers import CODES, champion, deployed, make_project, ok, query, spawn, wait_for

pytestmark = pytest.mark.slow

COMMANDS = [
    *[("run", f"model.params.C={c}") for c in ("0.02", "0.05", "0.1", "0.3", "2.0", "8.0")],
    ("registry", "promote", "1"),
    ("registry", "promote", "4", "--force", "--reason", "contention test"),
    ("registry", "promote", "2", "--force", "--reason", "contention test"),
    ("registry", "promote", "7"),
    ("registry", "rollback"),
    ("registry", "rollback"),
    ("registry", "rollback", "--reason", "contention test"),
    ("loop",), ("loop",), ("loop",),
]


def test_sixteen_processes_leave_a_whole_record(tmp_path, ext):
    assert len(COMMANDS) == 16
    p = make_project(tmp_path / "p", batches=2, retrain={"kind": "every", "batches": 1})
    for c in ("1.0", "0.5", "0.25", "0.15"):  # v1-v4, with a history to roll back through
        ok(p.cli("run", f"model.params.C={c}"))
    for v in ("2", "3"):
        ok(p.cli("registry", "promote", v, "--force", "--reason", "setup"))
    barrier = tmp_path / "go"
    procs = [spawn(p.root, *cmd, ext=ext, REL_BARRIER=barrier) for cmd in COMMANDS]
    try:
        wait_for(lambda: len([n for n in os.listdir(tmp_path) if n.startswith("go.ready-")])
                 == len(procs) or any(x.poll() is not None for x in procs),
                 "every process at the start barrier", limit=240)
        barrier.touch()
        results = [(cmd, x.wait(timeout=600), *x.communicate()) for cmd, x in
                   zip(COMMANDS, procs)]
    finally:
        for x in procs:
            if x.poll() is None:
                x.kill()
    report = "\n".join(f"{' '.join(c)} → {rc}\n{o}{e}" for c, rc, o, e in results)
    print("\n".join(f"{c} {rc} {e.strip()[:90]}" for c, rc, o, e in results))
    for cmd, rc, stdout, stderr in results:
        assert rc in CODES, report
        assert "Traceback" not in stdout + stderr, report
        if rc != 0:
            assert "specloop: " in stderr, report
    loops = [rc for cmd, rc, *_ in results if cmd == ("loop",)]
    assert 0 in loops and set(loops) <= {0, 3}, report
    runs = [rc for cmd, rc, *_ in results if cmd[0] == "run"]
    assert runs.count(0) == len(runs), report

    # the champion is what is deployed, and the deployment is the recorded one
    champ = champion(p.root)
    assert deployed(p.root)["version"] == champ
    [dep] = query(p.root, "SELECT version FROM deployments")
    assert dep["version"] == champ
    # every alias move has its audit row, and each move starts where the last one ended
    hist = query(p.root, "SELECT * FROM alias_history ORDER BY id")
    audit = query(p.root, "SELECT * FROM audit ORDER BY id")
    moves = sorted((h["alias"], h["version"], h["action"], h["reason"]) for h in hist)
    audited = sorted((a["alias"], a["version"], a["action"], a["reason"]) for a in audit
                     if a["alias"] is not None)
    assert moves == audited, report
    for alias in ("champion", "challenger"):
        chain = [h for h in hist if h["alias"] == alias]
        for before, after in zip(chain, chain[1:]):
            assert after["previous"] == before["version"], (before, after)
    assert chain_end(hist, "champion") == champ
    # every version registered once, with its audit row; each promotion/rollback agrees
    versions = [r["version"] for r in query(p.root, "SELECT version FROM versions")]
    assert sorted(versions) == list(range(1, len(versions) + 1))
    assert sorted(a["version"] for a in audit if a["action"] == "register") == versions
    for a in audit:
        if a["action"] in ("promote", "force-promote", "rollback") and a["alias"]:
            assert a["version"] in versions
    # the last deploy audited is the champion; every batch was processed exactly once
    deploys = [a["version"] for a in audit if a["action"] == "deploy"]
    assert deploys[-1] == champ
    batches = [b["batch_id"] for b in query(p.root, "SELECT batch_id FROM loop_batches")]
    assert sorted(batches) == ["b0", "b1"]
    check = p.cli("registry", "check")
    assert check.exit_code == 0, check.output + report
    assert not [r for r in json.loads(p.cli("runs", "list", "--json").stdout)
                if r["status"] in ("running", "interrupted")]


def chain_end(hist: list[dict], alias: str) -> int | None:
    chain = [h for h in hist if h["alias"] == alias]
    return chain[-1]["version"] if chain else None


if sys.platform == "win32":  # pragma: no cover
    pytest.skip("real processes with POSIX locks", allow_module_level=True)

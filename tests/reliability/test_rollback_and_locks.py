"""Registry and deployment move together: rollback walks back through the alias history and
never returns to the version just rolled back from; every alias move has its audit row and
is deployed; of two concurrent rollbacks one is refused with nothing half done; one loop per
project, and a killed holder's lock is taken over."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
from pathlib import Path

import pytest

from specloop.testing import ProjectBuilder
from rel_helpers import ext  # noqa: F401 - a fixture
from rel_helpers import (assert_refused, champion, deployed, make_project, ok, query, spawn,
                         state, wait_for)

FAILING_GATE = {"kind": "threshold", "min": {"roc_auc": 0.9999}}  # no run promotes anything


@pytest.fixture(scope="module")
def four_versions(tmp_path_factory) -> Path:
    """A project with versions 1-4 registered and no champion (nothing deployed, so the
    folder can be copied)."""
    root = tmp_path_factory.mktemp("four") / "p"
    p = make_project(root, gate=FAILING_GATE)
    for c in ("1.0", "0.5", "0.2", "0.1"):
        ok(p.cli("run", f"model.params.C={c}"))
    assert [r["version"] for r in query(root, "SELECT version FROM versions")] == [1, 2, 3, 4]
    assert champion(root) is None
    return root


@pytest.fixture
def versions(four_versions, tmp_path):
    root = tmp_path / "p"
    shutil.copytree(four_versions, root)
    return ProjectBuilder(root)


def promote(p, v: int) -> None:
    ok(p.cli("registry", "promote", str(v), "--force", "--reason", f"test {v}"))


def rollback(p):
    return p.cli("registry", "rollback")


def assert_moves_audited(root: Path) -> None:
    """Every alias move has exactly its audit row, and the champion chain is unbroken."""
    hist = query(root, "SELECT * FROM alias_history ORDER BY id")
    audit = query(root, "SELECT * FROM audit WHERE alias IS NOT NULL ORDER BY id")
    moves = sorted((h["alias"], h["version"], h["action"], h["reason"]) for h in hist)
    audited = sorted((a["alias"], a["version"], a["action"], a["reason"]) for a in audit)
    assert moves == audited
    for alias in {h["alias"] for h in hist}:
        chain = [h for h in hist if h["alias"] == alias]
        for before, after in zip(chain, chain[1:]):
            assert after["previous"] == before["version"], (before, after)
    assert deployed(root)["version"] == champion(root)


# each step: ("promote", v) or ("rollback", expected champion, or None: refused)
SEQUENCES = {
    "back-to-the-first": [("promote", 1), ("promote", 2), ("promote", 3), ("promote", 4),
                          ("rollback", 3), ("rollback", 2), ("rollback", 1),
                          ("rollback", None)],
    "never-the-one-rolled-back-from": [("promote", 2), ("promote", 3), ("promote", 4),
                                       ("rollback", 3), ("rollback", 2), ("rollback", None)],
    "promote-after-rollback": [("promote", 1), ("promote", 2), ("rollback", 1),
                               ("promote", 3), ("rollback", 1), ("rollback", None)],
    "re-promote-the-same": [("promote", 1), ("promote", 3), ("promote", 1), ("promote", 4),
                            ("rollback", 1), ("rollback", 3), ("rollback", 1),
                            ("rollback", None)],
    "rollback-to-a-rolled-back-one": [("promote", 2), ("promote", 4), ("rollback", 2),
                                      ("promote", 4), ("rollback", 2), ("rollback", None)],
}


@pytest.mark.parametrize("name", list(SEQUENCES))
def test_rollback_walks_back_and_never_returns_to_the_version_it_left(versions, name):
    p = versions
    stack_seen = []
    for step in SEQUENCES[name]:
        if step[0] == "promote":
            promote(p, step[1])
            stack_seen.append(step[1])
            continue
        before = champion(p.root)
        res = rollback(p)
        if step[1] is None:
            assert_refused(res, 2, "no earlier version to roll back to")
            assert champion(p.root) == before
        else:
            ok(res)
            assert f"v{before} → v{step[1]} (rolled back)" in res.stdout
            assert champion(p.root) == step[1] != before
        assert deployed(p.root)["version"] == champion(p.root)
    assert_moves_audited(p.root)


def test_a_forced_promotion_records_reason_and_failed_gate(versions):
    p = versions
    assert_refused(p.cli("registry", "promote", "1"), 1, "the gate refuses")
    assert_refused(p.cli("registry", "promote", "1", "--force"), 2, "--force needs --reason")
    assert champion(p.root) is None
    promote(p, 1)
    [row] = query(p.root, "SELECT * FROM audit WHERE action='force-promote'")
    gate = json.loads(row["gate"])
    assert gate["forced"] and gate["force_reason"] == "test 1" and not gate["passed"]


def lock_file(root: Path) -> Path:
    return root / ".specloop" / ".locks" / "registry.db.small.lock"


@pytest.mark.slow
def test_two_concurrent_rollbacks_one_succeeds_one_is_refused(versions, ext, tmp_path):
    from filelock import FileLock

    p = versions
    for v in (1, 2, 3):
        promote(p, v)
    before = state(p.root)
    watch = tmp_path / "watch"
    watch.mkdir()
    lock = FileLock(str(lock_file(p.root)))
    with lock:  # both read the champion, then wait for the model's lock
        procs = [spawn(p.root, "registry", "rollback", ext=ext, REL_LOCKWATCH=watch)
                 for _ in range(2)]
        wait_for(lambda: len(os.listdir(watch)) == 2 or any(x.poll() is not None
                                                           for x in procs),
                 "both rollbacks at the model lock")
    results = [(x.wait(timeout=120), *x.communicate()) for x in procs]
    codes = sorted(r[0] for r in results)
    assert codes == [0, 2], results
    [refused] = [r for r in results if r[0] == 2]
    assert "moved from v3 to v2 while this rollback was waiting; nothing changed" in refused[2]
    assert "Traceback" not in refused[2]
    after = state(p.root)
    assert after["history"][:-1] == before["history"]
    assert after["history"][-1][1:4] == (3, 2, "rollback")
    assert champion(p.root) == 2 and deployed(p.root)["version"] == 2
    assert_moves_audited(p.root)


# -- one loop per project -------------------------------------------------------------------
def loop_project(root: Path):
    return make_project(root, batches=3, retrain={"kind": "every", "batches": 1})


@pytest.mark.slow
def test_a_second_loop_is_refused_naming_the_holder(tmp_path, ext):
    p = loop_project(tmp_path / "p")
    ok(p.cli("run"))
    hold = tmp_path / "hold"
    hold.mkdir()
    first = spawn(p.root, "loop", ext=ext, REL_HOLD="after:score@1", REL_DIR=hold)
    try:
        wait_for(lambda: any(n.startswith("held-") for n in os.listdir(hold))
                 or first.poll() is not None, "the first loop to hold the lock")
        second = p.cli("loop")
        text = assert_refused(second, 3, "another 'specloop loop' is running",
                              f"pid {first.pid} on {socket.gethostname()} since ")
        assert "held by:" in text
        status = json.loads(p.cli("loop", "--status").stdout)
        assert status["running"]["pid"] == first.pid
    finally:
        (hold / "release").touch()
    assert first.wait(timeout=120) == 0, first.communicate()
    assert json.loads(p.cli("loop", "--status").stdout)["running"] is None
    assert "processed 0 batch(es)" in p.cli("loop").stdout


@pytest.mark.slow
def test_a_killed_loops_lock_is_taken_over(tmp_path, ext):
    p = loop_project(tmp_path / "p")
    ok(p.cli("run"))
    hold = tmp_path / "hold"
    hold.mkdir()
    first = spawn(p.root, "loop", ext=ext, REL_HOLD="after:score@2", REL_DIR=hold)
    wait_for(lambda: any(n.startswith("held-") for n in os.listdir(hold))
             or first.poll() is not None, "the first loop to hold the lock")
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=60)
    assert json.loads(p.cli("loop", "--status").stdout)["running"] is None
    res = p.cli("loop")
    ok(res)
    assert "processed 2 batch(es)" in res.stdout  # b0 was recorded before the kill
    st = state(p.root)
    assert [b[0] for b in st["batches"]] == ["b0", "b1", "b2"]
    assert st["deployed"] == st["aliases"]["champion"]
    runs = json.loads(p.cli("runs", "list", "--json").stdout)
    assert [r["status"] for r in runs if r["command"] == "loop"] == ["interrupted", "succeeded"]

"""Crash consistency at every step boundary: a real ``specloop run`` / ``specloop loop``
process SIGKILLs itself at a chosen point (the test plugin ``rel_points``), then the command
is run again, and the result must equal an uninterrupted run on the same inputs: the same
versions, aliases, alias history, audit log, processed batches and decisions, the champion
deployed, the killed run shown ``interrupted``, and no temporary folder left behind."""

from __future__ import annotations

import contextlib
import json
import signal
import sys
from pathlib import Path

import pytest

from rel_helpers import ext  # noqa: F401 - a fixture
from rel_helpers import (leftovers, make_project, ok, plan_rows, sha, sl, stage_actions,
                         state)

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")]

RETRAIN = {"kind": "every", "batches": 2}
KILLING_GATE = {"kind": "killing", "beat_champion_by": 0.0}


@contextlib.contextmanager
def plugin_on_path(ext: Path):
    """The test plugin importable in this process too (no kill is armed here)."""
    sys.path.insert(0, str(ext))
    try:
        yield
    finally:
        sys.path.remove(str(ext))


def run_project(root: Path):
    p = make_project(root, gate="killing")
    p.write_conf("gate/killing.yaml", KILLING_GATE)
    return p


def loop_project(root: Path):
    p = make_project(root, gate="killing", batches=4, retrain=RETRAIN)
    p.write_conf("gate/killing.yaml", KILLING_GATE)
    return p


def normalised(root: Path) -> str:
    return json.dumps(state(root), sort_keys=True, default=str).replace(str(root), "<root>")


def check_consistent(p, baseline: str) -> None:
    """Equal to the uninterrupted run, the champion deployed and verified, nothing left."""
    root = p.root
    assert normalised(root) == baseline
    st = state(root)
    assert st["deployed"] == st["aliases"]["champion"]
    check = p.cli("registry", "check", "--json")
    assert check.exit_code == 0, check.output
    assert not leftovers(root), leftovers(root)


def assert_interrupted(p, killed_ids: set[str]) -> None:
    runs = json.loads(p.cli("runs", "list", "--json").stdout)
    status = {r["run"]: r["status"] for r in runs}
    assert killed_ids and all(status[r] == "interrupted" for r in killed_ids), status


def started_runs(p) -> set[str]:
    runs = json.loads(p.cli("runs", "list", "--json").stdout)
    return {r["run"] for r in runs if r["status"] != "succeeded"}


@pytest.fixture(scope="module")
def baselines(tmp_path_factory, ext) -> dict[str, str]:
    """The uninterrupted results: ``run`` on a fresh project, then ``loop`` over 4 batches."""
    base = tmp_path_factory.mktemp("baseline")
    with plugin_on_path(ext):
        p = run_project(base / "run")
        ok(p.cli("run"))
        q = loop_project(base / "loop")
        ok(q.cli("loop"))
    loop_state = state(q.root)
    outcomes = [b[2]["outcome"] for b in loop_state["batches"]]
    # the inputs give every kind of decision: a keep, a kept champion, a promotion
    assert outcomes == ["kept", "kept champion", "promoted", "kept"], outcomes
    return {"run": normalised(p.root), "loop": normalised(q.root)}


RUN_POINTS = ["after:data", "after:split", "after:train", "after:evaluate", "gate",
              "alias:champion:promote", "after:register", "before:deploy", "after:deploy"]


@pytest.mark.parametrize("point", RUN_POINTS)
def test_run_killed_at_a_stage_boundary_resumes_to_the_same_state(point, tmp_path, ext,
                                                                  baselines):
    p = run_project(tmp_path / "p")
    killed = sl(p.root, "run", ext=ext, REL_KILL=point)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    with plugin_on_path(ext):
        ids = started_runs(p)
        assert_interrupted(p, ids)
        again = p.cli("run")
        ok(again)
        check_consistent(p, baselines["run"])
        assert_interrupted(p, ids)  # still told apart from the run that finished
        cached = p.cli("run")  # and nothing is left to do
        assert set(stage_actions(cached.stdout).values()) == {"cached"}, cached.stdout


@pytest.mark.parametrize("point", ["rename:store-tmp@1", "rename:store-tmp@3",
                                   "rename:bundle-tmp@1"])
def test_run_killed_inside_a_write_leaves_no_temporary_folder(point, tmp_path, ext, baselines):
    """Killed with a store artifact or the bundle written but not yet renamed into place."""
    p = run_project(tmp_path / "p")
    killed = sl(p.root, "run", ext=ext, REL_KILL=point)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    assert leftovers(p.root)  # the kill left its temporary folder behind
    with plugin_on_path(ext):
        ok(p.cli("run"))
        check_consistent(p, baselines["run"])


def test_a_deploy_killed_between_its_renames_is_redeployed_without_leftovers(tmp_path, ext):
    """The old bundle moved aside, the new one not yet in place: no bundle at all. The next
    run deploys it, and neither folder of the killed swap stays behind."""
    p = run_project(tmp_path / "p")
    with plugin_on_path(ext):
        ok(p.cli("run"))
        ok(p.cli("run", "model.params.C=0.3"))
    target = 1 if state(p.root)["aliases"]["champion"] == 2 else 2
    killed = sl(p.root, "registry", "promote", str(target), "--force", "--reason", "test",
                ext=ext, REL_KILL="rename:bundle-tmp@1")
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    assert not (p.root / "deploy" / "champion").exists()
    with plugin_on_path(ext):
        row = plan_rows(p.cli("plan", "--json"))["deploy"]
        assert row["action"] == "run", row
        ok(p.cli("run"))
    st = state(p.root)
    assert st["aliases"]["champion"] == target == st["deployed"]
    assert not leftovers(p.root), leftovers(p.root)


# (point, occurrence): the loop first runs the pipeline (no champion yet), then batches
# b0 keep, b1 retrain → kept champion, b2 retrain → promoted, b3 keep
LOOP_POINTS = [
    ("alias:champion:promote", 1),  # the first pipeline's promotion, before its deploy
    ("after:score", 1),             # b0 scored, its record not written
    ("batch-record", 1),            # b0 recorded (keep)
    ("gate-in-retrain", 1),         # b1: the retrained model saved, nothing committed
    ("batch-record", 2),            # b1 recorded (kept champion)
    ("gate-in-retrain", 2),         # b2: model saved, promotion not committed
    ("alias:champion:promote", 2),  # b2: promotion committed, not yet deployed
    ("batch-record", 3),            # b2 recorded and deployed
]


@pytest.mark.parametrize("point,nth", LOOP_POINTS, ids=[f"{p}@{n}" for p, n in LOOP_POINTS])
def test_loop_killed_at_a_step_boundary_resumes_to_the_same_state(point, nth, tmp_path, ext,
                                                                  baselines):
    p = loop_project(tmp_path / "p")
    killed = sl(p.root, "loop", ext=ext, REL_KILL=f"{point}@{nth}")
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    with plugin_on_path(ext):
        ids = started_runs(p)
        assert_interrupted(p, ids)
        before = state(p.root)
        again = p.cli("loop")
        ok(again)
        check_consistent(p, baselines["loop"])
        after = state(p.root)
        # what the killed process committed stays as it was: no decision rewritten
        assert after["batches"][:len(before["batches"])] == before["batches"]
        assert after["history"][:len(before["history"])] == before["history"]
        assert "processed 0 batch(es)" in p.cli("loop").stdout


def test_kill_after_a_loop_promotion_keeps_the_month_promoted_and_deploys_it(tmp_path, ext):
    """The promotion commits with the batch record: the resumed loop does not judge b2 again
    (so it cannot turn into "kept"), and deploys the champion the killed one did not."""
    p = loop_project(tmp_path / "p")
    killed = sl(p.root, "loop", ext=ext, REL_KILL="alias:champion:promote@2")
    assert killed.returncode == -signal.SIGKILL
    st = state(p.root)
    assert [b[0] for b in st["batches"]] == ["b0", "b1", "b2"]
    assert st["batches"][-1][2]["outcome"] == "promoted"
    assert st["deployed"] == 1 and st["aliases"]["champion"] == 3  # the window of the crash
    old = sha(p.root / "deploy" / "champion" / "model.bin")
    with plugin_on_path(ext):
        plan = p.cli("plan")
        assert "the target serves v1, the champion is v3" in plan.stdout, plan.stdout
        ok(p.cli("loop"))
    st = state(p.root)
    assert st["batches"][2][2]["outcome"] == "promoted" and st["deployed"] == 3
    assert sha(p.root / "deploy" / "champion" / "model.bin") != old

"""The specloop launcher (``hydra/launcher=specloop``, the default of ``specloop run -m``):
shared stages once before the fork, every member in its own forked process, and a member
whose process dies takes no other member with it."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from specloop._fork_server import ForkServer
from specloop._multirun import SweepJob, multirun


class CrashingJob(SweepJob):
    """Members as usual, except that ``model.params.C=0.5`` kills its own process."""

    def member(self, cfg: Any, overrides: list[str], job_dir: Path) -> dict:
        if "model.params.C=0.5" in overrides:
            os._exit(3)  # no exception, no result: as a segfault or the OOM killer would
        out = super().member(cfg, overrides, job_dir)
        out["pid"], out["ppid"] = os.getpid(), os.getppid()
        return out


@pytest.mark.slow
def test_a_member_whose_process_dies_fails_alone(project):
    root = project.root
    sweep_dir, results = multirun(root, ["sweep.register=none", "model.params.C=1.0,0.5,2.0"],
                                  job=CrashingJob(root))
    assert [r["status"] for r in results] == ["succeeded", "failed", "succeeded"]
    lost = results[1]
    assert lost["overrides"] == ["sweep.register=none", "model.params.C=0.5"]
    assert "died (exit code 3) before reporting a result" in lost["error"]
    assert json.loads((sweep_dir / "1" / "result.json").read_text())["status"] == "failed"
    # every member ran in a process of its own, forked from the sweep's fork server (which
    # imported the libraries while Hydra composed), not from this process
    pids = {r["pid"] for r in (results[0], results[2])}
    assert len(pids) == 2 and os.getpid() not in pids
    parents = {r["ppid"] for r in (results[0], results[2])}
    assert len(parents) == 1 and os.getpid() not in parents
    # the members found data and split computed by the warm-up run, before the fork
    assert [r["cache_hits"] for r in (results[0], results[2])] == [2, 2]
    runs = [json.loads((d / "manifest.json").read_text())
            for d in (root / ".specloop" / "runs").iterdir()]
    warm = [d for d in runs if d["command"] == "sweep-warm-up"]
    assert len(warm) == 1 and set(warm[0]["stages"]) == {"data", "split"}
    assert all(s["status"] == "ran" for s in warm[0]["stages"].values())


@pytest.mark.slow
def test_n_jobs_one_still_isolates_members_and_warm_up_can_be_switched_off(project):
    root = project.root
    _, results = multirun(root, ["sweep.register=none", "hydra.launcher.n_jobs=1",
                                 "hydra.launcher.warm_up=false", "model.params.C=0.5,1.0"],
                          job=CrashingJob(root))
    assert [r["status"] for r in results] == ["failed", "succeeded"]
    # without the warm-up, the surviving member computed data and split itself
    assert results[1]["cache_hits"] == 0
    runs = [json.loads((d / "manifest.json").read_text())["command"]
            for d in (root / ".specloop" / "runs").iterdir()]
    assert "sweep-warm-up" not in runs


@pytest.mark.slow
def test_a_sweep_whose_fork_server_died_runs_its_members_from_its_own_process(project,
                                                                              monkeypatch):
    real_start = ForkServer.start.__func__

    def start_and_kill(cls, preload=()):
        server = real_start(cls, preload=())
        os.kill(server.pid, signal.SIGKILL)  # gone before the launcher calls it
        return server

    monkeypatch.setattr(ForkServer, "start", classmethod(start_and_kill))
    root = project.root
    _, results = multirun(root, ["sweep.register=none", "model.params.C=1.0,2.0"],
                          job=CrashingJob(root))
    assert [r["status"] for r in results] == ["succeeded", "succeeded"]
    assert {r["ppid"] for r in results} == {os.getpid()}  # forked from here instead
    assert [r["cache_hits"] for r in results] == [2, 2]  # and the warm-up still ran first

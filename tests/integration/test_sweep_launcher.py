"""The specloop launcher (``hydra/launcher=specloop``, the default of ``specloop run -m``):
shared stages once before the members start, every member in a process of its own under the
forkserver, spawn and fork start methods, and a member whose process dies takes no other
member with it."""

from __future__ import annotations

import json
import multiprocessing.forkserver
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from specloop._multirun import SweepJob, multirun


class CrashingJob(SweepJob):
    """Members as usual, except that ``model.params.C=0.5`` kills its own process."""

    def member(self, cfg: Any, overrides: list[str], job_dir: Path) -> dict:
        if "model.params.C=0.5" in overrides:
            os._exit(3)  # no exception, no result: as a segfault or the OOM killer would
        out = super().member(cfg, overrides, job_dir)
        out["pid"], out["ppid"] = os.getpid(), os.getppid()
        out["preloaded"] = "sklearn.ensemble" in __import__("sys").modules
        return out


def _manifests(root: Path) -> list[dict]:
    return [json.loads((d / "manifest.json").read_text())
            for d in (root / ".specloop" / "store" / "runs").iterdir()]


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
    # every member ran in a process of its own, forked from the forkserver (which imported
    # the modules specloop and the plugins name), not from this process
    ok = (results[0], results[2])
    assert len({r["pid"] for r in ok}) == 2 and os.getpid() not in {r["pid"] for r in ok}
    parents = {r["ppid"] for r in ok}
    assert len(parents) == 1 and os.getpid() not in parents
    assert all(r["preloaded"] for r in ok)
    # the members found data and split computed by the warm-up run before they started
    assert [r["cache_hits"] for r in ok] == [2, 2]
    warm = [d for d in _manifests(root) if d["command"] == "sweep-warm-up"]
    assert len(warm) == 1 and set(warm[0]["stages"]) == {"data", "split"}
    assert all(s["status"] == "ran" for s in warm[0]["stages"].values())


@pytest.mark.slow
@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_members_run_under_the_spawn_and_fork_start_methods(project, method):
    root = project.root
    _, results = multirun(root, ["sweep.register=none", f"hydra.launcher.start_method={method}",
                                 "model.params.C=1.0,0.5,2.0"], job=CrashingJob(root))
    assert [r["status"] for r in results] == ["succeeded", "failed", "succeeded"]
    ok = (results[0], results[2])
    assert {r["ppid"] for r in ok} == {os.getpid()}  # started by this process directly
    assert [r["cache_hits"] for r in ok] == [2, 2]
    metrics = [r["metrics"]["roc_auc"] for r in ok]
    _, again = multirun(root, ["sweep.register=none", "hydra/launcher=basic",
                               "model.params.C=1.0,2.0"])
    assert [r["metrics"]["roc_auc"] for r in again] == metrics  # same results as in process


@pytest.mark.slow
def test_n_jobs_one_still_isolates_members_and_warm_up_can_be_switched_off(project):
    root = project.root
    _, results = multirun(root, ["sweep.register=none", "hydra.launcher.n_jobs=1",
                                 "hydra.launcher.warm_up=false", "model.params.C=0.5,1.0"],
                          job=CrashingJob(root))
    assert [r["status"] for r in results] == ["failed", "succeeded"]
    # without the warm-up, the surviving member computed data and split itself
    assert results[1]["cache_hits"] == 0
    assert "sweep-warm-up" not in [d["command"] for d in _manifests(root)]


@pytest.mark.slow
def test_a_dead_forkserver_is_started_again_and_missing_preloads_are_skipped(project,
                                                                            monkeypatch):
    from hydra_plugins.specloop_launcher import _workers as _launcher

    # a plugin may name a module that is not installed: the server skips it
    monkeypatch.setattr(_launcher, "ENGINE_PRELOAD", [*_launcher.ENGINE_PRELOAD,
                                                      "no_such_module_anywhere"])
    real = _launcher.start_server

    def start_then_kill(modules):
        real(modules)
        server = multiprocessing.forkserver._forkserver
        os.kill(server._forkserver_pid, signal.SIGKILL)  # gone before the members start

    monkeypatch.setattr(_launcher, "start_server", start_then_kill)
    root = project.root
    _, results = multirun(root, ["sweep.register=none", "model.params.C=1.0,2.0"],
                          job=CrashingJob(root))
    assert [r["status"] for r in results] == ["succeeded", "succeeded"]
    assert [r["cache_hits"] for r in results] == [2, 2]


def test_an_unknown_start_method_is_a_config_error(project):
    out = project.cli("run", "-m", "sweep.register=none", "hydra.launcher.start_method=teleport",
                      "model.params.C=1.0,2.0")
    assert out.exit_code == 2, out.output
    assert "start method 'teleport'" in out.stderr and "Traceback" not in out.stderr


CALLBACK = '''
import os
from pathlib import Path
from hydra.experimental.callback import Callback

class Mark(Callback):
    def on_job_start(self, config, **kwargs):
        Path(config.hydra.sweep.dir, f"started-{config.hydra.job.num}-{os.getpid()}").touch()
'''


@pytest.mark.slow
@pytest.mark.parametrize("method", ["forkserver", "spawn"])
def test_hydra_callbacks_run_in_every_member(project, method, tmp_path, monkeypatch):
    (tmp_path / "markcb.py").write_text(CALLBACK)
    monkeypatch.syspath_prepend(str(tmp_path))
    root = project.root
    sweep_dir, results = multirun(root, ["sweep.register=none",
                                         f"hydra.launcher.start_method={method}",
                                         "+hydra.callbacks.mark._target_=markcb.Mark",
                                         "model.params.C=1.0,2.0"])
    assert [r["status"] for r in results] == ["succeeded", "succeeded"]
    marks = sorted(p.name.split("-")[1] for p in sweep_dir.glob("started-*"))
    assert marks == ["0", "1"]
    assert os.getpid() not in {int(p.name.split("-")[2]) for p in sweep_dir.glob("started-*")}

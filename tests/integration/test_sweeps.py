"""Sweeps through the real CLI: the joblib launcher, shared upstream stages, the leaderboard,
``sweep.register``, racing sweeps, Optuna, submitit, and retraining-policy backtests."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import small_csv

from specloop._registry import Registry

SPECLOOP = str(Path(sys.executable).with_name("specloop"))


def specloop(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([SPECLOOP, *args], cwd=cwd, capture_output=True, text=True, env=env,
                          timeout=600)


def _sweep_dirs(root: Path, kind: str = "sweeps") -> list[Path]:
    return sorted((root / ".specloop" / kind).iterdir())


def _stage_runs(root: Path, stage: str) -> int:
    """How many runs actually executed ``stage`` (not a cache hit), from the manifests."""
    runs = root / ".specloop" / "store" / "runs"
    docs = [json.loads((d / "manifest.json").read_text()) for d in runs.iterdir()]
    return sum(1 for d in docs if d["stages"].get(stage, {}).get("status") == "ran")


def _commands(root: Path) -> list[str]:
    runs = root / ".specloop" / "store" / "runs"
    return [json.loads((d / "manifest.json").read_text())["command"] for d in runs.iterdir()]


def _versions(root: Path, name: str = "small") -> list[dict]:
    reg = Registry(root / ".specloop" / "registry.db")
    try:
        return reg.versions(name)
    finally:
        reg.close()


@pytest.mark.slow
@pytest.mark.parametrize("launcher", [None, "joblib"])
def test_bad_member_fails_alone_and_only_the_winner_is_registered(project, launcher):
    root = project.root
    chosen = [f"hydra/launcher={launcher}"] if launcher else []
    res = specloop("run", "-m", *chosen, "model.params.max_iter=50,200,-5", cwd=root)
    assert res.returncode == 1, res.stderr
    if launcher is None:  # the default: shared stages first, then forked workers
        assert "2 at a time (forkserver)" in res.stdout           # Hydra's log
    else:
        assert "Joblib.Parallel" in res.stderr + res.stdout
    assert "invalid value for model.params.max_iter" in res.stderr  # the ConfigError, rendered
    assert "2 of 3 member(s) succeeded" in res.stdout
    [sweep] = _sweep_dirs(root)
    doc = json.loads((sweep / "leaderboard.json").read_text())
    rows = doc["rows"]
    assert [r["status"] for r in rows] == ["succeeded", "succeeded", "failed"]
    assert [r["rank"] for r in rows] == [1, 2, None]
    assert rows[0]["roc_auc"] >= rows[1]["roc_auc"]
    assert rows[2]["overrides"] == "model.params.max_iter=-5"
    assert "invalid value for model.params.max_iter" in rows[2]["error"]
    with open(sweep / "leaderboard.csv") as fh:
        table = list(csv.DictReader(fh))
    assert [r["job"] for r in table] == [str(r["job"]) for r in rows]
    assert {"overrides", "roc_auc", "accuracy", "seconds", "cache_hits"} <= set(table[0])
    # upstream stages ran once for the whole sweep, also with members in parallel processes:
    # in the specloop launcher's warm-up run (every member hits the cache), or in the member
    # that took the store's lock first (the other one waited and hit the cache)
    assert _stage_runs(root, "data") == 1 and _stage_runs(root, "split") == 1
    assert sum(r["cache_hits"] for r in rows[:2]) == (4 if launcher is None else 2)
    assert _commands(root).count("sweep-warm-up") == (1 if launcher is None else 0)
    # sweep.register: best (the default) registers the winner alone, as challenger
    versions = _versions(root)
    assert len(versions) == 1 and versions[0]["aliases"] == ["challenger"]
    assert versions[0]["metrics"]["roc_auc"] == rows[0]["roc_auc"]
    assert doc["registered"]["version"] == 1 and rows[0]["version"] == 1
    assert not (root / "deploy").exists()                           # a sweep never deploys


@pytest.mark.slow
def test_two_sweeps_racing_on_one_cache(project):
    root = project.root
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmds = [[SPECLOOP, "run", "-m", "hydra/launcher=basic", "sweep.register=none",
             "model.params.C=0.5,1.0"],
            [SPECLOOP, "run", "-m", "hydra/launcher=basic", "sweep.register=all",
             "model.params.C=2.0,1.0"]]
    procs = [subprocess.Popen(c, cwd=root, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for c in cmds]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
        assert "Launching 2 jobs locally" in err + out              # basic: one after another
    assert _stage_runs(root, "data") == 1 and _stage_runs(root, "split") == 1
    assert _stage_runs(root, "train") == 3                          # C=1.0 is shared too
    # none registers nothing; all registers each of its members
    versions = _versions(root)
    assert sorted(v["config"]["model"]["params"]["C"] for v in versions) == [1.0, 2.0]
    for sweep in _sweep_dirs(root):
        rows = json.loads((sweep / "leaderboard.json").read_text())["rows"]
        assert [r["status"] for r in rows] == ["succeeded", "succeeded"]
    leftovers = [p for p in (root / ".specloop" / "store" / "artifacts").iterdir()
                 if p.name.startswith(".tmp-")]
    assert leftovers == []


@pytest.mark.slow
def test_optuna_sweeper_with_the_search_space_in_yaml(project):
    root = project.root
    (root / "conf" / "hydra" / "sweeper").mkdir(parents=True)
    (root / "conf" / "hydra" / "sweeper" / "search.yaml").write_text(
        "defaults:\n  - optuna\n  - _self_\ndirection: maximize\nn_trials: 2\nn_jobs: 2\n"
        "sampler:\n  seed: 1\nparams:\n  model.params.C: interval(0.01, 10.0)\n")
    res = specloop("run", "-m", "hydra/sweeper=search", cwd=root)
    assert res.returncode == 0, res.stderr
    assert "Best value" in res.stderr + res.stdout
    [sweep] = _sweep_dirs(root)
    rows = json.loads((sweep / "leaderboard.json").read_text())["rows"]
    assert len(rows) == 2 and all(r["overrides"].startswith("model.params.C=") for r in rows)
    assert len({r["overrides"] for r in rows}) == 2                 # two sampled values
    assert [v["aliases"] for v in _versions(root)] == [["challenger"]]


@pytest.mark.slow
def test_submitit_local_launcher_runs_the_spec_unchanged(project):
    root = project.root
    res = specloop("run", "-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10",
                   "model.params.C=0.5,2.0", cwd=root)
    assert res.returncode == 0, res.stderr
    [sweep] = _sweep_dirs(root)
    rows = json.loads((sweep / "leaderboard.json").read_text())["rows"]
    assert [r["status"] for r in rows] == ["succeeded", "succeeded"]
    assert list((sweep / ".submitit").iterdir())                    # submitit ran the jobs
    assert _stage_runs(root, "data") == 1


def _with_batches(project) -> Path:
    root = project.root
    small_csv(root / "data" / "incoming" / "b1.csv", rows=200, seed=1)
    small_csv(root / "data" / "incoming" / "b2.csv", rows=200, seed=2, shift=2.5)
    small_csv(root / "data" / "incoming" / "b3.csv", rows=200, seed=3, shift=2.5)
    project.write_conf("config.yaml", {
        "defaults": [{"data": "small"}, {"model": "logistic"}, {"metrics": "classification"},
                     {"gate": "default"}, {"deploy": "bundle"}, {"monitor": "drift"},
                     {"retrain": "never"}, "_self_"],
        "project": {"name": "small", "seed": 0},
        "loop": {"incoming": {"path": "data/incoming/*.csv"}},
    })
    return root


@pytest.mark.slow
def test_backtest_replays_policies_in_isolation(project):
    root = _with_batches(project)
    assert specloop("run", cwd=root).returncode == 0               # the project's champion
    db = root / ".specloop" / "registry.db"
    before = db.read_bytes()
    deployed = (root / "deploy" / "champion" / "metadata.json").read_text()
    res = specloop("loop", "--backtest", "-m", "retrain=never,every", cwd=root)
    assert res.returncode == 0, res.stderr
    assert "every policy started from: project champion v1" in res.stdout
    [sweep] = _sweep_dirs(root, "backtests")
    doc = json.loads((sweep / "backtest.json").read_text())
    rows = {r["overrides"]: r for r in doc["rows"]}
    never, every = rows["retrain=never"], rows["retrain=every"]
    assert never["retrains"] == 0 and never["promotions"] == 0 and never["batches"] == 3
    assert every["retrains"] == 1                                   # every 3rd batch
    for r in (never, every):
        assert r["worst_roc_auc"] <= r["mean_roc_auc"]
    months = doc["months"]
    assert [m["batch"] for m in months] == ["b1", "b2", "b3"]
    assert months[0]["retrain=never"] == months[0]["retrain=every"]   # the same start
    assert months[2]["retrain=every"].endswith((" R", " r"))
    assert not any(m["retrain=never"].endswith((" R", " r")) for m in months)
    assert (sweep / "backtest.csv").is_file() and (sweep / "backtest_months.csv").is_file()
    # the project's registry, loop state and deployment are untouched
    assert db.read_bytes() == before
    reg = Registry(db)
    try:
        assert reg.processed_batches("small") == {}
        assert [v["version"] for v in reg.versions("small")] == [1]
    finally:
        reg.close()
    assert (root / "deploy" / "champion" / "metadata.json").read_text() == deployed
    # --limit replays the first batches only
    res = specloop("loop", "--backtest", "--limit", "2", "-m", "hydra/launcher=basic",
                   "retrain=never", cwd=root)
    assert res.returncode == 0, res.stderr
    rows = json.loads((_sweep_dirs(root, "backtests")[-1] / "backtest.json").read_text())["rows"]
    assert [r["batches"] for r in rows] == [2]


def test_loop_multirun_without_backtest_is_a_user_error(project):
    res = specloop("loop", "-m", "retrain=never,on_drift", cwd=project.root)
    assert res.returncode == 2
    assert "--backtest" in res.stderr and "Traceback" not in res.stderr


def test_a_launcher_that_is_not_installed_names_its_extra(project, monkeypatch):
    from specloop import _multirun
    from specloop.errors import ConfigError

    monkeypatch.setitem(_multirun.PLUGIN_OPTIONS, ("hydra/launcher", "ray"),
                        ("hydra_plugins.not_installed_launcher", "ray"))
    with pytest.raises(ConfigError) as err:
        _multirun.check_plugins(["model.params.C=1,2", "hydra/launcher=ray"])
    assert "pip install 'specloop[ray]'" in err.value.render()
    assert "command line: hydra/launcher=ray" in err.value.render()


def test_an_unknown_option_in_a_sweep_is_a_user_error_before_any_member_runs(project):
    res = specloop("run", "-m", "model=nope,logistic", cwd=project.root)
    assert res.returncode == 2
    assert "unknown option 'nope' for config group 'model'" in res.stderr
    assert "command line: model=nope,logistic" in res.stderr and "Traceback" not in res.stderr
    assert not (project.root / ".specloop" / "store" / "runs").exists()

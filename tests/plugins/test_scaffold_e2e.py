"""``specloop new`` end to end, through the real command in subprocesses: a new project of
each task validates, runs and loops; a new plugin installs and passes its conformance suite,
its entry point found through importlib.metadata."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import pip_install_target

pytestmark = pytest.mark.slow
_SCRIPT = Path(sys.executable).with_name("specloop")
SPECLOOP = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "specloop.cli"]


def specloop(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    out = subprocess.run([*SPECLOOP, *args], cwd=cwd, capture_output=True, text=True,
                         timeout=300, env=env)
    assert out.returncode == 0, f"specloop {' '.join(args)}:\n{out.stdout}\n{out.stderr}"
    return out


@pytest.mark.parametrize("task,metric", [("classification", "roc_auc"), ("regression", "r2")])
def test_new_project_validates_runs_and_loops(task, metric, tmp_path):
    specloop("new", "project", f"my_{task}", "--task", task, cwd=tmp_path)
    project = tmp_path / f"my_{task}"
    assert "spec OK" in specloop("validate", cwd=project).stdout
    run = specloop("run", cwd=project).stdout
    assert f"metrics: {metric}=" in run and "alias champion: → v1" in run
    assert (project / "deploy" / "champion" / "metadata.json").is_file()
    loop = specloop("loop", cwd=project).stdout
    assert "processed 3 batch(es)" in loop
    assert "2024-03" in loop and "retrain" in loop.splitlines()[2]
    # what the commands wrote is ignored: git sees only the project's own files
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"],
                            cwd=project, capture_output=True, text=True, check=True).stdout
    paths = sorted(line[3:] for line in status.splitlines())
    assert not [p for p in paths if p.startswith((".specloop", "deploy/", "outputs/",
                                                   "multirun/"))], paths
    assert "conf/config.yaml" in paths and "data/train.csv" in paths


def test_new_plugin_installs_and_passes_its_conformance_suite(tmp_path):
    specloop("new", "plugin", "key-drift", cwd=tmp_path)
    source = tmp_path / "specloop-key-drift"
    target = tmp_path / "site"
    pip_install_target(source, target)
    env = {**os.environ, "PYTHONPATH": str(target)}
    env.pop("SPECLOOP_PLUGINS", None)
    env.pop("SPECLOOP_DISABLE_PLUGINS", None)
    probe = ("import json, importlib.metadata as m, specloop_key_drift as p\n"
             "eps = [e for e in m.entry_points(group='specloop.plugins') if e.name == 'key_drift']\n"
             "print(json.dumps([eps[0].value, eps[0].dist.name, p.__file__]))")
    value, dist, module = json.loads(subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True,
        cwd=tmp_path).stdout)
    assert (value, dist) == ("specloop_key_drift", "specloop-key-drift")
    assert Path(module).is_relative_to(target)  # the installed copy, not the source folder
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            str(source / "tests")], env=env, capture_output=True, text=True,
                           cwd=tmp_path, timeout=300)
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-2000:]
    assert " passed" in tests.stdout and "failed" not in tests.stdout
    listed = specloop("plugins", "--json", cwd=tmp_path, env=env).stdout
    rows = {r["name"]: r for r in json.loads(listed)}
    assert rows["key_drift"]["distribution"] == "specloop-key-drift 0.1.0"
    assert [(c["stage"], c["kind"]) for c in rows["key_drift"]["components"]] == [
        ("retrain", "key_drift")]
    # a project can select it by its preset, and it validates
    specloop("new", "project", "uses_it", cwd=tmp_path)
    specloop("validate", "retrain=key_drift", cwd=tmp_path / "uses_it", env=env)

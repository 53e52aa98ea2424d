"""Data versioning with the real DVC: reading a DVC-tracked file at a git revision, the data
version in plans and manifests, ``specloop export dvc`` driven by ``dvc repro`` and
``dvc exp run``, and DVC loaded only by the commands that use it.

Every repository here is built with the real ``git`` and ``dvc`` CLIs: ``git init``,
``dvc init``, a local remote folder, ``dvc add``, a commit and tag per data version.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from specloop.testing import ProjectBuilder

from conftest import small_csv

BIN = Path(sys.executable).parent
DVC = str(BIN / "dvc")
ENV = {**os.environ, "DVC_NO_ANALYTICS": "1", "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
       "OMP_NUM_THREADS": "1"}


def sh(cwd: Path, *cmd: str) -> str:
    done = subprocess.run(list(cmd), cwd=cwd, env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def dvc_pointer_md5(path: Path) -> str:
    return yaml.safe_load(path.read_text())["outs"][0]["md5"]


def dvc(root: Path, *args: str) -> None:
    """The real ``dvc`` command line, run in-process (a fresh process costs seconds)."""
    from dvc.cli import main as dvc_main

    cwd = os.getcwd()
    try:
        assert dvc_main(["--cd", str(root), *args]) == 0, f"dvc {' '.join(args)} failed"
    finally:
        os.chdir(cwd)


def small_project(root: Path) -> ProjectBuilder:
    """A small project reading ``data/train.csv`` (300 rows)."""
    p = ProjectBuilder(root)
    small_csv(root / "data" / "train.csv", rows=300, seed=0)
    p.write_conf("data/small.yaml", {"kind": "csv", "path": "data/train.csv",
                                     "target": "label", "drop": ["id"]})
    p.write_conf("config.yaml", {
        "defaults": [{"data": "small"}, {"model": "logistic"}, {"metrics": "classification"},
                     {"gate": "default"}, {"deploy": "none"}, "_self_"],
        "project": {"name": "small", "seed": 0},
    })
    return p


def git_dvc_init(root: Path) -> None:
    """``git init`` and ``dvc init`` in ``root``, with the store ignored."""
    (root / ".gitignore").write_text(".specloop/\n")
    sh(root, "git", "init", "-q")
    sh(root, "git", "config", "user.email", "test@localhost")
    sh(root, "git", "config", "user.name", "test")
    dvc(root, "init", "-q")


def build_repo(root: Path) -> Path:
    """A project that is a git + DVC repo: data/train.csv at tags v1 and v2, pushed."""
    small_project(root)
    git_dvc_init(root)
    dvc(root, "remote", "add", "-d", "local", str(root.parent / "dvc-remote"))
    dvc(root, "add", "-q", "data/train.csv")
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-q", "-m", "data v1")
    sh(root, "git", "tag", "v1")
    dvc(root, "push", "-q")
    small_csv(root / "data" / "train.csv", rows=360, seed=1)
    dvc(root, "add", "-q", "data/train.csv")
    sh(root, "git", "commit", "-q", "-am", "data v2")
    sh(root, "git", "tag", "v2")
    dvc(root, "push", "-q")
    return root


@pytest.fixture(scope="module")
def dvc_template(tmp_path_factory) -> Path:
    return build_repo(tmp_path_factory.mktemp("dvc") / "proj")


@pytest.fixture
def repo(dvc_template, tmp_path) -> ProjectBuilder:
    """A private copy of the two-version repository (its remote is shared, read-only)."""
    dst = tmp_path / "proj"
    # .dvc/tmp holds DVC's per-checkout state (indexes keyed by absolute paths): not copied
    shutil.copytree(dvc_template, dst, symlinks=True,
                    ignore=lambda d, names: ["tmp"] if d.endswith(".dvc") else [])
    return ProjectBuilder(dst)


def version_md5s(root: Path) -> dict[str, str]:
    out = {}
    for tag in ("v1", "v2"):
        text = subprocess.run(["git", "show", f"{tag}:data/train.csv.dvc"], cwd=root,
                              capture_output=True, text=True, check=True).stdout
        out[tag] = yaml.safe_load(text)["outs"][0]["md5"]
    return out


# -- reading a revision ------------------------------------------------------------------------
def test_reads_each_revision_through_dvc(repo):
    md5s = version_md5s(repo.root)
    assert md5s["v1"] != md5s["v2"]
    frames = {}
    for tag in ("v1", "v2"):
        ctx = repo.context([f"data.rev={tag}"])
        source = ctx.spec.components["data"].build()
        assert source.fingerprint(ctx) == {"data/train.csv": md5s[tag]}
        frames[tag] = source.load(ctx)
        ctx.close()
    assert len(frames["v1"]) == 300 and len(frames["v2"]) == 360
    # the workspace holds v2: reading v2 through DVC gives the same bytes
    ctx = repo.context([])
    assert ctx.spec.components["data"].build().fingerprint(ctx) == {"data/train.csv": md5s["v2"]}


def test_reads_from_the_remote_when_the_cache_is_empty(repo):
    shutil.rmtree(repo.root / ".dvc" / "cache")
    ctx = repo.context(["data.rev=v1", "data.remote=local"])
    frame = ctx.spec.components["data"].build().load(ctx)
    assert len(frame) == 300


def test_plan_names_the_changed_data_version(repo):
    result = repo.run(["data.rev=v1"])
    assert result.manifest["status"] == "succeeded"
    md5s = version_md5s(repo.root)
    out = repo.cli("plan", "data.rev=v2")
    assert out.exit_code == 0, out.output
    data_row = next(line for line in out.stdout.splitlines() if line.startswith("data "))
    assert f"data/train.csv changed (md5 {md5s['v1'][:8]} → {md5s['v2'][:8]})" in data_row
    assert "data.rev: 'v1' → 'v2'" in data_row
    again = repo.cli("plan", "data.rev=v1")
    assert "everything is cached" in again.stdout


def test_manifest_records_dvc_md5_and_revision(repo):
    md5s = version_md5s(repo.root)
    head = sh(repo.root, "git", "rev-parse", "v1").strip()
    doc = repo.run(["data.rev=v1"]).manifest
    rec = doc["data_versions"]["data/train.csv"]
    assert rec["md5"] == md5s["v1"] and rec["rev"] == "v1" and rec["commit"] == head
    assert rec["tracked_by"] == "dvc"
    assert doc["data_fingerprint"] == {"data/train.csv": md5s["v1"]}
    assert doc["specloop_version"]
    # the workspace copy: the commit that holds exactly those bytes
    doc = repo.run([]).manifest
    rec = doc["data_versions"]["data/train.csv"]
    assert rec["md5"] == md5s["v2"] and rec["rev"] is None
    assert rec["commit"] == sh(repo.root, "git", "rev-parse", "HEAD").strip()


def test_a_revision_that_does_not_exist(repo):
    before = sorted(os.listdir(repo.root))
    out = repo.cli("run", "data.rev=v9")
    assert out.exit_code == 2
    assert "DVC revision 'v9' does not exist" in out.stderr
    assert "data.rev" in out.stderr and "command line: data.rev=v9" in out.stderr
    assert "v1, v2" in out.stderr  # the tags that do exist
    assert "Traceback" not in out.output
    assert sorted(os.listdir(repo.root)) == before  # no store, no registry, nothing written


def test_a_rev_outside_any_dvc_repo(project):
    out = project.cli("plan", "data.rev=v1")
    assert out.exit_code == 2
    assert "is not inside a DVC repository" in out.stderr and "data.rev" in out.stderr


# -- DVC is loaded only when bytes are read at a revision ------------------------------------
def test_plan_and_an_unchanged_run_do_not_import_dvc(repo):
    repo.run(["data.rev=v1"])
    code = ("import sys; from specloop.cli import main; "
            f"rc = main(['run', '--project', {str(repo.root)!r}, 'data.rev=v1']); "
            "print('DVC-IMPORTED' if any(m == 'dvc' or m.startswith('dvc.') "
            "for m in sys.modules) else 'NO-DVC', rc)")
    out = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True,
                         text=True, cwd=repo.root)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("NO-DVC 0")


# -- export dvc: the real `dvc repro` and `dvc exp run` ----------------------------------------
@pytest.mark.slow
def test_export_dvc_repro_and_exp_run(repo):
    root = repo.root
    exported = repo.cli("export", "dvc")
    assert exported.exit_code == 0 and "not inside a DVC repository" not in exported.stdout
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    assert list(stages) == ["data", "train", "register"]
    assert "data/train.csv" in stages["data"]["deps"]
    params = yaml.safe_load((root / "params.yaml").read_text())
    assert params["model"]["kind"] == "sklearn" and params["project"] == {"seed": 0}
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-q", "-m", "pipeline")

    first = sh(root, DVC, "repro")
    assert "Running stage 'data'" in first and "Running stage 'train'" in first
    keys = json.loads((root / ".specloop" / "dvc" / "train.json").read_text())
    assert keys["metrics"]["roc_auc"] > 0.5
    assert "roc_auc" in sh(root, DVC, "metrics", "show")
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-q", "-m", "lock")

    # unchanged: a no-op under both tools, whichever ran last
    run = sh(root, str(BIN / "specloop"), "run")
    rows = [line.split() for line in run.splitlines()
            if line.split()[:1] and line.split()[0] in ("data", "split", "train", "evaluate")]
    assert len(rows) == 4 and all(r[1] == "cached" for r in rows), run
    again = sh(root, DVC, "repro")
    assert "Running stage" not in again and "Data and pipelines are up to date." in again

    # a parameter changed through DVC reaches specloop
    sh(root, DVC, "exp", "run", "-S", "model.params.C=0.05")
    changed = json.loads((root / ".specloop" / "dvc" / "train.json").read_text())
    assert changed["stages"]["data"] == keys["stages"]["data"]  # data stage untouched
    assert changed["stages"]["train"] != keys["stages"]["train"]
    runs = sorted(os.listdir(root / ".specloop" / "store" / "runs"))
    last = json.loads((root / ".specloop" / "store" / "runs" / runs[-1] / "manifest.json").read_text())
    assert "model.params.C=0.05" in last["overrides"]
    assert last["config"]["model"]["params"]["C"] == 0.05


def test_params_overrides_only_what_changed_since_the_export(project):
    out = project.cli("export", "dvc")
    assert out.exit_code == 0, out.output
    assert "not inside a DVC repository" in out.stdout  # a plain folder: said, not fatal
    from specloop_tabular._export import params_overrides

    assert params_overrides(project.root, "params.yaml") == []
    params = yaml.safe_load((project.root / "params.yaml").read_text())
    params["model"]["params"]["C"] = 0.5
    params["project"]["seed"] = 3
    (project.root / "params.yaml").write_text(yaml.safe_dump(params))
    assert sorted(params_overrides(project.root, "params.yaml")) == \
        ["model.params.C=0.5", "project.seed=3"]
    run = project.cli("dvc-stage", "--params", "params.yaml", "--until", "split",
                      "--write-keys", ".specloop/dvc/data.json")
    assert run.exit_code == 0, run.output
    missing = project.cli("dvc-stage", "--params", "nope.yaml", "--until", "split",
                          "--write-keys", ".specloop/dvc/data.json")
    assert missing.exit_code == 2 and "nope.yaml" in missing.stderr
    assert "specloop export dvc" in missing.stderr


# -- reproduce with DVC-tracked data -----------------------------------------------------------
def test_reproduce_fetches_the_recorded_commit_when_the_workspace_changed(repo):
    doc = repo.run([]).manifest  # the workspace copy, committed as v2
    small_csv(repo.root / "data" / "train.csv", rows=100, seed=9)  # not committed
    out = repo.cli("reproduce", doc["run_id"])
    assert out.exit_code == 0, out.output
    commit = doc["data_versions"]["data/train.csv"]["commit"]
    assert f"read commit {commit[:12]} through DVC" in out.stdout
    assert "NO" not in out.stdout.split()


def test_export_dvc_in_a_project_below_the_repository_root(tmp_path):
    """A monorepo: git and DVC at the root, the project in ``projects/proj``; ``dvc repro``
    works from the project folder and from the root, and both tools agree on unchanged."""
    mono = tmp_path / "mono"
    root = mono / "projects" / "proj"
    p = small_project(root)
    git_dvc_init(mono)
    dvc(mono, "add", "-q", "projects/proj/data/train.csv")
    assert p.cli("export", "dvc").exit_code == 0
    assert "data/train.csv" in yaml.safe_load((root / "dvc.yaml").read_text())[
        "stages"]["data"]["deps"]  # relative to the project folder, where dvc.yaml lives
    sh(mono, "git", "add", "-A")
    sh(mono, "git", "commit", "-q", "-m", "project")

    first = sh(root, DVC, "repro")
    assert "Running stage 'train'" in first
    run = sh(root, str(BIN / "specloop"), "run")
    rows = [line.split() for line in run.splitlines()
            if line.split()[:1] and line.split()[0] in ("data", "split", "train", "evaluate")]
    assert len(rows) == 4 and all(r[1] == "cached" for r in rows), run
    from_root = sh(mono, DVC, "repro", "projects/proj/dvc.yaml")
    assert "Running stage" not in from_root and "up to date" in from_root

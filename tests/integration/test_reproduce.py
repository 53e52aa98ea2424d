"""``specloop reproduce RUN_ID``: the recorded config, seed and data, fresh computation,
metrics compared, and the project's registry left alone; plus each bad input the issue
names (changed data, a manifest from a newer specloop; a missing DVC revision is in
``test_dvc.py``)."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from conftest import small_csv


def manifest_path(project, run_id: str) -> Path:
    return project.root / ".specloop" / "store" / "runs" / run_id / "manifest.json"


def registry_state(project) -> list:
    """Every table of the registry but ``runs`` (a reproduction is recorded as a run)."""
    db = sqlite3.connect(project.root / ".specloop" / "registry.db")
    try:
        tables = [r[0] for r in db.execute("select name from sqlite_master where type='table'")]
        return [(t, db.execute(f"select * from {t}").fetchall()) for t in sorted(tables)
                if t != "runs"]
    finally:
        db.close()


def rewrite_manifest(project, run_id: str, doc: dict) -> None:
    """Write a manifest and record its hash, as the specloop that wrote it would have."""
    import hashlib

    body = json.dumps(doc).encode()
    manifest_path(project, run_id).write_bytes(body)
    db = sqlite3.connect(project.root / ".specloop" / "registry.db")
    with db:
        db.execute("update runs set sha256=? where run_id=?",
                   (hashlib.sha256(body).hexdigest(), run_id))
    db.close()


@pytest.fixture
def recorded(project):
    doc = project.run([]).manifest
    assert doc["status"] == "succeeded" and doc["model_version"] == 1
    return project, doc


def test_reproduces_from_the_manifest_without_touching_the_registry(recorded):
    project, doc = recorded
    artifacts = project.root / ".specloop" / "store" / "artifacts"
    before_registry = registry_state(project)
    before_artifacts = sorted(os.listdir(artifacts))
    # conf/ edited since the run: the recorded config is what gets reproduced
    project.write_conf("data/small.yaml", {"kind": "csv", "path": "data/train.csv",
                                           "target": "label", "drop": ["id"],
                                           "split": {"test_size": 0.5}})
    out = project.cli("reproduce", doc["run_id"])
    assert out.exit_code == 0, out.output
    assert "reproduced" in out.stdout.splitlines()[-1]
    assert "roc_auc" in out.stdout and "same python and package versions" in out.stdout
    assert registry_state(project) == before_registry  # no version, alias or audit row
    assert sorted(os.listdir(artifacts)) == before_artifacts  # computed in a throwaway store
    runs = sorted(os.listdir(project.root / ".specloop" / "store" / "runs"))
    repro = json.loads(manifest_path(project, runs[-1]).read_text())
    assert repro["command"] == "reproduce" and repro["reproduces"] == doc["run_id"]
    assert all(repro["stages"][s]["status"] == "ran"
               for s in ("data", "split", "train", "evaluate"))
    assert "register" not in repro["stages"] and repro["model_version"] is None
    assert {s: repro["stages"][s]["key"] for s in ("data", "split", "train", "evaluate")} == \
        {s: doc["stages"][s]["key"] for s in ("data", "split", "train", "evaluate")}
    assert repro["metrics"] == doc["metrics"]


def test_metric_differences_exit_1_with_a_diff_and_tolerance(recorded):
    project, doc = recorded
    path = manifest_path(project, doc["run_id"])
    tampered = json.loads(path.read_text())
    tampered["metrics"]["roc_auc"] -= 0.004
    tampered["environment"]["packages"]["numpy"] = "0.0.1"
    rewrite_manifest(project, doc["run_id"], tampered)
    out = project.cli("reproduce", doc["run_id"])
    assert out.exit_code == 1
    row = next(line for line in out.stdout.splitlines() if line.startswith("roc_auc"))
    assert row.split()[-1] == "NO" and "0.004" in row
    assert "NOT reproduced" in out.stdout
    assert "numpy" in out.stdout and "0.0.1" in out.stdout  # what differs in the environment
    loose = project.cli("reproduce", doc["run_id"], "--tolerance", "0.01")
    assert loose.exit_code == 0, loose.output


def test_changed_data_without_dvc_fails_naming_file_and_fingerprints(recorded):
    project, doc = recorded
    old = doc["data_fingerprint"]["data/train.csv"]
    small_csv(project.root / "data" / "train.csv", seed=5)
    before = registry_state(project)
    out = project.cli("reproduce", doc["run_id"])
    assert out.exit_code == 1
    assert "data of run" in out.stderr and "changed since it ran" in out.stderr
    assert "data/train.csv" in out.stderr and old in out.stderr
    from specloop import file_md5

    assert file_md5(project.root / "data" / "train.csv") in out.stderr
    assert "Traceback" not in out.output
    assert registry_state(project) == before


@pytest.mark.parametrize("field,value", [("manifest_version", 99),
                                         ("specloop_version", "99.0.0")])
def test_a_manifest_from_a_newer_specloop(recorded, field, value):
    project, doc = recorded
    path = manifest_path(project, doc["run_id"])
    newer = json.loads(path.read_text())
    newer[field] = value
    rewrite_manifest(project, doc["run_id"], newer)
    out = project.cli("reproduce", doc["run_id"])
    assert out.exit_code == 2
    assert "written by a newer specloop" in out.stderr
    assert str(value) in out.stderr and "manifest.json" in out.stderr
    assert "upgrade specloop" in out.stderr


def test_an_altered_manifest_is_refused(recorded):
    """Whoever can write the store cannot change what reproduce re-runs."""
    project, doc = recorded
    path = manifest_path(project, doc["run_id"])
    forged = json.loads(path.read_text())
    forged["config"]["allow_python_targets"] = True
    forged["config"]["model"]["estimator"] = "os.system"
    path.write_text(json.dumps(forged))
    for args in (("reproduce", doc["run_id"]), ("runs", "show", doc["run_id"])):
        out = project.cli(*args)
        assert out.exit_code == 2, out.output
        assert "does not match the SHA-256 recorded" in out.stderr
        assert "Traceback" not in out.output


def test_unknown_run(project):
    project.run([])
    out = project.cli("reproduce", "20990101-000000-000abcd")
    assert out.exit_code == 2 and "no run '20990101-000000-000abcd'" in out.stderr

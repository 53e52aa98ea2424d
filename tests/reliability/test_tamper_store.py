"""Tampering in the store: every kind of file specloop writes there is checked against the
SHA-256 its index (or the registry) recorded before it is parsed. A changed file is named in
a refusal (exit 1, no traceback) and never served; a missing cache entry is computed again;
a registered version whose bytes are gone is *missing*, not tampered, with the way back."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import pytest

from rel_helpers import ext  # noqa: F401 - a fixture
from rel_helpers import (assert_refused, deployed, make_project, ok, plan_keys, sha, sl,
                         stage_actions, store_dir)

NEXT = "model.params.C=0.5"


def damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "flip":
        i = len(data) // 2
        path.write_bytes(data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:])
    elif how == "truncate":
        path.write_bytes(data[: len(data) // 2])
    else:
        raise ValueError(how)


@pytest.fixture
def trained(tmp_path):
    """A project after one run: v1 is the champion and deployed."""
    p = make_project(tmp_path / "p")
    ok(p.cli("run"))
    return p


def keys_of(p) -> dict[str, str]:
    return plan_keys(p.cli("plan", "--json"))


# which stage's artifact holds the file, and the command that must read it
READERS = {
    "model.bin": ("train", "deploy"),       # deploying the champion reads its model
    "signature.json": ("train", "deploy"),  # … and its signature
    "train.parquet": ("split", NEXT),       # training another model reads the split
    "test.parquet": ("split", NEXT),
    "columns.json": ("split", NEXT),
    "frame.parquet": ("data", "data.split.test_size=0.3"),  # a new split reads the data
    "metrics.json": ("evaluate", None),     # every run reads the metrics it reports
}


@pytest.mark.parametrize("how", ["flip", "truncate"])
@pytest.mark.parametrize("name", list(READERS))
def test_a_tampered_store_file_is_refused_by_name_and_never_served(trained, name, how):
    p = trained
    stage, reader = READERS[name]
    path = store_dir(p.root) / keys_of(p)[stage] / name
    recorded = sha(path)
    damage(path, how)
    before = sha(p.root / "deploy" / "champion" / "model.bin")
    args = ["run"]
    if reader == "deploy":
        (p.root / "deploy" / "champion" / "MODEL_CARD.md").write_text("changed")
    elif reader is not None:
        args.append(reader)
    res = p.cli(*args)
    text = assert_refused(res, 1, "does not match the SHA-256 specloop recorded", str(path),
                          recorded)
    assert "fix:" in text
    # nothing was served from it: the deployed bundle is still v1's (or left as it was)
    assert sha(p.root / "deploy" / "champion" / "model.bin") == before
    assert [v["version"] for v in json.loads(p.cli("registry", "list", "--json").stdout)] == [1]


@pytest.mark.parametrize("name", ["model.bin", "signature.json", "train.parquet",
                                  "test.parquet", "columns.json"])
def test_registry_check_names_a_tampered_version_file(trained, name):
    p = trained
    stage = "train" if name in ("model.bin", "signature.json") else "split"
    path = store_dir(p.root) / keys_of(p)[stage] / name
    damage(path, "flip")
    res = p.cli("registry", "check", "--json")
    assert res.exit_code == 1
    rows = {r["what"]: r for r in json.loads(res.stdout)}
    role = "model" if stage == "train" else "reference"
    assert rows[f"v1 {role}/{name}"]["status"] == "tampered"
    assert sum(r["status"] != "ok" for r in rows.values()) == 1, rows


def test_a_missing_cache_entry_is_computed_again(trained):
    p = trained
    split = store_dir(p.root) / keys_of(p)["split"]
    (split / "train.parquet").unlink()
    res = p.cli("run", NEXT)
    ok(res)
    assert stage_actions(res.stdout)["split"] == "ran"
    assert (split / "train.parquet").is_file()
    ok(p.cli("registry", "check"))


def test_a_registered_version_whose_bytes_are_gone_is_missing_with_the_way_back(trained):
    """A model cannot be computed again byte for byte (skops files carry times and object
    ids): once a run has written the key again, the version's file is still *missing* (its
    registered bytes are gone), never reported as tampered, and a backup brings it back."""
    p = trained
    model = store_dir(p.root) / keys_of(p)["train"] / "model.bin"
    backup = model.read_bytes()
    model.unlink()
    for attempt in range(2):  # before and after a run computed the key again
        res = p.cli("registry", "check", "--json")
        assert res.exit_code == 1
        [row] = [r for r in json.loads(res.stdout) if r["status"] != "ok"
                 and r["what"].startswith("v1")]
        assert row["what"] == "v1 model/model.bin" and row["status"] == "missing", row
        assert "tampered" not in row["detail"]
        if attempt == 0:
            (p.root / "deploy").rename(p.root / "gone")
            res = p.cli("run")  # train runs again; deploying v1 needs v1's own bytes
            assert_refused(res, 1, "missing", str(model), "backup")
            assert "tampered" not in res.stderr
            assert model.read_bytes() != backup  # computed again, not the registered bytes
            assert not (p.root / "deploy" / "champion").exists()
    model.write_bytes(backup)
    ok(p.cli("run"))
    ok(p.cli("registry", "check"))
    assert deployed(p.root)["version"] == 1


def test_a_missing_reference_file_is_reported_missing_not_tampered(trained):
    p = trained
    sig = store_dir(p.root) / keys_of(p)["split"] / "columns.json"
    sig.unlink()
    res = p.cli("registry", "show", "1", "--json")
    ok(res)  # the card is made from the record, not the store
    res = p.cli("registry", "check")
    assert res.exit_code == 1 and "missing" in res.stdout and "tampered" not in res.stdout


# -- manifests ------------------------------------------------------------------------------
def manifest_path(p) -> tuple[str, Path]:
    [run] = json.loads(p.cli("runs", "list", "--json").stdout)
    return run["run"], p.root / ".specloop" / "store" / "runs" / run["run"] / "manifest.json"


@pytest.mark.parametrize("command", [("runs", "show"), ("reproduce",)])
def test_an_altered_manifest_is_refused(trained, command):
    p = trained
    run_id, path = manifest_path(p)
    doc = json.loads(path.read_text())
    doc["metrics"]["roc_auc"] = 0.5
    path.write_text(json.dumps(doc, indent=2))
    res = p.cli(*command, run_id)
    assert_refused(res, 2, f"the manifest of run {run_id}", "altered", str(path))


def test_a_missing_manifest_is_reported_missing(trained):
    p = trained
    run_id, path = manifest_path(p)
    path.unlink()
    assert_refused(p.cli("runs", "show", run_id), 2, "missing from the store", str(path))


def test_a_model_card_never_shows_an_altered_manifest(trained):
    p = trained
    run_id, path = manifest_path(p)
    doc = json.loads(path.read_text())
    doc["overrides"] = ["model.params.C=42"]
    path.write_text(json.dumps(doc))
    card = json.loads(p.cli("registry", "show", "1", "--json").stdout)
    assert card["run"] is None and card["config_from"] == "registry"
    assert "C=42" not in p.cli("registry", "show", "1").stdout


# -- the loop's own files -------------------------------------------------------------------
def loop_project(root: Path):
    return make_project(root, batches=2, retrain={"kind": "every", "batches": 1})


def stage_of(root: Path, stage: str) -> list[Path]:
    from rel_helpers import query

    rows = query(root, "SELECT key, record FROM artifacts")
    return [store_dir(root) / r["key"] for r in rows if json.loads(r["record"]).get("stage")
            == stage]


def test_a_tampered_batch_frame_is_refused_when_the_window_reads_it(tmp_path):
    p = loop_project(tmp_path / "p")
    ok(p.cli("loop", "--limit", "1"))
    [frame] = stage_of(p.root, "batch")
    damage(frame / "frame.parquet", "flip")
    res = p.cli("loop")
    assert_refused(res, 1, "does not match the SHA-256", str(frame / "frame.parquet"))
    assert json.loads(p.cli("loop", "--status").stdout)["processed"] == 1  # b1 not recorded


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
@pytest.mark.parametrize("what", ["scores", "batch"])
def test_tampered_scores_or_batch_of_an_interrupted_batch_are_refused(tmp_path, ext, what,
                                                                      monkeypatch):
    """A batch whose step was killed after its scores were stored is processed again; the
    stored scores and batch frame it finds must be the ones recorded, not whatever the store
    now holds."""
    p = loop_project(tmp_path / "p")
    ok(p.cli("run"))
    killed = sl(p.root, "loop", ext=ext, REL_KILL="after:score@1")
    assert killed.returncode == -signal.SIGKILL
    [folder] = stage_of(p.root, "score" if what == "scores" else "batch")
    name = "scores.parquet" if what == "scores" else "frame.parquet"
    damage(folder / name, "flip")
    monkeypatch.syspath_prepend(str(ext))
    res = p.cli("loop")
    assert_refused(res, 1, "does not match the SHA-256", str(folder / name))


def test_a_tampered_champion_reference_stops_the_loop(tmp_path):
    p = loop_project(tmp_path / "p")
    ok(p.cli("run"))
    ref = store_dir(p.root) / keys_of(p)["split"] / "train.parquet"
    damage(ref, "flip")
    res = p.cli("loop")
    assert_refused(res, 1, "does not match the SHA-256", str(ref))
    assert json.loads(p.cli("loop", "--status").stdout)["processed"] == 0

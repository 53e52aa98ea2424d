"""No foreign code from the store: a model that would run code if loaded, planted in the
store under the key the *next* run will write (computed with ``specloop plan --json``), is
never loaded by ``run``, ``plan`` or ``loop``, on the local stack and on S3 (a real server
on 127.0.0.1). The run completes with its own model, whose bytes replace the planted ones.
What the store holds is trusted only through the registry's index, and the types a record
names only as far as the saving component allows them."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from moto_s3 import bucket, s3, s3_endpoint, s3_env, s3_options  # noqa: F401
from rel_helpers import ext  # noqa: F401 - a fixture
from rel_helpers import (assert_refused, db_path, make_project, ok, payload, plan_keys,
                         plan_rows, query, sha, sl, store_dir)

NEXT = "model.params.C=0.5"
SIGNATURE = json.dumps({"task": "binary", "target": "label", "inputs": []}).encode()


def plant_local(root: Path, key: str, model: bytes) -> Path:
    folder = store_dir(root) / key
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.bin").write_bytes(model)
    (folder / "signature.json").write_bytes(SIGNATURE)
    (folder / "evil.pkl").write_bytes(model)
    return folder


def recorded_model(root: Path, key: str) -> dict:
    [row] = query(root, "SELECT record FROM artifacts WHERE key=?", (key,))
    return json.loads(row["record"])


@pytest.fixture
def trained(tmp_path, ext, monkeypatch):
    """A project after one run (v1 champion); the test plugin folder importable here."""
    monkeypatch.syspath_prepend(str(ext))
    p = make_project(tmp_path / "p")
    ok(p.cli("run"))
    return p


def test_the_planted_payloads_do_run_code_when_loaded_naively(tmp_path, ext):
    """The control: each payload creates its marker when deserialised without specloop."""
    import pickle

    import skops.io as sio

    marker = tmp_path / "m1"
    pickle.loads(payload("pickle", marker, ext))
    assert marker.exists()
    marker = tmp_path / "m2"
    data = payload("skops", marker, ext)
    import sys
    sys.path.insert(0, str(ext))
    try:
        sio.loads(data, trusted=sio.get_untrusted_types(data=data))
    finally:
        sys.path.remove(str(ext))
    assert marker.exists()


@pytest.mark.parametrize("kind", ["pickle", "skops"])
@pytest.mark.parametrize("allow_pickle", [False, True])
def test_a_model_planted_under_the_next_train_key_is_never_loaded_by_run(
        trained, tmp_path, ext, kind, allow_pickle):
    p = trained
    extra = [NEXT] + (["model.allow_pickle=true"] if allow_pickle else [])
    key = plan_keys(p.cli("plan", "--json", *extra))["train"]
    marker = tmp_path / "marker"
    folder = plant_local(p.root, key, payload(kind, marker, ext))
    rows = plan_rows(p.cli("plan", "--json", *extra))
    assert rows["train"]["action"] == "run"  # planted files are no cache hit
    ok(p.cli("run", *extra))
    assert not marker.exists()
    rec = recorded_model(p.root, key)
    assert sha(folder / "model.bin") == rec["files"]["model.bin"]["sha256"]
    assert not (folder / "evil.pkl").exists()  # the unrecorded folder was replaced whole
    assert rec["format"] == ("pickle" if allow_pickle else "skops")
    v2 = json.loads(p.cli("registry", "show", "2", "--json").stdout)
    assert v2["model"]["key"] == key
    ok(p.cli("registry", "check"))
    assert not marker.exists()


@pytest.mark.parametrize("kind", ["pickle", "skops"])
def test_plan_never_reads_a_planted_model(tmp_path, ext, kind):
    p = make_project(tmp_path / "p")
    keys = plan_keys(p.cli("plan", "--json"))
    marker = tmp_path / "marker"
    for stage in ("train", "evaluate", "data", "split"):
        plant_local(p.root, keys[stage], payload(kind, marker, ext))
    rows = plan_rows(p.cli("plan", "--json"))
    assert {r["action"] for r in rows.values()} == {"run"}
    assert not marker.exists()


@pytest.mark.parametrize("kind", ["pickle", "skops"])
def test_the_loop_never_loads_a_model_planted_under_its_first_train_key(tmp_path, ext, kind,
                                                                       monkeypatch):
    monkeypatch.syspath_prepend(str(ext))
    p = make_project(tmp_path / "p", batches=2, retrain={"kind": "every", "batches": 1})
    key = plan_keys(p.cli("plan", "--json"))["train"]
    marker = tmp_path / "marker"
    plant_local(p.root, key, payload(kind, marker, ext))
    res = p.cli("loop")
    ok(res)
    assert "processed 2 batch(es)" in res.stdout
    assert not marker.exists()
    assert sha(store_dir(p.root) / key / "model.bin") == \
        recorded_model(p.root, key)["files"]["model.bin"]["sha256"]


def test_a_planted_metrics_file_does_not_make_a_model_champion(trained):
    p = trained
    keys = plan_keys(p.cli("plan", "--json", NEXT))
    folder = store_dir(p.root) / keys["evaluate"]
    folder.mkdir(parents=True)
    perfect = {"roc_auc": 1.0, "average_precision": 1.0, "f1": 1.0, "precision": 1.0,
               "recall": 1.0, "accuracy": 1.0}
    (folder / "metrics.json").write_text(json.dumps(perfect))
    ok(p.cli("run", NEXT))
    v2 = json.loads(p.cli("registry", "show", "2", "--json").stdout)
    assert v2["metrics"] != perfect and v2["metrics"]["roc_auc"] < 1.0
    assert json.loads((folder / "metrics.json").read_text()) == v2["metrics"]


def test_a_champion_replaced_by_a_pickle_is_refused_and_never_run(trained, tmp_path, ext):
    """The loop loads the champion: bytes that are not the recorded ones are never parsed,
    even where the spec allows pickles."""
    p = trained
    v1 = json.loads(p.cli("registry", "show", "1", "--json").stdout)
    marker = tmp_path / "marker"
    target = store_dir(p.root) / v1["model"]["key"] / "model.bin"
    target.write_bytes(payload("pickle", marker, ext))
    res = p.cli("registry", "check")
    assert res.exit_code == 1 and "tampered" in res.stdout
    (p.root / "deploy").rename(p.root / "gone")  # forces a deploy, which reads the model
    res = p.cli("run")
    assert_refused(res, 1, "does not match the SHA-256 specloop recorded", str(target))
    assert not marker.exists()
    assert not (p.root / "deploy" / "champion").exists()  # nothing was served from it


def test_recorded_trusted_types_beyond_what_the_component_allows_are_refused(trained,
                                                                              tmp_path, ext):
    """Even a record that names the type (written by an older or another specloop) cannot
    widen what the saving component trusts: the model is not loaded."""
    p = trained
    ok(p.cli("run", NEXT, "--until", "train"))
    key = plan_keys(p.cli("plan", "--json", NEXT))["train"]
    marker = tmp_path / "marker"
    data = payload("skops", marker, ext)
    (store_dir(p.root) / key / "model.bin").write_bytes(data)
    rec = recorded_model(p.root, key)
    import hashlib

    rec["files"]["model.bin"] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    rec["trusted_types"] = ["rel_evil.Evil"]
    conn = sqlite3.connect(db_path(p.root))
    with conn:
        conn.execute("UPDATE artifacts SET record=? WHERE key=?", (json.dumps(rec), key))
    conn.close()
    res = p.cli("run", NEXT)
    assert_refused(res, 1, "does not allow", "rel_evil.Evil", "refusing to load the model")
    assert not marker.exists()


# -- on S3 ----------------------------------------------------------------------------------
def s3_project(tmp_path: Path, **kw):
    return make_project(tmp_path / "p", **kw)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["pickle", "skops"])
def test_s3_a_planted_model_under_the_next_train_key_is_never_loaded(
        tmp_path, ext, s3_env, s3, bucket, kind, monkeypatch):
    monkeypatch.syspath_prepend(str(ext))
    p = s3_project(tmp_path)
    ok(p.cli("run", "stack=s3"))
    extra = ["stack=s3", NEXT, "model.allow_pickle=true"]
    key = plan_keys(p.cli("plan", "--json", *extra))["train"]
    marker = tmp_path / "marker"
    base = f"{bucket}/small/store/artifacts/{key}"
    data = payload(kind, marker, ext)
    s3.pipe_file(f"{base}/model.bin", data)
    s3.pipe_file(f"{base}/signature.json", SIGNATURE)
    s3.pipe_file(f"{base}/evil.pkl", data)  # beside the files the run will write
    assert plan_rows(p.cli("plan", "--json", *extra))["train"]["action"] == "run"
    ok(sl(p.root, "run", *extra, ext=ext))  # a real process against the real server
    assert not marker.exists()
    s3.invalidate_cache()
    assert not s3.exists(f"{base}/evil.pkl")  # the unrecorded key was replaced whole
    [db] = list((p.root / ".specloop").glob("registry*.db"))
    [row] = query_file(db, key)
    assert sha_bytes(s3.cat_file(f"{base}/model.bin")) == row["files"]["model.bin"]["sha256"]
    assert sha_bytes(s3.cat_file(f"{base}/model.bin")) != sha_bytes(data)
    ok(p.cli("registry", "check", "stack=s3"))
    assert not marker.exists()


@pytest.mark.slow
def test_s3_the_loop_never_loads_a_planted_model(tmp_path, ext, s3_env, s3, bucket):
    p = s3_project(tmp_path, batches=2, retrain={"kind": "every", "batches": 1})
    key = plan_keys(sl(p.root, "plan", "--json", "stack=s3", ext=ext))["train"]
    marker = tmp_path / "marker"
    s3.pipe_file(f"{bucket}/small/store/artifacts/{key}/model.bin",
                 payload("skops", marker, ext))
    res = sl(p.root, "loop", "stack=s3", ext=ext)
    ok(res)
    assert "processed 2 batch(es)" in res.stdout and not marker.exists()


def query_file(db: Path, key: str) -> list[dict]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [json.loads(r[0]) for r in
                conn.execute("SELECT record FROM artifacts WHERE key=?", (key,))]
    finally:
        conn.close()


def sha_bytes(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()

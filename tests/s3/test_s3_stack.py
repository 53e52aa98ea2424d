"""``stack=s3``: the fraud project runs unchanged with its artifacts, manifests and published
bundle in a bucket of a real S3-compatible server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest

from moto_s3 import bucket, s3, s3_endpoint, s3_env, s3_options  # noqa: F401


def specloop(project, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "specloop.cli", *args, "stack=s3"],
                          cwd=project, env=dict(os.environ), capture_output=True, text=True,
                          timeout=600)


@pytest.mark.slow
def test_fraud_project_runs_unchanged_on_s3(fraud_project, s3_env, s3, bucket):
    store = f"{bucket}/fraud_detection/store"
    bundle = f"{bucket}/fraud_detection/deploy/champion"

    first = specloop(fraud_project, "run")
    assert first.returncode == 0, first.stderr
    assert f"deployed v1 to s3://{bundle}" in first.stdout
    artifacts = s3.ls(f"{store}/artifacts")
    assert len(artifacts) == 4  # data, split, train, evaluate (deployments: in the registry)
    (run_id,) = [p.rsplit("/", 1)[-1] for p in s3.ls(f"{store}/runs")]
    manifest = json.loads(s3.cat_file(f"{store}/runs/{run_id}/manifest.json"))
    assert manifest["status"] == "succeeded"
    # nothing but the registry is local; no bundle folder appears in the project
    local = sorted(p.name for p in (fraud_project / ".specloop").iterdir())
    assert sorted(n.split(".", 1)[1] for n in local) == ["db", "db.id", "locks"]  # + marker
    assert all(n.startswith("registry-") or n == ".locks" for n in local)
    assert not (fraud_project / "deploy").exists()
    # the bundle in the bucket is whole and is the champion's model
    meta = json.loads(s3.cat_file(f"{bundle}/metadata.json"))
    assert meta["version"] == 1 and meta["model_sha256"] == manifest["deployment"]["sha256"]

    second = specloop(fraud_project, "run")
    assert second.returncode == 0, second.stderr
    rows = [line.split() for line in second.stdout.splitlines()[3:9]]
    assert [r[1] for r in rows] == ["cached"] * 6, second.stdout
    assert len(s3.ls(f"{store}/artifacts")) == 4

    loop = specloop(fraud_project, "loop", "--limit", "3")
    assert loop.returncode == 0, loop.stderr
    assert "processed 3 batch(es): 1 retrain(s), 1 promotion(s)" in loop.stdout
    meta = json.loads(s3.cat_file(f"{bundle}/metadata.json"))
    assert meta["version"] == 2  # the promotion was published to the bucket
    # every command used the same local registry of this store (one file, named by its URL)
    assert len([p for p in (fraud_project / ".specloop").iterdir()
                if p.suffix == ".db"]) == 1

    # a tampered object in the bucket is refused, and nothing is published from it
    key = json.loads(s3.cat_file(f"{bundle}/metadata.json"))
    champion_files = [a for a in s3.ls(f"{store}/artifacts")
                      if s3.exists(f"{a}/model.bin") and hashlib.sha256(
                          s3.cat_file(f"{a}/model.bin")).hexdigest() == key["model_sha256"]]
    assert len(champion_files) == 1
    s3.pipe_file(f"{champion_files[0]}/model.bin", b"not the model")
    s3.pipe_file(f"{bundle}/model.bin", b"not the model either")
    tampered = specloop(fraud_project, "run")
    assert tampered.returncode == 1, tampered.stdout
    assert "does not match the SHA-256 specloop recorded" in tampered.stderr
    assert "refusing to use it" in tampered.stderr and "Traceback" not in tampered.stderr
    assert json.loads(s3.cat_file(f"{bundle}/metadata.json"))["version"] == 2

"""The artifact store, the ``object_store`` and ``batch`` targets and ``store=s3`` against a
real S3-compatible server on 127.0.0.1, and the mistakes a user makes with them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import specloop_targets

from specloop import ArtifactError, ConfigError, Stage, StageError
from specloop.testing import make_test_plugin_manager
from specloop.testing.suites import StubContext, make_bundle, resolve_config

from conftest import small_csv
from moto_s3 import bucket, closed_port, s3, s3_endpoint, s3_env, s3_options  # noqa: F401


# -- the artifact store --------------------------------------------------------------------------
def test_store_round_trip_record_and_tampering(s3, bucket, s3_options, tmp_path):
    from specloop._registry import Registry
    from specloop._store import ArtifactStore

    url = f"s3://{bucket}/proj/store"
    index = Registry(tmp_path / "registry.db").index
    store = ArtifactStore(url, tmp_path, s3_options, index=index)
    root = store.root
    record = store.put("k1", {"a.bin": b"abc", "b.json": b"{}"}, {"stage": "train"})
    assert store.root == root == f"{bucket}/proj/store"  # names the remote registry: stable
    assert store.has("k1") and store.meta("k1") == record
    assert store.get("k1", "a.bin") == b"abc"
    assert s3.cat_file(f"{bucket}/proj/store/artifacts/k1/b.json") == b"{}"
    # objects specloop never recorded are not an artifact (a crashed upload, a planted one)
    s3.pipe_file(f"{bucket}/proj/store/artifacts/planted/a.bin", b"x")
    assert not store.has("planted")
    with pytest.raises(ArtifactError, match="not recorded by specloop"):
        store.get("planted", "a.bin")
    # an object changed in the bucket is refused; one removed is missing, not tampered
    s3.pipe_file(f"{bucket}/proj/store/artifacts/k1/a.bin", b"abd")
    with pytest.raises(ArtifactError, match="SHA-256") as exc:
        store.get("k1", "a.bin")
    assert exc.value.expected == record["files"]["a.bin"]["sha256"] and not exc.value.missing
    s3.rm_file(f"{bucket}/proj/store/artifacts/k1/b.json")
    assert not store.has("k1")  # the stage computes it again
    with pytest.raises(ArtifactError, match="missing") as exc:
        store.get("k1", "b.json")
    assert exc.value.missing
    # what another writer adds (recorded in the same registry) is seen: no stale listing
    ArtifactStore(url, tmp_path, s3_options, index=index).put("k2", {"x": b"1"})
    assert store.has("k2") and store.list_dir("artifacts") == ["k1", "k2", "planted"]
    # another project's registry does not vouch for this store's artifacts
    stranger = ArtifactStore(url, tmp_path, s3_options,
                             index=Registry(tmp_path / "other" / "registry.db").index)
    assert not stranger.has("k2")
    store.write_json("runs/r1/manifest.json", {"status": "succeeded"})
    assert json.loads(store.read_bytes("runs/r1/manifest.json")) == {"status": "succeeded"}
    assert store.list_dir("runs") == ["r1"] and store.list_dir("nothing") == []


def test_store_errors_are_config_errors(s3_endpoint, s3_options, closed_port, tmp_path):
    from specloop._store import ArtifactStore

    with pytest.raises(ConfigError, match="bucket 'no-such-bucket' does not exist") as exc:
        ArtifactStore("s3://no-such-bucket/x", tmp_path, s3_options).list_dir("runs")
    assert exc.value.key == "store.url"
    down = {**s3_options, "client_kwargs": {"endpoint_url": f"http://127.0.0.1:{closed_port}"},
            "config_kwargs": {"retries": {"max_attempts": 1}}}
    with pytest.raises(ConfigError, match="cannot reach") as exc:
        ArtifactStore("s3://specloop/x", tmp_path, down).list_dir("runs")
    assert exc.value.key == "store.storage_options.client_kwargs.endpoint_url"


# -- object_store on S3 --------------------------------------------------------------------------
def _object_store(url: str, options: dict):
    pm = make_test_plugin_manager([specloop_targets])
    return resolve_config(Stage.DEPLOY, "object_store", {"url": url, "storage_options": options},
                          pm=pm).build()


def test_object_store_publishes_verifies_and_detects_tampering(s3, bucket, s3_options, tmp_path):
    comp, ctx = _object_store(f"s3://{bucket}/deploy/champion", s3_options), StubContext(tmp_path)
    bundle = make_bundle()
    result = json.loads(json.dumps(comp.deploy(bundle, ctx)))
    names = sorted(p.rsplit("/", 1)[-1] for p in s3.ls(f"{bucket}/deploy/champion"))
    assert names == ["MODEL_CARD.md", "metadata.json", "model.bin", "signature.json"]
    meta = json.loads(s3.cat_file(f"{bucket}/deploy/champion/metadata.json"))
    assert meta["model_sha256"] == result["sha256"] and meta["version"] == 1
    assert s3.cat_file(f"{bucket}/deploy/champion/model.bin") == bundle["model"]
    assert comp.verify(result, ctx) is True
    s3.pipe_file(f"{bucket}/deploy/champion/signature.json", b"{}")
    assert comp.verify(result, ctx) is False  # every file is checked, not only the model
    result = json.loads(json.dumps(comp.deploy(bundle, ctx)))
    assert comp.verify(result, ctx) is True
    s3.rm_file(f"{bucket}/deploy/champion/metadata.json")
    assert comp.verify(result, ctx) is False


def test_object_store_upload_failing_midway_leaves_no_bundle(s3, bucket, s3_options, tmp_path,
                                                             monkeypatch):
    comp, ctx = _object_store(f"s3://{bucket}/deploy/champion", s3_options), StubContext(tmp_path)
    result = comp.deploy(make_bundle(), ctx)
    fs, _ = comp._open(f"s3://{bucket}/deploy/champion")  # the instance fsspec hands out
    real = fs.pipe_file

    def flaky(path, data, **kw):
        if path.endswith("MODEL_CARD.md"):
            raise OSError("connection reset while uploading")
        return real(path, data, **kw)

    monkeypatch.setattr(fs, "pipe_file", flaky)
    with pytest.raises(StageError) as info:  # the boundary names the component
        comp.deploy(make_bundle(), ctx)
    assert isinstance(info.value.__cause__, OSError)
    monkeypatch.undo()
    # the old metadata.json went first and the new one never came: readers see no bundle
    assert not s3.exists(f"{bucket}/deploy/champion/metadata.json")
    assert comp.verify(result, ctx) is False


def test_object_store_bad_bucket_is_a_config_error(s3_options, tmp_path):
    comp = _object_store("s3://missing-bucket-xyz/deploy", s3_options)
    with pytest.raises(ConfigError, match="does not exist") as exc:
        comp.deploy(make_bundle(), StubContext(tmp_path))
    assert exc.value.key == "deploy.url"


# -- batch scores to S3 --------------------------------------------------------------------------
def test_batch_writes_scores_to_s3(project, s3_env, s3, bucket):
    import pyarrow.parquet as pq

    small_csv(project.root / "data" / "score.csv", rows=400, seed=4)
    project.write_conf("deploy/scores.yaml", {
        "kind": "batch", "input": {"kind": "csv", "path": "data/score.csv", "target": "label"},
        "output": f"s3://{bucket}/scores/small.parquet", "chunk_size": 150,
        "storage_options": {"client_kwargs": {"endpoint_url": "${oc.env:SPECLOOP_S3_ENDPOINT}"}}})
    result = project.cli("run", "deploy=scores")
    assert result.exit_code == 0, result.stderr
    with s3.open(f"{bucket}/scores/small.parquet", "rb") as fh:
        pf = pq.ParquetFile(fh)
        assert pf.metadata.num_rows == 400 and pf.num_row_groups == 3
    assert "deploy    cached" in project.cli("run", "deploy=scores").stdout
    s3.pipe_file(f"{bucket}/scores/small.parquet", b"not parquet")
    assert "deploy    ran" in project.cli("run", "deploy=scores").stdout


# -- bad input with store=s3, through the CLI -----------------------------------------------------
def _cli(project, env, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "specloop.cli", *args, "--project",
                           str(project.root)], env=env, capture_output=True, text=True,
                          timeout=120)


def test_unreachable_endpoint(project, s3_env, closed_port):
    import os

    env = {**os.environ, "SPECLOOP_S3_ENDPOINT": f"http://127.0.0.1:{closed_port}"}
    proc = _cli(project, env, "run", "+store=s3")
    assert proc.returncode == 2, proc.stderr
    assert "cannot reach the object store" in proc.stderr
    assert "store.storage_options.client_kwargs.endpoint_url" in proc.stderr
    assert "SPECLOOP_S3_ENDPOINT" in proc.stderr and "Traceback" not in proc.stderr


def test_missing_bucket(project, s3_env, monkeypatch):
    monkeypatch.setenv("SPECLOOP_S3_BUCKET", "no-such-bucket")
    result = project.cli("run", "+store=s3")
    assert result.exit_code == 2
    assert "the bucket 'no-such-bucket' does not exist" in result.stderr
    assert "store.url" in result.stderr and "Traceback" not in result.stderr


def test_bad_credentials(project, s3_env, monkeypatch):
    from moto import settings

    # the local server now checks signatures: dummy keys are unknown to it
    monkeypatch.setattr(settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
    result = project.cli("run", "+store=s3")
    assert result.exit_code == 2, result.stderr
    assert "refused the credentials" in result.stderr
    assert "AWS_ACCESS_KEY_ID" in result.stderr and "Traceback" not in result.stderr


def test_missing_credentials(project, s3_env, tmp_path):
    import os

    env = {k: v for k, v in os.environ.items() if k not in (
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE")}
    env.update(AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
               AWS_CONFIG_FILE=str(tmp_path / "none"),
               AWS_EC2_METADATA_DISABLED="true")  # never ask a metadata service
    proc = _cli(project, env, "run", "+store=s3")
    assert proc.returncode == 2, proc.stderr
    assert "refused the credentials" in proc.stderr
    assert "Unable to locate credentials" in proc.stderr and "Traceback" not in proc.stderr


def test_batch_failing_midway_publishes_no_scores(project, s3_env, s3, bucket):
    small_csv(project.root / "data" / "score.csv", rows=300, seed=4)
    with open(project.root / "data" / "score.csv", "a") as fh:
        fh.write("999,not-a-number,0.1,red,1\n")  # x1 turns to text in the last chunk
    project.write_conf("deploy/scores.yaml", {
        "kind": "batch", "input": {"kind": "csv", "path": "data/score.csv", "target": "label"},
        "output": f"s3://{bucket}/scores/small.parquet", "chunk_size": 100,
        "storage_options": {"client_kwargs": {"endpoint_url": "${oc.env:SPECLOOP_S3_ENDPOINT}"}}})
    result = project.cli("run", "deploy=scores")
    assert result.exit_code == 1, result.stderr
    assert "deploy/batch failed in deploy()" in result.stderr
    assert not s3.exists(f"{bucket}/scores/small.parquet")

"""Safe, self-describing model artifacts: skops by default, the format, trusted types and
saving component recorded by specloop (never read from the store), hashes verified before
anything is deserialized, trusted types held to what the component allows, pickle only
when the spec allows it."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from conftest import small_csv

from specloop import ArtifactError, ConfigError
from specloop._model_artifacts import load_model, save_model


def _champion(ctx) -> dict:
    return ctx.registry.resolve(ctx.model_name, "champion")


def _model_dir(p, version: dict):
    return p.root / ".specloop" / "store" / "artifacts" / version["model_key"]


@pytest.fixture
def trained(project):
    project.run()
    return project


def test_skops_is_the_default_and_the_artifact_describes_itself(trained):
    ctx = trained.context()
    try:
        v = _champion(ctx)
        [model] = [a for a in v["artifacts"] if a["role"] == "model" and a["file"] == "model.bin"]
        assert model["format"] == "skops"
        assert model["component"]["kind"] == "sklearn"
        assert model["component"]["distribution"].startswith("specloop ")
        assert model["component"]["node"]["estimator"].endswith("LogisticRegression")
        meta = ctx.store.meta(v["model_key"])  # specloop's index, not a file in the store
        assert meta["format"] == "skops" and meta["trusted_types"] == model["trusted_types"]
        assert not (_model_dir(trained, v) / "_meta.json").exists()
        data = (_model_dir(trained, v) / "model.bin").read_bytes()
        assert model["sha256"] == hashlib.sha256(data).hexdigest()
        assert not data.startswith(b"\x80")  # not a pickle stream: skops writes a zip
        import skops.io as sio

        assert sorted(sio.get_untrusted_types(data=data)) == model["trusted_types"]
        loaded = load_model(ctx, v["model_key"], v)
        import pandas as pd

        X = pd.DataFrame({"x1": [0.1, -1.0, 2.0], "x2": [0.0, 1.0, -1.0],
                          "color": ["red", "blue", "green"]})
        assert loaded.predict_proba(X).shape == (3, 2)
        roles = {(a["role"], a["file"]) for a in v["artifacts"]}
        assert {("model", "model.bin"), ("model", "signature.json"),
                ("reference", "train.parquet"), ("reference", "test.parquet")} <= roles
    finally:
        ctx.close()


def test_a_tampered_model_is_refused_naming_file_and_both_hashes(trained):
    ctx = trained.context()
    v = _champion(ctx)
    ctx.close()
    path = _model_dir(trained, v) / "model.bin"
    registered = next(a["sha256"] for a in v["artifacts"] if a["file"] == "model.bin")
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    path.write_bytes(bytes(blob))
    res = trained.cli("run", "metrics.threshold=0.3")  # evaluate must load the model
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output
    assert "does not match the SHA-256 specloop recorded" in res.output
    assert str(path) in res.output
    assert registered in res.output and hashlib.sha256(bytes(blob)).hexdigest() in res.output


def test_a_truncated_model_is_refused_and_a_missing_one_is_missing(trained):
    ctx = trained.context()
    try:
        v = _champion(ctx)
        path = _model_dir(trained, v) / "model.bin"
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3])
        with pytest.raises(ArtifactError) as info:
            load_model(ctx, v["model_key"], v)
        err = info.value
        assert err.path == str(path) and not err.missing
        assert err.expected == hashlib.sha256(data).hexdigest()
        assert err.actual == hashlib.sha256(data[: len(data) // 3]).hexdigest()
        assert "truncated or tampered" in err.render()
        path.unlink()
        with pytest.raises(ArtifactError) as info:
            load_model(ctx, v["model_key"], v)
        assert info.value.missing and "missing" in info.value.render()
    finally:
        ctx.close()


def test_types_not_recorded_at_save_time_are_refused(trained):
    """A model whose bytes need a type its record lacks is never loaded."""
    from sklearn.ensemble import RandomForestClassifier

    ctx = trained.context()
    try:
        comp = ctx.component("model")
        forest = RandomForestClassifier(n_estimators=2, random_state=0).fit(
            np.random.default_rng(0).normal(size=(30, 2)), [0, 1] * 15)

        class Recorder:  # saves with an empty trusted list
            format = "skops"
            dumps = staticmethod(comp.dumps)

            def trusted_types(self, data):
                return []

        save_model(ctx.store, "forged", ctx.spec.components["model"], Recorder(), forest, {},
                   {"stage": "train"})
        with pytest.raises(ArtifactError) as info:
            load_model(ctx, "forged")
        assert "sklearn.tree._tree.Tree" in str(info.value)
        assert "not recorded when it was saved" in str(info.value)
        assert info.value.path.endswith("forged/model.bin")
    finally:
        ctx.close()


def test_a_recorded_type_the_component_does_not_allow_is_refused(trained):
    """Even specloop's own record cannot widen what a component trusts."""
    ctx = trained.context()
    try:
        v = _champion(ctx)
        record = dict(ctx.store.meta(v["model_key"]))
        record["trusted_types"] = [*record["trusted_types"], "posix.system"]
        ctx.registry.index.put("widened", record)
        folder = ctx.store.path("artifacts", "widened")
        import shutil

        shutil.copytree(_model_dir(trained, v), folder)
        with pytest.raises(ArtifactError) as info:
            load_model(ctx, "widened")
        assert "does not allow: ['posix.system']" in str(info.value)
    finally:
        ctx.close()


def test_pickle_only_when_the_spec_allows_it(trained):
    trained.run(["model.allow_pickle=true", "gate.beat_champion_by=null"])
    ctx = trained.context(["model.allow_pickle=true"])
    try:
        v = _champion(ctx)
        assert v["version"] == 2
        rec = next(a for a in v["artifacts"] if a["file"] == "model.bin")
        assert rec["format"] == "pickle" and rec["trusted_types"] == []
        assert (_model_dir(trained, v) / "model.bin").read_bytes().startswith(b"\x80")
        assert load_model(ctx, v["model_key"], v) is not None
    finally:
        ctx.close()
    ctx = trained.context()  # the default spec: pickle not allowed
    try:
        with pytest.raises(ConfigError) as info:
            load_model(ctx, v["model_key"], v)
        text = info.value.render()
        assert info.value.key == "model.allow_pickle" and info.value.exit_code == 2
        assert "stored as pickle" in text and "allow_pickle: true" in text
        assert "model.bin" in text
        with pytest.raises(ConfigError, match="pickle"):  # the component refuses on its own
            ctx.component("model").loads((_model_dir(trained, v) / "model.bin").read_bytes(),
                                         format="pickle")
    finally:
        ctx.close()


def test_bundle_records_format_and_trusted_types(trained):
    meta = json.loads((trained.root / "deploy" / "champion" / "metadata.json").read_text())
    ctx = trained.context()
    try:
        v = _champion(ctx)
    finally:
        ctx.close()
    rec = next(a for a in v["artifacts"] if a["file"] == "model.bin")
    assert meta["model_format"] == "skops"
    assert meta["model_trusted_types"] == rec["trusted_types"]
    assert meta["model_sha256"] == rec["sha256"]


def test_loop_refuses_a_pickle_champion_unless_allowed(project):
    """Through the real CLI: a pickle-format champion is not loaded by a default spec."""
    small_csv(project.root / "data" / "new" / "2024-01.csv", rows=120, seed=5)
    project.write_conf("config.yaml", {
        "defaults": [{"data": "small"}, {"model": "logistic"}, {"metrics": "classification"},
                     {"gate": "default"}, "_self_"],
        "project": {"name": "small", "seed": 0},
        "loop": {"incoming": {"path": "data/new/*.csv"}, "settle_seconds": 0}})
    assert project.cli("run", "model.allow_pickle=true").exit_code == 0
    res = project.cli("loop")
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    for needle in ("refusing to load version 1: it is stored as pickle", "model.allow_pickle",
                   "allow_pickle: true", "model.bin"):
        assert needle in res.stderr, res.stderr
    res = project.cli("loop", "model.allow_pickle=true")
    assert res.exit_code == 0, res.output
    assert "processed 1 batch(es)" in res.stdout

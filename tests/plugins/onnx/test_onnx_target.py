"""The ``onnx`` deploy target: conversion, the parity check, the record, tamper detection,
refusals and the missing extra."""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest

import specloop
from conftest import small_csv
from specloop.testing import ProjectBuilder

pytest.importorskip("onnxruntime")
pytest.importorskip("skl2onnx")


def fraud_like(root) -> ProjectBuilder:
    """Numeric and string columns, one-hot encoding and HistGradientBoosting, as the fraud
    project; deployed with the onnx target."""
    p = ProjectBuilder(root)
    small_csv(p.root / "data" / "train.csv", rows=400)
    p.write_conf("data/small.yaml", {"kind": "csv", "path": "data/train.csv",
                                     "target": "label", "drop": ["id"]})
    p.write_conf("config.yaml", {
        "defaults": [{"data": "small"}, {"model": "hist_gradient_boosting"},
                     {"metrics": "classification"}, {"deploy": "onnx"}, "_self_"],
        "project": {"name": "small", "seed": 0, "threads": 1},
        "model": {"params": {"max_iter": 30}},
    })
    return p


def regression(root, model: str = "ridge") -> ProjectBuilder:
    p = ProjectBuilder(root)
    p.write_conf("config.yaml", {
        "defaults": [{"model": model}, {"metrics": "regression"}, {"deploy": "onnx"},
                     "_self_"],
        "project": {"name": "diabetes", "seed": 0, "threads": 1},
        "data": {"kind": "sklearn_dataset", "name": "diabetes"},
    })
    return p


def deployment(p: ProjectBuilder) -> dict:
    ctx = p.context()
    try:
        deploy = ctx.spec.components["deploy"]
        rows = ctx.registry._rows("SELECT version, result FROM deployments WHERE name=?",
                                  (ctx.model_name,), result="null")
        assert deploy.spec.kind == "onnx" and len(rows) == 1
        return rows[0]
    finally:
        ctx.close()


@pytest.fixture(scope="module")
def fraud(tmp_path_factory) -> ProjectBuilder:
    p = fraud_like(tmp_path_factory.mktemp("onnx") / "proj")
    p.run()
    return p


def test_classifier_parity_is_checked_and_recorded(fraud):
    dep = deployment(fraud)
    parity = dep["result"]["parity"]
    assert parity["passed"] and parity["compared"] == "probabilities and labels"
    assert parity["max_abs_diff"] <= 1e-5 and parity["label_mismatches"] == 0
    assert parity["rows"] == 80  # every test row (400 × 0.2), fewer than sample_rows
    folder = fraud.root / "deploy" / "onnx"
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["parity"] == parity and meta["version"] == 1
    assert [i["type"] for i in meta["inputs"]] == ["float32", "float32", "string"]
    assert sorted(meta["files"]) == ["model.onnx", "signature.json"]
    # the ONNX file answers as the pipeline on fresh rows, through ONNX Runtime directly
    import onnxruntime as ort

    ctx = fraud.context()
    try:
        model = specloop.load_model(ctx, ctx.registry.resolve("small", "champion"))
    finally:
        ctx.close()
    X = pd.DataFrame({"x1": [0.1, -2.0, 1.5], "x2": [0.3, 0.0, -1.0],
                      "color": ["red", "blue", "purple"]})  # purple: unseen
    sess = ort.InferenceSession((folder / "model.onnx").read_bytes(),
                                providers=["CPUExecutionProvider"])
    label, proba = sess.run(None, {"x1": X[["x1"]].to_numpy(np.float32),
                                   "x2": X[["x2"]].to_numpy(np.float32),
                                   "color": X[["color"]].to_numpy(object)})
    np.testing.assert_allclose(proba, model.predict_proba(X), atol=1e-5)
    assert label.tolist() == model.predict(X).tolist()
    # the store holds the same bytes, recorded in the artifact index with the check
    ctx = fraud.context()
    try:
        rec = ctx.store.record(dep["result"]["onnx_key"])
        assert rec["parity"] == parity and rec["dtype"] == "float32"
        assert ctx.store.get(dep["result"]["onnx_key"], "model.onnx") == \
            (folder / "model.onnx").read_bytes()
    finally:
        ctx.close()


def test_regression_parity_on_diabetes(tmp_path):
    p = regression(tmp_path / "diab")
    p.run()
    parity = deployment(p)["result"]["parity"]
    assert parity["passed"] and parity["compared"] == "predictions"
    assert parity["rows_outside"] == 0 and parity["rows"] == 89


def test_a_failed_parity_check_deploys_nothing(tmp_path):
    p = fraud_like(tmp_path / "proj")
    with pytest.raises(specloop.StageError, match="does not match its pipeline.*FAILED"):
        p.run(["deploy.atol=0"])  # float32 probabilities differ from float64 ones
    assert not (p.root / "deploy" / "onnx").exists()
    ctx = p.context(["deploy.atol=0"])
    try:
        assert ctx.registry._rows("SELECT * FROM deployments", ()) == []
        assert not [k for k in ctx.registry._rows("SELECT key FROM artifacts", ())
                    if k["key"].startswith("onnx-")]
    finally:
        ctx.close()
    result = p.cli("run", "deploy.atol=0")
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert "max |Δ|" in result.stderr and "nothing was deployed" in result.stderr


def test_tampered_or_missing_exports_are_deployed_again(fraud):
    folder = fraud.root / "deploy" / "onnx"
    fraud.run().assert_stages(cached=["deploy"])
    onnx_file = folder / "model.onnx"
    onnx_file.write_bytes(onnx_file.read_bytes()[:-8] + b"tampered")
    plan = fraud.cli("plan")
    assert "missing or tampered" in plan.stdout
    fraud.run().assert_stages(ran=["deploy"])
    assert fraud.run().manifest["stages"]["deploy"]["cached"]
    # the store's copy: changed bytes are never loaded, the export is made again
    key = deployment(fraud)["result"]["onnx_key"]
    stored = fraud.root / ".specloop" / "store" / "artifacts" / key / "model.onnx"
    stored.write_bytes(b"\x08\x07" + stored.read_bytes()[2:])
    assert "missing or tampered" in fraud.cli("plan").stdout
    fraud.run().assert_stages(ran=["deploy"])
    (folder / "metadata.json").unlink()
    assert "missing or tampered" in fraud.cli("plan").stdout
    fraud.run().assert_stages(ran=["deploy"])
    assert fraud.cli("registry", "check").exit_code == 0


def test_unsupported_steps_are_refused_naming_the_step():
    from sklearn.base import BaseEstimator, TransformerMixin
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

    from specloop_onnx import OnnxConf
    from specloop_onnx._export import convert

    class Doubler(BaseEstimator, TransformerMixin):
        def fit(self, X, y=None):
            return self

        def transform(self, X):
            return np.asarray(X, dtype=float) * 2

    X = pd.DataFrame({"x1": np.linspace(-1, 1, 40), "color": ["a", "b"] * 20})
    y = (X["x1"] > 0).astype(int)
    sig = {"task": "classification", "inputs": [
        {"name": "x1", "type": "number"}, {"name": "color", "type": "string"}]}
    custom = Pipeline([("preprocess", ColumnTransformer([("num", Doubler(), ["x1"]),
                                                         ("cat", OneHotEncoder(), ["color"])])),
                       ("estimator", LogisticRegression())]).fit(X, y)
    with pytest.raises(specloop.ConfigError, match=r"step 'preprocess › num' \(.*Doubler\) "
                                                   "has no ONNX converter") as info:
        convert(custom, sig, OnnxConf())
    assert info.value.key == "deploy.kind"
    native = Pipeline([("preprocess", ColumnTransformer(
        [("num", "passthrough", ["x1"]), ("cat", OrdinalEncoder(), ["color"])])),
        ("estimator", HistGradientBoostingClassifier(categorical_features=[1], max_iter=5))]
    ).fit(X, y)
    with pytest.raises(specloop.ConfigError, match="step 'estimator' .* native categorical"):
        convert(native, sig, OnnxConf())
    nan_cat = Pipeline([("preprocess", ColumnTransformer([("cat", OneHotEncoder(
        handle_unknown="ignore"), ["color"])])), ("estimator", LogisticRegression())]).fit(
        X.assign(color=["a", None] * 20), y)
    with pytest.raises(specloop.ConfigError, match="'preprocess › cat' .* missing value"):
        convert(nan_cat, sig, OnnxConf())


@pytest.mark.parametrize("missing", ["onnxruntime", "skl2onnx"])
def test_a_missing_extra_is_a_config_error_with_the_install_hint(fraud, monkeypatch, missing):
    monkeypatch.setitem(sys.modules, missing, None)  # import and find_spec both fail
    for args in (("plan",), ("validate",), ("run",), ("serve", "--runtime", "onnx",
                                                      "deploy=bundle")):
        result = fraud.cli(*args)
        assert result.exit_code == 2, (args, result.stderr)
        assert f"need {missing}" in result.stderr or missing in result.stderr
        assert "pip install 'specloop[onnx]'" in result.stderr
        assert "Traceback" not in result.stderr
    # the sklearn runtime and other targets do not need the extra
    assert fraud.cli("validate", "deploy=bundle").exit_code == 0

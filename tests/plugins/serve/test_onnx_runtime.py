"""``specloop serve --runtime onnx`` on a real socket answers as the scikit-learn runtime."""

from __future__ import annotations

import hashlib

import pytest

from conftest import small_csv
from serving_helpers import Served
from specloop.testing import ProjectBuilder

pytest.importorskip("onnxruntime")
pytest.importorskip("skl2onnx")

RECORDS = [{"x1": 0.5, "x2": -1.25, "color": "red"},
           {"x1": -2.0, "x2": 0.75, "color": "blue"},
           {"x1": 1.5, "x2": None, "color": None},          # nulls reach the model as missing
           {"x1": 0.0, "x2": 0.0, "color": "purple"}]       # a category never seen


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> ProjectBuilder:
    p = ProjectBuilder(tmp_path_factory.mktemp("onnx-serve") / "proj")
    small_csv(p.root / "data" / "train.csv", rows=400)
    p.write_conf("data/small.yaml", {"kind": "csv", "path": "data/train.csv",
                                     "target": "label", "drop": ["id"]})
    p.write_conf("config.yaml", {
        "defaults": [{"data": "small"}, {"model": "hist_gradient_boosting"},
                     {"metrics": "classification"}, {"deploy": "onnx"}, "_self_"],
        "project": {"name": "small", "seed": 0, "threads": 1},
        "model": {"params": {"max_iter": 30}},
        "plugins": {"serve": {"log": {"enabled": False}}},
    })
    p.run()
    return p


def test_onnx_runtime_answers_as_the_sklearn_runtime(project):
    onnx, sk = Served(project.root, "--runtime", "onnx"), Served(project.root)
    try:
        for body in (RECORDS[0], RECORDS, RECORDS * 10):
            s1, a = onnx.client.json("POST", "/predict", body)
            s2, b = sk.client.json("POST", "/predict", body)
            assert s1 == s2 == 200, (a, b)
            assert a["predictions"] == b["predictions"]
            assert a["version"] == b["version"] == 1
            for pa, pb in zip(a["probabilities"], b["probabilities"]):
                assert pa.keys() == pb.keys()
                assert all(abs(pa[k] - pb[k]) <= 1e-5 for k in pa)
        status, meta = onnx.client.json("GET", "/metadata")
        assert status == 200 and meta["runtime"] == "onnx" and meta["fast_path"] is False
        assert meta["onnx"]["parity"]["passed"] and meta["onnx"]["dtype"] == "float32"
        assert sk.client.json("GET", "/metadata")[1]["runtime"] == "sklearn"
        # the same refusals as the sklearn runtime: the request contract is the signature's
        status, err = onnx.client.json("POST", "/predict", {"x1": "a", "x2": 1, "color": "red"})
        assert status == 422 and "feature 'x1' must be a number" in err["error"]
        assert "runtime: onnx" in onnx.log.read_text()
    finally:
        onnx.stop()
        sk.stop()


def test_a_tampered_export_is_never_loaded(project):
    """The server loads only ONNX bytes that match the artifact index: changed bytes in the
    store are exported again from the verified model, never handed to ONNX Runtime."""
    ctx = project.context()
    try:
        rows = ctx.registry._rows("SELECT result FROM deployments", (), result="null")
        key = rows[0]["result"]["onnx_key"]
    finally:
        ctx.close()
    stored = project.root / ".specloop" / "store" / "artifacts" / key / "model.onnx"
    stored.write_bytes(b"not an onnx model")
    server = Served(project.root, "--runtime", "onnx")
    try:
        status, meta = server.client.json("GET", "/metadata")
        assert status == 200 and meta["onnx"]["key"] == key
        assert meta["onnx"]["parity"]["passed"]
    finally:
        server.stop()
    ctx = project.context()
    try:  # exported again after the check, and recorded: what is served is what is recorded
        assert hashlib.sha256(ctx.store.get(key, "model.onnx")).hexdigest() == \
            meta["onnx"]["sha256"]
    finally:
        ctx.close()

"""Every endpoint of a real ``specloop serve`` on 127.0.0.1, and every bad input."""

from __future__ import annotations

import json
import pickle

import pytest

from serving_helpers import RECORD, served_project, server  # noqa: F401 - fixtures

pytestmark = pytest.mark.slow


def _in_process(project, version: int):
    ctx = project.context()
    try:
        rec = ctx.registry.get(ctx.model_name, version)
        model = pickle.loads(ctx.store.get(rec["model_key"], "model.bin"))
    finally:
        ctx.close()
    return model


def test_health_ready_metadata(server, served_project):
    c = server.client
    assert c.json("GET", "/health") == (200, {"status": "ok"})
    assert c.json("GET", "/ready") == (200, {"ready": True, "version": 1})
    status, meta = c.json("GET", "/metadata")
    assert status == 200
    assert meta["model"] == "small" and meta["version"] == 1 and meta["alias"] == "champion"
    assert [f["name"] for f in meta["signature"]["inputs"]] == ["x1", "x2", "color"]
    assert meta["classes"] == [0, 1] and "roc_auc" in meta["metrics"]


def test_predict_matches_the_model_in_process(server, served_project):
    import pandas as pd

    rows = [RECORD, {"x1": -2.0, "x2": 1, "color": "blue"}, {"x1": 3, "x2": 0.0,
                                                            "color": "green"}]
    model = _in_process(served_project, 1)
    X = pd.DataFrame(rows)
    status, one = server.client.json("POST", "/predict", rows[0])
    assert status == 200 and one["version"] == 1 and len(one["predictions"]) == 1
    status, many = server.client.json("POST", "/predict", rows)
    assert status == 200
    assert many["predictions"] == model.predict(X).tolist()
    proba = model.predict_proba(X)
    for got, want in zip(many["probabilities"], proba):
        assert got["0"] == pytest.approx(want[0]) and got["1"] == pytest.approx(want[1])
    assert one["probabilities"][0]["1"] == pytest.approx(proba[0][1])


def test_openapi_is_generated_from_the_signature(server):
    status, schema = server.client.json("GET", "/openapi.json")
    assert status == 200
    record = schema["components"]["schemas"]["Record"]
    assert set(record["properties"]) == {"x1", "x2", "color"}
    assert record["properties"]["x1"]["type"] == ["number", "null"]
    assert record["properties"]["color"]["type"] == ["string", "null"]
    assert record["additionalProperties"] is False
    body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert set(body["example"]) == {"x1", "x2", "color"}
    status, html, _ = server.client.request("GET", "/docs")
    assert status == 200 and b"swagger" in html.lower()


def test_admin_routes_do_not_exist_without_a_token(server):
    for path in ("/admin/reload", "/admin/promote", "/admin/rollback"):
        assert server.client.request("POST", path, "{}")[0] == 404
    assert server.client.json("GET", "/metadata")[1]["version"] == 1


BAD = [
    ("missing feature", json.dumps({"x1": 1.0, "color": "red"}), 422, "x2"),
    ("extra feature", json.dumps({**RECORD, "x3": 1}), 422, "x3"),
    ("string for a number", json.dumps({**RECORD, "x1": "1.5"}), 422, "x1"),
    ("number for a string", json.dumps({**RECORD, "color": 3}), 422, "color"),
    ("boolean for a number", json.dumps({**RECORD, "x2": True}), 422, "x2"),
    ("object for a number", json.dumps({**RECORD, "x2": {"a": 1}}), 422, "x2"),
    ("bad record in a list", json.dumps([RECORD, {**RECORD, "x1": "a"}]), 422, "record 1"),
    ("non-object in a list", json.dumps([RECORD, 5]), 422, "record 1"),
    ("non-JSON body", "x1=1&x2=2", 400, "not valid JSON"),
    ("truncated JSON", json.dumps(RECORD)[:-3], 400, "not valid JSON"),
    ("NaN", json.dumps(RECORD).replace("0.5", "NaN"), 400, "NaN"),
    ("empty list", "[]", 422, "empty list"),
    ("empty body", "", 400, "not valid JSON"),
    ("scalar body", "42", 422, "JSON object"),
    ("too many records", json.dumps([RECORD] * 501), 413, "max_rows"),
    ("too large a body", json.dumps([{**RECORD, "color": "x" * 1000}] * 300), 413,
     "max_body_bytes"),
]


@pytest.mark.parametrize("name,body,status,named", BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_4xx_naming_the_field_and_the_server_keeps_serving(server, name, body,
                                                                        status, named):
    got, raw, _ = server.client.request("POST", "/predict", body,
                                        {"Content-Type": "application/json"})
    assert got == status, raw
    doc = json.loads(raw)
    assert named in doc["error"], doc
    if status == 422 and named in RECORD or named == "x3":
        assert doc["detail"][0]["loc"][-1] == named
    assert server.client.json("POST", "/predict", RECORD)[0] == 200


def test_too_large_chunked_body_without_content_length(server):
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    chunks = (b"[" + b"1," * 50_000 for _ in range(6))
    conn.request("POST", "/predict", body=chunks, encode_chunked=True,
                 headers={"Transfer-Encoding": "chunked"})
    r = conn.getresponse()
    assert r.status == 413 and b"max_body_bytes" in r.read()
    conn.close()
    assert server.client.json("POST", "/predict", RECORD)[0] == 200


def test_metrics_count_requests_latency_and_predictions(server):
    for _ in range(3):
        server.client.json("POST", "/predict", [RECORD, RECORD])
    server.client.request("POST", "/predict", "nope")
    status, raw, headers = server.client.request("GET", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    text = raw.decode()
    counts = {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines()
              if line and not line.startswith("#")}
    assert counts['specloop_requests_total{path="/predict",status="200"}'] >= 3
    assert counts['specloop_requests_total{path="/predict",status="400"}'] >= 1
    assert counts['specloop_request_duration_seconds_count{path="/predict"}'] >= 4
    assert counts['specloop_request_duration_seconds_bucket{path="/predict",le="+Inf"}'] == \
        counts['specloop_request_duration_seconds_count{path="/predict"}']
    predicted = sum(v for k, v in counts.items() if k.startswith("specloop_predictions_total"))
    assert predicted == counts["specloop_predicted_rows_total"] >= 6
    assert 'specloop_model_version{model="small",alias="champion"} 1' in text
    # no client input ever produced a 5xx
    assert not [k for k in counts if k.startswith("specloop_requests_total") and
                'status="5' in k]

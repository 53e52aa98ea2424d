"""A real ``specloop serve`` on 127.0.0.1: every endpoint, hot reload, request logs read back
by ``specloop monitor --from-logs``, and the admin token (bad input: test_refusals.py)."""

from __future__ import annotations

import json
from specloop import load_model

import pytest

from serving_helpers import (RECORD, Client, Served, served_project, server,  # noqa: F401
                             build_project, wait_for)

pytestmark = pytest.mark.slow


def _in_process(project, version: int):
    ctx = project.context()
    try:
        rec = ctx.registry.get(ctx.model_name, version)
        model = load_model(ctx, rec)
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
    assert meta["fast_path"] is True  # the default preprocessing compiles


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


def test_the_full_pipeline_answers_exactly_like_the_fast_path(server, served_project):
    rows = [RECORD, {"x1": None, "x2": 1e6, "color": "unseen"},
            {"x1": -2.0, "x2": None, "color": None}, {"x1": 3, "x2": 0, "color": "blue"}]
    slow = Served(served_project.root, "plugins.serve.fast_path=false")
    try:
        assert slow.client.json("GET", "/metadata")[1]["fast_path"] is False
        for body in (rows, rows[1], rows[2]):
            status, want = slow.client.json("POST", "/predict", body)
            status2, got = server.client.json("POST", "/predict", body)
            assert status == status2 == 200
            assert got["predictions"] == want["predictions"]
            assert got["probabilities"] == want["probabilities"]  # to the last bit
    finally:
        slow.stop()


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


def test_hot_reload_follows_promote_and_rollback_without_dropping_requests(server,
                                                                           served_project):
    import threading

    results: list[tuple[int, int | None]] = []
    stop = threading.Event()

    def hammer() -> None:
        client = Client(server.port)
        while not stop.is_set():
            status, doc = client.json("POST", "/predict", RECORD)
            results.append((status, doc.get("version")))

    def version() -> int:
        return server.client.json("GET", "/metadata")[1]["version"]

    thread = threading.Thread(target=hammer)
    thread.start()
    try:
        wait_for(lambda: len(results) > 5, what="traffic")
        res = served_project.cli("registry", "promote", "2")
        assert res.exit_code == 0, res.stderr
        wait_for(lambda: version() == 2, what="the server to switch to v2")
        n = len(results)
        wait_for(lambda: len(results) > n + 5, what="traffic on v2")
        res = served_project.cli("registry", "rollback")
        assert res.exit_code == 0, res.stderr
        wait_for(lambda: version() == 1, what="the server to switch back to v1")
        n = len(results)
        wait_for(lambda: len(results) > n + 5, what="traffic on v1 again")
    finally:
        stop.set()
        thread.join()
    assert {s for s, _ in results} == {200}
    versions = [v for _, v in results]
    switches = [v for i, v in enumerate(versions) if i == 0 or v != versions[i - 1]]
    assert switches == [1, 2, 1]
    text = server.client.request("GET", "/metrics")[1].decode()
    assert "specloop_model_reloads_total 2" in text


def _logged(root) -> list[dict]:
    out = []
    for path in sorted((root / ".specloop" / "store" / "logs" / "small").glob("*/part-*.jsonl*")):
        out += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return out


def test_requests_are_logged_and_monitor_reads_them_as_a_batch(server, served_project):
    import numpy as np

    root = served_project.root
    before = len(_logged(root))
    rng = np.random.default_rng(1)
    shifted = [{"x1": float(a), "x2": float(b), "color": "red"}
               for a, b in zip(rng.normal(4, 1, 300), rng.normal(3, 1, 300))]
    for i in range(0, 300, 100):
        status, doc = server.client.json("POST", "/predict", shifted[i:i + 100],
                                         headers={"X-Request-ID": f"shift-{i}"})
        assert status == 200
    logged = wait_for(lambda: (lambda rows: rows if len(rows) >= before + 300 else None)(
        _logged(root)), what="the request log to be flushed")
    rec = next(r for r in logged if r["request_id"] == "shift-100")
    assert rec["inputs"] == shifted[rec["row"] + 100] and rec["version"] == 1
    assert set(rec["probabilities"]) == {"0", "1"} and rec["prediction"] in (0, 1)

    res = served_project.cli("monitor", "--from-logs", "--json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["rows"] >= 300 and doc["reference_version"] == 1
    drifted = {c["column"]: c["drifted"] for c in doc["report"]["columns"]}
    assert drifted["x1"] is True and drifted["x2"] is True and doc["report"]["drifted"]

    res = served_project.cli("monitor", "--from-logs", "--since", "1d", "--fail-on-drift")
    assert res.exit_code == 1 and "DRIFT" in res.stdout and "x1" in res.stdout

    res = served_project.cli("monitor", "--from-logs", "--since", "yesterday-ish")
    assert res.exit_code == 2 and "--since" in res.stderr and "Traceback" not in res.stderr
    res = served_project.cli("monitor", "--from-logs", "--since", "2999-01-01")
    assert res.exit_code == 2 and "no logged requests" in res.stderr


def test_admin_routes_need_the_token(served_project, server):
    root = served_project.root
    admin = Served(root, env={"SPECLOOP_SERVE_TOKEN": "s3cret-token"})
    try:
        c = admin.client
        assert c.request("POST", "/admin/reload")[0] == 401
        assert c.request("POST", "/admin/reload", None,
                         {"Authorization": "Bearer wrong"})[0] == 403
        auth = {"Authorization": "Bearer s3cret-token"}
        assert c.json("POST", "/admin/reload", headers=auth) == (
            200, {"changed": False, "version": 1})
        status, doc = c.json("POST", "/admin/promote", {"version": "two"}, headers=auth)
        assert status == 422 and "version" in doc["error"]
        status, doc = c.json("POST", "/admin/promote", {"version": 99}, headers=auth)
        assert status == 409 and "99" in doc["error"]
        status, doc = c.json("POST", "/admin/promote", {"version": 2, "reason": "canary ok"},
                             headers=auth)
        assert status == 200 and doc["version"] == 2 and doc["previous"] == 1
        assert c.json("POST", "/predict", RECORD)[1]["version"] == 2
        status, doc = c.json("POST", "/admin/rollback", headers=auth)
        assert status == 200 and doc["version"] == 1
        hist = json.loads(served_project.cli("registry", "history", "--json").stdout)
        assert [a["reason"] for a in hist["audit"]][-2:] == ["canary ok",
                                                             "rolled back over HTTP"]
    finally:
        admin.stop()
    # the other server followed the alias all along
    wait_for(lambda: server.client.json("GET", "/metadata")[1]["version"] == 1)


def test_serve_refuses_bad_settings_and_missing_versions(served_project):
    root = served_project.root
    res = served_project.cli("serve", "plugins.serve.max_rowz=5")
    assert res.exit_code == 2 and "plugins.serve.max_rowz" in res.stderr
    assert "max_rows" in res.stderr
    res = served_project.cli("serve", "plugins.serve.poll_seconds=-1")
    assert res.exit_code == 2 and "plugins.serve.poll_seconds" in res.stderr
    res = served_project.cli("serve", "--version", "99")
    assert res.exit_code == 2 and "no version 99" in res.stderr
    res = served_project.cli("serve", "--alias", "staging")
    assert res.exit_code == 2 and "'staging'" in res.stderr
    res = served_project.cli("server", "status", "--project", str(root))
    assert res.exit_code == 2 and "deploy.kind" in res.stderr and "local_server" in res.stderr


def test_admin_promote_goes_through_the_declared_gate(tmp_path):
    p = build_project(tmp_path / "gated", {"gate": {"kind": "threshold",
                                                    "beat_champion_by": 0.5}})
    admin = Served(p.root, env={"SPECLOOP_SERVE_TOKEN": "s3cret-token"})
    auth = {"Authorization": "Bearer s3cret-token"}
    try:
        c = admin.client
        status, doc = c.json("POST", "/admin/promote", {"version": 2}, headers=auth)
        assert status == 409 and "the gate refuses to promote v2" in doc["error"]
        assert "beats champion by >= 0.5" in doc["gate"]
        status, doc = c.json("POST", "/admin/promote", {"version": 2, "force": True},
                             headers=auth)
        assert status == 409 and "--force needs --reason" in doc["error"]
        assert c.json("GET", "/metadata")[1]["version"] == 1  # nothing changed
        status, doc = c.json("POST", "/admin/promote",
                             {"version": 2, "force": True, "reason": "incident 7"}, headers=auth)
        assert status == 200 and doc["version"] == 2 and doc["previous"] == 1
    finally:
        admin.stop()
    last = json.loads(p.cli("registry", "history", "--json").stdout)["audit"][-1]
    assert (last["action"], last["reason"]) == ("force-promote", "incident 7")


def test_several_workers_serve_sum_their_metrics_and_stop_cleanly(served_project, tmp_path):
    logs = served_project.root / ".specloop" / "store" / "logs"
    open_before = set(logs.glob("*/*/*.open"))  # the module's server is still running
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    many = Served(served_project.root, "--workers", "2", env={"TMPDIR": str(tmp)})
    try:
        for _ in range(6):  # one connection per request: the kernel spreads them over workers
            status, doc = many.client.json("POST", "/predict", [RECORD, RECORD])
            assert status == 200 and doc["version"] == 1 and len(doc["predictions"]) == 2
        assert many.client.json("GET", "/ready")[0] == 200

        def summed():
            text = many.client.request("GET", "/metrics")[1].decode()
            return text if ("specloop_workers 2" in text and
                            "specloop_predicted_rows_total 12" in text) else None

        # whichever worker answers, the scrape counts both (others' counts lag up to 1 s)
        text = wait_for(summed, what="both workers' counters in one scrape")
        assert 'specloop_requests_total{path="/predict",status="200"} 6' in text
        assert 'specloop_request_duration_seconds_count{path="/predict"} 6' in text
    finally:
        many.stop()
    assert many.proc.returncode == 0, many.log.read_text()
    assert set(logs.glob("*/*/*.open")) == open_before
    assert list(tmp.iterdir()) == []  # the snapshots folder went with the server


def test_before_a_model_is_loaded_every_route_that_needs_one_answers_503(served_project):
    import os
    import subprocess
    import sys

    from serving_helpers import free_port

    # 'specloop serve' refuses an alias with no version, so start the worker factory itself,
    # as uvicorn does for each worker, following an alias that points nowhere yet
    port = free_port()
    log = served_project.root / "not-ready.log"
    options = {"project": str(served_project.root), "overrides": [], "alias": "canary",
               "version": None, "metrics_dir": None}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "specloop_serve._app:create_app", "--factory",
         "--port", str(port), "--log-level", "warning"], stdout=open(log, "wb"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
        env={**os.environ, "OMP_NUM_THREADS": "1", "SPECLOOP_SERVE_OPTIONS": json.dumps(options)})
    c = Client(port)
    try:
        wait_for(lambda: _answers(c), timeout=120, what="the server to listen")
        assert c.json("GET", "/ready") == (503, {"ready": False,
                                                 "reason": "'canary' points at no version yet"})
        for method, path in (("POST", "/predict"), ("GET", "/metadata")):
            status, doc = c.json(method, path, RECORD if method == "POST" else None)
            assert status == 503 and doc["detail"][0]["type"] == "not_ready", doc
        status, schema = c.json("GET", "/openapi.json")
        assert status == 200 and schema["components"]["schemas"]["Record"] == {
            "type": "object", "title": "Record"}
        assert "503" in schema["paths"]["/predict"]["post"]["responses"]

        ctx = served_project.context()
        try:
            ctx.registry.set_alias("small", "canary", 2, reason="canary for the 503 test")
        finally:
            ctx.close()
        wait_for(lambda: c.json("GET", "/ready")[0] == 200, what="the alias to be followed")
        assert c.json("POST", "/predict", RECORD)[1]["version"] == 2
        schema = c.json("GET", "/openapi.json")[1]  # regenerated for the loaded signature
        assert set(schema["components"]["schemas"]["Record"]["properties"]) == {"x1", "x2",
                                                                                "color"}
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    assert "Traceback" not in log.read_text()


def _answers(client: Client) -> bool:
    try:
        client.request("GET", "/health")
    except OSError:
        return False
    return True

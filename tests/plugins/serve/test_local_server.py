"""The ``local_server`` deploy target through the real CLI: ``specloop run`` starts a managed
server and succeeds once it is ready; ``server status|stop``; its sealed request logs become
loop batches (``loop.incoming: {kind: serving_logs}``)."""

from __future__ import annotations

import json

import pytest

from serving_helpers import RECORD, Client, build_project, specloop

pytestmark = pytest.mark.slow


def test_deploy_starts_a_managed_server_and_its_logs_feed_the_loop(tmp_path):
    p = build_project(tmp_path / "proj", versions=1, extra={
        "loop": {"incoming": {"kind": "serving_logs"}}, "retrain": {"kind": "on_drift"}})
    root = p.root
    deploy = ["deploy=local_server", "deploy.port=0"]
    try:
        res = specloop("run", *deploy, "--project", str(root), cwd=root)
        assert res.returncode == 0, res.stdout + res.stderr
        line = next(x for x in res.stdout.splitlines() if x.startswith("deployed"))
        url = line.split(" to ")[1]
        assert url.startswith("http://127.0.0.1:")
        state = json.loads((root / ".specloop-serve" / "small.json").read_text())
        client = Client(state["port"])
        version = int(line.split()[1][1:])
        assert client.json("GET", "/ready") == (200, {"ready": True, "version": version})

        status = p.cli("server", "status", "--json", "--project", str(root), *deploy)
        doc = json.loads(status.stdout)
        assert status.exit_code == 0 and doc["running"] and doc["ready"]
        assert doc["version"] == version and doc["pid"] == state["pid"]
        # the deployment verifies, so an unchanged plan keeps it
        plan = json.loads(p.cli("plan", "--json", *deploy).stdout)
        assert {r["stage"]: r["action"] for r in plan}["deploy"] == "cached"

        import numpy as np

        rng = np.random.default_rng(3)
        rows = [{**RECORD, "x1": float(v)} for v in rng.normal(5, 1, 200)]
        assert client.json("POST", "/predict", rows)[0] == 200

        stopped = p.cli("server", "stop", "--project", str(root), *deploy)
        assert stopped.exit_code == 0 and f"pid {state['pid']}" in stopped.stdout
        after = p.cli("server", "status", "--project", str(root), *deploy)
        assert after.exit_code == 1 and "not running" in after.stdout
        sealed = list((root / ".specloop" / "store" / "logs" / "small").glob("*/part-*.jsonl"))
        assert sealed and not list((root / ".specloop" / "store" / "logs").glob("*/*/*.open"))
        plan = json.loads(p.cli("plan", "--json", *deploy).stdout)
        assert {r["stage"]: r["action"] for r in plan}["deploy"] == "run"

        loop = p.cli("loop")
        assert loop.exit_code == 0, loop.output
        assert "processed 1 batch(es)" in loop.stdout and "serve-" in loop.output
        assert "no 'label' labels to retrain on" in loop.output
        again = p.cli("loop")
        assert "processed 0 batch(es)" in again.stdout
    finally:
        p.cli("server", "stop", "--project", str(root), *deploy)


def test_deploy_fails_with_the_server_log_when_the_port_is_taken(tmp_path):
    import socket

    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    try:
        p = build_project(tmp_path / "proj", versions=1)
        deploy = ["deploy=local_server", f"deploy.port={port}"]
        res = p.cli("server", "start", "--project", str(p.root), *deploy)
        assert res.exit_code == 1
        assert "exited before it was ready" in res.stderr and "address already in use" in \
            res.stderr
        assert p.cli("server", "status", "--project", str(p.root), *deploy).exit_code == 1
    finally:
        blocker.close()


def test_the_managed_server_runs_the_onnx_runtime_when_asked(tmp_path):
    pytest.importorskip("onnxruntime")
    p = build_project(tmp_path / "proj", versions=1)
    root = p.root
    deploy = ["deploy=local_server", "deploy.port=0", "deploy.runtime=onnx"]
    try:
        res = specloop("run", *deploy, "--project", str(root), cwd=root)
        assert res.returncode == 0, res.stdout + res.stderr
        state = json.loads((root / ".specloop-serve" / "small.json").read_text())
        code, meta = Client(state["port"]).json("GET", "/metadata")
        assert code == 200 and meta["runtime"] == "onnx", meta
    finally:
        p.cli("server", "stop", "--project", str(root), *deploy)

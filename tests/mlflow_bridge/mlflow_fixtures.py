"""A real ``mlflow server`` on 127.0.0.1 (SQLite backend) for the bridge's tests, one per test
module, and MLflow's REST API read with plain HTTP."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest


def missing() -> str | None:
    """Why the bridge's tests cannot run here, or ``None``."""
    if importlib.util.find_spec("specloop_mlflow") is None:
        return "specloop-mlflow is not installed (pip install -e 'plugins/specloop_mlflow[test]')"
    for module in ("mlflow", "flask", "sqlalchemy"):
        if importlib.util.find_spec(module) is None:
            return f"the MLflow server is not installed ({module} is missing: pip install 'mlflow>=3,<4')"
    return None


@pytest.fixture(scope="module", autouse=True)
def _mlflow_installed():
    reason = missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"the MLflow bridge must be tested in CI: {reason}")
        pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def dead_url() -> str:
    """An address on 127.0.0.1 where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"


class MlflowRest:
    """MLflow's REST API (``/api/2.0/mlflow``), nothing but urllib."""

    def __init__(self, url: str) -> None:
        self.url = url

    def get(self, endpoint: str, **query) -> dict:
        q = urllib.parse.urlencode(query)
        with urllib.request.urlopen(f"{self.url}/api/2.0/mlflow/{endpoint}?{q}", timeout=10) as r:
            return json.loads(r.read() or b"{}")

    def post(self, path: str, body: dict) -> dict:
        req = urllib.request.Request(f"{self.url}/api/2.0/mlflow/{path}", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read() or b"{}")

    def runs(self, experiment: str, filter: str = "") -> list[dict]:
        exp = self.get("experiments/get-by-name", experiment_name=experiment)["experiment"]
        return self.post("runs/search", {"experiment_ids": [exp["experiment_id"]],
                                         "filter": filter, "max_results": 100}).get("runs", [])

    def versions(self, model: str) -> list[dict]:
        return self.get("model-versions/search",
                        filter=f"name='{model}'").get("model_versions", [])

    def alias(self, model: str, alias: str) -> dict:
        return self.get("registered-models/alias", name=model, alias=alias)["model_version"]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """``mlflow server`` with a SQLite backend on a free port; killed (with the workers it
    started) at the end of the module."""
    root = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    log = open(root / "server.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
         f"sqlite:///{root / 'mlflow.db'}", "--default-artifact-root", str(root / "artifacts"),
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
        start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail("mlflow server did not start:\n"
                            + Path(root / "server.log").read_text()[-3000:])
            time.sleep(0.25)
        yield MlflowRest(url)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with __import__("contextlib").suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()

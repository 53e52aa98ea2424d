"""A small trained project and real ``specloop serve`` processes on 127.0.0.1."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import small_csv
from specloop.testing import ProjectBuilder

SPECLOOP = str(Path(sys.executable).with_name("specloop"))
RECORD = {"x1": 0.5, "x2": -1.25, "color": "red"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def specloop(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([SPECLOOP, *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
                          timeout=300)


class Client:
    """A keep-alive HTTP client for one server."""

    def __init__(self, port: int) -> None:
        self.port = port

    def request(self, method: str, path: str, body: bytes | str | None = None,
                headers: dict | None = None) -> tuple[int, bytes, dict]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body.encode() if isinstance(body, str) else body,
                         headers or {})
            r = conn.getresponse()
            return r.status, r.read(), dict(r.getheaders())
        finally:
            conn.close()

    def json(self, method: str, path: str, doc=None, **kw) -> tuple[int, dict]:
        body = None if doc is None else json.dumps(doc)
        status, raw, _ = self.request(method, path, body, **kw)
        return status, json.loads(raw) if raw else None


class Served:
    """A running ``specloop serve`` subprocess."""

    def __init__(self, project: Path, *args: str, env: dict | None = None) -> None:
        self.port = free_port()
        self.log = project / f"serve-{self.port}.log"
        self.proc = subprocess.Popen(
            [SPECLOOP, "serve", "--project", str(project), "--port", str(self.port), *args],
            stdout=open(self.log, "wb"), stderr=subprocess.STDOUT,  # noqa: SIM115
            env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})
        self.client = Client(self.port)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                if self.client.request("GET", "/ready")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError("server did not become ready:\n" + self.log.read_text())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=60)


def wait_for(check, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def build_project(root: Path, extra: dict | None = None, versions: int = 2) -> ProjectBuilder:
    """Classification project (x1, x2 numeric; color categorical), v1 champion and (with
    ``versions=2``) v2 registered with other parameters."""
    p = ProjectBuilder(root)
    small_csv(p.root / "data" / "train.csv", rows=400)
    p.write_conf("data/small.yaml", {"kind": "csv", "path": "data/train.csv",
                                     "target": "label", "drop": ["id"]})
    p.write_conf("config.yaml", {
        "defaults": [{"data": "small"}, {"model": "logistic"}, {"metrics": "classification"},
                     {"monitor": "drift"}, {"deploy": "none"}, "_self_"],
        "project": {"name": "small", "seed": 0, "threads": 1},
        "plugins": {"serve": {"poll_seconds": 0.1, "max_rows": 500,
                              "max_body_bytes": 200_000,
                              "log": {"flush_records": 50, "flush_seconds": 0.2}}},
        **(extra or {}),
    })
    p.run()
    if versions == 1:
        return p
    p.run(["model.params.C=0.01"])
    ctx = p.context()
    try:
        ctx.registry.set_alias("small", "champion", 1, reason="tests start from v1")
    finally:
        ctx.close()
    return p


@pytest.fixture(scope="module")
def served_project(tmp_path_factory) -> ProjectBuilder:
    return build_project(tmp_path_factory.mktemp("serve") / "proj")


@pytest.fixture(scope="module")
def server(served_project) -> Served:
    s = Served(served_project.root)
    yield s
    s.stop()

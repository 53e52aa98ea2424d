"""``/openapi.json`` tells the truth: schemathesis, with every check, finds nothing.

A real ``specloop serve`` (admin routes on) on a real socket, and the real schemathesis
command: it generates valid and invalid requests for every operation from the served
document and checks each answer against it (status documented, body and headers as
documented, no 5xx, invalid data refused, valid data accepted, auth not ignored, 405 with
``Allow`` for other methods …).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from serving_helpers import Served, build_project

pytestmark = pytest.mark.slow

SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
TOKEN = "conformance-token"
# schemathesis' default list of statuses that count as "refused" lacks the two the server
# uses for limits: 413 (too many records, too large a body) and 431 (X-Request-ID or the
# headers too long). They are refusals, so they are added; no check is switched off.
CONFIG = """\
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422",
                     "428", "429", "431", "5xx"]
"""


@pytest.fixture(scope="module")
def admin_server(tmp_path_factory):
    # a project of its own: the run promotes and rolls back versions through /admin
    project = build_project(tmp_path_factory.mktemp("conformance") / "proj")
    server = Served(project.root, env={"SPECLOOP_SERVE_TOKEN": TOKEN})
    yield server
    server.stop()


def test_the_document_names_every_status_with_the_error_body(admin_server):
    status, doc = admin_server.client.json("GET", "/openapi.json")
    assert status == 200
    ops = {(path, method): op for path, item in doc["paths"].items()
           for method, op in item.items()}
    assert set(ops) == {("/predict", "post"), ("/health", "get"), ("/ready", "get"),
                        ("/metadata", "get"), ("/metrics", "get"), ("/admin/reload", "post"),
                        ("/admin/promote", "post"), ("/admin/rollback", "post")}
    assert set(ops["/predict", "post"]["responses"]) == {"200", "400", "413", "415", "422",
                                                         "431", "503"}
    assert set(ops["/admin/promote", "post"]["responses"]) == {
        "200", "400", "401", "403", "409", "413", "415", "422", "431"}
    assert set(ops["/admin/reload", "post"]["responses"]) == {"200", "401", "403", "431"}
    for (path, method), op in ops.items():
        for code, answer in op["responses"].items():
            if code.startswith("4") or (code == "503" and path != "/ready"):
                schema = answer["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (path, code)
        assert ("security" in op) == path.startswith("/admin/")
    header = ops["/predict", "post"]["parameters"][0]
    assert header["name"] == "X-Request-ID" and header["schema"]["maxLength"] == 128
    body = ops["/predict", "post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["oneOf"][1]["maxItems"] == 500  # plugins.serve.max_rows of the test project


def test_schemathesis_with_all_checks_finds_no_failures(admin_server, tmp_path):
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    res = subprocess.run(
        [SCHEMATHESIS, "--config-file", str(config), "--no-color", "run",
         f"http://127.0.0.1:{admin_server.port}/openapi.json", "--checks", "all",
         "--max-examples", "40", "--seed", "20261127", "--generation-database", "none",
         "--workers", "1", "--header", f"Authorization: Bearer {TOKEN}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-6000:]
    assert "No issues found" in out and "Selected: 8/8" in out and "Tested: 8" in out, out
    # the run really exercised the server: answers, refusals, and never a 5xx
    text = admin_server.client.request("GET", "/metrics")[1].decode()
    counts: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("specloop_requests_total"):
            key, value = line.rsplit(" ", 1)
            counts[key] = float(value)
    assert counts['specloop_requests_total{path="/predict",status="200"}'] >= 20
    for status in ("400", "413", "415", "422", "431"):
        assert counts.get(f'specloop_requests_total{{path="/predict",status="{status}"}}'), \
            (status, json.dumps(counts, indent=1))
    assert counts.get('specloop_requests_total{path="/admin/promote",status="401"}')
    assert not [k for k in counts if 'status="5' in k], counts
    assert "Traceback" not in admin_server.log.read_text()

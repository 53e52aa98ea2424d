"""The notify plugin end to end: a real `specloop loop` and `registry rollback` posting to a
webhook and a chat webhook served by a local HTTP server, retries, the outbox, the log sink."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import small_csv

from specloop.testing import ProjectBuilder

SPECLOOP = str(Path(sys.executable).with_name("specloop"))
FAST = {"retries": 2, "backoff": 0.01, "timeout": 2.0}


class Hook:
    """A local webhook receiver on 127.0.0.1:<free port>; ``fail`` answers 500 that many
    times before 200."""

    def __init__(self, port: int = 0, fail: int = 0) -> None:
        self.bodies: list[tuple[str, dict, dict]] = []
        self.fail, self.hits = fail, 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                owner.hits += 1
                if owner.fail > 0:
                    owner.fail -= 1
                    self.send_response(500)
                    self.end_headers()
                    return
                owner.bodies.append((self.path, json.loads(body), dict(self.headers)))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def on(self, path: str) -> list[dict]:
        return [b for p, b, _ in self.bodies if p.split("?")[0] == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook():
    h = Hook()
    yield h
    h.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def specloop(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([SPECLOOP, *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}, timeout=120)


def loop_project(root: Path, sinks: list[dict]) -> ProjectBuilder:
    """A small project whose second incoming batch drifts (x1 shifted): the loop detects
    drift, retrains on it (retrain: on_drift) and the challenger is promoted."""
    p = ProjectBuilder(root)
    small_csv(p.root / "data" / "train.csv", rows=300)
    small_csv(p.root / "data" / "incoming" / "2024-01.csv", rows=200, seed=1)
    small_csv(p.root / "data" / "incoming" / "2024-02.csv", rows=300, seed=2, shift=3.0)
    p.write_conf("data/small.yaml", {"kind": "csv", "path": "data/train.csv", "target": "label",
                                     "drop": ["id"]})
    p.write_conf("config.yaml", {
        "defaults": [{"data": "small"}, {"model": "logistic"}, {"metrics": "classification"},
                     {"gate": "default"}, {"monitor": "drift"}, {"retrain": "on_drift"},
                     "_self_"],
        "project": {"name": "small", "seed": 0},
        "gate": {"beat_champion_by": None},
        "loop": {"incoming": {"path": "data/incoming/*.csv"}, "settle_seconds": 0},
        "plugins": {"notify": {"sinks": sinks}},
    })
    return p


def test_loop_and_rollback_post_to_webhook_and_chat_with_secret_masked(tmp_path, hook):
    secret_url = hook.url("/hooks/T0KEN-abc123")
    p = loop_project(tmp_path / "proj", [
        {"kind": "webhook", "url": secret_url, **FAST},
        {"kind": "chat", "url": hook.url("/chat"), "events": ["promoted", "rolled_back"], **FAST},
        {"kind": "log", "path": "events.jsonl"}])
    res = specloop("loop", cwd=p.root)
    assert res.returncode == 0, res.stderr
    events = [b["event"] for b in hook.on("/hooks/T0KEN-abc123")]
    assert "drift_detected" in events and "retrained" in events and "promoted" in events, \
        (events, res.stdout)
    drift = next(b for b in hook.on("/hooks/T0KEN-abc123") if b["event"] == "drift_detected")
    assert drift["batch"] == "2024-02" and "x1" in drift["drifted_columns"]
    assert drift["model"] == "small" and drift["run_id"] and drift["time"]
    promoted = [(b["previous"], b["version"]) for b in hook.on("/hooks/T0KEN-abc123")
                if b["event"] == "promoted"]
    assert promoted == [(None, 1), (1, 2)]  # the first run's champion, then the retrained one
    chat = hook.on("/chat")
    assert [set(b) for b in chat] == [{"text"}, {"text"}]  # only what it subscribed to
    assert "champion v1 → v2 (promoted)" in chat[1]["text"]

    res = specloop("registry", "rollback", "--reason", "bad calls", cwd=p.root)
    assert res.returncode == 0, res.stderr
    back = [b for b in hook.on("/hooks/T0KEN-abc123") if b["event"] == "rolled_back"]
    assert len(back) == 1 and (back[0]["previous"], back[0]["version"]) == (2, 1)
    assert back[0]["reason"] == "bad calls"
    assert "rolled back" in hook.on("/chat")[-1]["text"]

    lines = [json.loads(x) for x in (p.root / "events.jsonl").read_text().splitlines()]
    assert [x["event"] for x in lines] == [b["event"] for b in hook.on("/hooks/T0KEN-abc123")]

    # the URL with its token is a secret: never in the records
    shown = specloop("runs", "show", json.loads(specloop(
        "runs", "list", "--json", cwd=p.root).stdout)[-1]["run"], "--json", cwd=p.root).stdout
    assert "T0KEN-abc123" not in shown and "***" in shown
    assert "T0KEN" not in specloop("validate", "--show", cwd=p.root).stdout


def test_a_500_is_retried_until_it_succeeds(tmp_path):
    flaky = Hook(fail=2)
    try:
        p = loop_project(tmp_path / "proj", [{"kind": "webhook", "url": flaky.url("/h"),
                                              "events": ["promoted"], **FAST}])
        res = specloop("loop", cwd=p.root)
        assert res.returncode == 0, res.stderr
        assert [b["event"] for b in flaky.on("/h")] == ["promoted", "promoted"]
        assert flaky.hits == 4 and "warning" not in res.stderr
        assert not (p.root / ".specloop" / "notify" / "failed.jsonl").exists()
    finally:
        flaky.close()


def test_a_down_server_never_stops_the_loop_and_retry_delivers_later(tmp_path):
    port = free_port()  # nothing listens there yet
    p = loop_project(tmp_path / "proj", [{"kind": "webhook", "url": f"http://127.0.0.1:{port}"
                                          "/h?token=s3cr3t", **FAST}])
    res = specloop("loop", cwd=p.root)
    assert res.returncode == 0, res.stderr
    assert "processed 2 batch(es)" in res.stdout
    warnings = [x for x in res.stderr.splitlines() if "notify" in x and "warning" in x]
    assert len(warnings) == 4 and all("failed.jsonl" in w for w in warnings), res.stderr
    outbox = p.root / ".specloop" / "notify" / "failed.jsonl"
    kept = [json.loads(x) for x in outbox.read_text().splitlines()]
    assert [k["event"]["event"] for k in kept] == ["promoted", "promoted", "drift_detected",
                                                      "retrained"]  # hooks' order
    assert "s3cr3t" not in outbox.read_text() and kept[0]["sink"]["target"] == "***"
    assert "3 attempt(s)" in kept[0]["error"]

    res = specloop("notify", "retry", cwd=p.root)  # still down
    assert res.returncode == 1 and "0, 4 left" in res.stdout.replace("delivered ", "")
    server = Hook(port=port)
    try:
        res = specloop("notify", "retry", cwd=p.root)
        assert res.returncode == 0, res.stdout + res.stderr
        assert "delivered 4, 0 left" in res.stdout
        assert [b["event"] for b in server.on("/h")] == ["promoted", "promoted",
                                                         "drift_detected", "retrained"]
        assert outbox.read_text() == ""
        again = specloop("notify", "retry", cwd=p.root)
        assert again.returncode == 0 and "nothing to retry" in again.stdout
        assert len(server.bodies) == 4  # delivered once
    finally:
        server.close()


def test_the_notify_group_and_bad_sinks(tmp_path):
    p = loop_project(tmp_path / "proj", [])
    res = specloop("validate", "--show", "+notify=log", cwd=p.root)
    assert res.returncode == 0, res.stderr
    assert ".specloop/notify/events.jsonl" in res.stdout
    res = specloop("validate", "+notify=webhook", cwd=p.root,
                   env={"SPECLOOP_NOTIFY_URL": "ftp://x/token=zz"})
    assert res.returncode == 2 and "plugins.notify.sinks.0.url" in res.stderr
    assert "zz" not in res.stderr
    res = specloop("validate", "+notify=webhook", cwd=p.root,
                   env={"SPECLOOP_NOTIFY_URL": "https://example.invalid/x?token=zz"})
    assert res.returncode == 0, res.stderr
    res = specloop("validate", "plugins.notify.sinks=[{kind: log, path: x, events: [nope]}]",
                   cwd=p.root)
    assert res.returncode == 2 and "unknown event 'nope'" in res.stderr

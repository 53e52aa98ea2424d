"""A minimal Language Server Protocol client over stdio, enough to have the YAML language
server validate files against JSON Schemas and hand back its diagnostics.

The server is the npm package ``yaml-language-server`` installed in ``tests/editor``
(``npm install --no-audit --no-fund`` there; ``.ci/run`` does it).
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SERVER = HERE / "node_modules" / "yaml-language-server" / "bin" / "yaml-language-server"


def server_missing() -> str | None:
    """Why the language server cannot run here, or ``None`` when it can."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not SERVER.is_file():
        return f"yaml-language-server is not installed (cd {HERE} && npm install)"
    return None


class YamlLanguageServer:
    """``yaml-language-server --stdio`` driven as an editor drives it.

    Args:
        root: The workspace folder.
        schemas: ``yaml.schemas`` as an editor's settings give it: schema URI or path →
            glob(s) of the files it validates.
    """

    def __init__(self, root: Path, schemas: dict[str, Any] | None = None) -> None:
        self.root = Path(root).resolve()
        self.proc = subprocess.Popen(["node", str(SERVER), "--stdio"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     env={**os.environ, "NODE_NO_WARNINGS": "1"})
        self.messages: queue.Queue = queue.Queue()
        self.diagnostics: dict[str, list[dict]] = {}
        self.published: dict[str, int] = {}
        self._id = 0
        self.settings = {"yaml": {
            "validate": True, "hover": False, "completion": False, "format": {"enable": False},
            "schemaStore": {"enable": False},  # no network: only the schemas given here
            "schemas": schemas or {}}}
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.request("initialize", {
            "processId": os.getpid(), "rootUri": self.root.as_uri(),
            "workspaceFolders": [{"uri": self.root.as_uri(), "name": self.root.name}],
            "capabilities": {"textDocument": {"publishDiagnostics": {}}}})
        self.notify("initialized", {})
        self.notify("workspace/didChangeConfiguration", {"settings": self.settings})

    # -- JSON-RPC --------------------------------------------------------------------------
    def _send(self, msg: dict) -> None:
        body = json.dumps(msg).encode()
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def _read(self) -> None:
        out = self.proc.stdout
        while True:
            headers = {}
            while True:
                line = out.readline()
                if not line:
                    return
                line = line.strip()
                if not line:
                    break
                name, _, value = line.decode().partition(":")
                headers[name.lower()] = value.strip()
            msg = json.loads(out.read(int(headers["content-length"])))
            if msg.get("method") == "textDocument/publishDiagnostics":
                uri = msg["params"]["uri"]
                self.diagnostics[uri] = msg["params"]["diagnostics"]
                self.published[uri] = self.published.get(uri, 0) + 1
            elif "method" in msg and "id" in msg:  # a request from the server
                result = [self.settings.get(item.get("section"), {})
                          for item in msg["params"].get("items", [])] \
                    if msg["method"] == "workspace/configuration" else None
                self._send({"jsonrpc": "2.0", "id": msg["id"], "result": result})
            self.messages.put(msg)

    def notify(self, method: str, params: Any) -> None:
        self._send({"jsonrpc": "2.0", "method": method, "params": params})

    def request(self, method: str, params: Any, timeout: float = 30) -> Any:
        self._id += 1
        ident = self._id
        self._send({"jsonrpc": "2.0", "id": ident, "method": method, "params": params})
        deadline = time.monotonic() + timeout
        while True:
            msg = self.messages.get(timeout=max(0.01, deadline - time.monotonic()))
            if msg.get("id") == ident and "method" not in msg:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result")

    # -- documents -------------------------------------------------------------------------
    def diagnose(self, files: dict[str, str], timeout: float = 60, quiet: float = 0.6,
                 expect: bool = False) -> dict[str, list[dict]]:
        """Open ``files`` (path → text; paths absolute or relative to the root) and return
        each one's diagnostics once the server has published for every file and then stayed
        quiet for ``quiet`` seconds; with ``expect``, once every file has a diagnostic (a
        loaded server may publish a document's syntax check before its schema check)."""
        uris = {}
        for path, text in files.items():
            p = Path(path)
            p = p if p.is_absolute() else self.root / p
            uri = p.resolve().as_uri()
            uris[path] = uri
            self.published.pop(uri, None)
            self.diagnostics.pop(uri, None)
            self.notify("textDocument/didOpen", {"textDocument": {
                "uri": uri, "languageId": "yaml", "version": 1, "text": text}})
        deadline = time.monotonic() + timeout
        last = time.monotonic()
        while time.monotonic() < deadline:
            try:
                self.messages.get(timeout=0.05)
                last = time.monotonic()
            except queue.Empty:
                pass
            if all(u in self.published and (self.diagnostics.get(u) or not expect)
                   for u in uris.values()) and time.monotonic() - last > quiet:
                break
        else:
            missing = [p for p, u in uris.items() if u not in self.published]
            raise TimeoutError(f"no diagnostics published for {missing}")
        for path, uri in uris.items():
            self.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
        return {path: self.diagnostics.get(uri, []) for path, uri in uris.items()}

    def ready(self, probe: str = "conf/model/__probe__.yaml",
              text: str = "kind: sklearn\nno_such_key: 1\n", timeout: float = 60) -> None:
        """Wait until the server validates against the schema: a probe document with a known
        mistake gets its diagnostic. Before that an empty result would prove nothing (a busy
        server may publish a document's syntax check before its schema is loaded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            left = max(1.0, deadline - time.monotonic())
            if self.diagnose({probe: text}, timeout=left, expect=True)[probe]:
                return
        raise TimeoutError("the language server never validated against the schema")

    def close(self) -> None:
        try:
            self.request("shutdown", None, timeout=5)
            self.notify("exit", None)
            self.proc.wait(timeout=5)
        except Exception:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> "YamlLanguageServer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

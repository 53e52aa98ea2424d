"""The ``local_server`` deploy target: a ``specloop serve`` process managed by the deploy
stage. It follows the alias (hot reload), so a later promotion reaches it without a restart;
the deploy stage starts it if it is not running and succeeds only once ``/ready`` answers
and ``/metadata`` reports the deployed version.

State (pid, URL, log) lives in ``<project>/<state_dir>/<model>.json``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from specloop import StageError


def _get(url: str, timeout: float = 2.0) -> tuple[int, dict | None]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - our server
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, None
    except (OSError, ValueError):
        return 0, None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of this process counts as gone
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class LocalServer:
    """Starts, stops and reports a managed serving process for one project."""

    def __init__(self, config: Any) -> None:
        self.config = config

    def _dir(self, ctx: Any) -> Path:
        d = Path(self.config.state_dir)
        return d if d.is_absolute() else ctx.project_dir / d

    def _state_file(self, ctx: Any) -> Path:
        return self._dir(ctx) / f"{ctx.model_name}.json"

    def _state(self, ctx: Any) -> dict | None:
        try:
            return json.loads(self._state_file(ctx).read_text())
        except (OSError, ValueError):
            return None

    def status(self, ctx: Any) -> dict:
        """``{"running", "ready", "pid", "url", "version", "log"}`` of the managed server."""
        state = self._state(ctx)
        if state is None:
            return {"running": False, "ready": False, "pid": None, "url": None, "version": None,
                    "log": None}
        running = _alive(state["pid"])
        code, meta = _get(state["url"] + "/metadata") if running else (0, None)
        return {"running": running, "ready": code == 200, "pid": state["pid"],
                "url": state["url"], "version": meta.get("version") if meta else None,
                "alias": meta.get("alias") if meta else None, "log": state.get("log"),
                "started_at": state.get("started_at")}

    def start(self, ctx: Any, version: int) -> dict:
        """Start the server (if it is not running) and wait until it serves ``version``."""
        c = self.config
        st = self.status(ctx)
        if not st["running"]:
            if st["pid"] is not None:
                self._state_file(ctx).unlink(missing_ok=True)
            st = self._spawn(ctx)
        deadline = time.monotonic() + c.ready_timeout
        code, meta = 0, None
        while time.monotonic() < deadline:
            if not _alive(st["pid"]):
                self._state_file(ctx).unlink(missing_ok=True)
                raise StageError(f"the local server exited before it was ready"
                                 f"{_tail(st.get('log'))}", stage="deploy",
                                 component="deploy/local_server", run_id=ctx.run_id)
            code, _ = _get(st["url"] + "/ready", timeout=1.0)
            if code == 200:
                code, meta = _get(st["url"] + "/metadata", timeout=2.0)
                if meta and meta.get("version") == version:
                    return {"location": st["url"], "version": version, "pid": st["pid"],
                            "alias": meta.get("alias"), "log": st.get("log")}
            time.sleep(0.1)
        served = meta.get("version") if meta else None
        raise StageError(f"the local server at {st['url']} did not serve version {version} "
                         f"within {c.ready_timeout:g} s (/ready: {code or 'no answer'}, "
                         f"serving: {served}){_tail(st.get('log'))}", stage="deploy",
                         component="deploy/local_server", run_id=ctx.run_id)

    def _spawn(self, ctx: Any) -> dict:
        c = self.config
        port = c.port or _free_port(c.host)
        d = self._dir(ctx)
        d.mkdir(parents=True, exist_ok=True)
        log = d / f"{ctx.model_name}.log"
        cmd = [sys.executable, "-m", "specloop.cli", "serve", "--project", str(ctx.project_dir),
               "--host", c.host, "--port", str(port), "--workers", str(c.workers),
               "--alias", c.alias, "--runtime", c.runtime, *ctx.spec.overrides]
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        with open(log, "ab") as fh:
            proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env,
                                    stdin=subprocess.DEVNULL, start_new_session=True,
                                    cwd=ctx.project_dir)
        host = c.host if c.host not in ("0.0.0.0", "::") else "127.0.0.1"
        state = {"pid": proc.pid, "url": f"http://{host}:{port}", "host": c.host, "port": port,
                 "workers": c.workers, "alias": c.alias, "log": str(log),
                 "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        tmp = self._state_file(ctx).with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        os.replace(tmp, self._state_file(ctx))
        return state

    def stop(self, ctx: Any, timeout: float = 15.0) -> dict:
        """Stop the managed server (SIGTERM to its process group: graceful, logs sealed)."""
        st = self.status(ctx)
        if st["pid"] is None:
            return {"stopped": False, "reason": "no managed server"}
        pid = st["pid"]
        if st["running"]:
            try:
                os.killpg(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + timeout
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _alive(pid):
                os.killpg(pid, signal.SIGKILL)
        self._state_file(ctx).unlink(missing_ok=True)
        return {"stopped": True, "pid": pid, "url": st["url"]}

    # -- the deploy component contract -------------------------------------------------------
    def deploy(self, bundle: dict, ctx: Any) -> dict:
        """Make the managed server serve ``bundle``'s version; return where it is."""
        return self.start(ctx, int(bundle["version"]["version"]))

    def verify(self, result: dict, ctx: Any) -> bool:
        """Whether the managed server still runs and serves the recorded version."""
        st = self.status(ctx)
        return bool(st["running"] and st["ready"] and st["version"] == result.get("version")
                    and st["pid"] == result.get("pid"))


def _tail(log: str | None, lines: int = 15) -> str:
    if not log:
        return ""
    try:
        text = Path(log).read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return "\nserver log (" + log + "):\n" + "\n".join(text) if text else ""

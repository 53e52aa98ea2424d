"""``specloop serve`` before it serves: a missing extra and a busy port are one clear error
each, with their documented exit codes (1 and 3), and never a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from serving_helpers import SPECLOOP, Client, served_project, specloop  # noqa: F401

pytestmark = pytest.mark.slow

# imported first by every Python process started with this folder on PYTHONPATH: it makes
# importing the named top-level modules fail as if they were not installed
HIDE = """\
import sys

HIDDEN = {hidden!r}


class _Hidden:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, _Hidden())
"""


def _hiding(tmp_path, *modules: str) -> dict:
    folder = tmp_path / "hide"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(HIDE.format(hidden=set(modules)))
    env = {"PYTHONPATH": os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")])}
    for module in modules:  # the shim works: the module really cannot be imported
        probe = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True,
                               text=True, env={**os.environ, **env})
        assert probe.returncode == 1 and "ModuleNotFoundError" in probe.stderr
    return env


@pytest.mark.parametrize("hidden,says", [
    (("fastapi", "uvicorn"), "specloop serve needs fastapi, uvicorn, which are not installed"),
    (("orjson",), "specloop serve needs orjson, which is not installed"),
    (("starlette",), "specloop serve needs fastapi (it cannot import starlette), which is not "
                     "installed"),
])
def test_serve_without_the_serve_extra_says_what_to_install(served_project, tmp_path, hidden,
                                                            says):
    res = specloop("serve", "--project", str(served_project.root), cwd=tmp_path,
                   env=_hiding(tmp_path, *hidden))
    assert res.returncode == 1, res.stdout + res.stderr
    assert res.stderr.startswith(f"specloop: {says}\n"), res.stderr
    assert "fix:" in res.stderr and "pip install 'specloop[serve]'" in res.stderr
    assert "Traceback" not in res.stderr and res.stdout == ""


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_busy_port_is_one_line_and_exit_code_3(served_project, tmp_path, workers):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        res = specloop("serve", "--project", str(served_project.root), "--port", str(port),
                       "--workers", workers, cwd=tmp_path)
    assert res.returncode == 3, res.stdout + res.stderr
    [line] = res.stderr.splitlines()
    assert line.startswith(f"specloop: port {port} on 127.0.0.1 is busy (address already in "
                           "use): serve on another with --port"), line
    assert "Traceback" not in res.stderr and "serving" not in res.stdout


def test_a_host_that_is_not_this_machine_is_a_config_error(served_project, tmp_path):
    res = specloop("serve", "--project", str(served_project.root), "--host", "203.0.113.5",
                   "--port", "0", cwd=tmp_path)  # TEST-NET-3: never an address of ours
    assert res.returncode == 2, res.stdout + res.stderr
    assert res.stderr.startswith("specloop: cannot listen on 203.0.113.5:0")
    assert "--host" in res.stderr and "Traceback" not in res.stderr


def test_port_0_serves_on_the_free_port_it_prints(served_project, tmp_path):
    proc = subprocess.Popen([SPECLOOP, "serve", "--project", str(served_project.root),
                             "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        line = proc.stdout.readline()
        assert " on http://127.0.0.1:" in line, line
        port = int(line.split(" on http://127.0.0.1:")[1].split(" ")[0])
        assert port > 0
        client = Client(port)
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None and time.monotonic() < deadline
            try:
                if client.json("GET", "/ready")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        assert client.json("POST", "/predict", {"x1": 1.0, "x2": 2.0, "color": "red"})[0] == 200
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        proc.stdout.close()

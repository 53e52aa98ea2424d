"""Progress bars: on a terminal (a real pseudo-terminal here) for the stages of a run, the
loop's batches, a sweep's members and batch scoring; nothing without a terminal, with --quiet
or with --json (whose output stays parseable)."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest
from test_bad_input import make_project, write_csv

SPECLOOP = str(Path(sys.executable).with_name("specloop"))


def on_terminal(*args: str, cwd: Path) -> tuple[int, str, str]:
    """Run ``specloop ARGS`` with standard error on a pseudo-terminal; return the exit code,
    standard output and what the terminal showed."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("SPECLOOP_QUIET", None)
    proc = subprocess.Popen([SPECLOOP, *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=follower, env=env)
    os.close(follower)
    shown = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
        elif proc.poll() is not None:
            break
    out = proc.stdout.read().decode()
    proc.wait(timeout=300)
    os.close(leader)
    return proc.returncode, out, shown.decode(errors="replace")


@pytest.fixture
def project(tmp_path):
    p = make_project(tmp_path / "proj")
    for month in ("2024-01", "2024-02"):
        write_csv(p.root / "data" / "incoming" / f"{month}.csv", rows=120, seed=int(month[-1]))
    conf = p.root / "conf" / "config.yaml"
    conf.write_text(conf.read_text() + "loop:\n  incoming:\n    path: data/incoming/*.csv\n"
                    "  settle_seconds: 0\n")
    return p


@pytest.mark.slow
def test_progress_on_a_terminal_and_silent_otherwise(project):
    code, out, shown = on_terminal("run", cwd=project.root)
    assert code == 0, shown
    assert "run:" in shown and "stage" in shown and "\r" in shown  # redrawn in place
    assert "train" in out  # the stage table still goes to standard output

    code, out, shown = on_terminal("loop", cwd=project.root)
    assert code == 0, shown
    assert "loop:" in shown and "batch" in shown

    code, out, shown = on_terminal("run", "-m", "model.params.C=0.5,2.0", cwd=project.root)
    assert code == 0, shown
    assert "sweep:" in shown and "member" in shown

    code, out, shown = on_terminal("run", "--quiet", "model.params.C=3.0", cwd=project.root)
    assert code == 0 and "run:" not in shown and "stage/s" not in shown, shown

    code, out, shown = on_terminal("plan", "--json", "model.params.C=4.0", cwd=project.root)
    assert code == 0 and "run:" not in shown
    assert json.loads(out)  # clean JSON

    piped = project.cli("run", "model.params.C=5.0")  # no terminal: no bar
    assert piped.exit_code == 0 and "run:" not in piped.stderr and "\r" not in piped.stderr


@pytest.mark.slow
def test_batch_scoring_shows_rows_on_a_terminal(project):
    write_csv(project.root / "data" / "score.csv", rows=300, seed=5)
    project.write_conf("deploy/scores.yaml", {
        "kind": "batch", "input": {"kind": "csv", "path": "data/score.csv",
                                   "target": "label"}, "chunk_size": 100})
    code, out, shown = on_terminal("run", "deploy=scores", cwd=project.root)
    assert code == 0, shown
    assert "score:" in shown and "/300" in shown and "row" in shown
    code, out, shown = on_terminal("run", "deploy=scores", "deploy.progress=false",
                                   "deploy.chunk_size=50", cwd=project.root)
    assert code == 0 and "score:" not in shown, shown

"""Unchanged re-run of the fraud pipeline: ``specloop run`` vs ``dvc repro`` on the exported
``dvc.yaml``.

Usage (from a checkout with ``specloop[dvc]`` installed in the running interpreter's
environment)::

    .venv/bin/python benchmarks/bench_dvc.py                    # 100k rows, 9 rounds
    .venv/bin/python benchmarks/bench_dvc.py --rows 20000 --repeats 5

Set-up, untimed: a temporary git repository holding a copy of the fraud-detection project,
its data generated and tracked with ``dvc add`` (local remote folder), ``specloop export dvc``,
one ``dvc repro`` that runs every stage, and a commit. Then, every command as a child process,
wall-clock, ``OMP_NUM_THREADS=1``, ``DVC_NO_ANALYTICS=1``:

* ``specloop run`` — decides that every stage is cached and prints the table;
* ``dvc repro`` — decides that every exported stage is unchanged (a no-op);
* ``dvc status`` and ``specloop plan`` for reference.

Hygiene: one untimed warm-up round; the order of the two compared commands alternates round
by round; the ratio is paired per round; the table reports medians. Each timed command is
checked to have been a no-op (no stage ran), so the figures cannot silently measure work.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ROOT / "projects" / "fraud_detection"
BIN = Path(sys.executable).parent


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "DVC_NO_ANALYTICS": "1",
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def sh(cwd: Path, *cmd: str) -> str:
    done = subprocess.run(list(cmd), cwd=cwd, env=_env(), capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def timed(cwd: Path, *cmd: str) -> tuple[float, str]:
    start = time.perf_counter()
    out = sh(cwd, *cmd)
    return time.perf_counter() - start, out


def setup(work: Path, rows: int) -> Path:
    proj = work / "fraud_detection"
    shutil.copytree(PROJECT, proj, ignore=lambda d, names: [
        n for n in names if (Path(d) == PROJECT and n in (".specloop", "data", "deploy"))
        or n == "__pycache__"])
    (proj / ".gitignore").write_text(".specloop/\ndeploy/\n")
    sh(proj, sys.executable, "generate.py", "--rows-per-month", str(rows // 6))
    sh(proj, "git", "init", "-q")
    sh(proj, "git", "config", "user.email", "bench@localhost")
    sh(proj, "git", "config", "user.name", "bench")
    dvc = str(BIN / "dvc")
    sh(proj, dvc, "init", "-q")
    sh(proj, dvc, "remote", "add", "-d", "local", str(work / "dvc-remote"))
    sh(proj, dvc, "add", "-q", "data/train.csv", "data/incoming")
    sh(proj, str(BIN / "specloop"), "export", "dvc")
    sh(proj, dvc, "repro")
    sh(proj, "git", "add", "-A")
    sh(proj, "git", "commit", "-q", "-m", "project, data and exported pipeline")
    return proj


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="training rows (default 100k)")
    parser.add_argument("--repeats", type=int, default=9, help="timed rounds (default 9)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="specloop-bench-dvc-"))
    try:
        proj = setup(work, args.rows)
        specloop, dvc = str(BIN / "specloop"), str(BIN / "dvc")
        commands = {"specloop run": (specloop, "run"), "dvc repro": (dvc, "repro")}
        extra = {"specloop plan": (specloop, "plan"), "dvc status": (dvc, "status")}
        times: dict[str, list[float]] = {k: [] for k in [*commands, *extra]}
        ratios = []
        for rnd in range(args.repeats + 1):
            order = list(commands) if rnd % 2 == 0 else list(reversed(commands))
            got = {}
            for name in order:
                seconds, out = timed(proj, *commands[name])
                if name == "specloop run" and " ran " in out:
                    raise SystemExit(f"specloop run was not a no-op:\n{out}")
                if name == "dvc repro" and "Running stage" in out:
                    raise SystemExit(f"dvc repro was not a no-op:\n{out}")
                got[name] = seconds
            for name, cmd in extra.items():
                got[name] = timed(proj, *cmd)[0]
            if rnd == 0:
                continue  # warm-up
            for name, seconds in got.items():
                times[name].append(seconds)
            ratios.append(got["specloop run"] / got["dvc repro"])
        print(f"# unchanged re-run, fraud pipeline ({args.rows:,} rows), "
              f"{args.repeats} rounds, medians")
        print(f"# {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores, "
              f"OMP_NUM_THREADS=1")
        print()
        print("| command | median s | min s | max s |")
        print("|---|---|---|---|")
        for name, values in times.items():
            print(f"| `{name}` (no-op) | {statistics.median(values):.3f} | {min(values):.3f} "
                  f"| {max(values):.3f} |")
        print()
        print(f"paired ratio specloop run / dvc repro: median {statistics.median(ratios):.2f}× "
              f"(min {min(ratios):.2f}×, max {max(ratios):.2f}×) — goal: ≤ 1.00×")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

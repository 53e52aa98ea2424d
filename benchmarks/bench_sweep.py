"""An 8-member sweep: the specloop launcher (the default of ``specloop run -m``), Hydra's
joblib launcher and the sequential basic launcher, and how often the upstream stages ran.

Usage (from a checkout with specloop installed in the running interpreter's environment)::

    .venv/bin/python benchmarks/bench_sweep.py                     # 10k rows/month, 3 rounds
    .venv/bin/python benchmarks/bench_sweep.py --rows-per-month 4000 --repeats 5

What is measured, every sweep as a child process (``specloop run -m``), wall-clock,
``OMP_NUM_THREADS=1``, ``sweep.register=none``, on a fresh store each time:

1. ``-m model.params.learning_rate=<8 values>`` with ``hydra/launcher=basic`` (one member
   after another, in one process), ``hydra/launcher=joblib`` (loky worker processes, one per
   core) and ``hydra/launcher=specloop`` (the default: shared stages once, then forked
   workers, one per core). Speed-ups are paired per round; the table reports medians.
2. Upstream stage executions: how many runs' manifests (the members' and the specloop
   launcher's warm-up run) say ``data`` and ``split`` actually ran (not a cache hit). The
   goal is 1 for each, with every launcher.

Hygiene: one untimed warm-up sweep; the order of the launchers rotates between rounds; the child's CPU seconds are reported next to wall time (less sensitive to other load
on a shared machine). The project is a temporary copy of ``projects/fraud_detection/conf``
with generated data; the checkout's ``projects/`` folder is never touched.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ROOT / "projects" / "fraud_detection"
RATES = "0.05,0.07,0.09,0.11,0.13,0.15,0.2,0.25"


def _specloop_exe() -> str:
    exe = Path(sys.executable).with_name("specloop")
    if exe.is_file():
        return str(exe)
    found = shutil.which("specloop")
    if not found:
        sys.exit("bench_sweep: the specloop command is not installed next to this Python")
    return found


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = "1"
    env.pop("SPECLOOP_FULL_ERROR", None)
    return env


def sweep(project: Path, launcher: str) -> dict:
    """One fresh-store sweep; return wall and CPU seconds and upstream execution counts."""
    shutil.rmtree(project / ".specloop", ignore_errors=True)
    cmd = [_specloop_exe(), "run", "-m", "sweep.register=none",
           f"model.params.learning_rate={RATES}", f"hydra/launcher={launcher}"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=project, env=_env(), capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"bench_sweep: the sweep failed:\n{proc.stdout}\n{proc.stderr}")
    runs = project / ".specloop" / "runs"
    docs = [json.loads((d / "manifest.json").read_text()) for d in runs.iterdir()]
    ran = {s: sum(1 for d in docs if d["stages"].get(s, {}).get("status") == "ran")
           for s in ("data", "split", "train")}
    members = sum(1 for d in docs if d.get("command") != "sweep-warm-up")
    return {"wall": wall, "cpu": (after.ru_utime - before.ru_utime) +
            (after.ru_stime - before.ru_stime), "members": members, **ran}


LAUNCHERS = (("basic", "basic (sequential)"), ("joblib", "joblib (loky workers)"),
             ("specloop", "specloop (default: warm-up, forked workers)"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows-per-month", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    spec = importlib.util.spec_from_file_location("_fraud_generate", PROJECT / "generate.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        project = Path(tmp) / "fraud_detection"
        shutil.copytree(PROJECT / "conf", project / "conf")
        gen.generate(project / "data", seed=7, rows_per_month=args.rows_per_month)
        sweep(project, "basic")  # warm-up: bytecode, disk cache
        rounds = []
        names = [k for k, _ in LAUNCHERS]
        for i in range(args.repeats):
            order = names[i % 3:] + names[:i % 3]
            res = {k: sweep(project, k) for k in order}
            rounds.append(res)
            print(f"round {i + 1}: " + ", ".join(f"{k} {res[k]['wall']:.1f} s" for k in order),
                  file=sys.stderr)
    med = lambda k, f: statistics.median(r[k][f] for r in rounds)  # noqa: E731
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f}; python {platform.python_version()}; "
          f"{args.rows_per_month * 6} training rows; 8 members; {args.repeats} rounds\n")
    print("| launcher | wall (median) | CPU s (median) | data runs | split runs | train runs |")
    print("|---|---|---|---|---|---|")
    for key, name in LAUNCHERS:
        print(f"| {name} | {med(key, 'wall'):.1f} s | {med(key, 'cpu'):.1f} | "
              f"{max(r[key]['data'] for r in rounds)} | {max(r[key]['split'] for r in rounds)} |"
              f" {max(r[key]['train'] for r in rounds)} |")
    print("\n| measurement | result | goal | verdict |\n|---|---|---|---|")
    for key in ("specloop", "joblib"):
        speedups = [r["basic"]["wall"] / r[key]["wall"] for r in rounds]
        speed = statistics.median(speedups)
        print(f"| {key} vs sequential, 8 members | **{speed:.2f}×** "
              f"({min(speedups):.2f}–{max(speedups):.2f}) | ≥ 1.8× | "
              f"{'PASS' if speed >= 1.8 else 'MISS'} |")
    worst = max(r[k][s] for r in rounds for k in names for s in ("data", "split"))
    print(f"| upstream (data, split) executions per sweep, any launcher | {worst} | 1 | "
          f"{'PASS' if worst == 1 else 'MISS'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

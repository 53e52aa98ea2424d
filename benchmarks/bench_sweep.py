"""An 8-member sweep: the specloop launcher (the default of ``specloop run -m``), Hydra's
joblib launcher and the sequential basic launcher, and how often the upstream stages ran.

Usage (from a checkout with specloop installed in the running interpreter's environment)::

    .venv/bin/python benchmarks/bench_sweep.py                     # 10k rows/month, 3 rounds
    .venv/bin/python benchmarks/bench_sweep.py --rows-per-month 4000 --repeats 5

What is measured, every sweep as a child process (``specloop run -m``), ``OMP_NUM_THREADS=1``,
``sweep.register=none``, on a fresh store each time, as a whole process tree (``_proctree.py``):
wall seconds; CPU seconds (user + sys) of the sweep and every process under it (loky
workers, the fork server, forked members, artifact writers, also any that outlive their
parent); the peak of the summed RSS of the tree, sampled every 20 ms:

1. ``-m model.params.learning_rate=<8 values>`` with ``hydra/launcher=basic`` (one member
   after another, in one process), ``hydra/launcher=joblib`` (loky worker processes, one per
   core) and ``hydra/launcher=specloop`` (the default: shared stages once, then forked
   workers, one per core). Speed-ups are paired per round; the table reports medians.
2. Upstream stage executions: how many runs' manifests (the members' and the specloop
   launcher's warm-up run) say ``data`` and ``split`` actually ran (not a cache hit). The
   goal is 1 for each, with every launcher.

Hygiene: one untimed warm-up sweep; the order of the launchers rotates between rounds; the
tree's CPU seconds are reported next to wall time (less sensitive to other load on a shared
machine); the load average is recorded at the start of every round. (The specloop launcher
has no start-method option: it forks where ``fork`` exists, so there is nothing to pass on.) The project is a temporary copy of ``projects/fraud_detection/conf``
with generated data; the checkout's ``projects/`` folder is never touched.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _proctree import MIB, become_subreaper, measure  # noqa: E402

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
    """One fresh-store sweep; return its wall and CPU seconds, peak memory (whole process
    tree) and upstream execution counts."""
    shutil.rmtree(project / ".specloop", ignore_errors=True)
    cmd = [_specloop_exe(), "run", "-m", "sweep.register=none",
           f"model.params.learning_rate={RATES}", f"hydra/launcher={launcher}"]
    m = measure(cmd, cwd=project, env=_env(), interval=0.02)
    if m.returncode != 0:
        sys.exit(f"bench_sweep: the sweep failed:\n{m.stdout}\n{m.stderr}")
    runs = project / ".specloop" / "runs"
    docs = [json.loads((d / "manifest.json").read_text()) for d in runs.iterdir()]
    ran = {s: sum(1 for d in docs if d["stages"].get(s, {}).get("status") == "ran")
           for s in ("data", "split", "train")}
    members = sum(1 for d in docs if d.get("command") != "sweep-warm-up")
    return {"wall": m.wall, "cpu": m.cpu, "peak": m.peak_tree_rss / MIB, "orphans": m.orphans,
            "left": m.still_running, "members": members, **ran}


LAUNCHERS = (("basic", "basic (sequential)"), ("joblib", "joblib (loky workers)"),
             ("specloop", "specloop (default: warm-up, forked workers)"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows-per-month", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    subreaper = become_subreaper()
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
        loads = []
        for i in range(args.repeats):
            order = names[i % 3:] + names[:i % 3]
            loads.append(os.getloadavg()[0])
            res = {k: sweep(project, k) for k in order}
            rounds.append(res)
            print(f"round {i + 1} (load {loads[-1]:.2f}): " + ", ".join(
                f"{k} {res[k]['wall']:.1f} s/{res[k]['cpu']:.1f} cpu/"
                f"{res[k]['peak']:.0f} MiB" for k in order), file=sys.stderr)
    med = lambda k, f: statistics.median(r[k][f] for r in rounds)  # noqa: E731
    spread = lambda k, f, fmt: (f"{fmt.format(min(r[k][f] for r in rounds))}–"  # noqa: E731
                                f"{fmt.format(max(r[k][f] for r in rounds))}")
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, load average (1 min) at "
          f"the start of each round {', '.join(f'{x:.2f}' for x in loads)}, at the end "
          f"{os.getloadavg()[0]:.2f}; python {platform.python_version()}; "
          f"{args.rows_per_month * 6} training rows; 8 members; {args.repeats} rounds; "
          f"CPU and memory of the whole process tree (orphans "
          f"{'counted' if subreaper else 'NOT counted: no subreaper'}: "
          + ", ".join(f"{k} {max(r[k]['orphans'] for r in rounds)}" for k in names)
          + " at most per sweep), memory sampled every 20 ms\n")
    left = max(r[k]["left"] for r in rounds for k in names)
    if left:
        print(f"WARNING: up to {left} process(es) of a sweep were still running 120 s after it "
              "exited; their CPU is not counted\n")
    print("| launcher | wall s, median (min–max) | CPU s, median (min–max) | CPU / wall | "
          "peak tree RSS MiB, median (min–max) | data runs | split runs | train runs |")
    print("|---|---|---|---|---|---|---|---|")
    for key, name in LAUNCHERS:
        print(f"| {name} | {med(key, 'wall'):.1f} ({spread(key, 'wall', '{:.1f}')}) | "
              f"{med(key, 'cpu'):.1f} ({spread(key, 'cpu', '{:.1f}')}) | "
              f"{statistics.median(r[key]['cpu'] / r[key]['wall'] for r in rounds):.2f} | "
              f"{med(key, 'peak'):.0f} ({spread(key, 'peak', '{:.0f}')}) | "
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

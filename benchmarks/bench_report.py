"""How long ``specloop report`` takes, and how large its file is, on the fraud example.

Usage (from a checkout with the package installed in .venv)::

    .venv/bin/python benchmarks/bench_report.py              # 5 rounds each
    .venv/bin/python benchmarks/bench_report.py --repeats 9 --project /tmp/fraud

The fraud example is copied to a temporary folder (or ``--project``), its data generated and
its loop run once (all six months: one retrain, one promotion). Then each round runs, as
separate processes, as a user would: ``specloop report --loop`` (the loop's report: the issue
asks for it in under 2 s and under 2 MB) and ``specloop report`` (the first run's model card,
which loads the model: importing skops is most of its time). Printed: the median and range of
the wall time of the whole command, the time the command reports for itself, and the size.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPECLOOP = str(Path(sys.executable).with_name("specloop"))
GOAL_SECONDS, GOAL_BYTES = 2.0, 2 * 1024 * 1024


def specloop(*args: str, cwd: Path) -> tuple[float, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    started = time.perf_counter()
    res = subprocess.run([SPECLOOP, *args], cwd=cwd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    if res.returncode != 0:
        sys.exit(f"specloop {' '.join(args)} failed:\n{res.stderr}")
    return seconds, res.stdout


def prepare(project: Path) -> None:
    src = ROOT / "projects" / "fraud_detection"
    shutil.copytree(src, project, ignore=lambda d, names: [
        n for n in names if Path(d) == src and n in (".specloop", "data", "deploy")])
    subprocess.run([sys.executable, str(project / "generate.py")], check=True,
                   capture_output=True)
    print("running the fraud loop once …", flush=True)
    specloop("loop", cwd=project)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--project", type=Path, help="where to put the fraud project "
                        "(default: a temporary folder); reused if it has run its loop")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        project = args.project or Path(tmp) / "fraud_detection"
        if not (project / ".specloop" / "registry.db").exists():
            prepare(project)
        for label, extra in (("loop report", ["--loop"]), ("run report", [])):
            out = Path(tmp) / f"{label.split()[0]}.html"
            walls, own = [], []
            for _ in range(args.repeats):
                wall, stdout = specloop("report", *extra, "-o", str(out), cwd=project)
                walls.append(wall)
                own.append(float(re.search(r"in ([\d.]+) s", stdout)[1]))
            size = out.stat().st_size
            goal = "" if label != "loop report" else (
                f"  goal < {GOAL_SECONDS:.0f} s and < 2 MB: "
                + ("met" if statistics.median(walls) < GOAL_SECONDS and size < GOAL_BYTES
                   else "MISSED"))
            print(f"{label:<12} command {statistics.median(walls):.2f} s (range "
                  f"{min(walls):.2f}–{max(walls):.2f}), inside the command "
                  f"{statistics.median(own):.2f} s, file {size / 1024:.0f} kB{goal}")


if __name__ == "__main__":
    main()

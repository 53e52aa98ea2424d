"""Benchmark of the ``batch`` deploy target: peak memory and speed against the chunk size.

Usage (with specloop installed in the running Python)::

    python benchmarks/bench_batch.py                       # 1,000,000 rows
    python benchmarks/bench_batch.py --rows 200000 --chunks 1000 10000 100000

It copies the fraud project to a temporary folder, trains once, writes a large CSV to
score (the incoming months repeated), and then runs ``specloop run deploy=batch`` once per
chunk size, each in a fresh process, recording the process's peak resident memory
(``ru_maxrss``) and wall time. The baseline is the same run scoring a one-row file (imports,
the model): what remains above it is what scoring the rows costs. The last chunk size equal to the row count is
"the whole file at once", what a plain ``pd.read_csv`` + ``predict`` would hold.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def measure(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """``(peak RSS in MiB, wall seconds)`` of one command in a fresh process."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr.read().decode()[-2000:]}")
    return usage.ru_maxrss / 1024, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunks", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    args = parser.parse_args()
    cli = [sys.executable, "-m", "specloop.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "fraud_detection"
        src = ROOT / "projects" / "fraud_detection"
        shutil.copytree(src, project, ignore=lambda d, names: [
            n for n in names if Path(d) == src and n in (".specloop", "data", "deploy")])
        subprocess.run([sys.executable, str(project / "generate.py")], check=True,
                       capture_output=True)
        months = sorted((project / "data" / "incoming").glob("*.csv"))
        header = months[0].read_text().splitlines()[0]
        body = [line for m in months for line in m.read_text().splitlines()[1:]]
        big = project / "data" / "big.csv"
        with open(big, "w") as fh:
            fh.write(header + "\n")
            for i in range(args.rows):
                fh.write(body[i % len(body)] + "\n")
        size_mb = big.stat().st_size / 2**20
        (project / "data" / "one.csv").write_text(header + "\n" + body[0] + "\n")
        measure([*cli, "run", "deploy=none"], project)  # trains once
        base_rss, base_wall = measure([*cli, "run", "deploy=batch", "deploy.progress=false",
                                       "deploy.input.path=data/one.csv"], project)
        print(f"input: {args.rows:,} rows, {size_mb:.0f} MiB CSV; baseline (the same run "
              f"scoring one row): {base_rss:.0f} MiB peak, {base_wall:.2f} s\n")
        print("| chunk_size | peak RSS | above baseline | wall | rows/s |")
        print("|---:|---:|---:|---:|---:|")
        for chunk in [*args.chunks, args.rows]:
            rss, wall = measure([*cli, "run", "deploy=batch", "deploy.input.path=data/big.csv",
                                 f"deploy.chunk_size={chunk}", "deploy.progress=false",
                                 f"deploy.output=deploy/scores-{chunk}.parquet"], project)
            label = f"{chunk:,}" + (" (whole file)" if chunk == args.rows else "")
            print(f"| {label} | {rss:.0f} MiB | {rss - base_rss:.0f} MiB | {wall:.2f} s | "
                  f"{args.rows / max(wall - base_wall, 1e-9):,.0f} |")


if __name__ == "__main__":
    main()

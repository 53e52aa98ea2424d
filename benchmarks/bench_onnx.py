"""ONNX Runtime vs scikit-learn serving: ``specloop serve --runtime onnx`` against the
scikit-learn runtime (with its compiled fast path, and without it), on the fraud-detection
champion, over loopback and in process.

Usage::

    .venv/bin/python benchmarks/bench_onnx.py [--rounds 5] [--requests 500]

Three servers are up for the whole run (``OMP_NUM_THREADS=1``, one worker each, request
logging on as by default): ``sklearn`` (the default: the compiled fast path),
``sklearn-pipeline`` (``plugins.serve.fast_path=false``: the pipeline's ``predict_proba`` on
a DataFrame) and ``onnx``. Each round measures every server in turn, in a rotating order:

1. single-row latency p50/p99: one keep-alive client, ``--requests`` requests in a row;
2. 100-row batch latency p50: one keep-alive client, ``--requests``/5 requests in a row;

and in process, the server's own predict function (records → lists) for one row and for 100.
The table shows medians over rounds; ratios are onnx / other, paired per round, then the
median. Rows are records of an incoming month.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_serving import (SPECLOOP, free_port, prepare, sequential, stop,  # noqa: E402
                           wait_ready)

SERVERS = {"sklearn": [], "sklearn-pipeline": ["plugins.serve.fast_path=false"],
           "onnx": ["--runtime", "onnx"]}


def start(proj: Path, extra: list[str]) -> tuple[subprocess.Popen, int]:
    port = free_port()
    flags = [a for a in extra if a.startswith("--") or a == "onnx"]
    overrides = [a for a in extra if a not in flags]
    proc = subprocess.Popen([SPECLOOP, "serve", "--project", str(proj), "--port", str(port),
                             *flags, *overrides], env={**os.environ, "OMP_NUM_THREADS": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    wait_ready(port, "/ready", proc)
    return proc, port


def in_process(proj: Path, records: list[dict], runtime: str, fast_path: bool) -> dict:
    from threadpoolctl import threadpool_limits

    from specloop import make_context
    from specloop_serve._model import load_version

    ctx = make_context(proj)
    loaded = load_version(ctx, ctx.registry.resolve(ctx.model_name, "champion"), "champion",
                          fast_path, runtime)
    ctx.close()
    threadpool_limits(1)

    def p50(fn, reps: int) -> float:
        for i in range(20):
            fn(i)
        out = []
        for i in range(reps):
            t0 = time.perf_counter()
            fn(i)
            out.append(time.perf_counter() - t0)
        return statistics.median(out)

    return {"one": p50(lambda i: loaded.predict([records[i % len(records)]]), 1000),
            "hundred": p50(lambda i: loaded.predict(records[:100]), 100)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--requests", type=int, default=500)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="specloop-bench-onnx-"))
    proj = prepare(tmp)
    import pandas as pd

    frame = pd.read_csv(proj / "data" / "incoming" / "2024-10.csv")
    sig = json.loads((proj / "deploy" / "champion" / "signature.json").read_text())
    feats = [f["name"] for f in sig["inputs"]]
    records = json.loads(frame[feats].to_json(orient="records"))
    single = [json.dumps(r).encode() for r in records[:500]]
    batches = [json.dumps(records[i:i + 100]).encode() for i in range(0, 1000, 100)]

    servers = {name: start(proj, extra) for name, extra in SERVERS.items()}
    rounds: list[dict] = []
    try:
        names = list(servers)
        for r in range(args.rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            res = {}
            for name in order:
                port = servers[name][1]
                one = sequential(port, "/predict", single, args.requests)
                hundred = sequential(port, "/predict", batches, max(args.requests // 5, 20))
                res[name] = {"p50": one["p50"], "p99": one["p99"], "batch": hundred["p50"]}
            rounds.append(res)
            print(f"round {r + 1}: " + ", ".join(
                f"{n} {v['p50'] * 1e3:.3f}/{v['batch'] * 1e3:.2f} ms" for n, v in res.items()),
                flush=True)
    finally:
        for proc, _ in servers.values():
            stop(proc)
    local = {"sklearn": in_process(proj, records, "sklearn", True),
             "sklearn-pipeline": in_process(proj, records, "sklearn", False),
             "onnx": in_process(proj, records, "onnx", True)}

    def med(name: str, key: str) -> float:
        return statistics.median(r[name][key] for r in rounds)

    def ratio(name: str, key: str) -> float:
        return statistics.median(r["onnx"][key] / r[name][key] for r in rounds)

    print(f"\nHTTP, medians of {args.rounds} rounds (ms); ratio = onnx / runtime, paired")
    print(f"{'runtime':<18} {'1 row p50':>10} {'1 row p99':>10} {'100 rows p50':>13} "
          f"{'in-process 1':>13} {'in-process 100':>15} {'ratio 1 row':>12} "
          f"{'ratio 100':>10}")
    for name in servers:
        print(f"{name:<18} {med(name, 'p50') * 1e3:>10.3f} {med(name, 'p99') * 1e3:>10.3f} "
              f"{med(name, 'batch') * 1e3:>13.2f} {local[name]['one'] * 1e3:>13.3f} "
              f"{local[name]['hundred'] * 1e3:>15.2f} {ratio(name, 'p50'):>12.2f} "
              f"{ratio(name, 'batch'):>10.2f}")


if __name__ == "__main__":
    main()

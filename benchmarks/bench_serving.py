"""Serving benchmark: ``specloop serve`` over loopback vs the same model in process, and vs
``mlflow models serve`` on the same fitted model when an MLflow virtual environment is given.

Usage::

    .venv/bin/python benchmarks/bench_serving.py                      # specloop only
    .venv/bin/python benchmarks/bench_serving.py --mlflow-venv /tmp/mlflow-venv

MLflow is never a dependency of specloop: it is measured only from its own virtual
environment (``python3 -m venv /tmp/mlflow-venv && /tmp/mlflow-venv/bin/pip install mlflow``;
install the same scikit-learn version there so the pickled pipeline loads unchanged).

What is measured (``OMP_NUM_THREADS=1``, the fraud-detection project's champion, a
HistGradientBoosting pipeline with one-hot preprocessing, rows from an incoming month):

1. single-row latency p50/p99: one client, keep-alive, requests one after another;
2. single-row throughput: 4 client processes, keep-alive, for ``--seconds``;
3. 100-row batch throughput (rows/s): 4 client processes, 100 records per request;

and the same work in process: the pipeline's ``predict_proba`` on a prepared one-row /
100-row DataFrame, and the server's own predict function on the JSON records (the compiled
fast path when the pipeline allows one, else DataFrame + pipeline), so the table shows the
cost of HTTP. Client and server share the machine's cores, as they do in the peer numbers.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ROOT / "projects" / "fraud_detection"
SPECLOOP = str(Path(sys.executable).with_name("specloop"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port: int, path: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", path)
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("server did not become ready")


def _post(conn: http.client.HTTPConnection, path: str, body: bytes) -> None:
    """One keep-alive POST; anything but a 200 stops the benchmark."""
    conn.request("POST", path, body, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    if resp.status != 200:
        raise RuntimeError(f"status {resp.status}: {data[:200]!r}")


def _client(port: int, path: str, bodies: list[bytes], seconds: float, start: float,
            out: mp.Queue) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    while time.time() < start:
        time.sleep(0.001)
    n, i, lat = 0, 0, []
    end = start + seconds
    while True:
        if time.time() >= end:
            break
        t0 = time.perf_counter()
        _post(conn, path, bodies[i % len(bodies)])
        lat.append(time.perf_counter() - t0)
        n += 1
        i += 1
    out.put((n, lat))


def load(port: int, path: str, bodies: list[bytes], clients: int, seconds: float) -> dict:
    """``clients`` processes hammering ``path`` for ``seconds``; requests/s and latencies."""
    q: mp.Queue = mp.Queue()
    start = time.time() + 0.5
    procs = [mp.Process(target=_client, args=(port, path, bodies[k::clients] or bodies,
                                               seconds, start, q)) for k in range(clients)]
    for p in procs:
        p.start()
    results = [q.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join()
    n = sum(r[0] for r in results)
    lat = sorted(x for r in results for x in r[1])
    return {"rps": n / seconds, "p50": lat[len(lat) // 2], "p99": lat[int(len(lat) * 0.99)]}


def sequential(port: int, path: str, bodies: list[bytes], n: int) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    lat = []
    for i in range(n + 50):
        t0 = time.perf_counter()
        _post(conn, path, bodies[i % len(bodies)])
        if i >= 50:
            lat.append(time.perf_counter() - t0)
    lat.sort()
    return {"p50": lat[len(lat) // 2], "p99": lat[int(len(lat) * 0.99)],
            "rps": len(lat) / sum(lat)}


def prepare(tmp: Path) -> Path:
    proj = tmp / "fraud_detection"
    shutil.copytree(PROJECT, proj, ignore=lambda d, names: [
        n for n in names if Path(d) == PROJECT and n in (".specloop", "data", "deploy")])
    subprocess.run([sys.executable, str(proj / "generate.py")], check=True, capture_output=True)
    subprocess.run([SPECLOOP, "run"], cwd=proj, check=True, capture_output=True)
    return proj


def in_process(proj: Path, records: list[dict], fast_path: bool) -> tuple[dict, object]:
    from specloop import make_context
    from specloop_serve._model import load_version

    ctx = make_context(proj)
    loaded = load_version(ctx, ctx.registry.resolve(ctx.model_name, "champion"), "champion",
                          fast_path)
    ctx.close()
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    model, contract = loaded.model, loaded.contract
    frames1 = [contract.frame([r]) for r in records[:200]]
    frame100 = contract.frame(records[:100])

    def timeit(fn, reps: int) -> list[float]:
        out = []
        for i in range(reps):
            t0 = time.perf_counter()
            fn(i)
            out.append(time.perf_counter() - t0)
        return sorted(out)

    for i in range(50):
        model.predict_proba(frames1[i % 200])
    raw = timeit(lambda i: model.predict_proba(frames1[i % 200]), 2000)
    full = timeit(lambda i: loaded.predict([records[i % len(records)]]), 2000)
    batch = timeit(lambda i: model.predict_proba(frame100), 200)
    fbatch = timeit(lambda i: loaded.predict(records[:100]), 200)
    return {"raw_p50": raw[len(raw) // 2], "raw_p99": raw[int(len(raw) * 0.99)],
            "full_p50": full[len(full) // 2], "full_p99": full[int(len(full) * 0.99)],
            "raw_rps": 1 / statistics.mean(raw), "full_rps": 1 / statistics.mean(full),
            "batch_rows_s": 100 / statistics.median(batch),
            "fbatch_rows_s": 100 / statistics.median(fbatch),
            "fast_path": loaded.fast is not None}, loaded


def measure(port: int, path: str, single: list[bytes], batches: list[bytes], args) -> dict:
    seq = sequential(port, path, single, args.requests)
    conc = load(port, path, single, args.clients, args.seconds)
    bat = load(port, path, batches, args.clients, args.seconds)
    return {"p50": seq["p50"], "p99": seq["p99"], "seq_rps": seq["rps"], "rps": conc["rps"],
            "conc_p50": conc["p50"], "conc_p99": conc["p99"], "batch_rows_s": bat["rps"] * 100}


def start_specloop(proj: Path, args) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [SPECLOOP, "serve", "--project", str(proj), "--port", str(port),
           "--workers", str(args.workers), *args.override]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    wait_ready(port, "/ready", proc)
    return proc, port


MLFLOW_SAVE = """
import pickle, sys, mlflow.sklearn
model = pickle.load(open(sys.argv[1], "rb"))
mlflow.sklearn.save_model(model, sys.argv[2], serialization_format="cloudpickle")
"""


def start_mlflow(venv: Path, loaded, tmp: Path) -> tuple[subprocess.Popen, int]:
    import pickle

    pkl = tmp / "model.pkl"
    pkl.write_bytes(pickle.dumps(loaded.model))
    out = tmp / "mlflow_model"
    subprocess.run([str(venv / "bin" / "python"), "-c", MLFLOW_SAVE, str(pkl), str(out)],
                   check=True, capture_output=True)
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MLFLOW_TRACKING_URI": f"file://{tmp}/mlruns",
           "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.Popen([str(venv / "bin" / "mlflow"), "models", "serve", "-m", str(out),
                             "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port),
                             "-w", "1"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    wait_ready(port, "/ping", proc, timeout=180)
    return proc, port


def stop(proc: subprocess.Popen) -> None:
    import signal

    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


def med(rounds: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rounds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mlflow-venv", type=Path, default=None,
                    help="a virtual environment with mlflow installed (skipped when absent)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="rounds; the servers are measured alternately, medians reported")
    ap.add_argument("--seconds", type=float, default=6.0, help="per throughput measurement")
    ap.add_argument("--requests", type=int, default=1000, help="sequential latency requests")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--workers", type=int, default=1, help="specloop serve workers")
    ap.add_argument("--override", action="append", default=[],
                    help="override for specloop serve, e.g. plugins.serve.log.enabled=false")
    args = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = "1"
    import pandas as pd

    procs = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        proj = prepare(tmp)
        frame = pd.read_csv(proj / "data" / "incoming" / "2024-07.csv")
        feats = [f["name"] for f in json.loads(
            next((proj / ".specloop" / "artifacts").glob("*/signature.json")).read_text())
            ["inputs"]]
        records = json.loads(frame[feats].to_json(orient="records"))
        single = [json.dumps(r).encode() for r in records[:500]]
        batches = [json.dumps(records[i:i + 100]).encode() for i in range(0, 1000, 100)]
        inproc, loaded = in_process(proj, records,
                                    "plugins.serve.fast_path=false" not in args.override)
        servers = {}
        try:
            proc, port = start_specloop(proj, args)
            procs.append(proc)
            servers["specloop"] = (port, "/predict", single, batches)
            if args.mlflow_venv and (args.mlflow_venv / "bin" / "mlflow").exists():
                proc, port = start_mlflow(args.mlflow_venv, loaded, tmp)
                procs.append(proc)
                servers["mlflow"] = (port, "/invocations",
                                     [json.dumps({"dataframe_records": [r]}).encode()
                                      for r in records[:500]],
                                     [json.dumps({"dataframe_records": records[i:i + 100]})
                                      .encode() for i in range(0, 1000, 100)])
            elif args.mlflow_venv:
                print(f"(no mlflow in {args.mlflow_venv}: MLflow skipped)")
            results: dict[str, list[dict]] = {name: [] for name in servers}
            for r in range(args.rounds):
                order = list(servers) if r % 2 == 0 else list(reversed(servers))
                for name in order:
                    port, path, one, many = servers[name]
                    results[name].append(measure(port, path, one, many, args))
                    print(f"round {r + 1} {name}: {results[name][-1]['rps']:.0f} req/s, "
                          f"{results[name][-1]['batch_rows_s']:.0f} batch rows/s",
                          file=sys.stderr, flush=True)
        finally:
            for proc in procs:
                stop(proc)

    spec = {k: med(results["specloop"], k) for k in results["specloop"][0]}
    mlf = {k: med(results["mlflow"], k) for k in results["mlflow"][0]} \
        if "mlflow" in results else None
    ms = lambda s: f"{s * 1000:.2f} ms"  # noqa: E731
    rows = [
        ("single-row latency p50 (1 client, keep-alive)", ms(spec["p50"]),
         ms(inproc["raw_p50"]) + " / " + ms(inproc["full_p50"]), mlf and ms(mlf["p50"])),
        ("single-row latency p99", ms(spec["p99"]),
         ms(inproc["raw_p99"]) + " / " + ms(inproc["full_p99"]), mlf and ms(mlf["p99"])),
        (f"single-row req/s, {args.clients} clients", f"{spec['rps']:.0f}",
         f"{inproc['raw_rps']:.0f} / {inproc['full_rps']:.0f} (1 thread)",
         mlf and f"{mlf['rps']:.0f}"),
        ("  p50 / p99 under that load", f"{ms(spec['conc_p50'])} / {ms(spec['conc_p99'])}",
         "", mlf and f"{ms(mlf['conc_p50'])} / {ms(mlf['conc_p99'])}"),
        (f"100-row batches, rows/s, {args.clients} clients", f"{spec['batch_rows_s']:.0f}",
         f"{inproc['batch_rows_s']:.0f} / {inproc['fbatch_rows_s']:.0f} (1 thread)",
         mlf and f"{mlf['batch_rows_s']:.0f}"),
    ]
    head = ("measure (median of rounds)", f"specloop serve ({args.workers} worker)",
            "in process (pipeline predict_proba / server predict fn)", "mlflow models serve")
    widths = [max(len(str(r[i] or "-")) for r in [head, *rows]) for i in range(4)]
    print()
    for r in [head, tuple("-" * w for w in widths), *rows]:
        print("  ".join(str(c or "-").ljust(w) for c, w in zip(r, widths)).rstrip())
    print()
    print(f"server predict fn: {'compiled fast path' if inproc['fast_path'] else 'pipeline'}")
    print(f"single row, p50: HTTP costs {ms(spec['p50'] - inproc['full_p50'])} over the "
          f"server's own predict function in process; a request over HTTP takes "
          f"{ms(spec['p50'])} against {ms(inproc['raw_p50'])} for the pipeline's predict_proba "
          f"on a prepared DataFrame ({inproc['raw_p50'] / spec['p50']:.1f}x)")
    if mlf:
        ratios = [(a["rps"] / b["rps"], a["batch_rows_s"] / b["batch_rows_s"])
                  for a, b in zip(results["specloop"], results["mlflow"])]
        print(f"specloop / mlflow, paired per round (median): single-row throughput "
              f"{statistics.median(x for x, _ in ratios):.1f}x, batch rows/s "
              f"{statistics.median(y for _, y in ratios):.1f}x; p50 latency "
              f"{mlf['p50'] / spec['p50']:.1f}x lower")
    print(f"machine: {os.cpu_count()} cores shared by clients and server; load average at "
          f"the end {os.getloadavg()[0]:.1f}; {args.rounds} rounds")


if __name__ == "__main__":
    main()

"""End-to-end benchmark of the ``specloop`` command line against a plain scikit-learn script.

Usage (from a checkout with specloop installed in the running interpreter's environment)::

    .venv/bin/python benchmarks/bench_pipeline.py                 # 100k rows, 5 rounds
    .venv/bin/python benchmarks/bench_pipeline.py --rows 20000 --repeats 9

What is measured, every command as a child process, wall-clock, ``OMP_NUM_THREADS=1``:

1. ``specloop run`` on a fresh store vs a plain scikit-learn script doing the same work
   (read the CSV, stratified 80/20 split, one-hot + HistGradientBoostingClassifier(max_iter=100),
   the same six metrics on the test rows, the fitted pipeline pickled to a file). The
   composed spec may come from the per-user composition cache (as after any ``plan`` or
   ``validate``); row 1b empties that cache too, so Hydra composes from scratch; row 1c
   writes the artifacts in the run's own process (``SPECLOOP_ARTIFACT_WRITER=thread``)
   instead of the artifact writer process, for a paired comparison of the two. With
   ``--baseline DIR`` (a source tree of another revision, e.g. from ``git archive REV
   framework plugins | tar -x -C DIR``), row 1d runs that revision's ``specloop run`` in the
   same rounds (its ``framework/`` and ``plugins/`` put first on ``PYTHONPATH``): a before/after
   comparison paired round by round.
2. ``specloop run`` again with the store kept (nothing changed) vs the first run of the same
   round, and ``specloop plan`` on the unchanged project.
3. ``specloop plugins`` and ``specloop --version`` cold start.

Hygiene: one untimed warm-up round; within a round the order of the two compared commands
alternates from round to round; ratios are paired per round and the table reports medians.
The project is a temporary folder (the fraud-detection ``conf/`` plus generated data); the
checkout's ``projects/`` folder is never touched.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import re
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
SEED = 7  # the project's seed (conf/config.yaml: project.seed)

# The plain script: what a scikit-learn user writes by hand for the same job.
PLAIN_SCRIPT = r'''
import pickle
import sys

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import (accuracy_score, average_precision_score, f1_score,
                             precision_score, recall_score, roc_auc_score)
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

csv_path, model_path, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
frame = pd.read_csv(csv_path)
y = frame["is_fraud"]
X = frame.drop(columns=["is_fraud", "transaction_id", "month"])
categorical = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
numeric = [c for c in X.columns if c not in categorical]
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.2, random_state=seed, stratify=y)
model = Pipeline([
    ("preprocess", ColumnTransformer([
        ("num", "passthrough", numeric),
        ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical),
    ])),
    ("estimator", HistGradientBoostingClassifier(max_iter=100, random_state=seed)),
])
model.fit(X_train, y_train)
proba = model.predict_proba(X_test)[:, 1]
labels = (proba >= 0.5).astype(int)
metrics = {
    "roc_auc": roc_auc_score(y_test, proba),
    "average_precision": average_precision_score(y_test, proba),
    "f1": f1_score(y_test, labels, zero_division=0),
    "precision": precision_score(y_test, labels, zero_division=0),
    "recall": recall_score(y_test, labels, zero_division=0),
    "accuracy": accuracy_score(y_test, labels),
}
with open(model_path, "wb") as fh:
    pickle.dump(model, fh, protocol=pickle.HIGHEST_PROTOCOL)
print("metrics: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
'''


# -- helpers --------------------------------------------------------------------------------
def _load_generator():
    spec = importlib.util.spec_from_file_location("_fraud_generate", PROJECT / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _specloop_exe() -> str:
    exe = Path(sys.executable).parent / "specloop"
    if exe.exists():
        return str(exe)
    found = shutil.which("specloop")
    if not found:
        sys.exit("bench_pipeline: the specloop command is not installed next to this Python "
                 "(run it with the virtual environment's python)")
    return found


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = "1"
    env.pop("SPECLOOP_FULL_ERROR", None)
    # Measure an installed state: bytecode compiled once and reused (to a private cache
    # folder, so the checkout is not written to), not recompiled by every process.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


ENV = _env()


CPU: dict[str, float] = {}  # CPU seconds (user + sys) of the last child, by label


def timed(cmd: list[str], cwd: Path | None = None, label: str = "",
          env: dict[str, str] | None = None) -> tuple[float, str]:
    """Run ``cmd`` as a child process; return (wall seconds, stdout). Fails loudly.

    The child's CPU time (user + sys) is kept in ``CPU[label]``: less sensitive than wall
    time to other load on a shared machine, so it is reported next to the wall figures.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env={**ENV, **(env or {})}, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU[label] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        sys.exit(f"bench_pipeline: {' '.join(cmd)} exited {proc.returncode}\n"
                 f"{proc.stdout}\n{proc.stderr}")
    return elapsed, proc.stdout


def _metric(out: str, name: str = "roc_auc") -> str | None:
    m = re.search(rf"{name}=([0-9.]+)", out)
    return m.group(1) if m else None


def _fresh_store(project: Path) -> None:
    for sub in (".specloop", "deploy", "outputs", "multirun"):
        shutil.rmtree(project / sub, ignore_errors=True)


def _check_stages(out: str, want: str, what: str) -> None:
    actions = re.findall(r"^(data|split|train|evaluate|register|deploy)\s+(ran|cached)\b",
                         out, flags=re.M)
    if len(actions) != 6 or any(a != want for _, a in actions):
        sys.exit(f"bench_pipeline: {what}: expected every stage {want!r}, got {actions}\n{out}")


def _median(xs: list[float]) -> float:
    return statistics.median(xs)


def _machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        out = subprocess.run(["lscpu"], stdout=subprocess.PIPE, text=True, check=True).stdout
        m = re.search(r"^Model name:\s*(.+)$", out, flags=re.M)
        if m:
            model = m.group(1).strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return f"{os.cpu_count()} cores, {model}"


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    parts = [f"Python {platform.python_version()}"]
    for dist in ("specloop", "scikit-learn", "pandas", "hydra-core"):
        try:
            parts.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:
            pass
    return ", ".join(parts)


# -- one round ------------------------------------------------------------------------------
def one_round(i: int, project: Path, tmp: Path, specloop: str,
              baseline: Path | None = None) -> dict[str, float]:
    csv_path = project / "data" / "train.csv"
    plain = [sys.executable, str(tmp / "plain.py"), str(csv_path), str(tmp / "model.pkl"),
             str(SEED)]
    run = [specloop, "run", "--project", str(project)]
    r: dict[str, float] = {}

    def fresh_run() -> None:
        _fresh_store(project)
        r["run"], out = timed(run, label="run")
        r["cpu_run"] = CPU["run"]
        _check_stages(out, "ran", "first specloop run")
        r["auc_specloop"] = _metric(out)

    def cold_run() -> None:  # nothing cached at all: the composed-spec cache is emptied too
        _fresh_store(project)
        shutil.rmtree(Path(ENV["SPECLOOP_CACHE_DIR"]), ignore_errors=True)
        r["cold"], out = timed(run, label="cold")
        _check_stages(out, "ran", "cold specloop run")

    def thread_run() -> None:  # artifacts written in process, not by the writer process
        _fresh_store(project)
        r["thread"], out = timed(run, label="thread", env={"SPECLOOP_ARTIFACT_WRITER": "thread"})
        r["cpu_thread"] = CPU["thread"]
        _check_stages(out, "ran", "specloop run with SPECLOOP_ARTIFACT_WRITER=thread")

    def baseline_run() -> None:  # another revision's code, same command and data
        _fresh_store(project)
        path = os.pathsep.join(str(baseline / d) for d in ("framework", "plugins"))
        r["baseline"], out = timed(run, label="baseline", env={"PYTHONPATH": path})
        r["cpu_baseline"] = CPU["baseline"]
        _check_stages(out, "ran", "baseline specloop run")
        r["auc_baseline"] = _metric(out)

    def plain_run() -> None:
        r["plain"], out = timed(plain, label="plain")
        r["cpu_plain"] = CPU["plain"]
        r["auc_plain"] = _metric(out)

    # 1. first run vs the plain script, order alternating round by round
    steps = [plain_run, cold_run, thread_run, fresh_run, *([baseline_run] if baseline else [])]
    for step in (steps if i % 2 == 0 else steps[::-1]):
        step()
    # 2. unchanged re-run (store kept) and plan; alternate their order too
    def rerun() -> None:
        r["rerun"], out = timed(run, label="rerun")
        r["cpu_rerun"] = CPU["rerun"]
        _check_stages(out, "cached", "unchanged specloop run")

    def plan() -> None:
        r["plan"], out = timed([specloop, "plan", "--project", str(project)])
        if "everything is cached" not in out:
            sys.exit(f"bench_pipeline: plan on the unchanged project would run stages:\n{out}")

    for step in ((rerun, plan) if i % 2 == 0 else (plan, rerun)):
        step()
    # 3. cold start, alternating, and the bare interpreter as a floor
    cold = [("plugins", [specloop, "plugins"]), ("version", [specloop, "--version"]),
            ("python", [sys.executable, "-c", "pass"])]
    for name, cmd in (cold if i % 2 == 0 else cold[::-1]):
        r[name], _ = timed(cmd)
    return r


# -- report ---------------------------------------------------------------------------------
def _verdict(value: float, goal: float, stretch: float | None = None) -> str:
    if stretch is not None and value <= stretch:
        return "PASS (stretch)"
    return "PASS" if value <= goal else "MISS"


def report(rounds: list[dict], args: argparse.Namespace, notes: list[str]) -> str:
    col = {k: [r[k] for r in rounds] for k in rounds[0] if not k.startswith(("auc", "cpu"))}
    med = {k: _median(v) for k, v in col.items()}
    ratio_run = [r["run"] / r["plain"] for r in rounds]
    ratio_cold = [r["cold"] / r["plain"] for r in rounds]
    ratio_thread = [r["thread"] / r["plain"] for r in rounds]
    cpu_thread = _median([r["cpu_thread"] / r["cpu_plain"] for r in rounds])
    ratio_rerun = [r["rerun"] / r["run"] for r in rounds]
    ratio_plan = [r["plan"] / r["run"] for r in rounds]
    rr, rre, rpl = _median(ratio_run), _median(ratio_rerun), _median(ratio_plan)
    cpu_run = _median([r["cpu_run"] / r["cpu_plain"] for r in rounds])
    cpu_rerun = _median([r["cpu_rerun"] / r["cpu_run"] for r in rounds])

    def spread(xs: list[float], fmt: str) -> str:
        return f"{fmt.format(min(xs))}–{fmt.format(max(xs))}"

    rows = [
        ("1", "`specloop run`, fresh store", f"{med['run']:.2f} s",
         f"plain script {med['plain']:.2f} s", f"**{rr:.2f}×** ({spread(ratio_run, '{:.2f}')})",
         f"{cpu_run:.2f}×", "≤ 1.1× (PEERS.md; issue: 1.2×)", _verdict(rr, 1.1)),
        ("1b", "`specloop run`, fresh store and no composed-spec cache", f"{med['cold']:.2f} s",
         f"plain script {med['plain']:.2f} s",
         f"{_median(ratio_cold):.2f}× ({spread(ratio_cold, '{:.2f}')})", "—", "—", "info"),
        ("1c", "`specloop run`, fresh store, artifacts written in process "
         "(`SPECLOOP_ARTIFACT_WRITER=thread`)", f"{med['thread']:.2f} s",
         f"plain script {med['plain']:.2f} s",
         f"{_median(ratio_thread):.2f}× ({spread(ratio_thread, '{:.2f}')})",
         f"{cpu_thread:.2f}×", "—", "info"),
        ("2", "`specloop run`, unchanged (store kept)", f"{med['rerun']:.2f} s",
         f"first run {med['run']:.2f} s", f"**{rre:.1%}** ({spread(ratio_rerun, '{:.1%}')})",
         f"{cpu_rerun:.1%}", "≤ 5 %", _verdict(rre, 0.05)),
        ("2b", "`specloop plan`, unchanged", f"{med['plan']:.2f} s",
         f"first run {med['run']:.2f} s", f"{rpl:.1%} ({spread(ratio_plan, '{:.1%}')})",
         "—", "—", "info"),
        ("3", "`specloop plugins`, cold start", f"{med['plugins']:.2f} s",
         f"`python -c pass` {med['python']:.2f} s",
         f"({spread(col['plugins'], '{:.2f}')} s)", "—", "< 1 s",
         "PASS" if med["plugins"] < 1.0 else "MISS"),
        ("3b", "`specloop --version`, cold start", f"{med['version']:.2f} s",
         f"`python -c pass` {med['python']:.2f} s",
         f"({spread(col['version'], '{:.2f}')} s)", "—", "—", "info"),
    ]
    head = ("#", "measurement", "specloop (median)", "reference (median)",
            "wall ratio, paired median (min–max)", "CPU ratio", "goal", "result")
    if "baseline" in rounds[0]:
        ratio_base = [r["run"] / r["baseline"] for r in rounds]
        ratio_bp = [r["baseline"] / r["plain"] for r in rounds]
        rows.insert(3, (
            "1d", f"`specloop run`, fresh store, baseline revision ({args.baseline.name})",
            f"{med['baseline']:.2f} s", f"plain script {med['plain']:.2f} s",
            f"{_median(ratio_bp):.2f}× ({spread(ratio_bp, '{:.2f}')}); row 1 / row 1d: "
            f"**{_median(ratio_base):.3f}×** ({spread(ratio_base, '{:.3f}')})",
            f"{_median([r['cpu_baseline'] / r['cpu_plain'] for r in rounds]):.2f}×",
            "—", "info"))
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    aucs = {(r["auc_specloop"], r["auc_plain"]) for r in rounds}
    same = all(a == b for a, b in aucs) and all(
        r.get("auc_baseline", r["auc_specloop"]) == r["auc_specloop"] for r in rounds)
    lines += [
        "",
        f"- data: {args.rows_actual:,} rows in train.csv ({args.rows_per_month:,} per month × 6), "
        f"{len(rounds)} timed rounds after 1 warm-up round; OMP_NUM_THREADS=1 in every child",
        "- verdicts use the wall-clock ratio; the CPU ratio (user + sys of the child, paired "
        "median) is shown because it is far less sensitive to other load on the machine",
        f"- ROC AUC on the test rows: specloop {sorted(aucs)[0][0]}, plain script "
        f"{sorted(aucs)[0][1]} ({'identical' if same else 'DIFFERENT'})",
        f"- machine: {_machine()}; {_versions()}",
    ]
    lines += [f"- note: {n}" for n in notes]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000,
                        help="rows in train.csv (default: 100000; rounded down to a multiple "
                             "of 6, one sixth per month)")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds (default: 5)")
    parser.add_argument("--budget", type=float, default=330.0,
                        help="seconds the whole benchmark may take; repeats are reduced to fit "
                             "(default: 330)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary project folder")
    parser.add_argument("--baseline", type=Path, default=None, metavar="DIR",
                        help="a source tree of another revision (holding framework/ and "
                             "plugins/): its 'specloop run' is timed in the same rounds (row 1d)")
    args = parser.parse_args(argv)
    if args.rows < 600 or args.repeats < 1:
        parser.error("--rows must be at least 600 and --repeats at least 1")
    if args.baseline is not None:
        args.baseline = args.baseline.resolve()
        if not (args.baseline / "framework" / "specloop").is_dir():
            parser.error(f"--baseline {args.baseline}: no framework/specloop/ in it")

    t0 = time.perf_counter()
    specloop = _specloop_exe()
    tmp = Path(tempfile.mkdtemp(prefix="specloop-bench-"))
    ENV["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    ENV["SPECLOOP_CACHE_DIR"] = str(tmp / "user-cache")  # composed specs, as in ~/.cache
    notes: list[str] = []
    try:
        project = tmp / "project"
        project.mkdir()
        shutil.copytree(PROJECT / "conf", project / "conf")
        args.rows_per_month = args.rows // 6
        summary = _load_generator().generate(project / "data", seed=SEED,
                                             rows_per_month=args.rows_per_month,
                                             months=6, train_months=6)
        args.rows_actual = summary["train"]["rows"]
        (tmp / "plain.py").write_text(PLAIN_SCRIPT, encoding="utf-8")
        print(f"project: {project} ({args.rows_actual:,} rows); warm-up round ...",
              file=sys.stderr, flush=True)

        w0 = time.perf_counter()
        # warm-up: page cache, .pyc files; not reported
        one_round(0, project, tmp, specloop, args.baseline)
        per_round = time.perf_counter() - w0
        left = args.budget - (time.perf_counter() - t0)
        fit = max(1, int(left // per_round))
        repeats = args.repeats
        if fit < repeats:
            repeats = fit
            notes.append(f"repeats reduced from {args.repeats} to {repeats} to stay within the "
                         f"{args.budget:.0f} s budget (one round takes {per_round:.0f} s); "
                         "raise --budget for more")
        rounds = []
        for i in range(repeats):
            print(f"round {i + 1}/{repeats} ...", file=sys.stderr, flush=True)
            rounds.append(one_round(i, project, tmp, specloop, args.baseline))
            print("  " + "  ".join(f"{k} {v:.2f}" for k, v in rounds[-1].items()
                                   if not k.startswith("auc")), file=sys.stderr, flush=True)
        notes.append(f"total benchmark time {time.perf_counter() - t0:.0f} s")
        print(report(rounds, args, notes))
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

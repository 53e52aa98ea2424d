"""End-to-end benchmark of the ``specloop`` command line against a plain scikit-learn script.

Usage (from a checkout with specloop installed in the running interpreter's environment)::

    .venv/bin/python benchmarks/bench_pipeline.py                 # 100k rows, 5 rounds
    .venv/bin/python benchmarks/bench_pipeline.py --rows 100000 1000000 --repeats 5 3 \\
        --budget 3600                                              # a table per data size
    .venv/bin/python benchmarks/bench_pipeline.py --rows 20000 --repeats 9

Every command runs as a child process with ``OMP_NUM_THREADS=1`` and is measured as a whole
process tree (``_proctree.py``): wall seconds until it exits; CPU seconds (user + sys) of the
command and all its descendants (the artifact writer, ``git``); the peak of the summed RSS of
the command and its live descendants, sampled every ``--interval`` seconds (10 ms by
default); and, for reference, the largest single process's ``ru_maxrss``.

1. ``specloop run`` on a fresh store vs a plain scikit-learn script doing the same work
   (read the CSV, stratified 80/20 split, one-hot + HistGradientBoostingClassifier(max_iter=100),
   the same six metrics on the test rows, the fitted pipeline pickled to a file). The
   per-user caches (composed spec, data md5s, skops' trusted types) are warm, as after any
   ``plan`` or ``validate``; row 1b empties them first; row 1c writes the artifacts in the
   run's own process (``SPECLOOP_ARTIFACT_WRITER=thread``). With ``--baseline DIR`` (a
   source tree of another revision, e.g. from ``git archive REV framework plugins | tar -x -C
   DIR``), row 1d runs that revision's ``specloop run`` in the same rounds (its
   ``framework/`` and ``plugins/`` first on ``PYTHONPATH``): before/after, paired per round.
2. With the store of that first run kept: ``specloop run`` unchanged, ``specloop plan``, and
   a one-parameter change (``model.params.max_iter``, default 100, set to a value not used
   before, 120, 121, ..., so that its composition is not cached, as for a user: ``data`` and
   ``split`` cached, ``train`` onwards computed), each against the first run of the round. With DVC
   installed (``--no-dvc`` skips it), row 2c pairs an unchanged ``specloop run`` with the
   no-op ``dvc repro`` of the exported 3-stage ``dvc.yaml`` in the project that
   ``bench_dvc.py`` sets up (git repository, data tracked with ``dvc add``, one ``dvc repro``).
3. ``specloop plugins`` and ``specloop --version`` cold start, ``python -c pass`` as the floor.

Hygiene: one untimed warm-up round; within a round the order of the compared commands
alternates from round to round (the parameter change necessarily follows the first run it
changes); ratios are paired per round and the tables report medians with the min–max spread;
the load average is recorded at the start of every round. Nothing asserts a timing: the
verdicts against the goals are printed. ``SPECLOOP_CACHE_DIR=off`` or
``SPECLOOP_ARTIFACT_WRITER=thread`` in the environment applies to every ``specloop`` command
(the before figures of those mechanisms); rows 1b and 1c are then left out. The project is
a temporary folder (the fraud-detection ``conf/`` plus generated data); the checkout's
``projects/`` folder is never touched.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
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
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _proctree import MIB, become_subreaper, measure  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ROOT / "projects" / "fraud_detection"
BIN = Path(sys.executable).parent
SEED = 7  # the project's seed (conf/config.yaml: project.seed)
STAGES = ("data", "split", "train", "evaluate", "register", "deploy")
# The one-parameter change: the project's default is 100; every round uses a value not used
# before (120, 121, ...), so that, as for a user changing a parameter, its composed spec is
# not in the per-user cache yet.
PARAM = "model.params.max_iter"
_PARAM_VALUES = itertools.count(120)
OFF = {"", "0", "off", "false", "no"}  # values of SPECLOOP_CACHE_DIR that switch caches off

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
def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_GENERATE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("_fraud_generate", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
summary = module.generate(sys.argv[2], seed=int(sys.argv[3]), rows_per_month=int(sys.argv[4]),
                          months=6, train_months=6)
print(json.dumps(summary["train"]))
"""


def _generate(out: Path, per_month: int) -> dict:
    """Write ``out/train.csv`` (six months) with the project's generator; return its summary.

    In a child process: this process stays small, because a child started from it inherits
    its size as the floor of its ``ru_maxrss`` (Linux charges the spawning process's
    high-water mark to the child at ``exec``).
    """
    done = subprocess.run([sys.executable, "-c", _GENERATE, str(PROJECT / "generate.py"),
                           str(out), str(SEED), str(per_month)], stdout=subprocess.PIPE,
                          text=True, check=True)
    return json.loads(done.stdout)


def _specloop_exe() -> str:
    exe = BIN / "specloop"
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
    env["DVC_NO_ANALYTICS"] = "1"
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.pop("SPECLOOP_FULL_ERROR", None)
    # Measure an installed state: bytecode compiled once and reused (to a private cache
    # folder, so the checkout is not written to), not recompiled by every process.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


ENV = _env()
INTERVAL = 0.01  # seconds between memory samples (--interval)


def timed(cmd: list[str], label: str, r: dict, cwd: Path | None = None,
          env: dict[str, str] | None = None) -> str:
    """Run ``cmd`` as a child process, keep its figures in ``r[label]``; return its stdout.

    Fails loudly when the command fails.
    """
    m = measure(cmd, cwd=cwd, env={**ENV, **(env or {})}, interval=INTERVAL)
    if m.returncode != 0:
        sys.exit(f"bench_pipeline: {' '.join(cmd)} exited {m.returncode}\n"
                 f"{m.stdout}\n{m.stderr}")
    r[label] = {"wall": m.wall, "cpu": m.cpu, "peak": m.peak_tree_rss, "maxrss": m.max_rss,
                "procs": m.processes, "orphans": m.orphans, "left": m.still_running,
                "samples": m.samples, "sampler_cpu": m.sampler_cpu}
    return m.stdout


def _metric(out: str, name: str = "roc_auc") -> str | None:
    m = re.search(rf"{name}=([0-9.]+)", out)
    return m.group(1) if m else None


STORE_PARTS = (".specloop", "deploy", "outputs", "multirun")


def _fresh_store(project: Path) -> None:
    for sub in STORE_PARTS:
        shutil.rmtree(project / sub, ignore_errors=True)


def _move_store(src: Path, dst: Path) -> None:
    """Move a project's store (and deploy folder) from ``src`` to ``dst`` (same file system)."""
    dst.mkdir(parents=True, exist_ok=True)
    for sub in STORE_PARTS:
        shutil.rmtree(dst / sub, ignore_errors=True)
        if (src / sub).exists():
            os.replace(src / sub, dst / sub)


def _check_stages(out: str, want: dict[str, str], what: str) -> None:
    """Fail unless every stage in ``want`` has the action it names (``ran``/``cached``)."""
    got = dict(re.findall(r"^(data|split|train|evaluate|register|deploy)\s+(ran|cached)\b",
                          out, flags=re.M))
    if set(got) != set(STAGES) or any(got[s] != a for s, a in want.items()):
        sys.exit(f"bench_pipeline: {what}: expected {want}, got {got}\n{out}")


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
    for dist in ("specloop", "scikit-learn", "pandas", "pyarrow", "hydra-core", "skops", "dvc"):
        try:
            parts.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:
            pass
    return ", ".join(parts)


@dataclass
class Bench:
    """What one data size's rounds work on."""

    project: Path
    tmp: Path
    specloop: str
    variants: tuple[str, ...]  # "cold", "thread": the in-round variants of the first run
    baseline: Path | None = None
    dvc_project: Path | None = None


# -- one round ------------------------------------------------------------------------------
def one_round(i: int, b: Bench) -> dict:
    project, tmp, specloop = b.project, b.tmp, b.specloop
    csv_path = project / "data" / "train.csv"
    plain = [sys.executable, str(tmp / "plain.py"), str(csv_path), str(tmp / "model.pkl"),
             str(SEED)]
    run = [specloop, "run", "--project", str(project)]
    kept = tmp / "kept-store"
    r: dict = {"load": os.getloadavg(), "auc": {}}

    def alternate(steps: list) -> list:
        return steps if i % 2 == 0 else steps[::-1]

    ran = {s: "ran" for s in STAGES}

    def fresh_run() -> None:
        _fresh_store(project)
        out = timed(run, "run", r)
        _check_stages(out, ran, "first specloop run")
        r["auc"]["run"] = _metric(out)
        _move_store(project, kept)  # part 2 starts from this run's store

    def cold_run() -> None:  # nothing cached at all: the per-user caches are emptied too
        _fresh_store(project)
        shutil.rmtree(Path(ENV["SPECLOOP_CACHE_DIR"]), ignore_errors=True)
        _check_stages(timed(run, "cold", r), ran, "cold specloop run")

    def thread_run() -> None:  # artifacts written in process, not by the writer process
        _fresh_store(project)
        out = timed(run, "thread", r, env={"SPECLOOP_ARTIFACT_WRITER": "thread"})
        _check_stages(out, ran, "specloop run with SPECLOOP_ARTIFACT_WRITER=thread")

    def baseline_run() -> None:  # another revision's code, same command and data
        _fresh_store(project)
        path = os.pathsep.join(str(b.baseline / d) for d in ("framework", "plugins"))
        out = timed(run, "baseline", r, env={"PYTHONPATH": path})
        _check_stages(out, ran, "baseline specloop run")
        r["auc"]["baseline"] = _metric(out)

    def plain_run() -> None:
        r["auc"]["plain"] = _metric(timed(plain, "plain", r))

    # 1. first run vs the plain script, order alternating round by round
    steps = [plain_run, *([cold_run] if "cold" in b.variants else []),
             *([thread_run] if "thread" in b.variants else []), fresh_run,
             *([baseline_run] if b.baseline else [])]
    for step in alternate(steps):
        step()

    # 2. from the first run's store: unchanged re-run and plan (alternating), then one
    # changed parameter (it must follow the first run it changes)
    _move_store(kept, project)

    def rerun() -> None:
        _check_stages(timed(run, "rerun", r), {s: "cached" for s in STAGES},
                      "unchanged specloop run")

    def plan() -> None:
        out = timed([specloop, "plan", "--project", str(project)], "plan", r)
        if "everything is cached" not in out:
            sys.exit(f"bench_pipeline: plan on the unchanged project would run stages:\n{out}")

    for step in alternate([rerun, plan]):
        step()
    change = f"{PARAM}={next(_PARAM_VALUES)}"
    out = timed([*run, change], "param", r)
    _check_stages(out, {"data": "cached", "split": "cached", "train": "ran", "evaluate": "ran"},
                  f"specloop run {change}")
    r["auc"]["param"] = _metric(out)

    # 2c. unchanged specloop run vs the no-op dvc repro, in the DVC-tracked git project
    if b.dvc_project is not None:
        def dvc_run() -> None:
            out = timed([specloop, "run"], "dvc_run", r, cwd=b.dvc_project)
            if " ran " in out:
                sys.exit(f"bench_pipeline: specloop run in the DVC project was not a no-op:\n{out}")

        def dvc_repro() -> None:
            out = timed([str(BIN / "dvc"), "repro"], "dvc_repro", r, cwd=b.dvc_project)
            if "Running stage" in out:
                sys.exit(f"bench_pipeline: dvc repro was not a no-op:\n{out}")

        for step in alternate([dvc_run, dvc_repro]):
            step()

    # 3. cold start, alternating, and the bare interpreter as a floor
    cold = [("plugins", [specloop, "plugins"]), ("version", [specloop, "--version"]),
            ("python", [sys.executable, "-c", "pass"])]
    for name, cmd in alternate(cold):
        timed(cmd, name, r)
    return r


# -- report ---------------------------------------------------------------------------------
LABELS = {
    "plain": "plain script (read CSV, split, fit, six metrics, pickle)",
    "run": "`specloop run`, fresh store",
    "cold": "`specloop run`, fresh store, per-user caches emptied",
    "thread": "`specloop run`, fresh store, `SPECLOOP_ARTIFACT_WRITER=thread`",
    "baseline": "`specloop run`, fresh store, baseline revision",
    "param": f"`specloop run {PARAM}=120…` after the first run (a new value each round)",
    "rerun": "`specloop run`, unchanged (store kept)",
    "plan": "`specloop plan`, unchanged",
    "dvc_run": "`specloop run`, unchanged, in the DVC project",
    "dvc_repro": "`dvc repro`, no-op (3 exported stages)",
    "plugins": "`specloop plugins`",
    "version": "`specloop --version`",
    "python": "`python -c pass`",
}


def _mm(xs: list[float], fmt: str) -> str:
    """``median (min–max)``."""
    return (f"{fmt.format(statistics.median(xs))} "
            f"({fmt.format(min(xs))}–{fmt.format(max(xs))})")


def _verdict(value: float, goal: float, strict: bool = False) -> str:
    return "PASS" if (value < goal if strict else value <= goal) else "MISS"


def report(rounds: list[dict], rows: int, per_month: int, meta: dict, notes: list[str]) -> str:
    labels = [k for k in LABELS if k in rounds[0]]

    def col(label: str, key: str) -> list[float]:
        return [r[label][key] for r in rounds]

    def paired(a: str, b: str, key: str) -> list[float]:
        return [r[a][key] / r[b][key] for r in rounds]

    out = [f"### {rows:,} rows", "",
           "Per command, median (min–max) over the rounds; CPU and memory are the whole "
           "process tree's:", "",
           "| command | wall s | CPU s | peak tree RSS MiB | largest process MiB | processes |",
           "|---|---|---|---|---|---|"]
    for k in labels:
        name = LABELS[k] + (f" ({meta['baseline'].name})" if k == "baseline" else "")
        out.append(f"| {name} | {_mm(col(k, 'wall'), '{:.2f}')} | "
                   f"{_mm(col(k, 'cpu'), '{:.2f}')} | "
                   f"{_mm([v / MIB for v in col(k, 'peak')], '{:.0f}')} | "
                   f"{_mm([v / MIB for v in col(k, 'maxrss')], '{:.0f}')} | "
                   f"{max(col(k, 'procs'))} |")

    def ratios(a: str, b: str, fmt: str = "{:.2f}×") -> list[str]:
        return [_mm(paired(a, b, key), fmt) for key in ("wall", "cpu", "peak")]

    def med(a: str, b: str, key: str) -> float:
        return statistics.median(paired(a, b, key))

    comp = [("#", "comparison (paired per round)", "wall ratio", "CPU ratio",
             "peak-tree-memory ratio", "goal", "result")]
    verdicts = [f"wall {_verdict(med('run', 'plain', 'wall'), 1.1)}",
                f"CPU {_verdict(med('run', 'plain', 'cpu'), 1.2)}",
                f"memory {_verdict(med('run', 'plain', 'peak'), 1.3)}"]
    comp.append(("1", "first `specloop run` / plain script", *ratios("run", "plain"),
                 "wall ≤ 1.1×, CPU ≤ 1.2×, memory ≤ 1.3×", " · ".join(verdicts)))
    if "cold" in labels:
        comp.append(("1b", "first run, caches emptied / plain script",
                     *ratios("cold", "plain"), "—", "info"))
    if "thread" in labels:
        comp.append(("1c", "first run, writer thread / plain script",
                     *ratios("thread", "plain"), "—", "info"))
    if "baseline" in labels:
        comp.append(("1d", f"first run, baseline ({meta['baseline'].name}) / plain script",
                     *ratios("baseline", "plain"), "—", "info"))
        comp.append(("1d′", "row 1 / row 1d (this code / baseline)",
                     *ratios("run", "baseline", "{:.3f}×"), "—", "info"))
    comp.append(("2", "unchanged re-run / first run", *ratios("rerun", "run", "{:.1%}"),
                 "wall ≤ 5 %", f"wall {_verdict(med('rerun', 'run', 'wall'), 0.05)}"))
    comp.append(("2a", f"one-parameter change (`{PARAM}`) / first run",
                 *ratios("param", "run"), "wall < 1×",
                 f"wall {_verdict(med('param', 'run', 'wall'), 1.0, strict=True)}"))
    comp.append(("2b", "`specloop plan` / first run", *ratios("plan", "run", "{:.1%}"), "—",
                 "info"))
    if "dvc_run" in labels:
        comp.append(("2c", "unchanged `specloop run` / no-op `dvc repro` (DVC project)",
                     *ratios("dvc_run", "dvc_repro"), "wall ≤ 1×",
                     f"wall {_verdict(med('dvc_run', 'dvc_repro', 'wall'), 1.0)}"))
    plugins = statistics.median(col("plugins", "wall"))
    comp.append(("3", "`specloop plugins` / `python -c pass`", *ratios("plugins", "python"),
                 f"< 0.5 s (median {plugins:.2f} s)", _verdict(plugins, 0.5, strict=True)))
    comp.append(("3b", "`specloop --version` / `python -c pass`",
                 *ratios("version", "python"), "—", "info"))
    out += ["", "Paired ratios, median (min–max):", ""]
    out.append("| " + " | ".join(comp[0]) + " |")
    out.append("|" + "|".join("---" for _ in comp[0]) + "|")
    out += ["| " + " | ".join(row) + " |" for row in comp[1:]]

    aucs = {k: {r["auc"].get(k) for r in rounds} for k in ("run", "plain", "baseline", "param")}
    same = len(aucs["run"] | aucs["plain"] | (aucs["baseline"] - {None})) == 1
    first_runs = [r[k] for r in rounds for k in ("run", "cold", "thread", "baseline") if k in r]
    per_sec = [x["sampler_cpu"] / x["wall"] for x in first_runs]
    orphans = {k: max(col(k, "orphans")) for k in labels if max(col(k, "orphans"))}
    left = {k: max(col(k, "left")) for k in labels if max(col(k, "left"))}
    loads = ", ".join(f"{r['load'][0]:.2f}" for r in rounds)
    out += [
        "",
        f"- data: {rows:,} rows in train.csv ({per_month:,} per month × 6), {len(rounds)} timed "
        f"rounds after 1 warm-up round; OMP_NUM_THREADS=1 in every child",
        f"- load average (1 min) at the start of each round: {loads}; at the end: "
        f"{meta['load_end'][0]:.2f}",
        f"- CPU: user + sys of the command and every descendant (`wait4`; this process is "
        f"{'the child subreaper, so orphans are waited for and counted' if meta['subreaper'] else 'NOT a subreaper: orphans would be missed'}"
        f"{'; orphans reaped after exit: ' + ', '.join(f'{k} {v}' for k, v in orphans.items()) if orphans else '; no command left an orphan'}"
        f"{'; STILL RUNNING, not counted: ' + str(left) if left else ''})",
        f"- peak tree RSS: the largest sum of RSS over the command and its live descendants, "
        f"sampled every {INTERVAL * 1000:.0f} ms with psutil (first runs: median "
        f"{statistics.median(x['samples'] for x in first_runs):.0f} samples; the sampler used "
        f"{statistics.median(per_sec) * 100:.1f} % of a core in the benchmark's own process, "
        f"outside the figures); largest process: its `ru_maxrss`, which Linux floors at the "
        f"RSS of the process that spawned it (this benchmark: {meta['own_rss'] / MIB:.0f} MiB)",
        "- verdicts use the paired medians; the one-parameter change necessarily follows the "
        "first run it changes, so its order does not alternate",
        f"- ROC AUC on the test rows: specloop {'/'.join(sorted(map(str, aucs['run'])))}, plain "
        f"script {'/'.join(sorted(map(str, aucs['plain'])))}"
        + (f", baseline {'/'.join(sorted(map(str, aucs['baseline'])))}" if "baseline" in labels
           else "")
        + f" ({'identical' if same else 'DIFFERENT'}); after the parameter change "
        f"{'/'.join(sorted(map(str, aucs['param'])))}",
        f"- environment: {meta['toggles'] or 'no SPECLOOP_* toggles (every speed mechanism on)'}",
        f"- machine: {_machine()}; {_versions()}",
    ]
    out += [f"- note: {n}" for n in notes]
    return "\n".join(out)


def bench_size(rows: int, repeats: int, args: argparse.Namespace, specloop: str,
               variants: tuple[str, ...], meta: dict) -> str:
    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="specloop-bench-"))
    os.environ["PYTHONPYCACHEPREFIX"] = ENV["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    if not meta["caches_off"]:  # composed specs, md5s, skops types: as in ~/.cache
        os.environ["SPECLOOP_CACHE_DIR"] = ENV["SPECLOOP_CACHE_DIR"] = str(tmp / "user-cache")
    notes: list[str] = []
    try:
        project = tmp / "project"
        project.mkdir()
        shutil.copytree(PROJECT / "conf", project / "conf")
        per_month = rows // 6
        train = _generate(project / "data", per_month)
        (tmp / "plain.py").write_text(PLAIN_SCRIPT, encoding="utf-8")
        dvc_project = None
        if args.dvc:
            print(f"{rows:,} rows: setting up the DVC project (bench_dvc.setup) ...",
                  file=sys.stderr, flush=True)
            dvc_project = _load(Path(__file__).with_name("bench_dvc.py"), "_bench_dvc").setup(
                tmp / "dvc", rows)
        b = Bench(project, tmp, specloop, variants, args.baseline, dvc_project)
        print(f"project: {project} ({train['rows']:,} rows); warm-up round ...",
              file=sys.stderr, flush=True)
        w0 = time.perf_counter()
        one_round(0, b)  # warm-up: page cache, .pyc files, per-user caches; not reported
        per_round = time.perf_counter() - w0
        left = args.budget - (time.perf_counter() - t0)
        fit = max(1, int(left // per_round))
        if fit < repeats:
            notes.append(f"repeats reduced from {repeats} to {fit} to stay within the "
                         f"{args.budget:.0f} s budget (one round takes {per_round:.0f} s); "
                         "raise --budget for more")
            repeats = fit
        rounds = []
        for i in range(repeats):
            print(f"round {i + 1}/{repeats} ...", file=sys.stderr, flush=True)
            rounds.append(one_round(i, b))
            print("  load {:.2f}; ".format(rounds[-1]["load"][0]) + "; ".join(
                f"{k} {v['wall']:.2f} s/{v['cpu']:.2f} cpu/{v['peak'] / MIB:.0f} MiB"
                for k, v in rounds[-1].items() if isinstance(v, dict) and "wall" in v),
                file=sys.stderr, flush=True)
        meta["load_end"] = os.getloadavg()
        meta["own_rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        notes.append(f"total benchmark time at this size {time.perf_counter() - t0:.0f} s "
                     f"(one round {per_round:.0f} s)")
        return report(rounds, train["rows"], per_month, meta, notes)
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    global INTERVAL
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000],
                        help="rows in train.csv, one or more data sizes (default: 100000; "
                             "rounded down to a multiple of 6, one sixth per month)")
    parser.add_argument("--repeats", type=int, nargs="+", default=[5],
                        help="timed rounds, one value or one per data size (default: 5)")
    parser.add_argument("--budget", type=float, default=330.0,
                        help="seconds each data size may take; repeats are reduced to fit "
                             "(default: 330)")
    parser.add_argument("--interval", type=float, default=0.01,
                        help="seconds between memory samples (default: 0.01)")
    parser.add_argument("--variants", default="cold,thread",
                        help="in-round variants of the first run: 'cold' (row 1b), 'thread' "
                             "(row 1c), comma-separated, or 'none' (default: cold,thread)")
    parser.add_argument("--dvc", action=argparse.BooleanOptionalAction, default=None,
                        help="row 2c, specloop's no-op against dvc repro's (default: when the "
                             "dvc command is installed next to this Python)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary project folder")
    parser.add_argument("--baseline", type=Path, default=None, metavar="DIR",
                        help="a source tree of another revision (holding framework/ and "
                             "plugins/): its 'specloop run' is timed in the same rounds (row 1d)")
    args = parser.parse_args(argv)
    if min(args.rows) < 600 or min(args.repeats) < 1:
        parser.error("--rows must be at least 600 and --repeats at least 1")
    if len(args.repeats) not in (1, len(args.rows)):
        parser.error("--repeats takes one value or one per --rows value")
    repeats = args.repeats * len(args.rows) if len(args.repeats) == 1 else args.repeats
    if args.baseline is not None:
        args.baseline = args.baseline.resolve()
        if not (args.baseline / "framework" / "specloop").is_dir():
            parser.error(f"--baseline {args.baseline}: no framework/specloop/ in it")
    if args.dvc is None:
        args.dvc = (BIN / "dvc").exists()
    elif args.dvc and not (BIN / "dvc").exists():
        parser.error(f"--dvc: no dvc command next to {sys.executable}")
    INTERVAL = args.interval
    variants = tuple(v for v in args.variants.replace(" ", "").split(",") if v and v != "none")
    if set(variants) - {"cold", "thread"}:
        parser.error(f"--variants: unknown {sorted(set(variants) - {'cold', 'thread'})}")

    caches_off = os.environ.get("SPECLOOP_CACHE_DIR", "x").strip().lower() in OFF
    writer_thread = os.environ.get("SPECLOOP_ARTIFACT_WRITER", "").strip().lower() == "thread"
    notes = []
    if caches_off and "cold" in variants:
        variants = tuple(v for v in variants if v != "cold")
        notes.append("row 1b left out: SPECLOOP_CACHE_DIR=off already switches the caches off")
    if writer_thread and "thread" in variants:
        variants = tuple(v for v in variants if v != "thread")
        notes.append("row 1c left out: SPECLOOP_ARTIFACT_WRITER=thread applies to every run")
    toggles = ", ".join(f"{k}={v}" for k, v in sorted(os.environ.items())
                        if k.startswith("SPECLOOP_") and not (k == "SPECLOOP_CACHE_DIR"
                                                              and not caches_off))
    meta = {"baseline": args.baseline, "caches_off": caches_off, "toggles": toggles,
            "subreaper": become_subreaper()}
    specloop = _specloop_exe()
    tables = []
    for rows, n in zip(args.rows, repeats):
        table = bench_size(rows, n, args, specloop, variants, meta)
        tables.append(table + "".join(f"\n- note: {x}" for x in notes))
        print(table, file=sys.stderr, flush=True)  # in case a later size fails
    print("\n\n".join(tables))
    return 0


if __name__ == "__main__":
    sys.exit(main())

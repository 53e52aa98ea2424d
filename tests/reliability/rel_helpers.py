"""Shared helpers of the reliability suite: small projects, real ``specloop`` processes, a
test plugin distribution that stops a process at a chosen point, and readers of the record
that go to the files themselves (the registry's SQLite file, the deploy folder)."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from specloop.testing import CliResult, ProjectBuilder

# the S3 fixtures (moto's server mode) live beside the S3 tests
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "s3"))

PY = sys.executable
CODES = (0, 1, 2, 3)  # every exit code a specloop command may end with (besides a kill)


# -- data and projects ----------------------------------------------------------------------
def write_csv(path: Path, rows: int = 240, seed: int = 0, shift: float = 0.0,
              extra: bool = False) -> Path:
    """A binary-classification CSV: numeric x1, x2 (+ x3 with ``extra``), a colour, a label."""
    rng = np.random.default_rng(seed)
    x1, x2, x3 = rng.normal(shift, 1, rows), rng.normal(0, 1, rows), rng.normal(0, 1, rows)
    color = rng.choice(["red", "green", "blue"], rows)
    y = ((2 * x1 - x2 + (color == "red") * 1.5 + rng.normal(0, 1, rows)) > 0.5).astype(int)
    head = "id,x1,x2," + ("x3," if extra else "") + "color,label\n"
    body = "".join(f"{i},{a:.4f},{b:.4f}," + (f"{c3:.4f}," if extra else "") + f"{c},{t}\n"
                   for i, (a, b, c3, c, t) in enumerate(zip(x1, x2, x3, color, y)))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(head + body)
    return path


def make_project(root: Path, *, gate: Any = "default", batches: int = 0,
                 retrain: dict | None = None, extra_conf: dict | None = None,
                 defaults: list | None = None) -> ProjectBuilder:
    """A small classification project (store and registry in ``.specloop``, a bundle
    deploy) with ``batches`` incoming CSV batches under ``data/incoming``."""
    p = ProjectBuilder(root)
    write_csv(root / "data" / "train.csv")
    for i in range(batches):
        write_csv(root / "data" / "incoming" / f"b{i}.csv", rows=120, seed=10 + i,
                  shift=0.6 * i)
    p.write_conf("data/small.yaml", {"kind": "csv", "path": "data/train.csv",
                                     "target": "label", "drop": ["id"]})
    if isinstance(gate, dict):
        p.write_conf("gate/custom.yaml", gate)
        gate = "custom"
    conf: dict[str, Any] = {
        "defaults": [{"data": "small"}, {"model": "logistic"}, {"metrics": "classification"},
                     {"gate": gate}, {"store": "local"}, {"deploy": "bundle"},
                     *(defaults or []), {"stack": "local"}, "_self_"],
        "project": {"name": "small", "seed": 0, "threads": 1}}
    if batches:
        conf["loop"] = {"incoming": {"path": "data/incoming/*.csv", "drop": ["id"]},
                        "settle_seconds": 0}
    if retrain is not None:
        p.write_conf("retrain/custom.yaml", retrain)
        conf["defaults"].insert(-2, {"retrain": "custom"})
    conf.update(extra_conf or {})
    p.write_conf("config.yaml", conf)
    return p


# -- processes ------------------------------------------------------------------------------
def proc_env(ext: Path | None = None, **extra: str) -> dict:
    """The environment of a ``specloop`` child: the test plugin on the path when given."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DVC_NO_ANALYTICS": "1"}
    env.pop("SPECLOOP_FULL_ERROR", None)
    if ext is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(ext), *filter(None, [env.get("PYTHONPATH")])])
    env.update({k: str(v) for k, v in extra.items()})
    return env


def sl(root: Path, *args: str, ext: Path | None = None, timeout: float = 300,
       **env: str) -> subprocess.CompletedProcess:
    """Run ``specloop ARGS`` as a real process in ``root``."""
    return subprocess.run([PY, "-m", "specloop.cli", *args], cwd=root, capture_output=True,
                          text=True, env=proc_env(ext, **env), timeout=timeout)


def spawn(root: Path, *args: str, ext: Path | None = None, **env: str) -> subprocess.Popen:
    """Start ``specloop ARGS`` as a real process (output captured)."""
    return subprocess.Popen([PY, "-m", "specloop.cli", *args], cwd=root, text=True,
                            env=proc_env(ext, **env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def out(res: Any) -> str:
    """stdout and stderr of a CompletedProcess or an in-process CliResult."""
    if isinstance(res, CliResult):
        return res.output
    return (res.stdout or "") + (res.stderr or "")


def code(res: Any) -> int:
    return res.exit_code if isinstance(res, CliResult) else res.returncode


def assert_refused(res: Any, exit_code: int, *needles: str) -> str:
    """A specloop refusal: the exit code, a ``specloop:`` message, no traceback, needles."""
    text = out(res)
    assert code(res) == exit_code, text
    assert "Traceback" not in text, text
    assert "specloop: " in text, text
    for needle in needles:
        assert needle in text, f"{needle!r} not in:\n{text}"
    return text


def ok(res: Any) -> str:
    text = out(res)
    assert code(res) == 0, text
    assert "Traceback" not in text, text
    return text


def wait_for(predicate, what: str, limit: float = 120.0) -> None:
    """Poll until ``predicate()`` holds (a bound against hangs, not a timed assertion)."""
    end = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


# -- the record, read from the files --------------------------------------------------------
def db_path(root: Path) -> Path:
    return root / ".specloop" / "registry.db"


def query(root: Path, sql: str, args: tuple = ()) -> list[dict]:
    """Rows of the registry file (read-only connection)."""
    conn = sqlite3.connect(f"file:{db_path(root)}?mode=ro", uri=True, timeout=60)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, args)]
    finally:
        conn.close()


def store_dir(root: Path) -> Path:
    return root / ".specloop" / "store" / "artifacts"


def deployed(root: Path) -> dict | None:
    meta = root / "deploy" / "champion" / "metadata.json"
    return json.loads(meta.read_text()) if meta.is_file() else None


def champion(root: Path, name: str = "small") -> int | None:
    rows = query(root, "SELECT version FROM aliases WHERE name=? AND alias='champion'", (name,))
    return rows[0]["version"] if rows else None


def state(root: Path, name: str = "small") -> dict:
    """What two runs on the same inputs must agree on: versions, aliases, their history, the
    audit log, the loop's batches and the deployed version (times and run ids left out)."""
    versions = [{k: r[k] for k in ("version", "model_key", "reference_key", "metrics",
                                   "data_fingerprint", "source")}
                for r in query(root, "SELECT * FROM versions WHERE name=? ORDER BY version",
                               (name,))]
    for v in versions:
        v["source"] = {k: x for k, x in json.loads(v["source"] or "{}").items()}
    history = [(h["alias"], h["previous"], h["version"], h["action"], h["reason"]) for h in
               query(root, "SELECT * FROM alias_history WHERE name=? ORDER BY id", (name,))]
    audit = [(a["action"], a["version"], a["alias"], a["reason"]) for a in
             query(root, "SELECT * FROM audit WHERE name=? ORDER BY id", (name,))]
    batches = [(b["batch_id"], b["champion"], json.loads(b["record"])) for b in query(
        root, "SELECT * FROM loop_batches WHERE name=? ORDER BY processed_at, rowid", (name,))]
    aliases = {a["alias"]: a["version"] for a in
               query(root, "SELECT * FROM aliases WHERE name=?", (name,))}
    meta = deployed(root)
    return {"versions": versions, "aliases": aliases, "history": history, "audit": audit,
            "batches": batches, "deployed": meta and meta["version"]}


def leftovers(root: Path) -> list[str]:
    """Temporary files and folders a killed writer could leave behind."""
    found = []
    for folder in (store_dir(root), root / "deploy", root / ".specloop"):
        if folder.is_dir():
            found += [str(folder / n) for n in os.listdir(folder)
                      if ".tmp-" in n or ".old-" in n]
    return found


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def plan_keys(res: Any) -> dict[str, str]:
    """``{stage: key}`` of ``specloop plan --json`` output."""
    rows = json.loads(res.stdout)
    return {r["stage"]: r["key"] for r in rows}


def plan_rows(res: Any) -> dict[str, dict]:
    return {r["stage"]: r for r in json.loads(res.stdout)}


# -- the test plugin distribution -----------------------------------------------------------
POINTS_PLUGIN = '''
"""Stops a specloop process at a named point: SIGKILL (REL_KILL=point[@n]) or a pause until a
release file exists (REL_HOLD=point[@n], REL_DIR=folder). Points: the lifecycle hooks
(before:/after:<stage>, alias:<alias>:<action>, batch-record), the gate (gate, or
gate-in-retrain inside the loop's retrain step) and renames of temporary folders
(rename:store-tmp, rename:bundle-tmp: just before the write is put in place).
REL_BARRIER=file makes the process wait at start until the file exists. REL_LOCKWATCH=folder marks each process that opened a
model lock file. The gate ``killing`` is the threshold gate with the point ``gate``."""
import os
import signal
import sys
import time

from specloop import ComponentSpec, Stage, hookimpl
from specloop_gates import ThresholdGate, ThresholdGateConf

_seen = {}
_in_retrain = []


def _wait(path):
    end = time.monotonic() + 180
    while not os.path.exists(path) and time.monotonic() < end:
        time.sleep(0.02)


def point(name):
    for var in ("REL_KILL", "REL_HOLD"):
        want = os.environ.get(var)
        if not want:
            continue
        target, _, nth = want.partition("@")
        if target != name:
            continue
        _seen[(var, name)] = _seen.get((var, name), 0) + 1
        if _seen[(var, name)] != int(nth or 1):
            continue
        if var == "REL_KILL":
            sys.stdout.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        folder = os.environ["REL_DIR"]
        open(os.path.join(folder, f"held-{os.getpid()}"), "w").close()
        _wait(os.path.join(folder, "release"))


if os.environ.get("REL_BARRIER"):
    open(os.environ["REL_BARRIER"] + f".ready-{os.getpid()}", "w").close()
    _wait(os.environ["REL_BARRIER"])

if os.environ.get("REL_LOCKWATCH"):
    def _audit(event, args):
        if event == "open" and isinstance(args[0], str) and args[0].endswith(".lock") \\
                and "registry.db." in args[0]:
            mark = os.path.join(os.environ["REL_LOCKWATCH"], f"lock-{os.getpid()}")
            if not os.path.exists(mark):
                open(mark, "w").close()
    sys.addaudithook(_audit)


if "rename:" in os.environ.get("REL_KILL", "") + os.environ.get("REL_HOLD", ""):
    def _renames(event, args):
        if event != "os.rename":
            return
        src, dst = str(args[0]), str(args[1])
        if "/artifacts/.tmp-" in src:
            point("rename:store-tmp")
        elif os.path.basename(src).startswith(".") and ".tmp-" in src \
                and "/.specloop/" not in src:
            point("rename:bundle-tmp")
    sys.addaudithook(_renames)


class KillingGate(ThresholdGate):
    def check(self, *args, **kwargs):
        point("gate-in-retrain" if _in_retrain else "gate")
        return super().check(*args, **kwargs)


@hookimpl
def specloop_register_components():
    return [ComponentSpec(Stage.GATE, "killing", "rel_points:KillingGate", ThresholdGateConf)]


@hookimpl
def specloop_before_stage(stage, run, cached):
    if stage == "retrain":
        _in_retrain.append(stage)
    point(f"before:{stage}")


@hookimpl
def specloop_after_stage(stage, run, cached):
    if stage == "retrain" and _in_retrain:
        _in_retrain.pop()
    point(f"after:{stage}")


@hookimpl
def specloop_after_alias_change(run, alias, action):
    point(f"alias:{alias}:{action}")


@hookimpl
def specloop_after_run(run, manifest):
    if manifest.get("command") == "loop" and manifest.get("batch"):
        point("batch-record")
'''


def points_plugin(folder: Path) -> Path:
    """A plugin distribution (module + ``*.dist-info``) on no real install: put ``folder``
    on ``PYTHONPATH`` to load it."""
    if (folder / "rel_points.py").is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rel_points.py").write_text(textwrap.dedent(POINTS_PLUGIN))
    info = folder / "rel_points-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: rel-points\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[specloop.plugins]\nrel_points = rel_points\n")
    return folder


STAGES = ("data", "split", "train", "evaluate", "register", "deploy")


def stage_actions(stdout: str) -> dict[str, str]:
    """``{stage: ran|cached}`` from the table ``specloop run`` prints."""
    found = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in STAGES and parts[1] in ("ran", "cached"):
            found[parts[0]] = parts[1]
    return found


# -- models that would run code if loaded ---------------------------------------------------
EVIL_MODULE = '''
"""A type whose loading creates a marker file (it is never to be loaded)."""


class Evil:
    def __setstate__(self, state):
        open(state["marker"], "w").close()
        self.__dict__.update(state)

    def predict(self, X):
        return [0] * len(X)
'''


class _PickleBomb:
    """Unpickling this calls ``open(marker, "w")``: the marker file appears."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def evil_pickle(marker: Path) -> bytes:
    import pickle

    return pickle.dumps(_PickleBomb(marker))


def evil_skops(marker: Path, ext: Path) -> bytes:
    """A skops file holding ``rel_evil.Evil`` (an untrusted type whose load runs code)."""
    import skops.io as sio

    if not (ext / "rel_evil.py").is_file():
        (ext / "rel_evil.py").write_text(textwrap.dedent(EVIL_MODULE))
    sys.path.insert(0, str(ext))
    try:
        import rel_evil

        obj = rel_evil.Evil()
        obj.__dict__["marker"] = str(marker)
        return sio.dumps(obj)
    finally:
        sys.path.remove(str(ext))


def payload(kind: str, marker: Path, ext: Path) -> bytes:
    return evil_pickle(marker) if kind == "pickle" else evil_skops(marker, ext)


@pytest.fixture(scope="session")
def ext(tmp_path_factory) -> Path:
    """The folder of the test plugin distribution ``rel_points`` (import this fixture)."""
    return points_plugin(tmp_path_factory.mktemp("ext"))

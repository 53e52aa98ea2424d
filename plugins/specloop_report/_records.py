"""Reading what specloop recorded, for the report: run manifests (believed only while they have
the SHA-256 the registry recorded), registered versions and their verified files, the loop's
batch records and the frames it stored, and sweep leaderboards.

Everything goes through the run context's registry and store: a file is read with
``ctx.store.get`` against the hash the registry (or specloop's artifact index) recorded, a
model is loaded with :func:`specloop.load_model`. Nothing is deserialised that specloop did
not record; Parquet frames and JSON are the only formats read.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from specloop import ArtifactError, ConfigError, RegistryError



def frame(data: bytes) -> Any:
    """A Parquet file's bytes as a DataFrame."""
    import pandas as pd

    return pd.read_parquet(io.BytesIO(data))


# -- runs -------------------------------------------------------------------------------------
def runs(ctx: Any) -> list[dict]:
    """Every recorded run, oldest first."""
    return ctx.registry.runs()


def pick_run(ctx: Any, run_id: str | None) -> dict:
    """The registry's row of ``run_id``; by default the newest succeeded run that registered
    a model (a pipeline run, not the loop's), else the newest succeeded one."""
    rows = runs(ctx)
    if run_id is not None:
        match = [r for r in rows if r["run_id"] == run_id]
        if not match:
            newest = ", ".join(r["run_id"] for r in rows[-3:][::-1])
            raise ConfigError(f"no run {run_id!r} is recorded for this project",
                              key="--run", got=run_id,
                              expected="a run id from 'specloop runs list'",
                              fix="list runs with 'specloop runs list'" +
                                  (f" (newest: {newest})" if newest else ""))
        return match[0]
    ok = [r for r in rows if r["status"] == "succeeded"]
    chosen = next((r for r in reversed(ok) if r["command"] != "loop" and r["model_version"]),
                  ok[-1] if ok else None)
    if chosen is None:
        raise ConfigError("the project has no successful run yet", key="--run",
                          expected="a recorded run", fix="run the pipeline first: specloop run")
    return chosen


def manifest(ctx: Any, row: dict) -> dict:
    """The manifest of a run, checked against the SHA-256 the registry recorded when it was
    written (an altered or missing manifest is refused)."""
    from specloop import read_manifest

    return read_manifest(ctx, row["run_id"])


# -- versions ---------------------------------------------------------------------------------
def version(ctx: Any, number: int | None) -> dict | None:
    """The registry record of a version of the project's model (``None`` for none)."""
    if number is None:
        return None
    try:
        return ctx.registry.get(ctx.model_name, int(number))
    except RegistryError:
        return None


def version_file(ctx: Any, v: dict, role: str, name: str) -> bytes | None:
    """A file recorded with version ``v`` (``role`` model or reference), verified against the
    registry's SHA-256; ``None`` if the version recorded no such file."""
    rec = next((a for a in v.get("artifacts") or [] if a["role"] == role and a["file"] == name),
               None)
    if rec is None:
        return None
    return ctx.store.get(rec["key"], name, registered=rec["sha256"])


def indexed_file(ctx: Any, key: str | None, name: str) -> bytes | None:
    """A file of artifact ``key`` verified against specloop's index; ``None`` when the index
    does not record it (or it is gone)."""
    if not key:
        return None
    try:
        return ctx.store.get(key, name)
    except ArtifactError as exc:
        if exc.missing or "not recorded" in str(exc.args[0]):
            return None
        raise  # tampered: say so rather than draw from it


def artifact_meta(ctx: Any, key: str | None) -> dict:
    """specloop's recorded metadata of an artifact (``{}`` when unrecorded)."""
    try:
        return ctx.store.meta(key) if key else {}
    except ArtifactError:
        return {}


# -- the loop ---------------------------------------------------------------------------------


def loop_batches(ctx: Any) -> list[dict]:
    """The loop's batch records, in the order processed, each with its ``processed_at``."""
    return list(ctx.registry.processed_batches(ctx.model_name).values())


def batch_frame(ctx: Any, record: dict) -> Any:
    """The frame the loop stored for a batch record (verified), or ``None``."""
    data = indexed_file(ctx, record.get("key"), "frame.parquet")  # none before 0.3
    return None if data is None else frame(data)


# -- sweeps -----------------------------------------------------------------------------------
def sweep_dir(project_dir: Path, given: str) -> Path:
    """The sweep folder: ``given``, or the newest under ``.specloop/sweeps`` and
    ``.specloop/backtests`` when empty."""
    if given:
        path = Path(given)
        path = path if path.is_absolute() or path.exists() else Path(project_dir) / path
        if not path.is_dir():
            raise ConfigError(f"no sweep folder {given!r}", key="--sweep", got=given,
                              expected="a folder that `specloop run -m` or `loop --backtest "
                                       "-m` wrote (it holds leaderboard.json or backtest.json)",
                              fix="list them: ls .specloop/sweeps .specloop/backtests")
        return path
    found = [p.parent for kind in ("sweeps", "backtests")
             for p in (Path(project_dir) / ".specloop" / kind).glob("*/*.json")
             if p.name in ("leaderboard.json", "backtest.json")]
    if not found:
        raise ConfigError("the project has no sweep yet", key="--sweep",
                          expected="a sweep folder under .specloop/sweeps or .specloop/backtests",
                          fix="run one: specloop run -m model=logistic,random_forest")
    return max(found, key=lambda p: (p.stat().st_mtime, p.name))


def leaderboard(folder: Path) -> dict:
    """``{"kind", "rows", "primary", "registered", "file"}`` from a sweep folder's
    leaderboard.json (``run -m``) or backtest.json (``loop --backtest -m``)."""
    for name, kind in (("leaderboard.json", "sweep"), ("backtest.json", "backtest")):
        path = folder / name
        if path.is_file():
            try:
                doc = json.loads(path.read_text())
            except ValueError as exc:
                raise ConfigError(f"{path} is not valid JSON: {exc}", key="--sweep",
                                  fix="run the sweep again") from None
            return {"kind": kind, "rows": list(doc.get("rows") or []),
                    "primary": (doc.get("primary") or [None])[0],
                    "registered": doc.get("registered"), "months": doc.get("months"),
                    "file": str(path)}
    raise ConfigError(f"{folder} holds no leaderboard", key="--sweep", got=str(folder),
                      expected="leaderboard.json (specloop run -m) or backtest.json (specloop "
                               "loop --backtest -m)",
                      fix="point --sweep at a sweep folder, or let the sweep finish")

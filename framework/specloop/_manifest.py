"""Run manifests: what a run was given, did and produced (secrets redacted), written atomically
as it starts, plans, runs stages and ends. Each write's SHA-256 is recorded in the registry, and a
manifest is believed only while it has it: whoever writes the store cannot forge what
``reproduce`` re-runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Callable, Iterable

from . import __version__
from ._redact import redact, redact_env, redact_overrides, secret_fields
from ._store import sha256
from .errors import ConfigError, RegistryError

MANIFEST_VERSION = 1
PACKAGES = ("specloop", "hydra-core", "omegaconf", "pluggy", "scikit-learn", "numpy", "pandas",
            "pyarrow", "scipy", "fsspec", "skops", "dvc")


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")


def _version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def environment() -> dict[str, Any]:
    """Python and package versions recorded in every manifest."""
    return {"python": sys.version.split()[0], "platform": sys.platform,
            "packages": {name: _version(name) for name in PACKAGES},
            "env": redact_env({k: v for k, v in os.environ.items() if k.startswith("SPECLOOP_")})}


def _output(proc: subprocess.Popen) -> str | None:
    """What ``proc`` printed, or ``None`` if it failed or took over 10 s."""
    try:
        out = proc.communicate(timeout=10)[0]
    except subprocess.SubprocessError:
        proc.kill()
        proc.communicate()
        return None
    return out if proc.returncode == 0 else None


def git_state(path: Path) -> Callable[[], dict[str, Any]]:
    """Start both ``git`` commands that find the commit of ``path`` and whether the work tree
    is dirty; they run while the caller goes on, and the returned function waits for them and
    gives ``{"commit", "dirty"}`` (``None`` values outside git)."""
    cmds = (["git", "rev-parse", "HEAD"], ["git", "status", "--porcelain", "--untracked-files=no"])
    try:
        procs = [subprocess.Popen(c, cwd=path, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  stdin=subprocess.DEVNULL, text=True) for c in cmds]
    except OSError:  # no git
        procs = []

    @cache
    def wait() -> dict[str, Any]:
        commit, status = map(_output, procs) if procs else (None, None)
        return {"commit": commit.strip() if commit else None,
                "dirty": bool(status and status.strip()) if commit else None}

    return wait


class Manifest:
    """The manifest of one run, kept in memory and written to the store."""

    def __init__(self, ctx: Any, command: str, *, eager: bool = True) -> None:
        """``eager`` writes it at once and after planning, so a run that dies leaves a
        ``running`` manifest; a run whose stages are all cached changes nothing and passes
        ``False`` (its manifest is written once, at the end)."""
        self.ctx, self.eager = ctx, eager
        spec = ctx.spec
        secrets = secret_fields(spec)
        self._git = git_state(spec.project_dir)  # runs while the stages do
        self.doc: dict[str, Any] = {
            "manifest_version": MANIFEST_VERSION, "specloop_version": __version__,
            "run_id": ctx.run_id, "command": command, "project": spec.project.name,
            "project_dir": str(spec.project_dir), "status": "running",
            "started": iso(ctx.started), "ended": None,
            "overrides": redact_overrides(list(spec.overrides), secrets),
            "choices": dict(spec.choices), "config": redact(spec.raw, secrets),
            "git": None,  # filled in by write()
            "environment": environment(), "seed": spec.project.seed, "stages": {},
            "data_fingerprint": None, "data_versions": {}, "metrics": None,
            "model_version": None, "alias_changes": [], "gate": None, "deployment": None,
            "error": None}
        self.alias_changes: list[dict] = self.doc["alias_changes"]
        self.model_version: int | None = None
        self.gate: dict | None = None
        self.deployment: dict | None = None
        if eager:
            self.write()

    def record_plan(self, plans: Iterable[Any]) -> None:
        """Store every stage's key, config and inputs before the stages run."""
        secrets = secret_fields(self.ctx.spec)
        for p in plans:
            self.doc["stages"][p.name] = {
                "component": p.component.spec.name if p.component else "engine",
                "distribution": p.component.spec.distribution if p.component else None,
                "key": p.key, "config": redact(p.config, secrets), "inputs": p.inputs,
                "cached": p.cached, "status": "pending", "seconds": None}
            if p.name == "data":
                self.doc["data_fingerprint"] = p.files or p.key
        if self.eager:
            self.write()

    def stage_done(self, name: str, plan: Any, seconds: float, failed: bool = False) -> None:
        self.doc["stages"].setdefault(name, {}).update(
            status="failed" if failed else ("cached" if plan.cached else "ran"),
            seconds=round(seconds, 4))
        if failed or not plan.cached:  # a cached stage changed nothing: the next write has it
            self.write()

    def finish(self, status: str, error: BaseException | None = None,
               metrics: dict | None = None) -> dict:
        self.doc.update(status=status, ended=iso(time.time()), model_version=self.model_version,
                        gate=self.gate, deployment=self.deployment,
                        error=None if error is None else f"{type(error).__name__}: {error}")
        if metrics is not None:
            self.doc["metrics"] = metrics
        self.write()
        return self.doc

    def write(self) -> None:
        """Write the manifest to the store (atomically) and record its hash."""
        if self.doc["git"] is None:
            self.doc["git"] = self._git()
        save(self.ctx, self.doc)


def save(ctx: Any, doc: dict) -> None:
    """Write manifest ``doc`` to ``ctx``'s store and record its hash in ``ctx``'s registry."""
    body = ctx.store.write_json(f"runs/{doc['run_id']}/manifest.json", doc)
    ctx.registry.record_run(doc, sha256(body))


def _version_tuple(text: str) -> tuple:
    return tuple(int("".join(filter(str.isdigit, part)) or 0) for part in str(text).split("."))


def read_manifest(ctx: Any, run_id: str) -> dict:
    """The manifest of ``run_id``, verified against its recorded hash (else a
    :class:`RegistryError`) and not written by a newer specloop, whose fields may mean something
    else (else a :class:`ConfigError`)."""
    runs = {r["run_id"]: r for r in ctx.registry.runs()}
    if run_id not in runs:
        raise RegistryError(f"no run {run_id!r} is recorded for this store",
                            fix="list runs with 'specloop runs list'"
                                + (f" (newest: {list(runs)[-1]})" if runs else ""))
    where = ctx.store.path(f"runs/{run_id}/manifest.json")
    try:
        body = ctx.store.read_bytes(f"runs/{run_id}/manifest.json")
    except OSError:
        raise RegistryError(f"the manifest of run {run_id} is missing from the store",
                            extra=[("file", where)],
                            fix="restore the store from a backup") from None
    if sha256(body) != runs[run_id]["sha256"]:
        raise RegistryError(f"the manifest of run {run_id} does not match the SHA-256 "
                            "recorded when it was written (altered); refusing to use it",
                            extra=[("file", where)], fix="restore the store from a backup")
    doc = json.loads(body)
    fmt, written_by = doc.get("manifest_version", 1), doc.get("specloop_version")
    if not isinstance(fmt, int) or fmt > MANIFEST_VERSION or (
            written_by is not None and _version_tuple(written_by) > _version_tuple(__version__)):
        raise ConfigError(
            "the manifest was written by a newer specloop", file=where,
            got=f"manifest_version {fmt!r}, written by specloop {written_by or '?'}",
            expected=f"manifest_version <= {MANIFEST_VERSION}, written by specloop <= "
                     f"{__version__}",
            fix=f"upgrade specloop to {written_by or 'the version that wrote it'} or later "
                "(pip install -U specloop)")
    return doc


def recent_manifests(ctx: Any, command: str = "run", limit: int = 50) -> list[dict]:
    """The intact manifests of the last ``limit`` successful ``command`` runs, newest first."""
    found: list[dict] = []
    for run in reversed(ctx.registry.runs()):  # run ids sort by time
        if run["command"] == command and run["status"] == "succeeded" and len(found) < limit:
            try:
                found.append(read_manifest(ctx, run["run_id"]))
            except (RegistryError, ConfigError, ValueError):
                continue
    return found


"""Run manifests: what a run was given, what it did and what it produced.

A manifest is written when a run starts (status ``running``) and rewritten when it ends
(``succeeded`` or ``failed``), atomically each time, under ``runs/<run_id>/manifest.json``
in the store. A run killed mid-way therefore leaves a manifest that says ``running`` and a
store without half-written artifacts.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any, Iterable

MANIFEST_VERSION = 1


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")


class Manifest:
    """The manifest of one run, kept in memory and written to the store."""

    def __init__(self, ctx: Any, command: str) -> None:
        from ._context import environment, git_state

        self.ctx = ctx
        spec = ctx.spec
        self.doc: dict[str, Any] = {
            "manifest_version": MANIFEST_VERSION,
            "run_id": ctx.run_id,
            "command": command,
            "project": spec.project.name,
            "project_dir": str(spec.project_dir),
            "status": "running",
            "started": _iso(ctx.started),
            "ended": None,
            "overrides": list(spec.overrides),
            "choices": dict(spec.choices),
            "config": spec.raw,
            "git": git_state(spec.project_dir),
            "environment": environment(),
            "seed": spec.project.seed,
            "stages": {},
            "data_fingerprint": None,
            "metrics": None,
            "model_version": None,
            "alias_changes": [],
            "gate": None,
            "deployment": None,
            "error": None,
        }
        self.alias_changes: list[dict] = self.doc["alias_changes"]
        self.model_version: int | None = None
        self.gate: dict | None = None
        self.deployment: dict | None = None
        self.write()

    def record_plan(self, plans: Iterable[Any]) -> None:
        """Store every stage's key, config and inputs before the stages run."""
        for p in plans:
            self.doc["stages"][p.name] = {
                "component": p.component.spec.name if p.component else "engine",
                "distribution": p.component.spec.distribution if p.component else None,
                "key": p.key, "config": p.config, "inputs": p.inputs,
                "cached": p.cached, "status": "pending", "seconds": None}
            if p.name == "data":
                self.doc["data_fingerprint"] = {k[10:]: v for k, v in p.config.items()
                                                if k.startswith("data file ")} or p.key
        self.write()

    def stage_done(self, name: str, plan: Any, seconds: float, failed: bool = False) -> None:
        """Record a stage's outcome."""
        st = self.doc["stages"].setdefault(name, {})
        st.update({"status": "failed" if failed else ("cached" if plan.cached else "ran"),
                   "seconds": round(seconds, 4)})
        if failed or not plan.cached:  # a cached stage changed nothing: the next write has it
            self.write()

    def finish(self, status: str, error: BaseException | None = None,
               metrics: dict | None = None) -> dict:
        """Write the final manifest and return it."""
        self.doc.update({
            "status": status, "ended": _iso(time.time()),
            "model_version": self.model_version, "gate": self.gate,
            "deployment": self.deployment,
            "error": None if error is None else f"{type(error).__name__}: {error}"})
        if metrics is not None:
            self.doc["metrics"] = metrics
        self.write()
        return self.doc

    def write(self) -> None:
        """Write the manifest to the store (atomically)."""
        self.ctx.store.write_json(f"runs/{self.ctx.run_id}/manifest.json", self.doc)


def list_manifests(store: Any) -> list[dict]:
    """Every manifest in the store, oldest first (unreadable ones are skipped)."""
    out = []
    for run_id in store.list_dir("runs"):
        try:
            out.append(store.read_json(f"runs/{run_id}/manifest.json"))
        except (OSError, ValueError):
            continue
    return out


def latest_manifest(store: Any, command: str = "run") -> dict | None:
    """The newest manifest of a successful ``command`` run, if any."""
    for run_id in reversed(store.list_dir("runs")):  # run ids sort by time
        try:
            doc = store.read_json(f"runs/{run_id}/manifest.json")
        except (OSError, ValueError):
            continue
        if doc.get("command") == command and doc.get("status") == "succeeded":
            return doc
    return None

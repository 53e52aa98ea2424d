"""Lifecycle events: what each hook call means, as one JSON-ready payload and a chat line.

An event is a plain dict with the same top-level keys whatever its kind (``event``, ``model``,
``project``, ``run_id``, ``time``, ``reason``), plus the keys its kind adds. New kinds are
added to :data:`EVENTS` and built here; ``batch_quarantined`` is reserved for data contracts
(a batch refused before scoring), which do not exist yet, so nothing emits it.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

SCHEMA = "specloop.notify/1"

#: every event a sink may subscribe to, with what triggers it
EVENTS: dict[str, str] = {
    "promoted": "the champion alias moved to a new version through the gate",
    "force_promoted": "the champion alias moved with --force (the gate skipped)",
    "rolled_back": "the champion alias moved back to its previous holder",
    "drift_detected": "a loop batch whose monitor verdict is drift",
    "retrained": "a loop batch on which the policy retrained (whatever the gate said)",
    "loop_failed": "a loop stage (score, monitor, retrain) raised",
    "run_failed": "a pipeline run (`specloop run`, or the loop's first run) failed",
}
#: reserved, not emitted yet: see the module docstring
RESERVED = ("batch_quarantined",)

_ALIAS_ACTIONS = {"promote": "promoted", "force-promote": "force_promoted",
                  "rollback": "rolled_back"}
LOOP_STAGES = ("score", "monitor", "retrain")


def _base(event: str, run: Any, reason: str | None, **extra: Any) -> dict[str, Any]:
    return {"schema": SCHEMA, "event": event, "model": run.model_name,
            "project": run.project_dir.name, "run_id": run.run_id,
            "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "reason": reason, **extra}


def from_alias_change(run: Any, name: str, alias: str, version: int, previous: int | None,
                      action: str, reason: str) -> list[dict]:
    """``promoted`` / ``force_promoted`` / ``rolled_back`` when the champion moved."""
    event = _ALIAS_ACTIONS.get(action)
    if alias != "champion" or event is None:
        return []
    return [_base(event, run, reason, model=name, alias=alias, version=version,
                  previous=previous, action=action)]


def from_run(run: Any, manifest: dict) -> list[dict]:
    """``drift_detected`` and ``retrained`` for a loop batch; ``run_failed`` for a run."""
    if manifest.get("command") == "loop":
        b = manifest.get("batch") or {}
        common = {"batch": b.get("batch"), "rows": b.get("rows"), "champion": b.get("champion"),
                  "drift_share": b.get("drift_share"), "drift_status": b.get("drift_status"),
                  "drifted_columns": b.get("drifted_columns") or [], "metric": b.get("metric"),
                  "value": b.get("value"), "outcome": b.get("outcome")}
        out = []
        if b.get("drift_status") == "drift":
            out.append(_base("drift_detected", run, b.get("reason"), **common))
        if b.get("retrain"):
            out.append(_base("retrained", run, b.get("reason"), **common,
                             version=b.get("new_version"),
                             challenger_value=b.get("challenger_value"),
                             champion_value=b.get("champion_value")))
        return out
    if manifest.get("status") == "failed":
        error = manifest.get("error")
        text = error.get("message") if isinstance(error, dict) else error
        return [_base("run_failed", run, str(text) if text else "the run failed",
                      error=error, version=manifest.get("model_version"))]
    return []


def from_stage_error(run: Any, stage: str, component: Any, error: BaseException) -> list[dict]:
    """``loop_failed`` when a loop stage raised (Ctrl-C is no failure worth a message)."""
    if stage not in LOOP_STAGES or not isinstance(error, Exception):
        return []
    return [_base("loop_failed", run, f"{stage} failed: {error}", stage=stage,
                  component=component.name if component is not None else "engine",
                  error=f"{type(error).__name__}: {error}")]


def chat_text(ev: dict) -> str:
    """One human line for a chat channel."""
    model, event, reason = ev.get("model"), ev.get("event"), ev.get("reason") or ""
    if event in ("promoted", "force_promoted", "rolled_back"):
        verb = {"promoted": "promoted", "force_promoted": "force-promoted",
                "rolled_back": "rolled back"}[event]
        head = f"champion v{ev.get('previous')} → v{ev.get('version')} ({verb})"
    elif event == "drift_detected":
        share = ev.get("drift_share")
        cols = ", ".join(ev.get("drifted_columns") or []) or "-"
        head = (f"drift on batch {ev.get('batch')}: "
                f"{share:.0%} of features ({cols})" if isinstance(share, (int, float))
                else f"drift on batch {ev.get('batch')}")
    elif event == "retrained":
        head = (f"retrained on batch {ev.get('batch')}: {ev.get('outcome')}"
                + (f" (v{ev.get('version')})" if ev.get("version") else ""))
    elif event == "loop_failed":
        head = f"the loop failed in stage {ev.get('stage')}"
    elif event == "run_failed":
        head = f"run {ev.get('run_id')} failed"
    else:
        head = str(event)
    return f"[specloop] {model}: {head}" + (f" — {reason}" if reason else "")

"""``specloop reproduce RUN_ID``: re-run a recorded run from its manifest's resolved config, up to
``evaluate`` in a throwaway store and registry (no cache, no register or deploy), and compare its
metrics; changed data is read at the recorded DVC commit, or the run stops with both md5s."""

from __future__ import annotations

import dataclasses
import json
import tempfile
from contextlib import closing
from pathlib import Path
from typing import Any, Callable

from ._context import RunContext, make_context, thread_limits
from ._manifest import Manifest, environment, read_manifest, save
from ._plan import STAGES, plan
from ._redact import MASK
from ._runner import Pipeline
from .errors import ReproduceError, SpecloopError

REPRODUCED_STAGES = STAGES[:STAGES.index("evaluate") + 1]


def _compare_metrics(recorded: dict, reproduced: dict, tolerance: float) -> list[dict]:
    rows = []
    for name in sorted(set(recorded) | set(reproduced)):
        a, b = recorded.get(name), reproduced.get(name)
        numeric = isinstance(a, (int, float)) and isinstance(b, (int, float))
        rows.append({"metric": name, "recorded": a, "reproduced": b,
                     "difference": b - a if numeric else None,
                     "ok": abs(b - a) <= tolerance if numeric else a == b})
    return rows


def _environment_diff(recorded: dict, current: dict) -> list[dict]:
    def diff(old: dict | None, new: dict | None, keys: Any = None, prefix: str = "") -> list:
        old, new = old or {}, new or {}
        return [{"what": prefix + k, "recorded": old.get(k), "now": new.get(k)}
                for k in keys or sorted(set(old) | set(new)) if old.get(k) != new.get(k)]

    return (diff(recorded, current, ("python", "platform"))
            + diff(recorded.get("packages"), current.get("packages"))
            + diff(recorded.get("env"), current.get("env"), prefix="$"))


def reproduce(project_dir: str | Path, run_id: str, *, tolerance: float = 0.0,
              overrides: list[str] | None = None,
              echo: Callable[[str], None] | None = None) -> dict:
    """Re-run ``run_id`` and report whether its metrics came back (within ``tolerance``), with
    ``metrics`` rows, ``environment``/``stage_keys`` differences and ``notes``; ``overrides``
    only find the store. A :class:`ReproduceError` if the recorded data is gone."""
    project_dir = Path(project_dir).resolve()
    notes: list[str] = []
    with closing(make_context(project_dir, overrides or [], echo=echo)) as home:
        manifest = read_manifest(home, run_id)
        if manifest.get("status") != "succeeded" or not manifest.get("metrics"):
            raise ReproduceError(f"run {run_id} has no recorded metrics to compare with",
                                 recorded=f"status {manifest.get('status')!r}",
                                 fix="reproduce a run whose status is 'succeeded' "
                                     "(specloop runs list)")
        scratch = tempfile.TemporaryDirectory(prefix="specloop-reproduce-",
                                              ignore_cleanup_errors=True)
        # the recorded config (secrets were never recorded: they come from the environment),
        # with a throwaway store and registry
        masked = [o for o in manifest.get("overrides") or [] if not o.endswith("=" + MASK)]
        with scratch, closing(make_context(project_dir, masked, recorded=manifest,
                                           echo=echo)) as ctx:
            ctx.spec.store = dataclasses.replace(
                ctx.spec.store, url=str(Path(scratch.name) / "store"), storage_options={},
                registry=f"sqlite:///{Path(scratch.name) / 'registry.db'}")
            plans = _check_data(ctx, manifest, run_id, notes)
            plans = [p for p in plans if p.name in REPRODUCED_STAGES]
            for p in plans:
                p.cached = False  # a fresh store: nothing is cached, but be explicit
            pipe = Pipeline(ctx, plans)
            pipe.preflight()
            doc = pipe.manifest = Manifest(ctx, "reproduce")
            doc.doc["reproduces"] = run_id
            doc.record_plan(plans)
            with thread_limits(ctx.spec.project.threads):
                pipe.run()
            metrics = json.loads(ctx.store.get(doc.doc["stages"]["evaluate"]["key"],
                                               "metrics.json"))
            final = doc.finish("succeeded", metrics=metrics)
            save(home, final)
    rows = _compare_metrics(manifest["metrics"], metrics, tolerance)
    keys = {name: ((manifest.get("stages") or {}).get(name, {}).get("key"),
                   final["stages"].get(name, {}).get("key")) for name in REPRODUCED_STAGES}
    return {"run_id": ctx.run_id, "reproduces": run_id,
            "reproduced": all(r["ok"] for r in rows), "tolerance": tolerance,
            "metrics": rows, "environment": _environment_diff(manifest.get("environment") or {},
                                                              environment()),
            "stage_keys": [{"stage": n, "recorded": a, "reproduced": b}
                           for n, (a, b) in keys.items() if a != b],
            "notes": notes, "model_version": manifest.get("model_version")}


def _check_data(ctx: RunContext, manifest: dict, run_id: str, notes: list[str]) -> list:
    """The plans, once the data matches the recorded fingerprint (read at the recorded DVC
    commit if it changed); a :class:`ReproduceError` with both fingerprints if it cannot."""
    plans, fingerprint = plan(ctx, None), manifest.get("data_fingerprint")
    recorded, current = dict(fingerprint) if isinstance(fingerprint, dict) else {}, plans[0].files
    if not recorded:
        if fingerprint != plans[0].key:
            notes.append("the data fingerprint is not a file md5; it could not be verified")
        return plans
    if current == recorded:
        return plans
    changed = [p for p in recorded if current.get(p) != recorded[p]]
    commits = {(manifest.get("data_versions") or {}).get(p, {}).get("commit") for p in changed}
    data, commit, why = ctx.spec.components["data"].config, None, None
    if len(commits) == 1 and None not in commits and hasattr(data, "rev"):
        commit = data.rev = commits.pop()  # read the changed file at the recorded commit
        try:
            plans = plan(ctx, None)
            current = plans[0].files
            notes.append(f"data changed in the workspace; read commit {commit[:12]} "
                         "through DVC, as recorded")
        except SpecloopError as exc:
            why = str(exc.args[0]) if exc.args else type(exc).__name__
    if current != recorded:
        path = next((p for p in recorded if current.get(p) != recorded[p]),
                    next(iter(current), "?"))
        raise ReproduceError(
            f"the data of run {run_id} has changed since it ran", file=path,
            recorded=f"md5 {recorded.get(path)}", current=f"md5 {current.get(path)}",
            fix="restore that version of the file (e.g. git checkout <commit> && "
                "dvc checkout), or track the data with DVC so the recorded revision "
                "can be fetched"
                + (f" (reading commit {commit[:12]} through DVC failed: {why})" if why else ""))
    return plans

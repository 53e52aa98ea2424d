"""Running ``specloop run``: plan, then each stage that is not cached, between the lifecycle
hooks, with a manifest. Artifact stages are computed under the store's per-key lock (a key is
computed once, whoever runs); ``register`` and ``deploy`` under the model's lock."""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any, Callable

from ._context import RunContext, thread_limits
from ._manager import call_hook
from ._manifest import Manifest, latest_manifest
from ._plan import ARTIFACT_STAGES, COMPONENT_OF, STAGES, StagePlan, plan
from ._steps import STEPS, load_output
from .errors import SpecloopError, StageError


class Pipeline:
    """One run of the stages: the plans, the manifest, and the outputs loaded so far."""

    def __init__(self, ctx: RunContext, plans: list[StagePlan], manifest: Any = None,
                 alias: str = "champion") -> None:
        self.ctx, self.manifest, self.alias = ctx, manifest, alias  # alias: a passing version's
        self.plans = {p.name: p for p in plans}
        self.loaded: dict[str, Any] = {}

    def load(self, stage: str) -> Any:
        """The output of ``stage``: from this run, or read (and verified) from the store."""
        if stage not in self.loaded:
            self.loaded[stage] = load_output(self, stage)
        return self.loaded[stage]

    def run(self) -> list[dict]:
        """Run every stage that is not cached; return the per-stage rows."""
        rows: list[dict] = []
        with contextlib.ExitStack() as held:
            for p in (self.plans[n] for n in STAGES if n in self.plans):
                if p.name == "register" and not all(self.plans[n].cached for n in (
                        "register", "deploy") if n in self.plans):
                    # read the champion, judge, promote, deploy: one holder at a time
                    held.enter_context(self.ctx.registry.model_lock(self.ctx.model_name))
                rows.append(self._stage(p))
        return rows

    def _stage(self, p: StagePlan) -> dict:
        spec = p.component.spec if p.component else None

        def step() -> None:
            if p.cached:
                if p.name == "register":
                    self.manifest.model_version = self.ctx.registry.find_by_key(
                        self.ctx.model_name, p.key)["version"]
            elif p.name not in ARTIFACT_STAGES:
                STEPS[p.name](self, p)
            else:  # under the key's lock: a concurrent run may have computed it meanwhile
                store = self.ctx.store
                with store.lock(p.key):
                    if store.has(p.key):
                        p.cached, p.reason = True, "computed by a concurrent run"
                    else:
                        STEPS[p.name](self, p)

        _, seconds = run_stage(self.ctx, p.name, spec, step, cached=p.cached, key=p.key,
                               on_error=lambda s: self.manifest.stage_done(p.name, p, s, True))
        self.manifest.stage_done(p.name, p, seconds)
        return {"stage": p.name, "action": "cached" if p.cached else "ran", "seconds": seconds,
                "component": spec.name if spec else "engine"}

    def preflight(self) -> None:
        """Heavy validation (e.g. estimator parameters) of every component whose stage runs."""
        for p in self.plans.values():
            owner = COMPONENT_OF.get(p.name)
            if not p.cached and owner and self.ctx.spec.components.get(owner) is not None:
                check = getattr(self.ctx.component(owner), "preflight", None)
                if callable(check):
                    check(self.ctx.node(owner))


def run_stage(ctx: RunContext, name: str, spec: Any, fn: Callable[[], Any], *,
              cached: bool = False, key: str | None = None,
              on_error: Callable[[float], None] | None = None) -> tuple[Any, float]:
    """Run one stage between the lifecycle hooks; return ``(result, seconds)``. An exception
    that is no specloop error becomes a :class:`StageError` naming the stage and component;
    a component's StageError without a stage gets this one's name."""
    start = time.perf_counter()
    try:
        call_hook(ctx.pm, "specloop_before_stage", stage=name, component=spec, run=ctx,
                  cached=cached)
        out = fn()
    except BaseException as exc:
        if isinstance(exc, StageError) and exc.stage is None:
            exc.stage = name
        try:
            call_hook(ctx.pm, "specloop_on_stage_error", stage=name, component=spec, run=ctx,
                      error=exc)
        finally:
            if on_error is not None:
                on_error(time.perf_counter() - start)
        if isinstance(exc, SpecloopError) or not isinstance(exc, Exception):  # Ctrl-C too
            raise
        raise StageError(f"stage {name!r} failed", stage=name,
                         component=spec.name if spec else "engine",
                         distribution=spec.distribution if spec else "specloop",
                         version=spec.version if spec else None, run_id=ctx.run_id) from exc
    duration = time.perf_counter() - start
    call_hook(ctx.pm, "specloop_after_stage", stage=name, component=spec, run=ctx,
              cached=cached, duration=duration, key=key)
    return out, duration


def plan_run(ctx: RunContext) -> list[StagePlan]:
    """The plan of ``specloop run`` with reasons against the last successful run."""
    return plan(ctx, latest_manifest)


def execute(ctx: RunContext, command: str = "run", until: str | None = None, *,
            register: bool = True, alias: str = "champion") -> dict:
    """Run the pipeline with a manifest and the lifecycle hooks; return the manifest.
    ``command`` is recorded; ``until`` is the last stage to run; ``register=False`` stops
    after ``evaluate``; ``alias`` is what a version that passes the gate gets (anything but
    ``champion`` skips ``deploy``: a sweep's winner becomes the ``challenger``)."""
    last = min(map(STAGES.index, (until or "deploy", "deploy" if register else "evaluate",
                                  "deploy" if alias == "champion" else "register")))
    plans = [p for p in plan_run(ctx) if STAGES.index(p.name) <= last]
    work = any(not p.cached for p in plans)
    pipe = Pipeline(ctx, plans, None, alias)
    pipe.preflight()  # a bad parameter is a user error: no run is recorded
    manifest = pipe.manifest = Manifest(ctx, command, eager=work)
    if "data" in pipe.plans:  # what the data component says of each file's version (DVC …)
        describe = getattr(ctx.component("data"), "versions", None)
        manifest.doc["data_versions"] = (describe(ctx.node("data"), pipe.plans["data"].files)
                                         or {}) if callable(describe) else {}
    manifest.record_plan(plans)
    try:
        with thread_limits(ctx.spec.project.threads if work else None):
            rows = pipe.run()
        evaluated = manifest.doc["stages"].get("evaluate")
        metrics = json.loads(ctx.store.get(evaluated["key"], "metrics.json")) \
            if evaluated else None
    except BaseException as exc:
        call_hook(ctx.pm, "specloop_after_run", run=ctx, manifest=manifest.finish("failed", exc))
        raise
    doc = manifest.finish("succeeded", metrics=metrics)
    doc["rows"] = rows
    call_hook(ctx.pm, "specloop_after_run", run=ctx, manifest=doc)
    return doc

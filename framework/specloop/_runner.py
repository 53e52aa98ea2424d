"""``specloop run``: plan, then compute each stage that is not cached between the lifecycle hooks,
with a manifest. An artifact stage writes its planned key under the store's per-key lock (computed
once, whoever runs); ``register`` and ``deploy`` go through :mod:`._flow` under the model's lock."""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any, Callable

from ._context import RunContext, thread_limits
from ._flow import (committed, ensure_deployed, fit, give_alias, judge, measure,
                    register_version, signature_of)
from ._manager import call_hook
from ._manifest import Manifest, recent_manifests
from ._model_artifacts import load_model, read_file
from ._plugin_types import progress
from ._plan import ARTIFACT_STAGES, COMPONENT_OF, STAGES, StagePlan, evaluate_key, plan
from ._spec import check_task
from ._tabular import columns_for, from_parquet, split_frame, to_parquet
from .errors import ArtifactError, ConfigError, SpecloopError, StageError


class Pipeline:
    """One run of the stages: the plans, the manifest, and the outputs loaded so far."""

    def __init__(self, ctx: RunContext, plans: list[StagePlan], alias: str = "champion") -> None:
        self.ctx, self.manifest, self.alias = ctx, None, alias  # alias: a passing version's
        self.plans = {p.name: p for p in plans}
        self.loaded: dict[str, Any] = {}

    def load(self, stage: str) -> Any:
        """The output of ``stage``: from this run, or read (and verified) from the store."""
        if stage not in self.loaded:
            key, get = self.plans[stage].key, self.ctx.store.get
            if stage == "data":
                out = from_parquet(get(key, "frame.parquet"))
            elif stage == "split":
                out = {"train": from_parquet(get(key, "train.parquet")),
                       "test": from_parquet(get(key, "test.parquet")),
                       "columns": json.loads(get(key, "columns.json"))}
            elif stage == "train":
                out = {"model": load_model(self.ctx, key),
                       "signature": json.loads(get(key, "signature.json"))}
            else:  # evaluate: register and deploy have no output to load
                out = json.loads(get(key, "metrics.json"))
            self.loaded[stage] = out
        return self.loaded[stage]

    def run(self) -> list[dict]:
        """Run every stage that is not cached; return the per-stage rows."""
        rows: list[dict] = []
        with contextlib.ExitStack() as held:
            bar = progress([self.plans[n] for n in STAGES if n in self.plans], desc="run",
                           unit="stage")
            for p in bar:
                bar.set_postfix_str(p.name)
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
    """The plan of ``specloop run``, each stage to run explained against its nearest
    cached output from the recent successful runs."""
    return plan(ctx, recent_manifests)


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
    pipe = Pipeline(ctx, plans, alias)
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
        metrics = pipe.load("evaluate") if "evaluate" in pipe.plans else None
    except BaseException as exc:
        call_hook(ctx.pm, "specloop_after_run", run=ctx, manifest=manifest.finish("failed", exc))
        raise
    doc = manifest.finish("succeeded", metrics=metrics)
    doc["rows"] = rows
    call_hook(ctx.pm, "specloop_after_run", run=ctx, manifest=doc)
    return doc


def snapshot(ctx: Any, planned: dict[str, str]) -> Any:
    """Read the data once; with the component's ``snapshot(ctx)``, exactly the bytes whose
    fingerprint was planned (a ConfigError if they changed since); else with ``load(ctx)``."""
    source, node = ctx.component("data"), ctx.node("data")
    take = getattr(source, "snapshot", None)
    if not callable(take):
        return source.load(node)
    frame, read = take(node)
    path = min((p for p in {*planned, *read} if planned.get(p) != read.get(p)), default=None)
    if path is not None:
        raise ConfigError(f"the data changed while the run was starting: {path} (md5 "
                          f"{str(planned.get(path))[:8]} → {str(read.get(path))[:8]})",
                          key="data", file=ctx.spec.provenance.where("data"),
                          fix="run again once the file is no longer being written")
    return frame


def run_data(pipe: Pipeline, stage: StagePlan) -> None:
    ctx = pipe.ctx
    frame = pipe.loaded["data"] = snapshot(ctx, stage.files)
    columns_for(frame, ctx.spec.components["data"].config, ctx.spec.provenance.where)
    ctx.store.put(stage.key, {"frame.parquet": to_parquet(frame)},
                  {"stage": "data", "rows": len(frame)})


def run_split(pipe: Pipeline, stage: StagePlan) -> None:
    ctx, frame = pipe.ctx, pipe.load("data")
    conf = ctx.spec.components["data"].config
    columns = columns_for(frame, conf, ctx.spec.provenance.where)
    train, test = split_frame(frame, columns, conf.split, ctx.spec.project.seed)
    if len(train) == 0 or len(test) == 0:
        raise ConfigError("the split leaves no training or no test rows", key="data.split",
                          expected="enough rows for both sides",
                          fix="change data.split.test_size or add data")
    ctx.store.put(stage.key, {"train.parquet": to_parquet(train), "test.parquet": to_parquet(test),
                             "columns.json": json.dumps(columns).encode()},
                  {"stage": "split", "train_rows": len(train), "test_rows": len(test)})
    pipe.loaded["split"] = {"train": train, "test": test, "columns": columns}


def run_train(pipe: Pipeline, stage: StagePlan) -> None:
    split = pipe.load("split")
    cols = split["columns"]
    check_task(pipe.ctx.spec, pipe.ctx.component("model"), cols["task"], cols["target"])
    fitted, sig = fit(pipe.ctx, stage.key, split["train"], cols, {"stage": "train"})
    pipe.loaded["train"] = {"model": fitted, "signature": sig}


def run_evaluate(pipe: Pipeline, stage: StagePlan) -> None:
    split = pipe.load("split")
    metrics = pipe.loaded["evaluate"] = measure(pipe.ctx, pipe.load("train")["model"],
                                                split["test"], split["columns"])
    pipe.ctx.store.put(stage.key, {"metrics.json": json.dumps(metrics).encode()},
                       {"stage": "evaluate"})


def champion_metrics(pipe: Pipeline, champion: dict) -> dict:
    """The champion's metrics on this run's test rows: on the same split, its own
    ``evaluate`` artifact (same key); on another, scored on the test rows it was not trained
    on; when that is impossible (another feature set), its recorded metrics, said aloud."""
    ctx, split_key = pipe.ctx, pipe.plans["split"].key
    if champion.get("reference_key") == split_key:
        key = evaluate_key(ctx.spec.components["metrics"], champion["model_key"], split_key)
        if ctx.store.has(key):
            return json.loads(ctx.store.get(key, "metrics.json"))
    split = pipe.load("split")
    test, cols = split["test"], split["columns"]
    try:
        model = load_model(ctx, champion["model_key"], champion)
        if champion.get("reference_key") not in (None, split_key):
            test = unseen_by(ctx, champion, test, cols)
        return measure(ctx, model, test, cols)
    except (ArtifactError, KeyboardInterrupt):
        raise  # a tampered champion is never silently replaced by its record
    except Exception as exc:  # another feature set or model kind: use its record
        why = exc.args[0] if isinstance(exc, SpecloopError) and exc.args else type(exc).__name__
        ctx.say(f"note: champion v{champion['version']} could not be re-scored on this test "
                f"set ({why}); comparing recorded metrics")
        return champion["metrics"]


def unseen_by(ctx: RunContext, champion: dict, test: Any, cols: dict) -> Any:
    """The rows of ``test`` the champion was not trained on (scoring those would flatter it)."""
    import pandas as pd  # the split's frames are already loaded: no import cost here

    seen = from_parquet(read_file(ctx, champion["reference_key"], "train.parquet", champion))
    on = [c for c in [*cols["features"], cols["target"]] if c in seen.columns]
    trained = set(pd.util.hash_pandas_object(seen[on], index=False))
    unseen = test[(~pd.util.hash_pandas_object(test[on], index=False).isin(trained)).to_numpy()]
    ctx.say(f"champion v{champion['version']} re-scored on the {len(unseen)} of {len(test)} "
            "test rows it was not trained on")
    if len(unseen) == 0:
        raise ValueError("every test row was in the champion's training data")
    return unseen


def run_register(pipe: Pipeline, stage: StagePlan) -> None:
    """Judge the new model against the champion, register it, and alias it if it passes."""
    ctx, plans, manifest = pipe.ctx, pipe.plans, pipe.manifest
    metrics = pipe.load("evaluate")
    champion = ctx.registry.resolve(ctx.model_name, "champion")
    against = champion_metrics(pipe, champion) if champion is not None else None
    sigs = (signature_of(ctx, champion) if champion else None, pipe.load("train")["signature"])
    gate = judge(ctx, metrics, against, sigs)
    with committed(ctx):  # the version and its alias move, or neither
        version = register_version(
            ctx, model_key=plans["train"].key, reference_key=plans["split"].key,
            metrics=metrics, gate=gate, data_fingerprint=plans["data"].key,
            source={"kind": "run", "overrides": manifest.doc["overrides"]})
        prev = give_alias(ctx, pipe.alias, version["version"], champion, gate,
                          gate["summary"]) if gate["passed"] else None
    manifest.model_version, manifest.gate = version["version"], gate
    if gate["passed"]:
        manifest.alias_changes.append({"alias": pipe.alias, "from": prev, "to": version["version"]})


def run_deploy(pipe: Pipeline, stage: StagePlan) -> None:
    ctx = pipe.ctx
    if ctx.registry.resolve(ctx.model_name, "champion") is None:
        ctx.say("deploy: skipped, the model has no champion (the gate did not pass)")
    elif (result := ensure_deployed(ctx)) is not None:
        pipe.manifest.deployment = result


STEPS = {"data": run_data, "split": run_split, "train": run_train, "evaluate": run_evaluate,
         "register": run_register, "deploy": run_deploy}

"""The stage loop of ``specloop run`` and ``specloop plan``.

Stages: ``data → split → train → evaluate → register → deploy``. Each has a cache key made of
its component (kind and version), its resolved config and its inputs' keys; an unchanged
stage is taken from the store. Keys are computed from config and file fingerprints alone, so
deciding that everything is cached imports neither pandas nor scikit-learn. Outputs of cached
stages are loaded only when a later stage actually has to run.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ._context import RunContext
from ._hashing import cache_key
from ._manifest import Manifest, latest_manifest
from ._model_artifacts import MODEL_FILE, load_model, read_file, recorded_file, version_artifacts
from ._spec import Resolved, _plain
from ._tabular import columns_for, from_parquet, signature, split_frame
from .errors import ArtifactError, ConfigError, SpecloopError, StageError

STAGES = ("data", "split", "train", "evaluate", "register", "deploy")
# stages whose output is one artifact under the stage's key (computed once under a lock)
ARTIFACT_STAGES = ("data", "split", "train", "evaluate")
# which spec node provides the component of each stage
COMPONENT_OF = {"data": "data", "train": "model", "evaluate": "metrics", "register": "gate",
                "deploy": "deploy"}


def flatten(prefix: str, value: Any) -> dict[str, Any]:
    """``{"a.b": 1}`` from ``{"a": {"b": 1}}`` (lists are leaves)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten(f"{prefix}.{k}" if prefix else str(k), v))
        return out
    return {prefix: value}


@dataclass
class StagePlan:
    """What ``plan`` says of one stage."""

    name: str
    component: Resolved | None
    key: str | None
    cached: bool
    reason: str
    config: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        """A JSON-able summary."""
        comp = self.component
        return {"stage": self.name, "component": comp.spec.name if comp else "engine",
                "distribution": comp.spec.distribution if comp else None, "key": self.key,
                "action": "cached" if self.cached else "run", "reason": self.reason}


class Pipeline:
    """Plans and runs the stages of one project for one run context."""

    def __init__(self, ctx: RunContext, alias: str = "champion") -> None:
        self.ctx = ctx
        self.spec = ctx.spec
        self.alias = alias  # the alias a version that passes the gate gets
        self._components: dict[str, Any] = {}
        self._loaded: dict[str, Any] = {}
        self._writer: Any = None
        self._artifacts: Any = None  # the ArtifactWriter, once a stage computes an artifact
        self._exiting: list[Any] = []  # writers told to exit, not reaped yet
        self._pending: list[Any] = []

    # -- components --------------------------------------------------------------------------
    def component(self, stage: str) -> Any:
        """The built component of ``stage`` (built once per run)."""
        if stage not in self._components:
            self._components[stage] = self.spec.components[stage].build()
        return self._components[stage]

    # -- planning ----------------------------------------------------------------------------
    def plan(self) -> list[StagePlan]:
        """Compute every stage's key and whether it is cached, with the reason."""
        ctx, spec = self.ctx, self.spec
        store, seed = ctx.store, spec.project.seed
        previous = latest_manifest(store)
        prev_stages = (previous or {}).get("stages", {})
        comps = spec.components
        data = comps["data"]
        try:
            source = self.component("data").fingerprint(ctx)
        except SpecloopError:
            raise
        except Exception as exc:
            raise StageError(f"the data component failed to fingerprint its source: {exc}",
                             stage="data", component=data.spec.name,
                             distribution=data.spec.distribution) from exc
        plans: list[StagePlan] = []

        def add(name: str, comp: Resolved | None, config: dict, inputs: dict[str, str],
                extra: Any = None, cached: Callable[[str], bool] | None = None) -> StagePlan:
            key = cache_key(name, comp.spec.kind if comp else None,
                            comp.spec.version if comp else None, config, inputs, extra)
            is_cached = (cached or store.has)(key)
            reason = "unchanged" if is_cached else _reason(prev_stages.get(name), key, config,
                                                           inputs)
            plan = StagePlan(name, comp, key, is_cached, reason, config, inputs)
            plans.append(plan)
            return plan

        node_cfg = flatten("data", _plain(data.config))
        data_cfg = {k: v for k, v in node_cfg.items() if not k.startswith("data.split.")}
        data_cfg.update({f"data file {p}": md5 for p, md5 in source.items()})
        p_data = add("data", data, data_cfg, {})
        split_cfg = {"project.seed": seed, **node_cfg}
        p_split = add("split", None, split_cfg, {"data": p_data.key})
        model = comps["model"]
        p_train = add("train", model, {"project.seed": seed, **flatten("model", _plain(model.config))},
                      {"split": p_split.key})
        metrics = comps["metrics"]
        p_eval = add("evaluate", metrics, flatten("metrics", _plain(metrics.config)),
                     {"train": p_train.key, "split": p_split.key})
        gate = comps.get("gate")
        registered = ctx.registry.find_by_key(ctx.model_name, p_train.key)
        reg = StagePlan("register", gate, p_train.key, registered is not None,
                        f"already registered as version {registered['version']}" if registered
                        else "new model version", flatten("gate", _plain(gate.config)) if gate else {},
                        {"train": p_train.key, "evaluate": p_eval.key})
        plans.append(reg)
        deploy = comps.get("deploy")
        if deploy is not None:
            champion = ctx.registry.resolve(ctx.model_name, "champion")
            after = champion["model_key"] if champion else None
            if not reg.cached:
                after = None  # depends on whether the new version is promoted
            dep_cfg = flatten("deploy", _plain(deploy.config))
            key = cache_key("deploy", deploy.spec.kind, deploy.spec.version, dep_cfg, after)
            ok = after is not None and store.has(key) and self._deployed_ok(key)
            reason = "unchanged" if ok else (
                "deploys the champion if the new version is promoted" if after is None
                else _reason(prev_stages.get("deploy"), key, dep_cfg, {"champion": after}))
            plans.append(StagePlan("deploy", deploy, key, ok, reason, dep_cfg,
                                   {"champion": after} if after else {}))
        return plans

    def _deployed_ok(self, key: str) -> bool:
        try:
            result = json.loads(self.ctx.store.get(key, "result.json"))
            return bool(self.component("deploy").verify(result, self.ctx))
        except Exception:
            return False

    # -- writing outputs ---------------------------------------------------------------------
    def start_writer(self, plans: list[StagePlan]) -> None:
        """Start the artifact writer process when a stage will compute an artifact.

        Started before the first stage runs, it imports the encoders (pyarrow, and the model
        component's serializer when ``train`` will run) on the other core while this
        process loads the data and fits. A fully cached run starts nothing.
        """
        if self._artifacts is not None:
            return
        todo = {p.name for p in plans if not p.cached}
        if not todo & {"data", "split", "train"}:
            return
        from ._artifact_writer import ArtifactWriter

        warm = [self.component("model")] if "train" in todo else []
        self._artifacts = ArtifactWriter(warm, parquet=bool(todo & {"data", "split"}))

    def put_later(self, key: str, files: dict[str, Any], meta: dict) -> None:
        """Encode and store an artifact off the critical path.

        ``files`` maps names to bytes, :class:`ParquetFile` or :class:`ModelFile`. They go to
        the artifact writer process (see ``_artifact_writer``), which encodes and writes them
        on the other core while training runs; the writer thread only hands them over and
        waits for the record, in order. The frames and the model stay in memory for the
        stages of this run. :meth:`flush` waits for every pending write; it runs before
        anything records a key (registration) and at the end of the run.
        """
        store = self.ctx.store
        if self._artifacts is None:
            from ._artifact_writer import ArtifactWriter

            self._artifacts = ArtifactWriter(process=False)
        writer = self._artifacts
        self.in_background(lambda: writer.put(store, key, files, meta))

    def in_background(self, write: Callable[[], Any]) -> None:
        """Run ``write`` on the writer thread, after the writes queued before it."""
        if self._writer is None:
            from concurrent.futures import ThreadPoolExecutor

            self._writer = ThreadPoolExecutor(1, thread_name_prefix="specloop-store")
        self._pending.append(self._writer.submit(write))

    def flush(self, *, raise_errors: bool = True, reap: bool = True) -> None:
        """Wait for the artifacts :meth:`put_later` is still writing.

        Args:
            raise_errors: Raise the first error a write raised.
            reap: Also wait for the writer process to exit; ``False`` lets it exit while
                this process goes on (the next flush with ``reap`` waits for it).
        """
        pending, self._pending = self._pending, []
        errors = []
        for future in pending:
            try:
                future.result()
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                errors.append(exc)
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None
        if self._artifacts is not None:  # nothing after a flush writes through it
            self._exiting.append(self._artifacts)
            self._artifacts = None
        for writer in self._exiting:
            writer.close(wait=reap)
        if reap:
            self._exiting = []
        if errors and raise_errors:
            raise errors[0]

    def data_versions(self, plan: StagePlan) -> dict[str, dict]:
        """What the data component says of each file's version (DVC md5, revision, commit)."""
        describe = getattr(self.component("data"), "versions", None)
        if not callable(describe):
            return {}
        files = {k[10:]: v for k, v in plan.config.items() if k.startswith("data file ")}
        return describe(self.ctx, files) or {}

    # -- loading cached outputs --------------------------------------------------------------
    def load(self, stage: str, plan: StagePlan) -> Any:
        """The output of ``stage`` (from this run, or from the store)."""
        if stage in self._loaded:
            return self._loaded[stage]
        store = self.ctx.store
        if stage == "data":
            out = from_parquet(store.get(plan.key, "frame.parquet"))
        elif stage == "split":
            out = {"train": from_parquet(store.get(plan.key, "train.parquet")),
                   "test": from_parquet(store.get(plan.key, "test.parquet")),
                   "columns": json.loads(store.get(plan.key, "columns.json"))}
        elif stage == "train":
            out = {"model": load_model(self.ctx, self.component("model"), plan.key),
                   "signature": json.loads(store.get(plan.key, "signature.json"))}
        elif stage == "evaluate":
            out = json.loads(store.get(plan.key, "metrics.json"))
        else:  # pragma: no cover - register/deploy are never loaded
            raise KeyError(stage)
        self._loaded[stage] = out
        return out

    # -- running -----------------------------------------------------------------------------
    def preflight(self, plans: list[StagePlan]) -> None:
        """Heavy validation (e.g. estimator parameters) of every stage that will run."""
        for p in plans:
            owner = COMPONENT_OF.get(p.name)
            if not p.cached and owner and self.spec.components.get(owner) is not None:
                check = getattr(self.component(owner), "preflight", None)
                if callable(check):
                    check(self.ctx)

    def run(self, manifest: Manifest, plans: list[StagePlan] | None = None) -> list[dict]:
        """Run every stage that is not cached; return the per-stage rows."""
        if plans is None:
            plans = self.plan()
            self.preflight(plans)
        plans = {p.name: p for p in plans}
        if "data" in plans:
            manifest.doc["data_versions"] = self.data_versions(plans["data"])
        manifest.record_plan(plans.values())
        rows: list[dict] = []
        try:
            self.start_writer(list(plans.values()))
            self._run_stages(plans, manifest, rows)
        except BaseException:
            self.flush(raise_errors=False)  # keep what was computed; the stage error wins
            raise
        self.flush()
        return rows

    def _run_stages(self, plans: dict, manifest: Manifest, rows: list[dict]) -> None:
        for name in STAGES:
            plan = plans.get(name)
            if plan is None:
                continue
            if name == "register":  # a version records the split's key: it must be stored
                self.flush(reap=False)
            spec = plan.component.spec if plan.component else None

            def step(name: str = name, plan: StagePlan = plan) -> None:
                if not plan.cached and name in ARTIFACT_STAGES:
                    self._compute_once(name, plan, plans, manifest)
                elif not plan.cached:
                    getattr(self, f"_run_{name}")(plan, plans, manifest)
                elif name == "register":
                    manifest.model_version = self.ctx.registry.find_by_key(
                        self.ctx.model_name, plan.key)["version"]

            def failed(seconds: float, name: str = name, plan: StagePlan = plan) -> None:
                manifest.stage_done(name, plan, seconds, failed=True)

            _, duration = run_stage(self.ctx, name, spec, step, cached=plan.cached,
                                    key=plan.key, on_error=failed)
            manifest.stage_done(name, plan, duration)
            rows.append({"stage": name, "action": "cached" if plan.cached else "ran",
                         "seconds": duration, "component": spec.name if spec else "engine"})

    def _compute_once(self, name: str, plan: StagePlan, plans: dict, manifest: Manifest) -> None:
        """Compute an artifact stage under the store's per-key lock.

        A concurrent process (another sweep member, another sweep) that computed the same key
        while this one waited turns the stage into a cache hit.
        """
        import contextlib

        held = contextlib.ExitStack()
        held.enter_context(self.ctx.store.lock(plan.key))
        try:
            if self.ctx.store.has(plan.key):
                plan.cached = True
                plan.reason = "computed by a concurrent run"
                held.close()
                return
            queued = len(self._pending)
            getattr(self, f"_run_{name}")(plan, plans, manifest)
        except BaseException:
            held.close()
            raise
        if len(self._pending) > queued:  # still being written in the background: unlock after
            self._pending.append(self._writer.submit(held.close))
        else:
            held.close()

    def _run_data(self, plan: StagePlan, plans: dict, manifest: Manifest) -> None:
        from ._artifact_writer import ParquetFile  # not imported by a cached run

        frame = self.component("data").load(self.ctx)
        columns_for(frame, self.spec.components["data"].config, self.spec.provenance.where)
        self.put_later(plan.key, {"frame.parquet": ParquetFile(frame)},
                       {"stage": "data", "rows": len(frame)})
        self._loaded["data"] = frame

    def _run_split(self, plan: StagePlan, plans: dict, manifest: Manifest) -> None:
        from ._artifact_writer import ParquetFile

        frame = self.load("data", plans["data"])
        conf = self.spec.components["data"].config
        columns = columns_for(frame, conf, self.spec.provenance.where)
        train, test = split_frame(frame, columns, conf.split, self.spec.project.seed)
        if len(train) == 0 or len(test) == 0:
            raise ConfigError("the split leaves no training or no test rows", key="data.split",
                              expected="enough rows for both sides",
                              fix="change data.split.test_size or add data")
        self.put_later(plan.key, {"train.parquet": ParquetFile(train),
                                  "test.parquet": ParquetFile(test),
                                  "columns.json": json.dumps(columns).encode()},
                       {"stage": "split", "train_rows": len(train), "test_rows": len(test)})
        self._loaded["split"] = {"train": train, "test": test, "columns": columns}

    def _run_train(self, plan: StagePlan, plans: dict, manifest: Manifest) -> None:
        from ._artifact_writer import ModelFile

        split = self.load("split", plans["split"])
        model_c = self.component("model")
        cols = split["columns"]
        X, y = split["train"][cols["features"]], split["train"][cols["target"]]
        fitted = model_c.fit(X, y, categorical=cols["categorical"], task=cols["task"],
                             seed=self.spec.project.seed)
        sig = signature(split["train"], cols)
        # serializing (skops walks the whole estimator) overlaps with the evaluate stage
        name = self.spec.components["model"].spec.name
        self.put_later(plan.key, {MODEL_FILE: ModelFile(model_c, fitted),
                                  "signature.json": json.dumps(sig).encode()},
                       {"stage": "train", "component": name})
        self._loaded["train"] = {"model": fitted, "signature": sig}

    def _run_evaluate(self, plan: StagePlan, plans: dict, manifest: Manifest) -> None:
        split = self.load("split", plans["split"])
        trained = self.load("train", plans["train"])
        cols = split["columns"]
        metrics = self.component("metrics").compute(
            trained["model"], split["test"][cols["features"]], split["test"][cols["target"]],
            task=cols["task"])
        self.ctx.store.put(plan.key, {"metrics.json": json.dumps(metrics).encode()},
                           {"stage": "evaluate"})
        self._loaded["evaluate"] = metrics

    def _run_register(self, plan: StagePlan, plans: dict, manifest: Manifest) -> None:
        ctx = self.ctx
        metrics = self.load("evaluate", plans["evaluate"])
        split = self.load("split", plans["split"])
        cols = split["columns"]
        metrics_c = self.component("metrics")
        champion = ctx.registry.resolve(ctx.model_name, "champion")
        champion_metrics = None
        if champion is not None:  # judge it on this run's test rows it never trained on
            try:
                champ_model = load_model(ctx, self.component("model"), champion["model_key"],
                                         champion)
                test = self._unseen_by(champion, split["test"], cols, plans["split"].key)
                champion_metrics = metrics_c.compute(
                    champ_model, test[cols["features"]], test[cols["target"]],
                    task=cols["task"])
            except ArtifactError:
                raise  # a tampered champion is never silently replaced by its record
            except Exception as exc:  # another feature set or model kind: use its record
                why = exc.args[0] if isinstance(exc, SpecloopError) and exc.args else \
                    type(exc).__name__
                ctx.say(f"note: champion v{champion['version']} could not be re-scored on "
                        f"this test set ({why}); comparing recorded metrics")
                champion_metrics = champion["metrics"]
        gate = judge(self.spec, self._components, metrics, champion_metrics, metrics_c)
        version = ctx.registry.register(
            ctx.model_name, model_key=plans["train"].key, metrics=metrics,
            reference_key=plans["split"].key, data_fingerprint=plans["data"].key,
            run_id=ctx.run_id, config=self.spec.raw, gate=gate,
            source={"kind": "run", "overrides": self.spec.overrides},
            artifacts=version_artifacts(ctx.store, plans["train"].key, plans["split"].key))
        manifest.model_version = version["version"]
        if gate["passed"]:
            prev = ctx.registry.set_alias(
                ctx.model_name, self.alias, version["version"], reason=gate["summary"],
                gate=gate, run_id=ctx.run_id,
                action="promote" if self.alias == "champion" else f"register-{self.alias}")
            manifest.alias_changes.append({"alias": self.alias, "from": prev,
                                           "to": version["version"]})
        manifest.gate = gate

    def _unseen_by(self, champion: dict, test: Any, cols: dict, split_key: str) -> Any:
        """The rows of ``test`` the champion was not trained on.

        With the same split they are all of them. When the split changed (another seed,
        test size or data), some of this run's test rows may be in the champion's training
        set, and scoring it there would flatter it; those rows are left out.
        """
        if champion.get("reference_key") in (None, split_key):
            return test
        import pandas as pd

        seen = from_parquet(read_file(self.ctx, champion["reference_key"], "train.parquet",
                                      champion))
        on = [c for c in [*cols["features"], cols["target"]] if c in seen.columns]
        trained = set(pd.util.hash_pandas_object(seen[on], index=False))
        keep = ~pd.util.hash_pandas_object(test[on], index=False).isin(trained)
        unseen = test[keep.to_numpy()]
        self.ctx.say(f"champion v{champion['version']} re-scored on the {len(unseen)} of "
                     f"{len(test)} test rows it was not trained on")
        if len(unseen) == 0:
            raise ValueError("every test row was in the champion's training data")
        return unseen

    def _run_deploy(self, plan: StagePlan, plans: dict, manifest: Manifest) -> None:
        ctx = self.ctx
        champion = ctx.registry.resolve(ctx.model_name, "champion")
        if champion is None:
            ctx.say("deploy: skipped, the model has no champion (the gate did not pass)")
            return
        deploy(ctx, self.spec, self.component("deploy"), champion, manifest)


def run_stage(ctx: RunContext, name: str, spec: Any, fn: Callable[[], Any], *,
              cached: bool = False, key: str | None = None,
              on_error: Callable[[float], None] | None = None) -> tuple[Any, float]:
    """Run one stage between the lifecycle hooks; return ``(result, seconds)``.

    An exception that is not already a specloop error is wrapped in a :class:`StageError`
    naming the stage, the component and its distribution.
    """
    hook = ctx.pm.hook
    start = time.perf_counter()
    try:
        hook.specloop_before_stage(stage=name, component=spec, run=ctx, cached=cached)
        out = fn()
    except BaseException as exc:
        hook.specloop_on_stage_error(stage=name, component=spec, run=ctx, error=exc)
        if on_error is not None:
            on_error(time.perf_counter() - start)
        if isinstance(exc, (SpecloopError, KeyboardInterrupt, SystemExit)):
            raise
        raise StageError(f"stage {name!r} failed", stage=name,
                         component=spec.name if spec else "engine",
                         distribution=spec.distribution if spec else "specloop",
                         run_id=ctx.run_id) from exc
    duration = time.perf_counter() - start
    hook.specloop_after_stage(stage=name, component=spec, run=ctx, cached=cached,
                              duration=duration, key=key)
    return out, duration


def judge(spec: Any, components: dict, metrics: dict, champion_metrics: dict | None,
          metrics_c: Any) -> dict:
    """Run the spec's gate (or pass, when the spec has none)."""
    gate_r = spec.components.get("gate")
    if gate_r is None:
        return {"passed": True, "checks": [], "summary": "no gate declared"}
    if "gate" not in components:
        components["gate"] = gate_r.build()
    return components["gate"].check(metrics, champion_metrics, primary=metrics_c.primary,
                                    greater_is_better=metrics_c.greater_is_better)


def deploy(ctx: RunContext, spec: Any, component: Any, version: dict, manifest: Any) -> dict:
    """Deploy ``version`` with the deploy component and record the result as an artifact."""
    comp = spec.components["deploy"]
    dep_cfg = flatten("deploy", _plain(comp.config))
    key = cache_key("deploy", comp.spec.kind, comp.spec.version, dep_cfg, version["model_key"])
    model_meta = ctx.store.meta(version["model_key"])
    recorded = recorded_file(version, version["model_key"], MODEL_FILE)
    if recorded and recorded.get("format"):  # the registry's record wins over the store's
        model_meta.update(format=recorded["format"], trusted_types=recorded["trusted_types"])
    model_c = spec.components["model"].build()
    bundle = {
        "name": ctx.model_name,
        "version": version,
        "model": read_file(ctx, version["model_key"], MODEL_FILE, version),
        # a target that scores (batch) loads the model through the one verified path
        "load_model": lambda: load_model(ctx, model_c, version["model_key"], version),
        "model_meta": model_meta,
        "signature": json.loads(ctx.store.get(version["model_key"], "signature.json")),
        "description": spec.project.description,
    }
    result = component.deploy(bundle, ctx)
    ctx.store.put(key, {"result.json": json.dumps(result, default=str).encode()},
                  {"stage": "deploy", "version": version["version"]})
    if manifest is not None:
        manifest.deployment = result
    return result


def _reason(prev: dict | None, key: str, config: dict, inputs: dict) -> str:
    if prev is None:
        return "not in the cache"
    if prev.get("key") == key:
        return "output missing from the store"
    old_cfg = prev.get("config", {})
    changed = [k for k in sorted(set(old_cfg) | set(config)) if old_cfg.get(k) != config.get(k)]
    if changed:
        shown = []
        for k in changed[:3]:
            if k.startswith("data file "):
                shown.append(f"{k[10:]} changed (md5 {str(old_cfg.get(k))[:8]} → "
                             f"{str(config.get(k))[:8]})")
            else:
                shown.append(f"{k}: {old_cfg.get(k, '(unset)')!r} → {config.get(k, '(unset)')!r}")
        more = f" (+{len(changed) - 3} more)" if len(changed) > 3 else ""
        return "; ".join(shown) + more
    changed_inputs = [k for k in inputs if prev.get("inputs", {}).get(k) != inputs[k]]
    if changed_inputs:
        return "input " + ", ".join(repr(k) for k in changed_inputs) + " changed"
    return "component version changed"


def execute(ctx: RunContext, command: str = "run", until: str | None = None, *,
            register: bool = True, alias: str = "champion") -> dict:
    """Run the pipeline with a manifest and the lifecycle hooks; return the manifest.

    Args:
        ctx: The run context.
        command: Recorded in the manifest.
        until: The last stage to run (``specloop run --until split``).
        register: ``False`` stops after ``evaluate`` (sweep members under
            ``sweep.register: best|none``).
        alias: The alias a new version that passes the gate gets; anything but ``champion``
            also skips ``deploy`` (the winner of a sweep becomes the ``challenger``).
    """
    from ._manifest import Manifest

    from ._context import thread_limits

    pipe = Pipeline(ctx, alias=alias)
    plans = pipe.plan()
    if until is not None:
        plans = [p for p in plans if STAGES.index(p.name) <= STAGES.index(until)]
    if not register:
        plans = [p for p in plans if p.name not in ("register", "deploy")]
    elif alias != "champion":
        plans = [p for p in plans if p.name != "deploy"]
    pipe.start_writer(plans)  # imports the encoders on the other core from now on
    try:
        pipe.preflight(plans)  # a bad parameter is a user error, not a failed run
        manifest = Manifest(ctx, command, eager=any(not p.cached for p in plans))
    except BaseException:
        pipe.flush(raise_errors=False)  # stops the writer process
        raise
    threads = ctx.spec.project.threads if any(not p.cached for p in plans) else None
    try:
        with thread_limits(threads):  # only loads threadpoolctl when a stage will run
            rows = pipe.run(manifest, plans)
        evaluated = manifest.doc["stages"].get("evaluate")
        metrics = json.loads(ctx.store.get(evaluated["key"], "metrics.json")) \
            if evaluated else None
    except BaseException as exc:
        doc = manifest.finish("failed", exc)
        ctx.pm.hook.specloop_after_run(run=ctx, manifest=doc)
        raise
    doc = manifest.finish("succeeded", metrics=metrics)
    doc["rows"] = rows
    ctx.pm.hook.specloop_after_run(run=ctx, manifest=doc)
    return doc

"""``specloop loop``: score incoming batches with the champion, monitor them, let the
retraining policy decide, retrain a challenger on the declared window, gate it against the
champion, promote or keep.

The loop's state lives in the registry database: a batch is recorded once, after every
registry change it caused, so a re-run resumes where it stopped and never processes a batch
twice. Every piece of data it touches is an artifact in the store, so a retrain can rebuild
its window from earlier batches without reading the sources again.
"""

from __future__ import annotations

import json
import time
from typing import Any

from ._context import RunContext
from ._hashing import cache_key
from ._model_artifacts import load_model, read_file, save_model, version_artifacts
from ._pipeline import Pipeline, deploy, execute, judge, run_stage
from ._policy import Decision, Observation
from ._tabular import from_parquet, signature, split_frame, to_parquet
from .errors import ConfigError, RegistryError, StageError
from .schema import SplitConf


class Loop:
    """Processes incoming batches for one run context."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.spec = ctx.spec
        if self.spec.incoming is None:
            raise ConfigError("the spec declares no incoming batches", key="loop.incoming",
                              file=self.spec.provenance.where("loop"),
                              expected="loop.incoming: a data node (e.g. {path: data/new/*.csv})",
                              fix="add loop.incoming to conf/config.yaml")
        self.pipe = Pipeline(ctx)
        self.model_c = self.pipe.component("model")
        self.metrics_c = self.pipe.component("metrics")
        self.monitor_c = self.pipe.component("monitor") if self.spec.components["monitor"] else None
        retrain = self.spec.components["retrain"]
        self.policy = retrain.build() if retrain else None
        self.window_conf = retrain.config if retrain else None
        self._models: dict[str, Any] = {}  # verified and loaded once per loop run

    def _model(self, key: str, version: dict | None = None) -> Any:
        if key not in self._models:
            self._models[key] = load_model(self.ctx, self.model_c, key, version)
        return self._models[key]

    # -- helpers -----------------------------------------------------------------------------
    def _champion(self) -> dict:
        champion = self.ctx.registry.resolve(self.ctx.model_name, "champion")
        if champion is None:
            raise RegistryError(f"model {self.ctx.model_name!r} has no champion, so there is "
                                "nothing to score batches with",
                                fix="the first model did not pass the gate: relax the gate or "
                                    "improve the model, then run 'specloop run'")
        return champion

    def _reference(self, champion: dict) -> tuple[Any, dict]:
        key = champion["reference_key"]
        return (from_parquet(read_file(self.ctx, key, "train.parquet", champion)),
                json.loads(read_file(self.ctx, key, "columns.json", champion)))

    def _holdout(self, frame: Any, columns: dict, salt: int) -> tuple[Any, Any]:
        split = SplitConf(method="stratified", test_size=self.spec.loop.holdout)
        return split_frame(frame, {**columns, "time_column": None}, split,
                           self.spec.project.seed + salt)

    # -- the loop ----------------------------------------------------------------------------
    def run(self, limit: int | None = None) -> list[dict]:
        """Process every unprocessed batch (at most ``limit``); return one record each.

        The loop writes a manifest for its run id (command ``loop``) with the batches it
        processed and the versions it registered, so ``registry show`` can point a
        loop-trained version at the run that made it.
        """
        from ._context import new_run_id, thread_limits
        from ._manifest import Manifest

        ctx = self.ctx
        with thread_limits(self.spec.project.threads):
            if ctx.registry.resolve(ctx.model_name, "champion") is None:
                ctx.say("no champion yet: running the pipeline first")
                doc = execute(ctx, command="run")
                ctx.run_id, ctx.started = new_run_id(), time.time()  # one manifest per run
                ctx.say(f"run {doc['run_id']}: model version {doc['model_version']}"
                        f" ({doc['gate']['summary'] if doc.get('gate') else 'registered'})")
            manifest = Manifest(ctx, "loop")
            records: list[dict] = []
            manifest.doc["batches"] = records
            try:
                self._run(limit, records)
            except BaseException as exc:
                manifest.finish("failed", exc)
                raise
            new = [r["new_version"] for r in records if r.get("new_version")]
            manifest.doc["model_versions"] = new
            manifest.model_version = new[-1] if new else None
            manifest.alias_changes.extend(
                {"alias": "champion", "from": r["champion"], "to": r["new_version"],
                 "batch": r["batch"]} for r in records if r.get("outcome") == "promoted")
            manifest.finish("succeeded")
            return records

    def _run(self, limit: int | None, records: list[dict]) -> list[dict]:
        ctx = self.ctx
        champion = self._champion()
        incoming = self.spec.incoming.build()
        done = ctx.registry.processed_batches(ctx.model_name)
        batches = incoming.batches(ctx)
        if not batches:
            ctx.say("no incoming batches found")
        for batch_id, fingerprint, load in batches:
            if batch_id in done:
                continue
            if limit is not None and len(records) >= limit:
                break
            record = self._process(batch_id, fingerprint, load, champion, done)
            champion = self._champion()
            done[batch_id] = record
            records.append(record)
            ctx.say(format_record(record))
        return records

    def _process(self, batch_id: str, fingerprint: str, load: Any, champion: dict,
                 done: dict) -> dict:
        ctx, store = self.ctx, self.ctx.store
        hook = ctx.pm.hook
        batch_key = cache_key("batch", batch_id, fingerprint)
        if store.has(batch_key):
            frame = from_parquet(store.get(batch_key, "frame.parquet"))
        else:
            frame = load()
            store.put(batch_key, {"frame.parquet": to_parquet(frame)},
                      {"stage": "batch", "batch": batch_id})
        reference, columns = self._reference(champion)
        missing = [c for c in columns["features"] if c not in frame.columns]
        if missing:
            raise StageError(f"batch {batch_id!r} lacks feature columns {missing}", stage="score",
                             component=self.spec.incoming.spec.name,
                             distribution=self.spec.incoming.spec.distribution,
                             run_id=ctx.run_id)
        model = self._model(champion["model_key"], champion)
        X = frame[columns["features"]]
        self._stage("score", None, lambda: self._score(model, X, batch_key, champion))
        drift = None
        if self.monitor_c is not None:
            drift = self._stage("monitor", self.spec.components["monitor"], lambda: self.monitor_c.check(
                reference[columns["features"]], X, columns=columns["features"],
                categorical=columns["categorical"]))
        metrics = None
        target = columns["target"]
        if target in frame.columns and frame[target].notna().all() and len(frame):
            metrics = self.metrics_c.compute(model, X, frame[target], task=columns["task"])
        since = sum(1 for r in done.values() if r.get("champion") == champion["version"])
        obs = Observation(batch_id, len(frame), drift, metrics, champion["metrics"],
                          self.metrics_c.primary, self.metrics_c.greater_is_better, since + 1)
        decision = self.policy.decide(obs) if self.policy else Decision(False, "no policy")
        if decision.retrain and target not in frame.columns:  # e.g. logged serving traffic
            decision = Decision(False, f"{decision.reason}, but the batch has no {target!r} "
                                       "labels to retrain on", decision.details)
        primary = self.metrics_c.primary
        record: dict[str, Any] = {
            "batch": batch_id, "fingerprint": fingerprint, "rows": len(frame),
            "champion": champion["version"],
            "drift_share": drift["drift_share"] if drift else None,
            "drifted_columns": [c["column"] for c in drift["columns"] if c["drifted"]]
            if drift else [],
            "metric": primary, "value": metrics.get(primary) if metrics else None,
            "retrain": decision.retrain, "reason": decision.reason, "outcome": "kept",
            "new_version": None}
        if decision.retrain:
            record.update(self._stage("retrain", self.spec.components["retrain"],
                                      lambda: self._retrain(batch_id, batch_key, champion, done,
                                                            columns)))
        ctx.registry.record_batch(ctx.model_name, batch_id, champion["version"], record)
        hook.specloop_after_run(run=ctx, manifest={"command": "loop", "batch": record,
                                                   "run_id": ctx.run_id, "status": "succeeded"})
        return record

    def _score(self, model: Any, X: Any, batch_key: str, champion: dict) -> str:
        """Score the batch with the champion and keep the predictions as an artifact."""
        import pandas as pd

        key = cache_key("scores", batch_key, champion["model_key"])
        if not self.ctx.store.has(key):
            scores = pd.DataFrame({"prediction": model.predict(X)})
            if hasattr(model, "predict_proba"):
                proba = model.predict_proba(X)
                for i, label in enumerate(getattr(model, "classes_", range(proba.shape[1]))):
                    scores[f"proba_{label}"] = proba[:, i]
            self.ctx.store.put(key, {"scores.parquet": to_parquet(scores)},
                               {"stage": "score", "model_version": champion["version"]})
        return key

    def _stage(self, name: str, comp: Any, fn: Any) -> Any:
        return run_stage(self.ctx, name, comp.spec if comp else None, fn)[0]

    def _retrain(self, batch_id: str, batch_key: str, champion: dict, done: dict,
                 columns: dict) -> dict:
        import pandas as pd

        ctx, store, spec = self.ctx, self.ctx.store, self.spec
        seen = [b for b in done] + [batch_id]
        n = getattr(self.window_conf, "window_batches", None)
        window = seen[-n:] if n else seen
        keys = {b: (batch_key if b == batch_id else cache_key("batch", b, done[b]["fingerprint"]))
                for b in window}
        train_parts, test_parts = [], []
        for i, (b, key) in enumerate(keys.items()):
            tr, te = self._holdout(from_parquet(store.get(key, "frame.parquet")), columns, i + 1)
            train_parts.append(tr)
            test_parts.append(te)
        base = None
        if getattr(self.window_conf, "include_base", True):
            plans = {p.name: p for p in self.pipe.plan()}
            base = self.pipe.load("split", plans["split"])
            train_parts.insert(0, base["train"][[*columns["features"], columns["target"]]])
            if spec.loop.evaluate_on == "window":
                test_parts.insert(0, base["test"][[*columns["features"], columns["target"]]])
        keep = [*columns["features"], columns["target"]]
        train = pd.concat([p[keep] for p in train_parts], ignore_index=True)
        test = pd.concat([p[keep] for p in test_parts], ignore_index=True)
        model_r = spec.components["model"]
        model_key = cache_key("loop-train", model_r.fingerprint(), spec.project.seed,
                              list(keys.values()), base is not None, spec.loop.holdout)
        X, y = train[columns["features"]], train[columns["target"]]
        if store.has(model_key):
            fitted = load_model(ctx, self.model_c, model_key)
        else:
            fitted = self.model_c.fit(X, y, categorical=columns["categorical"],
                                      task=columns["task"], seed=spec.project.seed)
            save_model(store, model_key, self.model_c, fitted,
                       {"signature.json": json.dumps(signature(train, columns)).encode()},
                       {"stage": "retrain", "batch": batch_id,
                        "component": self.spec.components["model"].spec.name})
        ref_key = cache_key("loop-reference", model_key)
        if not store.has(ref_key):
            store.put(ref_key, {"train.parquet": to_parquet(train),
                                "columns.json": json.dumps(columns).encode()},
                      {"stage": "retrain", "batch": batch_id})
        X_test, y_test = test[columns["features"]], test[columns["target"]]
        cand = self.metrics_c.compute(fitted, X_test, y_test, task=columns["task"])
        champ_model = self._model(champion["model_key"], champion)
        champ = self.metrics_c.compute(champ_model, X_test, y_test, task=columns["task"])
        gate = judge(spec, self.pipe._components, cand, champ, self.metrics_c)
        existing = ctx.registry.find_by_key(ctx.model_name, model_key)
        version = existing or ctx.registry.register(
            ctx.model_name, model_key=model_key, metrics=cand, reference_key=ref_key,
            data_fingerprint=cache_key(list(keys.values())), run_id=ctx.run_id,
            config=spec.raw, gate=gate,
            source={"kind": "loop", "batch": batch_id, "window": window,
                    "include_base": base is not None},
            artifacts=version_artifacts(store, model_key, ref_key))
        primary = self.metrics_c.primary
        out = {"new_version": version["version"], "challenger_value": cand.get(primary),
               "champion_value": champ.get(primary), "gate": gate["summary"],
               "judged_on": f"{spec.loop.evaluate_on} holdout ({len(test)} rows)"}
        ctx.registry.set_alias(ctx.model_name, "challenger", version["version"],
                               reason=f"retrained on batch {batch_id}: {gate['summary']}",
                               gate=gate, run_id=ctx.run_id, action="register-challenger")
        if gate["passed"] and champion["version"] != version["version"]:
            ctx.registry.set_alias(ctx.model_name, "champion", version["version"],
                                   reason=f"batch {batch_id}: {gate['summary']}", gate=gate,
                                   run_id=ctx.run_id)
            out["outcome"] = "promoted"
            if spec.components.get("deploy") is not None:
                deploy(ctx, spec, self.pipe.component("deploy"),
                       ctx.registry.get(ctx.model_name, version["version"]), None)
        else:
            out["outcome"] = "kept champion"
        return out


def format_record(r: dict) -> str:
    """One line per batch: drift share, champion's metric, decision and why."""
    drift = "n/a" if r.get("drift_share") is None else f"{r['drift_share']:.2f}"
    value = "n/a" if r.get("value") is None else f"{r['value']:.3f}"
    line = (f"{r['batch']}  rows {r['rows']:>6}  drift {drift:>4}  {r['metric']} {value} "
            f"(champion v{r['champion']})  ")
    if not r.get("retrain"):
        return line + f"keep: {r['reason']}"
    line += f"retrain: {r['reason']} → v{r['new_version']} {r['challenger_value']:.3f} vs " \
            f"v{r['champion']} {r['champion_value']:.3f} on {r['judged_on']}: {r['outcome']}"
    return line

"""``specloop loop``: score incoming batches with the champion, monitor them, let the
retraining policy decide, retrain a challenger on the declared window, gate it against the
champion, promote or keep.

Exactly once, over immutable snapshots: each batch is read once, and the bytes read are the
bytes hashed (a batch that changed between listing and reading, that is still being written
or that is incomplete is left for a later pass). A batch's record commits in one transaction
with every registry change it causes (the new version, its aliases), so a resumed loop
repeats exactly the step a crash interrupted; the deployment that follows is checked again
when the loop starts. A processed batch that changes later is reported and recorded, never
silently skipped. One loop per project runs at a time.
"""

from __future__ import annotations

import json
import os
import socket
import time
from typing import Any

from ._batch import Batch
from ._boundary import call_hook, guarded_call
from ._context import RunContext, new_run_id, thread_limits
from ._flow import (committed, deploy_champion, ensure_deployed, judge, move_alias,
                    register_version)
from ._hashing import cache_key
from ._manifest import Manifest, iso
from ._model_artifacts import load_model, read_file, save_model
from ._policy import Decision, Observation
from ._proc import pid_alive
from ._runner import Pipeline, execute, plan_run, run_stage
from ._tabular import check_frame, from_parquet, signature, split_frame, to_parquet
from .errors import BatchNotReady, BusyError, ConfigError, RegistryError, StageError
from .schema import SplitConf


class LoopLock:
    """One ``specloop loop`` per project and model: a file lock whose holder is named."""

    def __init__(self, ctx: RunContext) -> None:
        folder = ctx.registry.path.parent  # beside the registry whose state the loop moves
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"loop-{ctx.model_name}.lock"
        self.holder = folder / f"loop-{ctx.model_name}.holder"

    def __enter__(self) -> "LoopLock":
        from filelock import FileLock, Timeout

        self._lock = FileLock(str(self.path), timeout=0)
        try:
            self._lock.acquire()
        except Timeout:
            try:
                who = json.loads(self.holder.read_text())
                held = f"pid {who['pid']} on {who['host']} since {who['since']}"
            except (OSError, ValueError, KeyError):
                held = "another process"
            raise BusyError("another 'specloop loop' is running for this project",
                            holder=held, fix="wait for it to finish, or stop it (a killed "
                                             "holder's lock is released by the system)") from None
        self.holder.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                           "since": iso(time.time())}))
        return self

    def __exit__(self, *exc: Any) -> None:
        self.holder.unlink(missing_ok=True)
        self._lock.release()

    def status(self) -> dict | None:
        """Who holds the lock now (``None``: nobody)."""
        try:
            who = json.loads(self.holder.read_text())
        except (OSError, ValueError):
            return None
        return who if pid_alive(who.get("pid")) or who.get("host") != socket.gethostname() \
            else None


def as_batch(item: Any) -> Batch:
    """A source's batch: a :class:`Batch`, or the older ``(id, fingerprint, load)`` tuple."""
    if isinstance(item, Batch):
        return item
    batch_id, fingerprint, load = item
    return Batch(batch_id, fingerprint, lambda: (load(), fingerprint))


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
        self.metrics_c = ctx.component("metrics")
        self.monitor_c = ctx.component("monitor")
        self.policy = ctx.component("retrain")
        retrain = self.spec.components["retrain"]
        self.window_conf = retrain.config if retrain else None
        self._models: dict[str, Any] = {}  # verified and loaded once per loop run

    def _model(self, version: dict) -> Any:
        key = version["model_key"]
        if key not in self._models:
            self._models[key] = load_model(self.ctx, key, version)
        return self._models[key]

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

    def _stage(self, name: str, comp: Any, fn: Any) -> Any:
        return run_stage(self.ctx, name, comp.spec if comp else None, fn)[0]

    # -- the loop ----------------------------------------------------------------------------
    def run(self, limit: int | None = None) -> list[dict]:
        """Process every ready, unprocessed batch (at most ``limit``); one record each.

        The loop writes a manifest for its run id (command ``loop``) with the batches it
        processed and the versions it registered.
        """
        ctx = self.ctx
        with LoopLock(ctx), thread_limits(self.spec.project.threads):
            if ctx.registry.resolve(ctx.model_name, "champion") is None:
                ctx.say("no champion yet: running the pipeline first")
                doc = execute(ctx, command="run")
                ctx.run_id, ctx.started = new_run_id(), time.time()  # one manifest per run
                ctx.say(f"run {doc['run_id']}: model version {doc['model_version']}"
                        f" ({doc['gate']['summary'] if doc.get('gate') else 'registered'})")
            with ctx.registry.model_lock(ctx.model_name):
                ensure_deployed(ctx)  # a crash after a promotion left the old deployment
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

    def ready_batches(self) -> Any:
        """The batches to process now, each read once when the caller gets to it: yields
        ``(batch, frame, fingerprint)`` (the fingerprint of exactly the bytes parsed)."""
        ctx, reg = self.ctx, self.ctx.registry
        incoming = self.spec.incoming.build(ctx.run_id)
        done = reg.processed_batches(ctx.model_name)
        noted = {(e["batch_id"], (e["detail"] or {}).get("fingerprint"))
                 for e in reg.events(ctx.model_name) if e["event"] == "changed"}
        node = ctx.node("loop.incoming")
        listed = [as_batch(b) for b in incoming.batches(node)]
        if not listed:
            ctx.say("no incoming batches found")
        listed = self._settled(incoming, node, listed, done)
        for batch in listed:
            if batch is None:
                continue
            if batch.id in done:
                recorded = done[batch.id].get("fingerprint")
                if recorded not in (None, batch.fingerprint) and \
                        (batch.id, batch.fingerprint) not in noted:
                    ctx.say(f"{batch.id}  changed after it was processed (fingerprint "
                            f"{str(recorded)[:8]} → {batch.fingerprint[:8]}); not processed "
                            "again: give the new data a new batch name to process it")
                    reg.record_event(ctx.model_name, batch.id, "changed",
                                     {"processed": recorded, "fingerprint": batch.fingerprint})
                continue
            try:
                frame, read = guarded_call(self.spec.incoming.spec, "reading a batch",
                                           batch.read, run_id=ctx.run_id)
            except BatchNotReady as exc:
                ctx.say(f"{batch.id}  not complete yet ({exc.args[0]}): left for a later pass")
                continue
            if read != batch.fingerprint:
                ctx.say(f"{batch.id}  changed while it was being read: left for a later pass")
                continue
            yield batch, frame, read

    def _settled(self, incoming: Any, node: Any, listed: list[Batch], done: dict) -> list:
        """The settle rule: a batch changed less than ``loop.settle_seconds`` ago is taken
        only if it is unchanged once that time has passed (it is listed again after a
        wait); one still changing is left for a later pass (``None`` in its place)."""
        settle = self.spec.loop.settle_seconds
        ages = {b.id: time.time() - b.modified for b in listed
                if b.id not in done and b.modified is not None}
        fresh = {i: a for i, a in ages.items() if a < settle}
        if not fresh:
            return listed
        time.sleep(settle - min(fresh.values()))
        before = {b.id: b.fingerprint for b in listed}
        again = {b.id: b for b in map(as_batch, incoming.batches(node))}
        out = []
        for b in listed:
            now = again.get(b.id)
            if b.id in fresh and (now is None or now.fingerprint != before[b.id] or
                                  now.modified != b.modified):
                self.ctx.say(f"{b.id}  still being written: left for a later pass "
                             f"(loop.settle_seconds: {settle:g})")
                out.append(None)
            else:
                out.append(now or b)
        return out

    def _run(self, limit: int | None, records: list[dict]) -> list[dict]:
        ctx = self.ctx
        done = ctx.registry.processed_batches(ctx.model_name)
        for batch, frame, fingerprint in self.ready_batches():
            record = self._process(batch.id, fingerprint, frame, done)
            done[batch.id] = record
            records.append(record)
            ctx.say(format_record(record))
            if limit is not None and len(records) >= limit:
                break
        return records

    def _process(self, batch_id: str, fingerprint: str, frame: Any, done: dict) -> dict:
        ctx, store = self.ctx, self.ctx.store
        batch_key = cache_key("batch", batch_id, fingerprint)
        if not store.has(batch_key):
            store.put(batch_key, {"frame.parquet": to_parquet(frame)},
                      {"stage": "batch", "batch": batch_id})
        else:  # kept by a step a crash interrupted: it must still be the bytes recorded
            store.get(batch_key, "frame.parquet")
        champion = self._champion()
        reference, columns = self._reference(champion)
        missing = [c for c in columns["features"] if c not in frame.columns]
        if missing:
            inc = self.spec.incoming.spec
            raise StageError(f"batch {batch_id!r} lacks feature columns {missing}", stage="score",
                             component=inc.name, distribution=inc.distribution,
                             run_id=ctx.run_id)
        check_frame(frame, columns["features"], self.spec.incoming.config,
                    self.spec.provenance.where, "loop.incoming")
        model = self._model(champion)
        X = frame[columns["features"]]
        self._stage("score", None, lambda: self._score(model, X, batch_key, champion))
        drift = None
        if self.monitor_c is not None:
            drift = self._stage("monitor", self.spec.components["monitor"],
                                lambda: self.monitor_c.check(
                                    reference[columns["features"]], X,
                                    columns=columns["features"],
                                    categorical=columns["categorical"]))
        metrics = None
        target = columns["target"]
        labelled = frame[target].notna() if target in frame.columns else None
        n_labelled = int(labelled.sum()) if labelled is not None else 0
        if n_labelled:  # a partly labelled batch is measured on the rows that have labels
            metrics = self.metrics_c.compute(model, X[labelled], frame[target][labelled],
                                             task=columns["task"])
        since = sum(1 for r in done.values() if r.get("champion") == champion["version"])
        obs = Observation(batch_id, len(frame), drift, metrics, champion["metrics"],
                          self.metrics_c.primary, self.metrics_c.greater_is_better, since + 1)
        decision = self.policy.decide(obs) if self.policy else Decision(False, "no policy")
        if decision.retrain and not n_labelled:  # e.g. logged serving traffic
            decision = Decision(False, f"{decision.reason}, but the batch has no {target!r} "
                                       "labels to retrain on", decision.details)
        record: dict[str, Any] = {
            "batch": batch_id, "fingerprint": fingerprint, "rows": len(frame),
            "labelled": n_labelled,
            "champion": champion["version"],
            "drift_share": drift["drift_share"] if drift else None,
            "drift_status": drift.get("status") if drift else None,
            "drifted_columns": [c["column"] for c in drift["columns"] if c["drifted"]]
            if drift else [],
            "drift_columns": drift["columns"] if drift else [],
            "metric": self.metrics_c.primary, "value": metrics.get(self.metrics_c.primary)
            if metrics else None,
            "retrain": decision.retrain, "reason": decision.reason, "outcome": "kept",
            "new_version": None}
        if not decision.retrain:
            ctx.registry.record_batch(ctx.model_name, batch_id, champion["version"], record)
        else:
            with ctx.registry.model_lock(ctx.model_name):
                self._stage("retrain", self.spec.components["retrain"],
                            lambda: self._retrain(batch_id, batch_key, done, columns, record))
        call_hook(ctx.pm, "specloop_after_run", run=ctx,
                  manifest={"command": "loop", "batch": record, "run_id": ctx.run_id,
                            "status": "succeeded"})
        return record

    def _score(self, model: Any, X: Any, batch_key: str, champion: dict) -> str:
        """Score the batch with the champion and keep the predictions as an artifact."""
        import pandas as pd  # loaded with the batch already

        key = cache_key("scores", batch_key, champion["model_key"])
        if self.ctx.store.has(key):  # an interrupted step's scores: checked, not trusted
            self.ctx.store.get(key, "scores.parquet")
        else:
            scores = pd.DataFrame({"prediction": model.predict(X)})
            if hasattr(model, "predict_proba"):
                proba = model.predict_proba(X)
                for i, label in enumerate(getattr(model, "classes_", range(proba.shape[1]))):
                    scores[f"proba_{label}"] = proba[:, i]
            self.ctx.store.put(key, {"scores.parquet": to_parquet(scores)},
                               {"stage": "score", "model_version": champion["version"]})
        return key

    def _window(self, batch_id: str, batch_key: str, done: dict, columns: dict) -> tuple:
        """The training and holdout rows of the retraining window, and what identifies it."""
        import pandas as pd

        seen = [*done, batch_id]
        n = getattr(self.window_conf, "window_batches", None)
        window = seen[-n:] if n else seen
        keys = {b: batch_key if b == batch_id else cache_key("batch", b, done[b]["fingerprint"])
                for b in window}
        keep = [*columns["features"], columns["target"]]
        train_parts, test_parts = [], []
        for i, key in enumerate(keys.values()):
            frame = from_parquet(self.ctx.store.get(key, "frame.parquet"))
            if columns["target"] in frame.columns:
                frame = frame[frame[columns["target"]].notna()]  # only the labelled rows
            if columns["target"] not in frame.columns or not len(frame):
                continue  # a batch without labels adds nothing to train on
            tr, te = self._holdout(frame, columns, i + 1)
            train_parts.append(tr[keep])
            test_parts.append(te[keep])
        base = getattr(self.window_conf, "include_base", True)
        if base:
            split = Pipeline(self.ctx, plan_run(self.ctx)).load("split")
            train_parts.insert(0, split["train"][keep])
            if self.spec.loop.evaluate_on == "window":
                test_parts.insert(0, split["test"][keep])
        return (pd.concat(train_parts, ignore_index=True), pd.concat(test_parts, ignore_index=True),
                window, list(keys.values()), base)

    def _retrain(self, batch_id: str, batch_key: str, done: dict, columns: dict,
                 record: dict) -> None:
        """Train a challenger on the window, judge it against the champion on the same rows,
        and commit version, aliases and the batch record together; then deploy."""
        ctx, store, spec = self.ctx, self.ctx.store, self.spec
        champion = self._champion()  # read under the model lock
        train, test, window, keys, base = self._window(batch_id, batch_key, done, columns)
        model_r = spec.components["model"]
        model_key = cache_key("loop-train", model_r.fingerprint(), spec.project.seed, keys,
                              base, spec.loop.holdout)
        X, y = train[columns["features"]], train[columns["target"]]
        if store.has(model_key):
            fitted = load_model(ctx, model_key)
        else:
            fitted = ctx.component("model").fit(X, y, categorical=columns["categorical"],
                                                task=columns["task"], seed=spec.project.seed)
            save_model(store, model_key, model_r, ctx.component("model"), fitted,
                       {"signature.json": json.dumps(signature(train, columns)).encode()},
                       {"stage": "retrain", "batch": batch_id})
        ref_key = cache_key("loop-reference", model_key)
        if not store.has(ref_key):
            store.put(ref_key, {"train.parquet": to_parquet(train),
                                "columns.json": json.dumps(columns).encode()},
                      {"stage": "retrain", "batch": batch_id})
        X_test, y_test = test[columns["features"]], test[columns["target"]]
        cand = self.metrics_c.compute(fitted, X_test, y_test, task=columns["task"])
        champ = self.metrics_c.compute(self._model(champion), X_test, y_test,
                                       task=columns["task"])
        gate = judge(ctx, cand, champ)
        primary = self.metrics_c.primary
        record.update({"challenger_value": cand.get(primary), "champion_value": champ.get(primary),
                       "gate": gate["summary"],
                       "judged_on": f"{spec.loop.evaluate_on} holdout ({len(test)} rows)"})
        with committed(ctx):  # version, aliases and the batch record: all or none
            version = ctx.registry.find_by_key(ctx.model_name, model_key) or register_version(
                ctx, model_key=model_key, reference_key=ref_key, metrics=cand, gate=gate,
                data_fingerprint=cache_key(keys),
                source={"kind": "loop", "batch": batch_id, "window": window,
                        "include_base": base})
            record["new_version"] = version["version"]
            move_alias(ctx, "challenger", version["version"], expect=...,
                       reason=f"retrained on batch {batch_id}: {gate['summary']}", gate=gate,
                       action="register-challenger")
            promote = gate["passed"] and champion["version"] != version["version"]
            if promote:
                move_alias(ctx, "champion", version["version"], expect=champion["version"],
                           reason=f"batch {batch_id}: {gate['summary']}", gate=gate)
            record["outcome"] = "promoted" if promote else "kept champion"
            ctx.registry.record_batch(ctx.model_name, batch_id, champion["version"], record)
        if promote:
            deployed = deploy_champion(ctx)
            if deployed is not None:
                record["deployed"] = deployed.get("location")


def format_record(r: dict) -> str:
    """One line per batch: drift share, champion's metric, decision and why."""
    drift = "n/a" if r.get("drift_share") is None else f"{r['drift_share']:.2f}"
    if r.get("drift_status") == "insufficient data":
        drift = "too few rows"
    value = "n/a" if r.get("value") is None else f"{r['value']:.3f}"
    line = (f"{r['batch']}  rows {r['rows']:>6}  drift {drift:>4}  {r['metric']} {value} "
            f"(champion v{r['champion']})  ")
    if not r.get("retrain"):
        return line + f"keep: {r['reason']}"
    return line + (f"retrain: {r['reason']} → v{r['new_version']} {r['challenger_value']:.3f} vs "
                   f"v{r['champion']} {r['champion_value']:.3f} on {r['judged_on']}: "
                   f"{r['outcome']}")


def loop_status(ctx: RunContext) -> dict:
    """Who runs the loop now, and what it has processed (``specloop loop --status``)."""
    done = ctx.registry.processed_batches(ctx.model_name)
    return {"running": LoopLock(ctx).status(), "processed": len(done),
            "last": list(done)[-1] if done else None,
            "events": ctx.registry.events(ctx.model_name)[-5:]}


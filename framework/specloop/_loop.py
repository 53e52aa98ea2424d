"""``specloop loop``: score each new batch with the champion, monitor it, let the retraining
policy decide, retrain a challenger on the window and promote it if it passes the gate. Each
batch is read once (the bytes read are the bytes hashed) and its record commits with the
registry changes it causes, so a resumed loop repeats exactly the step a crash interrupted."""

from __future__ import annotations

import json
import os
import socket
import time
from typing import Any, Callable, Iterable, Iterator

from filelock import FileLock, Timeout

from ._manager import call_hook, guarded_call
from ._context import RunContext, new_run_id, thread_limits
from ._flow import (committed, deploy_champion, ensure_deployed, fit, give_alias, judge,
                    measure, register_version)
from ._manifest import Manifest, iso
from ._model_artifacts import load_model, read_file
from ._plan import cache_key
from ._plugin_types import Batch, Decision, Observation, as_batch, progress
from ._runner import Pipeline, execute, plan_run, run_stage
from ._store import pid_alive
from ._tabular import check_frame, from_parquet, predictions, split_frame, to_parquet
from .errors import BatchNotReady, BusyError, ConfigError, RegistryError, StageError
from .schema import SplitConf


class LoopLock:
    """One ``specloop loop`` per project and model: a file lock whose holder is named."""

    def __init__(self, ctx: RunContext) -> None:
        folder = ctx.registry.path.parent  # beside the registry whose state the loop moves
        folder.mkdir(parents=True, exist_ok=True)
        self.path, self.holder = (folder / f"loop-{ctx.model_name}.{x}" for x in ("lock", "holder"))

    def _holder(self) -> Any:
        try:
            return json.loads(self.holder.read_text())
        except (OSError, ValueError):
            return None

    def __enter__(self) -> "LoopLock":
        self._lock = FileLock(str(self.path), timeout=0)
        try:
            self._lock.acquire()
        except Timeout:
            try:
                who = self._holder()
                held = f"pid {who['pid']} on {who['host']} since {who['since']}"
            except (TypeError, KeyError):  # no holder file (yet), or half written
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
        who = self._holder()
        return who if who is not None and (pid_alive(who.get("pid")) or
                                           who.get("host") != socket.gethostname()) else None


class Loop:
    """Processes incoming batches for one run context."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx, self.spec = ctx, ctx.spec
        if self.spec.incoming is None:
            raise ConfigError("the spec declares no incoming batches", key="loop.incoming",
                              file=self.spec.provenance.where("loop"),
                              expected="loop.incoming: a data node (e.g. {path: data/new/*.csv})",
                              fix="add loop.incoming to conf/config.yaml")
        self.metrics_c, self.monitor_c = ctx.component("metrics"), ctx.component("monitor")
        self.policy = ctx.component("retrain")
        self.window_conf = getattr(self.spec.components["retrain"], "config", None)
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

    def _stage(self, name: str, comp: Any, fn: Any) -> Any:
        return run_stage(self.ctx, name, comp.spec if comp else None, fn)[0]

    def run(self, limit: int | None = None) -> list[dict]:
        """Process every ready, unprocessed batch (at most ``limit``); one record each, kept
        in the manifest of the loop's run (command ``loop``)."""
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
            manifest.doc["batches"] = records = []  # the manifest lists them as they come
            try:
                done = ctx.registry.processed_batches(ctx.model_name)
                for batch, frame, fingerprint in progress(self.ready_batches(), desc="loop",
                                                          unit="batch"):
                    record = done[batch.id] = self._process(batch.id, fingerprint, frame, done)
                    records.append(record)
                    ctx.say(format_record(record))
                    if limit is not None and len(records) >= limit:
                        break
            except BaseException as exc:
                manifest.finish("failed", exc)
                raise
            new = manifest.doc["model_versions"] = [r["new_version"] for r in records
                                                    if r.get("new_version")]
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
        incoming, done = self.spec.incoming.build(ctx.run_id), reg.processed_batches(ctx.model_name)
        noted = {(e["batch_id"], (e["detail"] or {}).get("fingerprint"))
                 for e in reg.events(ctx.model_name) if e["event"] == "changed"}
        node = ctx.node("loop.incoming")
        listed = [as_batch(b) for b in incoming.batches(node)]
        if not listed:
            ctx.say("no incoming batches found")
        for batch in self._settled(listed, lambda: incoming.batches(node), done):
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

    def _settled(self, listed: list[Batch], relist: Callable[[], Iterable[Any]],
                 done: Any) -> Iterator[Batch]:
        """The settle rule: a batch not in ``done`` changed less than ``loop.settle_seconds`` ago
        is taken only if ``relist`` after that wait shows it unchanged."""
        settle, now = self.spec.loop.settle_seconds, time.time()
        fresh = {b.id: now - b.modified for b in listed
                 if b.id not in done and b.modified is not None and now - b.modified < settle}
        again: dict[str, Batch] = {}
        if fresh:
            time.sleep(settle - min(fresh.values()))
            again = {b.id: b for b in map(as_batch, relist())}
        for b in listed:
            new = again.get(b.id)
            if b.id in fresh and (new is None or (new.fingerprint, new.modified) !=
                                  (b.fingerprint, b.modified)):
                self.ctx.say(f"{b.id}  still being written: left for a later pass "
                             f"(loop.settle_seconds: {settle:g})")
            else:
                yield new or b

    def _keep(self, key: str, name: str, data: Callable[[], bytes], meta: dict) -> None:
        """Store ``data()`` as file ``name`` of ``key``, unless a step a crash interrupted
        kept it: then it is read, so it must still be the bytes recorded."""
        if self.ctx.store.has(key):
            self.ctx.store.get(key, name)
        else:
            self.ctx.store.put(key, {name: data()}, meta)

    def _process(self, batch_id: str, fingerprint: str, frame: Any, done: dict) -> dict:
        ctx, inc = self.ctx, self.spec.incoming
        batch_key = cache_key("batch", batch_id, fingerprint)
        self._keep(batch_key, "frame.parquet", lambda: to_parquet(frame),
                   {"stage": "batch", "batch": batch_id})
        champion = self._champion()
        ref = champion["reference_key"]
        reference = from_parquet(read_file(ctx, ref, "train.parquet", champion))
        columns = json.loads(read_file(ctx, ref, "columns.json", champion))
        features, target, primary = columns["features"], columns["target"], self.metrics_c.primary
        missing = [c for c in features if c not in frame.columns]
        if missing:
            raise StageError(f"batch {batch_id!r} lacks feature columns {missing}", stage="score",
                             component=inc.spec.name, distribution=inc.spec.distribution,
                             run_id=ctx.run_id)
        check_frame(frame, features, inc.config, self.spec.provenance.where, "loop.incoming")
        model, X = self._model(champion), frame[features]
        self._stage("score", None, lambda: self._keep(  # the champion's predictions
            cache_key("scores", batch_key, champion["model_key"]), "scores.parquet",
            lambda: to_parquet(predictions(model, X)),
            {"stage": "score", "model_version": champion["version"]}))
        drift = None if self.monitor_c is None else self._stage(
            "monitor", self.spec.components["monitor"], lambda: self.monitor_c.check(
                reference[features], X, columns=features, categorical=columns["categorical"]))
        labelled = frame[target].notna() if target in frame.columns else None
        n_labelled = int(labelled.sum()) if labelled is not None else 0
        # a partly labelled batch is measured on the rows that have labels
        metrics = measure(ctx, model, frame[labelled], columns) if n_labelled else None
        since = sum(1 for r in done.values() if r.get("champion") == champion["version"])
        obs = Observation(batch_id, len(frame), drift, metrics, champion["metrics"], primary,
                          self.metrics_c.greater_is_better, since + 1)
        decision = self.policy.decide(obs) if self.policy else Decision(False, "no policy")
        if decision.retrain and not n_labelled:  # e.g. logged serving traffic
            decision = Decision(False, f"{decision.reason}, but the batch has no {target!r} "
                                       "labels to retrain on", decision.details)
        d = drift or {"drift_share": None, "columns": []}  # no monitor declared
        record: dict[str, Any] = {
            "batch": batch_id, "fingerprint": fingerprint, "key": batch_key, "rows": len(frame),
            "labelled": n_labelled, "champion": champion["version"],
            "drift_share": d["drift_share"], "drift_status": d.get("status"),
            "drifted_columns": [c["column"] for c in d["columns"] if c["drifted"]],
            "drift_columns": d["columns"], "metric": primary, "value": (metrics or {}).get(primary),
            "retrain": decision.retrain, "reason": decision.reason, "outcome": "kept",
            "new_version": None}
        if not decision.retrain:
            ctx.registry.record_batch(ctx.model_name, batch_id, champion["version"], record)
        else:
            with ctx.registry.model_lock(ctx.model_name):
                self._stage("retrain", self.spec.components["retrain"],
                            lambda: self._retrain(batch_id, batch_key, done, columns, record))
        call_hook(ctx.pm, "specloop_after_run", run=ctx, manifest={
            "command": "loop", "batch": record, "run_id": ctx.run_id, "status": "succeeded"})
        return record

    def _window(self, batch_id: str, batch_key: str, done: dict, columns: dict) -> tuple:
        """The training and holdout rows of the retraining window, and what identifies it."""
        import pandas as pd

        seen = [*done, batch_id]
        n = getattr(self.window_conf, "window_batches", None)
        window = seen[-n:] if n else seen
        keys = {b: batch_key if b == batch_id else cache_key("batch", b, done[b]["fingerprint"])
                for b in window}
        keep, target = [*columns["features"], columns["target"]], columns["target"]
        holdout = SplitConf(method="stratified", test_size=self.spec.loop.holdout)
        train_parts, test_parts = [], []
        for i, key in enumerate(keys.values()):
            frame = from_parquet(self.ctx.store.get(key, "frame.parquet"))
            frame = frame[frame[target].notna()] if target in frame.columns else frame[:0]
            if not len(frame):  # only labelled rows count: a batch without adds nothing
                continue
            tr, te = split_frame(frame, {**columns, "time_column": None}, holdout,
                                 self.spec.project.seed + i + 1)
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
        ctx, spec = self.ctx, self.spec
        champion = self._champion()  # read under the model lock
        train, test, window, keys, base = self._window(batch_id, batch_key, done, columns)
        model_key = cache_key("loop-train", spec.components["model"].fingerprint(),
                              spec.project.seed, keys, base, spec.loop.holdout)
        meta = {"stage": "retrain", "batch": batch_id}
        fitted = load_model(ctx, model_key) if ctx.store.has(model_key) else \
            fit(ctx, model_key, train, columns, meta)[0]
        ref_key = cache_key("loop-reference", model_key)
        if not ctx.store.has(ref_key):
            ctx.store.put(ref_key, {"train.parquet": to_parquet(train),
                                    "columns.json": json.dumps(columns).encode()}, meta)
        cand, champ = (measure(ctx, m, test, columns) for m in (fitted, self._model(champion)))
        gate = judge(ctx, cand, champ)
        primary, summary = self.metrics_c.primary, gate["summary"]
        record.update({"challenger_value": cand.get(primary), "champion_value": champ.get(primary),
                       "gate": summary,
                       "judged_on": f"{spec.loop.evaluate_on} holdout ({len(test)} rows)"})
        with committed(ctx):  # version, aliases and the batch record: all or none
            version = ctx.registry.find_by_key(ctx.model_name, model_key) or register_version(
                ctx, model_key=model_key, reference_key=ref_key, metrics=cand, gate=gate,
                data_fingerprint=cache_key(keys), source={"kind": "loop", "batch": batch_id,
                                                          "window": window, "include_base": base})
            new = record["new_version"] = version["version"]
            give_alias(ctx, "challenger", new, champion, gate,
                       f"retrained on batch {batch_id}: {summary}")
            promote = gate["passed"] and champion["version"] != new
            if promote:
                give_alias(ctx, "champion", new, champion, gate, f"batch {batch_id}: {summary}")
            record["outcome"] = "promoted" if promote else "kept champion"
            ctx.registry.record_batch(ctx.model_name, batch_id, champion["version"], record)
        if promote and (deployed := deploy_champion(ctx)) is not None:
            record["deployed"] = deployed.get("location")


def format_record(r: dict) -> str:
    """One line per batch: drift share, champion's metric, decision and why."""
    drift = "too few rows" if r.get("drift_status") == "insufficient data" else \
        "n/a" if r.get("drift_share") is None else f"{r['drift_share']:.2f}"
    value = "n/a" if r.get("value") is None else f"{r['value']:.3f}"
    line = (f"{r['batch']}  rows {r['rows']:>6}  drift {drift:>4}  {r['metric']} {value} "
            f"(champion v{r['champion']})  ")
    if not r.get("retrain"):
        return line + f"keep: {r['reason']}"
    return line + (f"retrain: {r['reason']} → v{r['new_version']} {r['challenger_value']:.3f} "
                   f"vs v{r['champion']} {r['champion_value']:.3f} on {r['judged_on']}: "
                   f"{r['outcome']}")


def loop_status(ctx: RunContext) -> dict:
    """Who runs the loop now, and what it has processed (``specloop loop --status``)."""
    done = ctx.registry.processed_batches(ctx.model_name)
    return {"running": LoopLock(ctx).status(), "processed": len(done),
            "last": next(reversed(done), None), "events": ctx.registry.events(ctx.model_name)[-5:]}

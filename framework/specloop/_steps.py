"""The stage steps of ``specloop run``: what ``data``, ``split``, ``train``, ``evaluate``,
``register`` and ``deploy`` compute once planning said they must run. Each reads its inputs
through the pipeline and writes one artifact under its planned key; ``register`` and
``deploy`` run under the model's lock (see :mod:`._flow`)."""

from __future__ import annotations

import json
from typing import Any

from ._flow import (committed, ensure_deployed, fit, give_alias, judge, measure,
                    register_version, signature_of)
from ._model_artifacts import load_model, read_file
from ._plan import evaluate_key
from ._spec import check_task
from ._tabular import columns_for, from_parquet, split_frame, to_parquet
from .errors import ArtifactError, ConfigError, SpecloopError


def snapshot(ctx: Any, planned: dict[str, str]) -> Any:
    """Read the data once; with the component's ``snapshot(ctx)``, exactly the bytes whose
    fingerprint was planned (a ConfigError if they changed since); else with ``load(ctx)``."""
    source, node = ctx.component("data"), ctx.node("data")
    take = getattr(source, "snapshot", None)
    if not callable(take):
        return source.load(node)
    frame, read = take(node)
    changed = sorted(p for p in set(planned) | set(read) if planned.get(p) != read.get(p))
    if changed:
        path = changed[0]
        raise ConfigError(f"the data changed while the run was starting: {path} (md5 "
                          f"{str(planned.get(path))[:8]} → {str(read.get(path))[:8]})",
                          key="data", file=ctx.spec.provenance.where("data"),
                          fix="run again once the file is no longer being written")
    return frame


def run_data(pipe: Any, plan: Any) -> None:
    """Read the source and keep it as Parquet, keyed by its fingerprint."""
    ctx = pipe.ctx
    frame = pipe.loaded["data"] = snapshot(ctx, plan.files)
    columns_for(frame, ctx.spec.components["data"].config, ctx.spec.provenance.where)
    ctx.store.put(plan.key, {"frame.parquet": to_parquet(frame)},
                  {"stage": "data", "rows": len(frame)})


def run_split(pipe: Any, plan: Any) -> None:
    """Choose the columns and split the rows (seeded)."""
    ctx, frame = pipe.ctx, pipe.load("data")
    conf = ctx.spec.components["data"].config
    columns = columns_for(frame, conf, ctx.spec.provenance.where)
    train, test = split_frame(frame, columns, conf.split, ctx.spec.project.seed)
    if len(train) == 0 or len(test) == 0:
        raise ConfigError("the split leaves no training or no test rows", key="data.split",
                          expected="enough rows for both sides",
                          fix="change data.split.test_size or add data")
    ctx.store.put(plan.key, {"train.parquet": to_parquet(train), "test.parquet": to_parquet(test),
                             "columns.json": json.dumps(columns).encode()},
                  {"stage": "split", "train_rows": len(train), "test_rows": len(test)})
    pipe.loaded["split"] = {"train": train, "test": test, "columns": columns}


def run_train(pipe: Any, plan: Any) -> None:
    """Fit the model on the training rows and store it with its signature."""
    split = pipe.load("split")
    cols = split["columns"]
    check_task(pipe.ctx.spec, pipe.ctx.component("model"), cols["task"], cols["target"])
    fitted, sig = fit(pipe.ctx, plan.key, split["train"], cols, {"stage": "train"})
    pipe.loaded["train"] = {"model": fitted, "signature": sig}


def run_evaluate(pipe: Any, plan: Any) -> None:
    """Score the model on the test rows."""
    split = pipe.load("split")
    metrics = pipe.loaded["evaluate"] = measure(pipe.ctx, pipe.load("train")["model"],
                                                split["test"], split["columns"])
    pipe.ctx.store.put(plan.key, {"metrics.json": json.dumps(metrics).encode()},
                       {"stage": "evaluate"})


def champion_metrics(pipe: Any, champion: dict) -> dict:
    """The champion's metrics on this run's test rows: on the same split, its own
    ``evaluate`` artifact (same key); on another, scored on the test rows it was not trained
    on; when that is impossible (another feature set), its recorded metrics, said aloud."""
    ctx, split_key = pipe.ctx, pipe.plans["split"].key
    if champion.get("reference_key") == split_key:
        key = evaluate_key(ctx.spec.components["metrics"], champion["model_key"], split_key)
        if ctx.store.has(key):
            return json.loads(ctx.store.get(key, "metrics.json"))
    split = pipe.load("split")
    try:
        model = load_model(ctx, champion["model_key"], champion)
        test = unseen_by(pipe, champion, split["test"], split["columns"], split_key)
        return measure(ctx, model, test, split["columns"])
    except (ArtifactError, KeyboardInterrupt):
        raise  # a tampered champion is never silently replaced by its record
    except Exception as exc:  # another feature set or model kind: use its record
        why = exc.args[0] if isinstance(exc, SpecloopError) and exc.args else type(exc).__name__
        ctx.say(f"note: champion v{champion['version']} could not be re-scored on this test "
                f"set ({why}); comparing recorded metrics")
        return champion["metrics"]


def unseen_by(pipe: Any, champion: dict, test: Any, cols: dict, split_key: str) -> Any:
    """The rows of ``test`` the champion was not trained on (all of them on the same split);
    scoring it on rows it trained on would flatter it."""
    if champion.get("reference_key") in (None, split_key):
        return test
    import pandas as pd  # the split's frames are already loaded: no import cost here

    seen = from_parquet(read_file(pipe.ctx, champion["reference_key"], "train.parquet",
                                  champion))
    on = [c for c in [*cols["features"], cols["target"]] if c in seen.columns]
    trained = set(pd.util.hash_pandas_object(seen[on], index=False))
    unseen = test[(~pd.util.hash_pandas_object(test[on], index=False).isin(trained)).to_numpy()]
    pipe.ctx.say(f"champion v{champion['version']} re-scored on the {len(unseen)} of "
                 f"{len(test)} test rows it was not trained on")
    if len(unseen) == 0:
        raise ValueError("every test row was in the champion's training data")
    return unseen


def run_register(pipe: Any, plan: Any) -> None:
    """Judge the new model against the champion, register it, and give it the pipeline's
    alias if it passes (compare-and-set against the champion judged)."""
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


def run_deploy(pipe: Any, plan: Any) -> None:
    """Deploy the champion unless the record and the target agree it is deployed."""
    ctx = pipe.ctx
    if ctx.registry.resolve(ctx.model_name, "champion") is None:
        ctx.say("deploy: skipped, the model has no champion (the gate did not pass)")
    elif (result := ensure_deployed(ctx)) is not None:
        pipe.manifest.deployment = result


def load_output(pipe: Any, stage: str) -> Any:
    """The stored output of ``stage`` (verified against specloop's record)."""
    ctx, key = pipe.ctx, pipe.plans[stage].key
    get = ctx.store.get
    if stage == "data":
        return from_parquet(get(key, "frame.parquet"))
    if stage == "split":
        return {"train": from_parquet(get(key, "train.parquet")),
                "test": from_parquet(get(key, "test.parquet")),
                "columns": json.loads(get(key, "columns.json"))}
    if stage == "train":
        return {"model": load_model(ctx, key), "signature": json.loads(get(key, "signature.json"))}
    if stage == "evaluate":
        return json.loads(get(key, "metrics.json"))
    raise KeyError(stage)  # pragma: no cover - register/deploy are never loaded


STEPS = {"data": run_data, "split": run_split, "train": run_train, "evaluate": run_evaluate,
         "register": run_register, "deploy": run_deploy}

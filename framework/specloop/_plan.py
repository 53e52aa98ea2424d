"""Planning ``specloop run``: every stage's cache key, whether it is cached, and why not.
Keys come from config and data fingerprints alone, so deciding that everything is cached reads
no data and imports neither pandas nor scikit-learn; ``deploy`` is cached only when the record
and the target's own ``verify`` agree that the champion is deployed."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Callable

from ._redact import is_secret_key, secret_fields
from ._spec import Resolved, plain

STAGES = ("data", "split", "train", "evaluate", "register", "deploy")
# stages whose output is one artifact under the stage's key (computed once under a lock)
ARTIFACT_STAGES = ("data", "split", "train", "evaluate")
# which spec node provides the component of each stage
COMPONENT_OF = {"data": "data", "train": "model", "evaluate": "metrics", "register": "gate",
                "deploy": "deploy"}


def cache_key(*parts: Any) -> str:
    """SHA-256 (hex, first 32 characters) of the canonical JSON of ``parts`` (sorted keys, no
    whitespace: equal values give equal keys)."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def flatten(prefix: str, value: Any) -> dict[str, Any]:
    """``{"a.b": 1}`` from ``{"a": {"b": 1}}`` (lists are leaves)."""
    if not isinstance(value, dict):
        return {prefix: value}
    return {flat: leaf for k, v in value.items()
            for flat, leaf in flatten(f"{prefix}.{k}" if prefix else str(k), v).items()}


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

    @property
    def files(self) -> dict[str, str]:
        """``{path: md5}`` of the data files the stage's key was made from (``data`` only)."""
        return {k[10:]: v for k, v in self.config.items() if k.startswith("data file ")}

    def row(self) -> dict[str, Any]:
        comp = self.component
        return {"stage": self.name, "component": comp.spec.name if comp else "engine",
                "distribution": comp.spec.distribution if comp else None, "key": self.key,
                "action": "cached" if self.cached else "run", "reason": self.reason}


def evaluate_key(metrics: Resolved, train_key: str, split_key: str) -> str:
    """The key of ``evaluate`` for a model key on a split (finds the champion's metrics on the
    same test rows without scoring it again)."""
    return cache_key("evaluate", metrics.spec.kind, metrics.spec.version,
                     flatten("metrics", plain(metrics.config)),
                     {"train": train_key, "split": split_key}, None)


def deploy_target(deploy: Resolved) -> str:
    """Where a deploy component deploys (its kind and config, whatever the model)."""
    return cache_key("deploy-target", deploy.spec.kind, flatten("deploy", plain(deploy.config)))


def deployment_status(ctx: Any) -> tuple[bool, str]:
    """Whether the champion is deployed to the spec's target as the registry recorded, and why
    not; the component's ``verify(result, ctx)`` checks the target itself, so a tampered or
    removed deployment is deployed again (``verify`` raising fails; it never means "deploy")."""
    deploy = ctx.spec.components.get("deploy")
    champion = ctx.registry.resolve(ctx.model_name, "champion")
    if deploy is None:
        return True, "no deploy stage"
    if champion is None:
        return True, "the model has no champion"
    record = ctx.registry.deployment(ctx.model_name, deploy_target(deploy))
    if record is None:
        return False, f"champion v{champion['version']} is not deployed yet"
    if record["version"] != champion["version"]:
        return False, (f"the target serves v{record['version']}, the champion is "
                       f"v{champion['version']}")
    if not ctx.component("deploy").verify(record["result"], ctx.node("deploy")):
        return False, (f"the deployment at {record['result'].get('location', 'the target')} "
                       "does not match the record (missing or tampered with)")
    return True, "unchanged"


def plan(ctx: Any, previous: Callable[[Any], list[dict]] | None = None) -> list[StagePlan]:
    """Every stage's key and whether it is cached, with the reason: a stage to run is explained
    against the nearest output still cached of the runs ``previous(ctx)`` lists, newest first
    (called once the data is found and a stage is not cached)."""
    secrets = secret_fields(ctx.spec)
    comps, seed = ctx.spec.components, ctx.spec.project.seed
    source = ctx.component("data").fingerprint(ctx.node("data"))
    store = ctx.store  # opens the registry: only once the data is known to be there
    earlier: list[list[dict]] = []  # read on the first stage that is not cached

    def nearest(name: str, config: dict) -> dict | None:
        if not earlier:
            earlier.append((previous(ctx) if previous else None) or [])
        return _nearest(earlier[0], name, config, store)
    plans: list[StagePlan] = []

    def add(name: str, comp: Resolved | None, config: dict, inputs: dict[str, str]) -> str:
        key = cache_key(name, comp.spec.kind if comp else None,
                        comp.spec.version if comp else None, config, inputs, None)
        cached = store.has(key)
        reason = "unchanged" if cached else _reason(nearest(name, config), key, config,
                                                    inputs, secrets)
        plans.append(StagePlan(name, comp, key, cached, reason, config, inputs))
        return key

    data, model, metrics = comps["data"], comps["model"], comps["metrics"]
    node_cfg = flatten("data", plain(data.config))
    data_cfg = {k: v for k, v in node_cfg.items() if not k.startswith("data.split.")}
    data_cfg.update({f"data file {p}": md5 for p, md5 in source.items()})
    data_key = add("data", data, data_cfg, {})
    split_key = add("split", None, {"project.seed": seed, **node_cfg}, {"data": data_key})
    train_key = add("train", model, {"project.seed": seed, **flatten("model", plain(model.config))},
                    {"split": split_key})
    # the same key as evaluate_key(metrics, train_key, split_key)
    eval_key = add("evaluate", metrics, flatten("metrics", plain(metrics.config)),
                   {"train": train_key, "split": split_key})
    gate, deploy = comps.get("gate"), comps.get("deploy")
    registered = ctx.registry.find_by_key(ctx.model_name, train_key)
    plans.append(StagePlan(
        "register", gate, train_key, registered is not None,
        f"already registered as version {registered['version']}" if registered
        else "new model version", flatten("gate", plain(gate.config)) if gate else {},
        {"train": train_key, "evaluate": eval_key}))
    if deploy is not None:
        ok, reason = deployment_status(ctx) if registered is not None else (
            False, "deploys the champion if the new version is promoted")
        plans.append(StagePlan("deploy", deploy, deploy_target(deploy), ok, reason,
                               flatten("deploy", plain(deploy.config)), {}))
    return plans


def _nearest(earlier: list[dict], name: str, config: dict, store: Any) -> dict | None:
    """Of the earlier runs' records of stage ``name``, the one whose output is cached and whose
    config differs in the fewest keys (the newest on a tie); else the newest record."""
    records = [m["stages"][name] for m in earlier if name in m.get("stages", {})]

    def distance(rec: dict) -> int:
        old = rec.get("config", {})
        return sum(old.get(k) != config.get(k) for k in set(old) | set(config))

    cached = [r for r in records if r.get("key") and store.has(r["key"])]
    return min(cached, key=distance) if cached else next(iter(records), None)


def _reason(prev: dict | None, key: str, config: dict, inputs: dict,
            secrets: frozenset[str] = frozenset()) -> str:
    if prev is None:
        return "not in the cache"
    if prev.get("key") == key:
        return "output missing from the store"
    old_cfg = prev.get("config", {})
    changed = [k for k in sorted(set(old_cfg) | set(config)) if old_cfg.get(k) != config.get(k)]
    if changed:
        shown = [f"{k[10:]} changed (md5 {str(old_cfg.get(k))[:8]} → {str(config.get(k))[:8]})"
                 if k.startswith("data file ") else f"{k} changed (secret)"
                 if is_secret_key(k, secrets) else
                 f"{k}: {old_cfg.get(k, '(unset)')!r} → {config.get(k, '(unset)')!r}"
                 for k in changed[:3]]
        return "; ".join(shown) + (f" (+{len(changed) - 3} more)" if len(changed) > 3 else "")
    changed_inputs = [k for k in inputs if prev.get("inputs", {}).get(k) != inputs[k]]
    if changed_inputs:
        return "input " + ", ".join(repr(k) for k in changed_inputs) + " changed"
    return "component version changed"

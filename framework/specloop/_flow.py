"""The train → evaluate → register → promote → deploy flow every command shares. Callers hold
:meth:`Registry.model_lock` around "read the champion, judge, move the alias, deploy"; alias moves
are compare-and-set against the champion the gate judged; every deployment is recorded."""

from __future__ import annotations

import json
from contextlib import contextmanager
from typing import Any, Iterator

from ._manager import call_hook
from ._model_artifacts import (MODEL_FILE, load_model, model_record, read_file, recorded_file,
                              save_model, version_artifacts)
from ._plan import deploy_target, deployment_status
from ._redact import redact, secret_fields
from ._tabular import signature
from .errors import StageError


@contextmanager
def committed(ctx: Any) -> Iterator[None]:
    """One registry transaction for several changes (a version, its alias moves, a batch
    record); the hooks they call fire once it committed, never for a rolled-back change."""
    pending: list[tuple[str, dict]] = []
    ctx.pending_hooks = pending
    try:
        with ctx.registry.transaction():
            yield
    finally:
        ctx.pending_hooks = None
    for hook, kwargs in pending:
        call_hook(ctx.pm, hook, **kwargs)


def _notify(ctx: Any, hook: str, **kwargs: Any) -> None:
    pending = getattr(ctx, "pending_hooks", None)
    if pending is not None:
        pending.append((hook, kwargs))
    else:
        call_hook(ctx.pm, hook, **kwargs)


def fit(ctx: Any, key: str, frame: Any, cols: dict, meta: dict) -> tuple[Any, dict]:
    """Fit the spec's model on ``frame``; store it under ``key`` with its input signature."""
    model_c = ctx.component("model")
    fitted = model_c.fit(frame[cols["features"]], frame[cols["target"]],
                         categorical=cols["categorical"], task=cols["task"],
                         seed=ctx.spec.project.seed)
    sig = signature(frame, cols)
    save_model(ctx.store, key, ctx.spec.components["model"], model_c, fitted,
               {"signature.json": json.dumps(sig).encode()}, meta)
    return fitted, sig


def measure(ctx: Any, model: Any, frame: Any, cols: dict) -> dict:
    """The spec's metrics of ``model`` on the rows of ``frame``."""
    return ctx.component("metrics").compute(model, frame[cols["features"]],
                                            frame[cols["target"]], task=cols["task"])


def signature_change(old: dict | None, new: dict | None) -> str | None:
    """What differs between two input signatures (feature names, types, categorical flags),
    or ``None`` when a model trained on one can serve requests made for the other."""
    if not old or not new:
        return None
    a, b = ({f["name"]: f["type"] + (" categorical" if f.get("categorical") else "")
             for f in sig["inputs"]} for sig in (old, new))
    parts = [f"{word} " + ", ".join(sorted(names)) for word, names in
             (("removed", a.keys() - b.keys()), ("added", b.keys() - a.keys())) if names]
    parts += [f"{n}: {a[n]} → {b[n]}" for n in sorted(a.keys() & b.keys()) if a[n] != b[n]]
    return "; ".join(parts) or None


def judge(ctx: Any, candidate: dict, champion: dict | None,
          signatures: tuple[dict | None, dict | None] = (None, None)) -> dict:
    """The declared gate on ``candidate``'s metrics against ``champion``'s (on the same rows;
    ``None``: no champion), plus the engine's own rule: a changed input signature (``signatures``
    is the champion's and the candidate's) does not pass (it needs ``--force --reason``)."""
    metrics_c, gate_c = ctx.component("metrics"), ctx.component("gate")
    result = {"passed": True, "checks": [], "summary": "no gate declared"} if gate_c is None \
        else dict(gate_c.check(candidate, champion, primary=metrics_c.primary,
                               greater_is_better=metrics_c.greater_is_better))
    change = signature_change(*signatures)
    if change:
        result["checks"] = [*result.get("checks", []), {
            "check": "input signature unchanged", "value": change, "passed": False}]
        result["summary"] = (f"failed: input signature changed ({change})" +
                             ("; gate " + result["summary"] if result.get("summary") else ""))
        result["passed"] = False
    return result


def signature_of(ctx: Any, version: dict) -> dict | None:
    """A registered version's input signature (``None`` if it has none recorded); an
    ArtifactError if a recorded one is missing or changed: an unreadable file never switches
    the signature rule off."""
    key = version["model_key"]
    index = (ctx.store.record(key) or {}).get("files") or {}
    if recorded_file(version, key, "signature.json") is None and "signature.json" not in index:
        return None  # an older artifact without a signature
    return json.loads(read_file(ctx, key, "signature.json", version))


def register_version(ctx: Any, *, model_key: str, reference_key: str | None, metrics: dict,
                     gate: dict, data_fingerprint: Any, source: dict) -> dict:
    """Register a new version with its artifacts' recorded hashes; call the hooks."""
    version = ctx.registry.register(
        ctx.model_name, model_key=model_key, metrics=metrics, reference_key=reference_key,
        data_fingerprint=data_fingerprint, run_id=ctx.run_id,
        config=redact(ctx.spec.raw, secret_fields(ctx.spec)), gate=gate, source=source,
        artifacts=version_artifacts(ctx.store, model_key, reference_key))
    _notify(ctx, "specloop_after_register", run=ctx, version=version)
    return version


def move_alias(ctx: Any, alias: str, version: int, *, expect: Any, reason: str,
               gate: dict | None = None, action: str = "promote") -> int | None:
    """Compare-and-set ``alias`` to ``version`` (see :meth:`Registry.set_alias`); call the
    hooks once it committed. Returns the previous holder."""
    previous = ctx.registry.set_alias(ctx.model_name, alias, version, reason=reason, gate=gate,
                                      run_id=ctx.run_id, action=action, expect=expect)
    _notify(ctx, "specloop_after_alias_change", run=ctx, name=ctx.model_name, alias=alias,
            version=version, previous=previous, action=action, reason=reason)
    return previous


def give_alias(ctx: Any, alias: str, version: int, champion: dict | None, gate: dict,
               reason: str) -> int | None:
    """Move ``alias`` to a newly judged ``version``: ``champion`` only if it still is the one the
    gate judged (``promote``), another alias as it stands (``register-<alias>``)."""
    main = alias == "champion"
    return move_alias(ctx, alias, version, expect=(champion or {}).get("version") if main else ...,
                      reason=reason, gate=gate, action="promote" if main else f"register-{alias}")


def bundle_for(ctx: Any, version: dict) -> dict:
    """What a deploy component receives (see docs/writing-plugins.md, "The deploy bundle")."""
    key = version["model_key"]
    rec = model_record(ctx, key, version)
    return {"name": ctx.model_name, "version": version,
            "model": read_file(ctx, key, MODEL_FILE, version),
            "load_model": lambda: load_model(ctx, key, version),
            "model_meta": {"format": rec["format"], "trusted_types": rec.get("trusted_types") or [],
                           "component": rec.get("component"), "key": key},
            "signature": json.loads(read_file(ctx, key, "signature.json", version)),
            "description": ctx.spec.project.description}


def deploy_champion(ctx: Any) -> dict | None:
    """Deploy the champion with the spec's deploy component and record it; return the
    component's result (``None``: no deploy stage, or no champion). Under the model lock."""
    deploy = ctx.spec.components.get("deploy")
    champion = ctx.registry.resolve(ctx.model_name, "champion")
    if deploy is None or champion is None:
        return None
    try:
        result = ctx.component("deploy").deploy(bundle_for(ctx, champion), ctx.node("deploy"))
    except StageError as exc:
        exc.stage = exc.stage or "deploy"
        raise
    result = result if isinstance(result, dict) else {"location": str(result)}
    ctx.registry.record_deployment(ctx.model_name, deploy_target(deploy),
                                   champion["version"], result)
    return {**result, "version": champion["version"]}


def ensure_deployed(ctx: Any) -> dict | None:
    """Deploy the champion unless the record and the target agree that it is deployed."""
    ok, reason = deployment_status(ctx)
    if ok:
        return None
    ctx.say(f"deploy: {reason}")
    return deploy_champion(ctx)

"""Model artifacts: the one path by which a fitted model is written to and read from the store.
Reading takes the SHA-256, format, trusted types and saving component from specloop's record,
never from the store, and hands the verified bytes to that component's ``loads``."""

from __future__ import annotations

import inspect
from typing import Any

from ._spec import ValidationContext, plain, resolve_node
from .components import Stage
from .errors import ArtifactError, ConfigError, PluginError

MODEL_FILE = "model.bin"
UNSAFE_FORMATS = ("pickle", "joblib", "cloudpickle")


def model_files(component: Any, fitted: Any, name: str = "the model component") -> tuple:
    """Serialize ``fitted`` with ``component``; return its bytes and what to record with them
    (``format`` and ``trusted_types``, checked against what the component allows)."""
    data = component.dumps(fitted)
    if not isinstance(data, bytes):
        raise PluginError(f"{name}.dumps returned {type(data).__name__}, expected bytes")
    describe = getattr(component, "trusted_types", None)
    trusted = sorted(describe(data)) if callable(describe) else []
    if refused := _refused(component, trusted):
        raise PluginError(f"{name} saved a model holding types it does not allow itself to "
                          f"load: {refused}",
                          fix="allow the estimator's package (allow_python_targets, or a "
                              "plugin's specloop_add_allowed_targets)")
    return data, {"format": getattr(component, "format", "bytes"), "trusted_types": trusted}


def save_model(store: Any, key: str, resolved: Any, component: Any, fitted: Any,
               files: dict[str, bytes], meta: dict) -> dict:
    """Serialize ``fitted`` with ``component`` and store it as ``model.bin`` (plus ``files``)
    under ``key``; return the recorded metadata."""
    s = resolved.spec
    data, model_meta = model_files(component, fitted, s.name)
    origin = {"stage": str(s.stage), "kind": s.kind, "version": s.version, "plugin": s.plugin,
              "distribution": s.distribution, "node": plain(resolved.node)}
    return store.put(key, {MODEL_FILE: data, **files}, {**meta, **model_meta, "component": origin})


def _refused(component: Any, types: list[str]) -> list[str]:
    allows = getattr(component, "allows_type", None)
    return [t for t in types if not allows(t)] if callable(allows) else []


def version_artifacts(store: Any, model_key: str, reference_key: str | None) -> list[dict]:
    """The registry records of a new version's files, from specloop's index."""
    out = []
    for role, key in (("model", model_key), ("reference", reference_key)):
        meta = store.meta(key) if key is not None else {"files": {}}
        out += [{"role": role, "key": key, "file": file, "sha256": info["sha256"],
                 "size": info.get("size"),
                 **(_model_meta(meta) if role == "model" and file == MODEL_FILE else {})}
                for file, info in sorted(meta["files"].items())]
    return out


def _model_meta(meta: dict) -> dict:
    return {"format": meta.get("format", "pickle"), "component": meta.get("component"),
            "trusted_types": list(meta.get("trusted_types") or [])}


def recorded_file(version: dict | None, key: str, file: str) -> dict | None:
    """The registry's record of ``file`` of artifact ``key`` in ``version``, if any."""
    return next((rec for rec in (version or {}).get("artifacts") or []
                 if rec["key"] == key and rec["file"] == file), None)


def read_file(ctx: Any, key: str, file: str, version: dict | None = None) -> bytes:
    """Read an artifact file, verified against the registry's hash when a version recorded it
    (and against specloop's index always)."""
    rec = recorded_file(version, key, file)
    return ctx.store.get(key, file, registered=rec["sha256"] if rec else None)


def model_record(ctx: Any, key: str, version: dict | None = None) -> dict:
    """The record a model artifact is loaded by: the registry's for a registered version,
    else specloop's index entry. Never the store's own files."""
    if version is None:
        version = ctx.registry.find_by_key(ctx.model_name, key)
    rec = recorded_file(version, key, MODEL_FILE)
    return rec if rec and rec.get("format") else {**_model_meta(ctx.store.meta(key)),
                                                  "sha256": None}


def loader_for(ctx: Any, component: dict | None) -> tuple[Any, Any]:
    """``(resolved, built)`` of the model component that saved an artifact (a
    :class:`PluginError` with the install hint if it is not installed)."""
    current = ctx.spec.components["model"]
    if component is None or (component["kind"] == current.spec.kind
                             and component.get("node") == current.node):
        return current, current.build(ctx.run_id)
    if (str(Stage.MODEL), component["kind"]) not in ctx.table.specs:
        dist = component.get("distribution") or ""
        name, _, version = dist.partition(" ")
        fix = (f"pip install '{name}=={version}'" if name and not name.startswith("(") else
               f"register the plugin that provides model/{component['kind']} before loading "
               "(it was registered in-process, not installed from a distribution)")
        raise PluginError(f"the model was saved by component model/{component['kind']} "
                          f"({dist or 'unknown distribution'}), which is not installed",
                          plugin=component.get("plugin"), distribution=dist or None, fix=fix)
    prov = ctx.spec.provenance
    vctx = ValidationContext("model", prov.where, ctx.pm.allowed_targets(),
                             bool(ctx.spec.raw.get("allow_python_targets", False)))
    resolved = resolve_node(Stage.MODEL, component["node"], "model", ctx.table, prov, vctx,
                            optional=False)
    return resolved, resolved.build(ctx.run_id)


def load_model(ctx: Any, key: str, version: dict | None = None) -> Any:
    """Verify and deserialize the model stored under ``key`` (``version``: its registry
    record, looked up by ``key`` when omitted). Raises an :class:`ArtifactError` (missing,
    unrecorded, tampered with, or types its component does not allow), :class:`ConfigError`
    (a format that can run code, not allowed) or :class:`PluginError` (component gone)."""
    rec = model_record(ctx, key, version)
    data = ctx.store.get(key, MODEL_FILE, registered=rec.get("sha256"))
    path = ctx.store.path("artifacts", key, MODEL_FILE)
    fmt, trusted = rec["format"], list(rec.get("trusted_types") or [])
    if fmt in UNSAFE_FORMATS and not getattr(ctx.spec.components["model"].config,
                                             "allow_pickle", False):
        owner = f"version {version['version']}" if version else "this model"
        raise ConfigError(
            f"refusing to load {owner}: it is stored as {fmt}, and loading {fmt} can run "
            "arbitrary code", key="model.allow_pickle", file=ctx.spec.provenance.where("model"),
            got=False, expected=f"allow_pickle: true to load {fmt}-format models",
            extra=[("file", path)],
            fix="retrain without allow_pickle (the default format, skops, is safe), or, only "
                "if you trust where the file came from, set allow_pickle: true in the model "
                "config (e.g. model.allow_pickle=true on the command line)")
    resolved, component = loader_for(ctx, rec.get("component"))
    if refused := _refused(component, trusted):
        raise ArtifactError(f"the recorded trusted types include types {resolved.spec.name} "
                            f"does not allow: {refused}; refusing to load the model", path=path)
    try:
        return call_loads(component, data, format=fmt, trusted=trusted)
    except ArtifactError as exc:
        if exc.path is None:
            exc.path = path
        raise


def call_loads(component: Any, data: bytes, *, format: str, trusted: list[str]) -> Any:
    """Call ``component.loads`` with the keyword arguments it accepts: ``loads(data)`` is the
    original contract; ``format`` and ``trusted`` came later and go only to components that
    take them (as hook implementations take a subset of a hook's arguments)."""
    loads = component.loads
    inner = getattr(getattr(component, "inner", component), "loads", loads)
    try:
        params = inspect.signature(inner).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        params = {}
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs = {k: v for k, v in (("format", format), ("trusted", trusted))
              if takes_all or k in params}
    return loads(data, **kwargs)

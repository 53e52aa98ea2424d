"""Model artifacts: the one path by which a fitted model is written to and read from the store.

Writing asks the model component for its bytes, its ``format`` (``skops``, ``pickle`` …) and
the types its loader must trust (``trusted_types(data)``), and stores all three. Registering
a version copies every file's SHA-256, the format and the trusted types into the registry.

Reading verifies the bytes against the registry's hash first (it still holds when the
artifact's own ``_meta.json`` was rewritten), then against ``_meta.json``, and only then hands
them to the component's ``loads`` together with the recorded format and trusted types. The
component refuses what its config does not allow (``pickle`` unless ``allow_pickle: true``)
and any type that was not recorded at save time. Nothing else in specloop deserializes a
model, so the pipeline, the loop and deployments all get the same checks.
"""

from __future__ import annotations

import inspect
from typing import Any

from .errors import ArtifactError

MODEL_FILE = "model.bin"


def model_files(component: Any, fitted: Any) -> tuple[bytes, dict]:
    """Serialize ``fitted``; return its bytes and the metadata to store with them.

    Returns:
        ``(data, {"format": ..., "trusted_types": [...]})``.
    """
    data = component.dumps(fitted)
    if not isinstance(data, bytes):
        raise TypeError(f"{type(component).__name__}.dumps returned {type(data).__name__}, "
                        "expected bytes")
    describe = getattr(component, "trusted_types", None)
    trusted = sorted(describe(data)) if callable(describe) else []
    return data, {"format": getattr(component, "format", "bytes"), "trusted_types": trusted}


def save_model(store: Any, key: str, component: Any, fitted: Any, files: dict[str, bytes],
               meta: dict) -> dict:
    """Write ``fitted`` as ``model.bin`` (plus ``files``) under ``key``; return the metadata."""
    data, model_meta = model_files(component, fitted)
    return store.put(key, {MODEL_FILE: data, **files}, {**meta, **model_meta})


def version_artifacts(store: Any, model_key: str, reference_key: str | None) -> list[dict]:
    """The registry records of a new version's files, read from the artifacts' metadata."""
    out = []
    for role, key in (("model", model_key), ("reference", reference_key)):
        if key is None:
            continue
        meta = store.meta(key)
        for file, info in sorted(meta["files"].items()):
            rec = {"role": role, "key": key, "file": file, "sha256": info["sha256"],
                   "size": info.get("size")}
            if role == "model" and file == MODEL_FILE:
                rec["format"] = meta.get("format", "pickle")
                rec["trusted_types"] = list(meta.get("trusted_types") or [])
            out.append(rec)
    return out


def _registered(ctx: Any, key: str, version: dict | None) -> dict | None:
    if version is None:
        version = ctx.registry.find_by_key(ctx.model_name, key)
    return version


def recorded_file(version: dict | None, key: str, file: str) -> dict | None:
    """The registry's record of ``file`` of artifact ``key`` in ``version``, if any."""
    for rec in (version or {}).get("artifacts") or []:
        if rec["key"] == key and rec["file"] == file:
            return rec
    return None


def read_file(ctx: Any, key: str, file: str, version: dict | None = None) -> bytes:
    """Read an artifact file, verified against the registry's hash when a version recorded it.

    Args:
        ctx: The run context.
        key: The artifact key.
        file: The file name.
        version: The registry record that owns the artifact (looked up by ``key`` when
            omitted; model artifacts only).
    """
    rec = recorded_file(version, key, file)
    return ctx.store.get(key, file, registered=rec["sha256"] if rec else None)


def load_model(ctx: Any, component: Any, key: str, version: dict | None = None) -> Any:
    """Verify and deserialize the model stored under ``key``.

    Args:
        ctx: The run context (store and registry).
        component: The built model component whose ``loads`` reads the bytes.
        key: The model artifact's key.
        version: The registry record of the model (looked up by ``key`` when omitted).

    Raises:
        ArtifactError: the file is missing, truncated or tampered with, or holds types that
            were not recorded when it was saved.
        ConfigError: the format is one the current spec does not allow (e.g. pickle).
    """
    version = _registered(ctx, key, version)
    rec = recorded_file(version, key, MODEL_FILE)
    data = ctx.store.get(key, MODEL_FILE, registered=rec["sha256"] if rec else None)
    if rec is not None and rec.get("format"):
        fmt, trusted = rec["format"], list(rec.get("trusted_types") or [])
    else:  # not registered (yet): the artifact's own metadata, verified above
        meta = ctx.store.meta(key)
        fmt, trusted = meta.get("format", "pickle"), list(meta.get("trusted_types") or [])
    path = ctx.store.path("artifacts", key, MODEL_FILE)
    if fmt in UNSAFE_FORMATS and not getattr(getattr(component, "config", None),
                                             "allow_pickle", False):
        raise pickle_refused(fmt, path, version, ctx.spec.provenance.where("model"))
    try:
        return call_loads(component, data, format=fmt, trusted=trusted)
    except ArtifactError as exc:
        if exc.path is None:
            exc.path = path
        raise


UNSAFE_FORMATS = ("pickle", "joblib", "cloudpickle")


def pickle_refused(fmt: str, path: str, version: dict | None, where: str | None) -> Any:
    """The error for a pickle-format model the current spec does not allow."""
    from .errors import ConfigError

    owner = f"version {version['version']}" if version else "this model"
    return ConfigError(
        f"refusing to load {owner}: it is stored as {fmt}, and loading {fmt} can run "
        "arbitrary code", key="model.allow_pickle", file=where, got=False,
        expected=f"allow_pickle: true to load {fmt}-format models",
        extra=[("file", path)],
        fix="retrain without allow_pickle (the default format, skops, is safe), or, only if "
            "you trust where the file came from, set allow_pickle: true in the model config "
            "(e.g. model.allow_pickle=true on the command line)")


def call_loads(component: Any, data: bytes, *, format: str, trusted: list[str]) -> Any:
    """Call ``component.loads`` with the keyword arguments it accepts.

    ``loads(data)`` is the original contract; ``format`` and ``trusted`` were added later and
    are passed only to components that take them, like hook implementations taking a subset
    of a hook's arguments.
    """
    try:
        params = inspect.signature(component.loads).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        params = {}
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs = {k: v for k, v in (("format", format), ("trusted", trusted))
              if takes_all or k in params}
    return component.loads(data, **kwargs)

"""Validate a composed spec against the engine's schema and every component's schema.

Validation happens before any stage runs. Each stage node is split into ``kind`` (looked up
in the component table) and the rest, which is merged into the component's dataclass schema
with OmegaConf (unknown keys and wrong types) and then checked against its declared
constraints (values). Errors name the key, the file or override that set it, what was
expected and how to fix it.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._config import Composed, Provenance
from .components import ComponentSpec, ComponentTable, Stage
from .errors import ConfigError
from .schema import Interval, Options, check_constraints, param

REQUIRED_STAGES = {"data": Stage.DATA, "model": Stage.MODEL, "metrics": Stage.METRICS}
OPTIONAL_STAGES = {"gate": Stage.GATE, "deploy": Stage.DEPLOY, "monitor": Stage.MONITOR,
                   "retrain": Stage.RETRAIN}


@dataclass
class ProjectConf:
    """The ``project:`` node."""

    name: str = param("project", help="model name in the registry")
    seed: int = param(0, help="the seed every stage derives its randomness from")
    description: str = param("", help="one line for the model card")
    threads: int | None = param(None, check=Interval(int, 1, None, allow_none=True),
                                help="threads native libraries (OpenMP, BLAS) may use while "
                                     "stages run (default: their own choice)")


@dataclass
class StoreConf:
    """The ``store:`` node: where artifacts, manifests and the registry live."""

    url: str = param(".specloop", help="artifact store: a folder (relative to the project) "
                                       "or an fsspec URL such as s3://bucket/prefix")
    registry: str | None = param(None, help="registry database URL (default: "
                                            "sqlite:///<store folder>/registry.db)")
    storage_options: dict[str, Any] = param(default_factory=dict,
                                            help="passed to fsspec (endpoint, credentials …)")


@dataclass
class LoopConf:
    """The ``loop:`` node: incoming batches and how a challenger is judged."""

    evaluate_on: str = param("recent", check=Options("recent", "window"),
                             help="judge challenger and champion on a holdout of the recent "
                                  "batches, or of the whole training window")
    holdout: float = param(0.25, check=Interval(float, 0, 1, closed="neither"),
                           help="fraction of each window part held out to judge models")


@dataclass
class SweepConf:
    """The ``sweep:`` node (used by multirun)."""

    register: str = param("best", check=Options("best", "all", "none"))


@dataclass
class PluginsConf:
    """The ``plugins:`` node: plugin-global settings, keyed by entry-point name."""

    disable: list[str] = param(default_factory=list)


ROOT_KEYS = ("project", "data", "model", "metrics", "gate", "store", "deploy", "monitor",
             "retrain", "loop", "sweep", "plugins", "allow_python_targets")


def unknown_root_key(key: str, where: str) -> ConfigError:
    """The error for a top-level key the spec does not have, with a "did you mean"."""
    close = difflib.get_close_matches(key, ROOT_KEYS, n=1)
    return ConfigError(f"unknown top-level key {key!r}", key=key, file=where,
                       expected="one of: " + ", ".join(ROOT_KEYS),
                       fix=f"rename it to {close[0]!r}" if close else "remove it",
                       extra=[("did you mean", close[0])] if close else [])


@dataclass
class Resolved:
    """One validated component node: its spec, its typed config and where it sits."""

    spec: ComponentSpec
    config: Any
    key: str
    node: dict

    def build(self) -> Any:
        """Instantiate the component (constructors only store config)."""
        return self.spec.load_factory()(self.config)

    def fingerprint(self) -> dict:
        """What identifies this component's behaviour in cache keys."""
        return {"kind": self.spec.kind, "version": self.spec.version,
                "config": _plain(self.node)}


@dataclass
class ValidationContext:
    """Handed to a schema's optional ``validate_spec(ctx)`` for cross-field checks."""

    key: str
    where: Any
    allowed_targets: list[str]
    allow_python_targets: bool


@dataclass
class Spec:
    """A validated spec: everything a run needs, from its composed config alone."""

    project_dir: Path
    raw: dict
    project: ProjectConf
    store: StoreConf
    loop: LoopConf
    sweep: SweepConf
    components: dict[str, Resolved | None]
    incoming: Resolved | None
    provenance: Provenance
    overrides: list[str]
    choices: dict[str, str | None]
    plugin_settings: dict = field(default_factory=dict)

    def component(self, name: str) -> Resolved | None:
        """The resolved node of stage ``name`` (``None`` when the stage is off)."""
        return self.components.get(name)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Resolved):
        return value.fingerprint()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _typed(schema: type, body: dict, key: str, prov: Provenance) -> Any:
    from ._typecheck import build_exact

    exact = build_exact(schema, body)
    if exact is not None:
        return exact
    from omegaconf import OmegaConf
    from omegaconf.errors import (ConfigKeyError, MissingMandatoryValue,
                                  OmegaConfBaseException, ValidationError)

    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), body)
        return OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:
        sub = getattr(exc, "full_key", "") or ""
        full = f"{key}.{sub}" if sub else key
        if isinstance(exc, ConfigKeyError):
            bad = sub.rsplit(".", 1)[-1] or "?"
            parent_key = full.rsplit(".", 1)[0]
            names = _field_names(schema, sub.split(".")[:-1])
            close = difflib.get_close_matches(bad, names, n=1)
            return_err = ConfigError(
                f"unknown key {full!r}", key=full, file=prov.where(full),
                expected=f"one of the keys of {parent_key}: {', '.join(names)}",
                fix=f"rename it to {close[0]!r}" if close else "remove it",
                extra=[("did you mean", close[0])] if close else [])
            raise return_err from None
        if isinstance(exc, MissingMandatoryValue):
            raise ConfigError(f"missing required value {full}", key=full,
                              file=prov.where(full), expected="a value",
                              fix=f"set {full} in the spec or with {full}=...") from None
        if isinstance(exc, ValidationError):
            expected = _field_type(schema, sub.split(".")) or "a value of the declared type"
            raise ConfigError(f"wrong type for {full}", key=full, file=prov.where(full),
                              got=_lookup(body, sub.split(".")), expected=expected,
                              fix=f"set {full} to {expected}") from None
        raise ConfigError(f"invalid value at {full}", key=full, file=prov.where(full),
                          extra=[("detail", str(exc).splitlines()[0])]) from None


def _lookup(body: Any, parts: list[str]) -> Any:
    for p in parts:
        if isinstance(body, dict) and p in body:
            body = body[p]
        elif isinstance(body, list) and p.isdigit() and int(p) < len(body):
            body = body[int(p)]
        else:
            return None
    return body


def _schema_at(schema: Any, parts: list[str]) -> Any:
    for p in parts:
        if not (dataclasses.is_dataclass(schema)):
            return None
        fields = {f.name: f for f in dataclasses.fields(schema)}
        if p not in fields:
            return None
        schema = fields[p].type
        if isinstance(schema, str):
            schema = _eval_type(schema)
    return schema


def _eval_type(text: str) -> Any:
    from . import schema as schema_module

    try:
        return eval(text, vars(schema_module).copy())  # noqa: S307 - annotations of our schemas
    except Exception:
        return text


def _field_names(schema: Any, parts: list[str]) -> list[str]:
    target = _schema_at(schema, parts)
    return [f.name for f in dataclasses.fields(target)] if dataclasses.is_dataclass(target) else []


def _field_type(schema: Any, parts: list[str]) -> str | None:
    parent = _schema_at(schema, parts[:-1])
    if not dataclasses.is_dataclass(parent):
        return None
    for f in dataclasses.fields(parent):
        if f.name == parts[-1]:
            t = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
            return f"a value of type {t}"
    return None


def resolve_node(stage: Stage, node: Any, key: str, table: ComponentTable, prov: Provenance,
                 vctx: ValidationContext, *, optional: bool) -> Resolved | None:
    """Validate one component node (and its nested component nodes).

    Raises:
        ConfigError: naming the key for every problem with the node.
        UnknownKindError: for a ``kind`` no installed plugin provides.
    """
    if node is None or (isinstance(node, dict) and node.get("kind") in ("none", None)
                        and optional and "kind" in node):
        if optional:
            return None
    available = ", ".join(table.kinds(stage)) or "(none installed)"
    if not isinstance(node, dict):
        raise ConfigError(f"{key} must be a mapping with a 'kind'", key=key,
                          file=prov.where(key), got=node,
                          expected=f"a mapping such as {{kind: ...}} (kinds: {available})",
                          fix=f"pick a preset with {key}=<option>, or write {key}: {{kind: ...}}")
    if "_target_" in node:
        raise ConfigError(f"{key} uses '_target_', which specloop specs do not use", key=key,
                          file=prov.where(f"{key}._target_"),
                          expected=f"a 'kind:' naming a registered component ({available})",
                          fix="replace _target_ with kind: (for a model, name the class in "
                              "model.estimator)")
    if "kind" not in node:
        raise ConfigError(f"{key} has no 'kind'", key=f"{key}.kind", file=prov.where(key),
                          expected=f"one of: {available}",
                          fix=f"add 'kind: <one of those>' to {key}")
    spec = table.get(stage, str(node["kind"]), key=f"{key}.kind", where=lambda: prov.where(f"{key}.kind"))
    body = {k: v for k, v in node.items() if k != "kind"}
    nested = {name: body.pop(name) for name in spec.nested if name in body}
    config = _typed(spec.schema, body, key, prov)
    check_constraints(config, key, prov.where)
    for name, nested_stage in spec.nested.items():
        value = nested.get(name)
        if isinstance(value, list):
            resolved: Any = [resolve_node(nested_stage, v, f"{key}.{name}.{i}", table, prov,
                                          vctx, optional=False) for i, v in enumerate(value)]
        elif value is not None:
            resolved = resolve_node(nested_stage, value, f"{key}.{name}", table, prov, vctx,
                                    optional=False)
        else:
            resolved = getattr(config, name, None)
        setattr(config, name, resolved)
    check = getattr(config, "validate_spec", None)
    if callable(check):
        check(ValidationContext(key, prov.where, vctx.allowed_targets,
                                vctx.allow_python_targets))
    return Resolved(spec, config, key, node)


def validate(composed: Composed, table: ComponentTable, allowed_targets: list[str]) -> Spec:
    """Validate a composed spec.

    Args:
        composed: The composed spec.
        table: The run's component table.
        allowed_targets: Estimator allowlist (dotted-path prefixes).

    Returns:
        The validated :class:`Spec`.

    Raises:
        ConfigError: for the first problem found.
    """
    raw, prov = composed.config, composed.provenance
    for key in raw:
        if key not in ROOT_KEYS:
            raise unknown_root_key(key, prov.where(key))
    allow_py = raw.get("allow_python_targets", False)
    if not isinstance(allow_py, bool):
        raise ConfigError("wrong type for allow_python_targets", key="allow_python_targets",
                          file=prov.where("allow_python_targets"), got=allow_py,
                          expected="true or false", fix="allow_python_targets: true")
    vctx = ValidationContext("", prov.where, allowed_targets, allow_py)
    project = _typed(ProjectConf, raw.get("project") or {}, "project", prov)
    store = _typed(StoreConf, raw.get("store") or {}, "store", prov)
    sweep = _typed(SweepConf, raw.get("sweep") or {}, "sweep", prov)
    loop_raw = dict(raw.get("loop") or {})
    incoming_node = loop_raw.pop("incoming", None)
    loop = _typed(LoopConf, loop_raw, "loop", prov)
    for cfg, key in ((project, "project"), (store, "store"), (sweep, "sweep"), (loop, "loop")):
        check_constraints(cfg, key, prov.where)
    from ._registry import NAME_RULE, valid_name

    if not valid_name(project.name):  # it names the model in the registry and in paths
        raise ConfigError(f"invalid model name {project.name!r}", key="project.name",
                          file=prov.where("project.name"), got=project.name,
                          expected=NAME_RULE, fix="e.g. project.name: fraud_detection")
    plugin_settings = dict(raw.get("plugins") or {})
    components: dict[str, Resolved | None] = {}
    for name, stage in REQUIRED_STAGES.items():
        if raw.get(name) is None:
            raise ConfigError(f"the spec has no {name!r} stage", key=name,
                              file=prov.where(name), expected=f"a {name} node with a kind",
                              fix=f"add '- {name}: <option>' to the defaults list of "
                                  f"conf/config.yaml, or pass {name}=<option>",
                              extra=[("available kinds", ", ".join(table.kinds(stage)))])
        components[name] = resolve_node(stage, raw[name], name, table, prov, vctx,
                                        optional=False)
    for name, stage in OPTIONAL_STAGES.items():
        components[name] = resolve_node(stage, raw.get(name), name, table, prov, vctx,
                                        optional=True)
    incoming = None
    if incoming_node is not None:
        data_node = dict(raw["data"])
        merged = {k: v for k, v in data_node.items() if k not in ("split",)}
        if isinstance(incoming_node, dict) and incoming_node.get("kind") not in (None,
                                                                                data_node["kind"]):
            merged = {k: v for k, v in merged.items() if k in ("target", "features", "drop",
                                                               "categorical", "time_column",
                                                               "task")}
        merged.update(incoming_node if isinstance(incoming_node, dict) else {})
        incoming = resolve_node(Stage.DATA, merged, "loop.incoming", table, prov, vctx,
                                optional=False)
    return Spec(project_dir=prov.project_dir, raw=raw, project=project, store=store, loop=loop,
                sweep=sweep, components=components, incoming=incoming, provenance=prov,
                overrides=composed.overrides, choices=composed.choices,
                plugin_settings=plugin_settings)

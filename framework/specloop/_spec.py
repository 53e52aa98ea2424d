"""Validate a composed spec before any stage runs: the engine's own nodes, every component
node (``kind`` picks the component; OmegaConf types the rest, then its constraints are checked),
``plugins.<name>`` settings, and the cross-stage contracts (metrics read vs computed, the model's
task vs the target's). Errors name key, file or override, expectation and fix."""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._config import Composed, Provenance, typed, unknown_root_key
from ._manager import Guarded, guarded_call
from ._registry import NAME_RULE, valid_name
from .components import ComponentSpec, ComponentTable, Stage
from .errors import ConfigError, PluginError, SpecloopError
from .schema import ENGINE_NODES, ROOT_KEYS, LoopConf, ProjectConf, StoreConf, SweepConf

STAGES = {str(stage): stage for stage in Stage}  # in the order they are validated
REQUIRED = ("data", "model", "metrics")
METRIC_READERS = ("gate", "retrain", "monitor", "deploy")


@dataclass
class Resolved:
    """One validated component node: its spec, its typed config and where it sits."""

    spec: ComponentSpec
    config: Any
    key: str
    node: dict

    def build(self, run_id: str | None = None) -> Any:
        """Instantiate the component behind the error boundary."""
        return Guarded(guarded_call(self.spec, "its constructor", self.spec.load_factory(),
                                    self.config, run_id=run_id), self.spec, run_id)

    def fingerprint(self) -> dict:
        """What identifies this component's behaviour in cache keys."""
        return {"kind": self.spec.kind, "version": self.spec.version, "config": plain(self.node)}


@dataclass
class ValidationContext:
    """Handed to a schema's optional ``validate_spec(ctx)`` for cross-field checks: the node's
    dotted ``key`` (``model``, ``loop.incoming`` …), ``where(key)`` naming the file or override
    that set a key, the ``allowed_targets`` prefixes plugins allow
    (``specloop_add_allowed_targets``) and whether the spec sets ``allow_python_targets``."""

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
    settings: dict[str, Any] = field(default_factory=dict)


def plain(value: Any) -> Any:
    """``value`` as plain containers (dataclasses and resolved nodes included)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Resolved):
        return value.fingerprint()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def resolve_node(stage: Stage, node: Any, key: str, table: ComponentTable, prov: Provenance,
                 vctx: ValidationContext, *, optional: bool) -> Resolved | None:
    """Validate one component node and its nested component nodes (``None``: the optional
    stage is off). A schema raising anything but a ConfigError is a PluginError."""
    if optional and (node is None or isinstance(node, dict) and node.get("kind", "") in (
            "none", None)):
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
    spec = table.get(stage, str(node["kind"]), key=f"{key}.kind",
                     where=lambda: prov.where(f"{key}.kind"))
    body = {k: v for k, v in node.items() if k != "kind"}
    nested = {name: body.pop(name) for name in spec.nested if name in body}
    config = _in_schema(spec, lambda: typed(spec.schema, body, key, prov))
    for name, sub_stage in spec.nested.items():
        value, sub = nested.get(name), f"{key}.{name}"
        if isinstance(value, list):
            value = [resolve_node(sub_stage, v, f"{sub}.{i}", table, prov, vctx, optional=False)
                     for i, v in enumerate(value)]
        elif value is not None:
            value = resolve_node(sub_stage, value, sub, table, prov, vctx, optional=False)
        setattr(config, name, getattr(config, name, None) if value is None else value)
    check = getattr(config, "validate_spec", None)
    if callable(check):
        _in_schema(spec, lambda: check(dataclasses.replace(vctx, key=key)))
    return Resolved(spec, config, key, node)


def _in_schema(spec: ComponentSpec, fn: Any) -> Any:
    """Run schema code of a plugin: a ConfigError is the user's, anything else the plugin's."""
    try:
        return fn()
    except SpecloopError:
        raise
    except Exception as exc:
        raise PluginError(f"the schema of component {spec.name} failed while validating",
                          plugin=spec.plugin, distribution=spec.distribution,
                          fix=f"upgrade the plugin, or disable it with "
                              f"SPECLOOP_DISABLE_PLUGINS={spec.plugin}") from exc


def _settings(raw: dict, schemas: dict[str, type], prov: Provenance,
              inactive: set[str]) -> dict[str, Any]:
    """The typed ``plugins.<name>`` settings (``disable`` is the engine's own key; settings of
    a disabled or broken plugin are not checked)."""
    out: dict[str, Any] = {}
    disabled = set(raw.get("disable") or []) | set(inactive)
    for name, node in raw.items():
        key = f"plugins.{name}"
        if name in disabled:
            continue
        if name == "disable":
            if not isinstance(node, list) or not all(isinstance(n, str) for n in node):
                raise ConfigError("plugins.disable must be a list of plugin names", key=key,
                                  file=prov.where(key), got=node,
                                  expected="a list such as [mlflow]", fix="plugins.disable: [name]")
            continue
        if name not in schemas:
            close = difflib.get_close_matches(name, list(schemas), n=1)
            raise ConfigError(f"no installed plugin declares settings {key!r}", key=key,
                              file=prov.where(key), expected="plugins.<name> for one of: "
                              + (", ".join(schemas) or "(none)"),
                              fix=f"rename it to plugins.{close[0]}" if close else "remove it",
                              extra=[("did you mean", close[0])] if close else [])
        out[name] = typed(schemas[name], node or {}, key, prov)
    for name, schema in schemas.items():
        out.setdefault(name, typed(schema, {}, f"plugins.{name}", prov))
    return out


# what a ``loop.incoming`` node of another kind than ``data`` takes over from ``data``
COLUMN_CHOICES = ("target", "features", "drop", "categorical", "time_column", "task", "coerce")


def validate(composed: Composed, table: ComponentTable, allowed_targets: list[str],
             settings_schemas: dict[str, type] | None = None,
             inactive: set[str] = frozenset()) -> Spec:
    """Validate a composed spec; ``inactive`` plugins (disabled, or failed to import) keep
    their settings unchecked. Raises a ConfigError for the first problem found."""
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
    loop_raw = dict(raw.get("loop") or {})
    incoming_node = loop_raw.pop("incoming", None)
    confs = {key: typed(schema, (loop_raw if key == "loop" else raw.get(key)) or {}, key, prov)
             for key, schema in ENGINE_NODES.items()}
    name = confs["project"].name
    if not valid_name(name):  # it names the model in the registry and in paths
        raise ConfigError(f"invalid model name {name!r}", key="project.name",
                          file=prov.where("project.name"), got=name,
                          expected=NAME_RULE, fix="e.g. project.name: fraud_detection")
    settings = _settings(raw.get("plugins") or {}, settings_schemas or {}, prov, inactive)
    components: dict[str, Resolved | None] = {}
    for name, stage in STAGES.items():
        if name in REQUIRED and raw.get(name) is None:
            raise ConfigError(f"the spec has no {name!r} stage", key=name,
                              file=prov.where(name), expected=f"a {name} node with a kind",
                              fix=f"add '- {name}: <option>' to the defaults list of "
                                  f"conf/config.yaml, or pass {name}=<option>",
                              extra=[("available kinds", ", ".join(table.kinds(stage)))])
        components[name] = resolve_node(stage, raw.get(name), name, table, prov, vctx,
                                        optional=name not in REQUIRED)
    incoming = None
    if incoming_node is not None:
        own = incoming_node if isinstance(incoming_node, dict) else {}
        merged = {k: v for k, v in raw["data"].items() if k != "split" and (
            own.get("kind") in (None, raw["data"]["kind"]) or k in COLUMN_CHOICES)}
        incoming = resolve_node(Stage.DATA, {**merged, **own}, "loop.incoming", table, prov,
                                vctx, optional=False)
    spec = Spec(project_dir=prov.project_dir, raw=raw, **confs, components=components,
                incoming=incoming, provenance=prov, overrides=prov.overrides,
                choices=prov.choices, settings=settings)
    check_stages(spec)
    return spec


def check_stages(spec: Spec) -> None:
    """Refuse a stage node that reads a metric the metrics stage does not compute."""
    names_of = getattr(spec.components["metrics"].config, "metric_names", None)
    if not callable(names_of):
        return
    computed = list(dict.fromkeys(names_of()))
    for stage in METRIC_READERS:
        resolved = spec.components.get(stage)
        used = getattr(resolved.config, "metrics_used", None) if resolved else None
        for subkey, metric in (used() if callable(used) else {}).items():
            if metric in computed:
                continue
            key = f"{resolved.key}.{subkey}"
            close = difflib.get_close_matches(str(metric), computed, n=1)
            raise ConfigError(
                f"{key} reads the metric {metric!r}, which the metrics stage does not compute",
                key=key, file=spec.provenance.where(key), got=metric,
                expected="one of the computed metrics: " + ", ".join(computed),
                fix=f"use {close[0]!r}" if close else
                f"add {metric!r} to metrics.names, or remove {key}",
                extra=[("did you mean", close[0])] if close else [])


def check_task(spec: Spec, model: Any, task: str, target: str) -> None:
    """Refuse a built ``model`` whose optional ``task()`` is not the data's ``task`` on
    ``target``: a classifier on a continuous target, or a regressor on classes."""
    ask = getattr(model, "task", None)
    wants = ask() if callable(ask) else None
    if wants is None or wants == task:
        return
    resolved = spec.components["model"]
    what = getattr(resolved.config, "estimator", resolved.spec.kind)
    raise ConfigError(
        f"model {what!r} is a {wants} model, but the target {target!r} is a {task} target",
        key="model", file=spec.provenance.where("model"), got=what,
        expected=f"a {task} model for {target!r} (set in {spec.provenance.where('data.target')})",
        fix=f"pick a {task} model (model=<option>), or set data.task if the target's task "
            "was inferred wrongly")

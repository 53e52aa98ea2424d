"""The JSON Schema (draft-07, what the YAML language server supports best) of a project's
config files, built from the installed plugins' component schemas.

One document describes every file: its root validates ``conf/config.yaml`` (with its
``defaults`` list), and ``definitions`` holds one entry per config group
(``group.<name>``) that validates ``conf/<group>/*.yaml``. A stage node picks its
component with ``kind``: the ``kind`` enum lists the installed kinds, and an if/then per
kind holds the rest of the node to that component's dataclass (types, ``Interval`` ranges,
``Options`` enums, defaults, ``param(help=...)`` descriptions). Wherever a value is typed, a
``${...}`` interpolation is accepted too: Hydra resolves it when the spec is composed.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from pathlib import Path
from typing import Any

from specloop import Interval, Options

from ._catalog import OPTIONAL_STAGES, STAGE_GROUPS, Catalog
from specloop import ENGINE_NODES, NAME_PATTERN

DRAFT = "http://json-schema.org/draft-07/schema#"
INTERPOLATION = {"type": "string", "pattern": r"\$\{",
                 "description": "an interpolation, resolved when the spec is composed"}
SCHEMA_DIR = "schema"
DOCUMENT = "specloop.schema.json"


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _type_schema(tp: Any) -> tuple[dict, bool]:
    """``(schema, nullable)`` of a type annotation."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        nullable = len(rest) < len(args)
        if len(rest) == 1:
            return _type_schema(rest[0])[0], nullable
        return {"anyOf": [_type_schema(a)[0] for a in rest]}, nullable
    if tp is bool:
        return {"type": "boolean"}, False
    if tp is int:
        return {"type": "integer"}, False
    if tp is float:
        return {"type": "number"}, False
    if tp is str:
        return {"type": "string"}, False
    if tp in (list, tuple) or origin in (list, tuple):
        item = _type_schema(args[0])[0] if args else {}
        return {"type": "array", "items": _loose(item)}, False
    if tp is dict or origin is dict:
        value = _type_schema(args[1])[0] if len(args) == 2 else {}
        return {"type": "object", "additionalProperties": _loose(value)}, False
    if dataclasses.is_dataclass(tp):
        return dataclass_schema(tp), False
    return {}, False  # Any, object, or a type JSON cannot say more about


def _loose(schema: dict) -> dict:
    """``schema`` or an interpolation, where a typed value is expected."""
    if not schema or schema.get("type") == "string" and len(schema) == 1:
        return schema
    return {"anyOf": [schema, INTERPOLATION]}


def field_schema(f: dataclasses.Field, tp: Any) -> dict:
    """The schema of one dataclass field: type, constraint, default and description."""
    base, nullable = _type_schema(tp)
    base = dict(base)
    check = f.metadata.get("check")
    if isinstance(check, Interval):
        nullable = nullable or check.allow_none
        base["type"] = "integer" if check.type is int else "number"
        left, right = check.closed in ("both", "left"), check.closed in ("both", "right")
        if check.low is not None:
            base["minimum" if left else "exclusiveMinimum"] = check.low
        if check.high is not None:
            base["maximum" if right else "exclusiveMaximum"] = check.high
    elif isinstance(check, Options):
        nullable = nullable or check.allow_none
        base = {"enum": list(check.values)}
    if nullable:
        if "enum" in base:
            base["enum"] = [*base["enum"], None]
        elif isinstance(base.get("type"), str):
            base["type"] = [base["type"], "null"]
        elif base:
            base = {"anyOf": [base, {"type": "null"}]}
    out = _loose(base) if base else {}
    out = dict(out)
    if "anyOf" in out and base.get("description"):
        out["description"] = base["description"]
    help_text = f.metadata.get("help") or ""
    required = f.default == "???"
    notes = [help_text] if help_text else []
    if check is not None:
        notes.append(f"expected: {check.describe()}")
    if required:
        notes.append("required")
    if f.metadata.get("secret"):
        notes.append("secret: masked wherever it is recorded; pass it as ${oc.env:NAME}")
    if notes:
        out["description"] = "; ".join(notes)
    if not required:
        if f.default is not dataclasses.MISSING:
            out["default"] = _jsonable(f.default)
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            try:
                out["default"] = _jsonable(f.default_factory())  # type: ignore[misc]
            except Exception:
                pass
    return out


def dataclass_schema(cls: type, *, skip: tuple[str, ...] = ()) -> dict:
    """An object schema of a dataclass: its fields, no other key."""
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # an annotation that cannot be resolved: no type for it
        hints = {}
    props = {f.name: field_schema(f, hints.get(f.name, Any)) for f in dataclasses.fields(cls)
             if f.name not in skip and not f.name.startswith("_")}
    out = {"type": "object", "properties": props, "additionalProperties": False}
    doc = " ".join((cls.__doc__ or "").strip().split("\n\n")[0].split()).replace("``", "`")
    if doc and not doc.startswith(cls.__name__ + "("):
        out["description"] = doc
    return out


class SchemaBuilder:
    """Builds the schema document of a project from its :class:`Catalog`."""

    def __init__(self, catalog: Catalog) -> None:
        self.cat = catalog
        self.options = catalog.options()

    # -- stage nodes -----------------------------------------------------------------------
    def component(self, spec: Any, *, file: bool) -> dict:
        """The schema of one component's node (``kind`` plus its dataclass)."""
        schema = dataclass_schema(spec.schema, skip=tuple(spec.nested))
        props = {"kind": {"const": spec.kind, "description": spec.description or spec.name}}
        props.update(schema["properties"])
        for name, stage in spec.nested.items():
            ref = {"$ref": f"#/definitions/node.{stage}"}
            props[name] = {"anyOf": [ref, {"type": "array", "items": ref}],
                           "description": f"nested {stage} node(s), each with its own kind"}
        if file:
            props["defaults"] = self.defaults(None)
        return {"type": "object", "properties": props, "additionalProperties": False,
                "description": f"{spec.name}: {spec.description}".rstrip(": ")}

    def stage_node(self, stage: str, *, file: bool = False, partial: bool = False) -> dict:
        """The schema of a stage node, with ``kind`` as the discriminator.

        ``partial``: the node may leave ``kind`` out (a ``conf/config.yaml`` node over the
        option its defaults list picked, or ``loop.incoming`` over ``data``); its keys are
        then those of any installed kind. ``file``: a group file, which may have its own
        ``defaults`` list.
        """
        specs = self.cat.components(stage)
        kinds = [s.kind for s in specs] + (["none"] if stage in OPTIONAL_STAGES else [])
        branches = []
        for spec in specs:
            branches.append({"if": {"properties": {"kind": {"const": spec.kind}},
                                    "required": ["kind"]},
                             "then": self.component(spec, file=file)})
        if stage in OPTIONAL_STAGES:
            none = {"kind": {"const": "none"}}
            if file:
                none["defaults"] = self.defaults(None)
            branches.append({"if": {"properties": {"kind": {"const": "none"}},
                                    "required": ["kind"]},
                             "then": {"type": "object", "properties": none,
                                      "additionalProperties": False}})
        described = ", ".join(f"{s.kind} ({s.description})" if s.description else s.kind
                              for s in specs)
        out: dict[str, Any] = {
            "type": "object",
            "description": f"the {stage} stage; kind picks the component: {described}",
            "properties": {"kind": {"enum": kinds, "description": "the component: "
                                    + ", ".join(kinds)}},
            "allOf": branches}
        if partial:
            union: dict[str, Any] = {"kind": out["properties"]["kind"]}
            for spec in specs:
                for key, value in self.component(spec, file=False)["properties"].items():
                    union.setdefault(key, value if key != "kind" else union["kind"])
            out["if"] = {"required": ["kind"]}
            out["else"] = {"properties": union, "additionalProperties": False}
        elif file:
            out["anyOf"] = [{"required": ["kind"]}, {"required": ["defaults"]}]
        else:
            out["required"] = ["kind"]
        return out

    # -- defaults lists ---------------------------------------------------------------------
    def defaults(self, groups: list[str] | None) -> dict:
        """A ``defaults`` list. ``groups``: the groups it may select (a primary config or a
        ``@package _global_`` file); ``None``: a group file's own list (options of its group,
        or ``override /group: option``)."""
        pattern_props = {}
        for group in sorted(self.options) if groups is None else groups:
            opts = list(self.options.get(group, {}))
            pattern_props[rf"^(override |optional )?/?{group}(@[\w.]+)?$"] = {
                "enum": [*opts, None],
                "description": f"an option of the config group '{group}': "
                               + (", ".join(opts) or "(none installed)")}
        pattern_props[r"^(override |optional )?/?hydra/"] = {
            "type": ["string", "null"], "description": "a Hydra config group"}
        # one schema for both forms: the object keywords do not apply to a string item
        item = {"type": ["string", "object"], "minProperties": 1, "maxProperties": 1,
                "patternProperties": pattern_props, "additionalProperties": False,
                "description": "_self_, a config of the same folder, or {group: option}"}
        return {"type": "array", "items": item,
                "description": "the options Hydra composes, in order; _self_ places this file"}

    # -- the root ---------------------------------------------------------------------------
    def root(self, *, file: bool = False) -> dict:
        """``conf/config.yaml`` (``file``: a ``@package _global_`` group file such as a
        ``stack`` preset, which sets keys anywhere)."""
        props: dict[str, Any] = {"defaults": self.defaults(
            self.cat.groups() if not file else None)}
        for key, cls in ENGINE_NODES.items():
            props[key] = dataclass_schema(cls)
        props["project"]["properties"]["name"]["pattern"] = NAME_PATTERN
        props["loop"]["properties"]["incoming"] = {
            "$ref": "#/definitions/node.data.partial",
            "description": "the batches specloop loop processes; merged over the data node, "
                           "so only what differs has to be written"}
        for stage in STAGE_GROUPS:
            ref = {"$ref": f"#/definitions/node.{stage}.partial"}
            props[stage] = {"anyOf": [ref, {"type": "null"}]} if stage in OPTIONAL_STAGES \
                else ref
        plugins = {"disable": {"type": "array", "items": {"type": "string"},
                               "description": "entry-point names of plugins to block: "
                                              + ", ".join(self.cat.plugin_names())}}
        for name, cls in sorted(self.cat.settings_schemas().items()):
            plugins[name] = dataclass_schema(cls)
            plugins[name]["description"] = f"settings of {self.cat.plugin_label(name)}"
        props["plugins"] = {"type": "object", "properties": plugins,
                            "additionalProperties": False,
                            "description": "plugins.disable and each plugin's settings"}
        props["allow_python_targets"] = {
            "type": "boolean", "default": False,
            "description": "allow any importable dotted path as a model estimator"}
        props["hydra"] = {"type": "object", "description": "Hydra's own settings"}
        return {"type": "object", "properties": props, "additionalProperties": False}

    def group(self, group: str) -> dict:
        """The schema of a file ``conf/<group>/<option>.yaml``."""
        if group in STAGE_GROUPS:
            return {"$ref": f"#/definitions/node.{group}.file"}
        if group == "stack":
            return {"$ref": "#/definitions/global"}
        if group in ENGINE_NODES:
            schema = dataclass_schema(ENGINE_NODES[group])
            schema["properties"]["defaults"] = self.defaults(None)
            return schema
        return {"type": "object", "description": f"the config group '{group}' (not checked)"}

    def document(self) -> dict:
        """The whole schema document."""
        defs: dict[str, Any] = {"global": self.root(file=True)}
        for stage in STAGE_GROUPS:
            defs[f"node.{stage}"] = self.stage_node(stage)
            defs[f"node.{stage}.partial"] = self.stage_node(stage, partial=True)
            defs[f"node.{stage}.file"] = self.stage_node(stage, file=True)
        for group in self.cat.groups():
            defs[f"group.{group}"] = self.group(group)
        return {"$schema": DRAFT, "title": "specloop project config",
                "description": "conf/config.yaml of a specloop project; "
                               "definitions/group.<name> validates conf/<name>/*.yaml",
                **self.root(), "definitions": defs}


def build(project: Path | str | None) -> dict:
    """The schema document for ``project`` (its conf groups and the installed plugins)."""
    return SchemaBuilder(Catalog(project)).document()


def wrapper_name(group: str | None) -> str:
    """File name of the small schema that points at one part of the document."""
    return "config.schema.json" if group is None else \
        f"{group.replace('/', '.')}.schema.json"


def write_project_schema(project: Path, document: dict | None = None) -> list[Path]:
    """Write ``schema/`` in ``project``: the document, and one small schema per config group
    (``schema/<group>.schema.json``, a ``$ref`` into the document) for editors whose settings
    map a file glob to a schema file. Returns the written files."""
    document = document if document is not None else build(project)
    folder = project / SCHEMA_DIR
    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / DOCUMENT]
    _write_json(folder / DOCUMENT, document)
    _write_json(folder / wrapper_name(None), {"$schema": DRAFT, "$ref": DOCUMENT})
    written.append(folder / wrapper_name(None))
    for key in document["definitions"]:
        if key.startswith("group.") and not key.startswith("group.hydra/"):
            group = key[len("group."):]
            path = folder / wrapper_name(group)
            _write_json(path, {"$schema": DRAFT, "$ref": f"{DOCUMENT}#/definitions/{key}"})
            written.append(path)
    return written


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def vscode_settings(document: dict) -> dict:
    """``.vscode/settings.json`` mapping the project's files to the schema files."""
    schemas = {f"./{SCHEMA_DIR}/{wrapper_name(None)}": ["conf/config.yaml"]}
    for key in document["definitions"]:
        if key.startswith("group.") and not key.startswith("group.hydra/"):
            group = key[len("group."):]
            schemas[f"./{SCHEMA_DIR}/{wrapper_name(group)}"] = [f"conf/{group}/*.yaml"]
    return {"yaml.schemas": schemas, "yaml.validate": True, "yaml.schemaStore.enable": False}


def modeline(rel_file: str) -> str:
    """The ``# yaml-language-server: $schema=...`` line for a file of the project
    (``conf/config.yaml``, ``conf/<group>/<option>.yaml``)."""
    parts = Path(rel_file).parts
    up = "../" * (len(parts) - 1)
    group = None if len(parts) == 2 else "/".join(parts[1:-1])
    return f"# yaml-language-server: $schema={up}{SCHEMA_DIR}/{wrapper_name(group)}"

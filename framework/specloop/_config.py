"""Compose a project's spec with Hydra (search path: the project's ``conf/``, the framework's,
then the plugins', as one ``hydra.searchpath`` override), type its nodes with OmegaConf, and say
where every key came from; Hydra's, YAML's and OmegaConf's errors become ConfigErrors."""

from __future__ import annotations

import dataclasses
import difflib
import os
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ._redact import MASK, is_secret_key
from .errors import ConfigError
from .schema import ROOT_KEYS
from .schema import check_constraints

_MISSING = object()


def unknown_root_key(key: str, where: str) -> ConfigError:
    """The error for a top-level key the spec does not have, with a "did you mean"."""
    close = difflib.get_close_matches(key, ROOT_KEYS, n=1)
    return ConfigError(f"unknown top-level key {key!r}", key=key, file=where,
                       expected="one of: " + ", ".join(ROOT_KEYS),
                       fix=f"rename it to {close[0]!r}" if close else "remove it",
                       extra=[("did you mean", close[0])] if close else [])


def hydra_overrides(overrides: list[str]) -> list[str]:
    """The user's overrides as handed to Hydra: ``a.b=v`` becomes ``++a.b=v``, so a schema
    default no preset mentions (``data.split.method``) can be set; unknown keys are still
    refused, by schema validation, with a "did you mean"."""
    out = []
    for ov in overrides:
        key = ov.split("=", 1)[0]
        settable = "=" in ov and ("." in key or key == "allow_python_targets")
        out.append("++" + ov if settable and not key.startswith(("+", "~", "hydra.")) else ov)
    return out


def searchpath_override(dirs: list[str]) -> str:
    """The ``hydra.searchpath=[...]`` override that puts ``dirs`` on Hydra's search path."""
    quoted = ",".join("'file://" + d.replace("\\", "/").replace("'", "\\'") + "'" for d in dirs)
    return f"hydra.searchpath=[{quoted}]"


def conf_search_dirs(plugin_dirs: list[str]) -> list[str]:
    """Framework (as installed) and plugin config directories, searched after the project's."""
    return [str(resources.files("specloop.conf")), *plugin_dirs]


def _shown(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:  # pragma: no cover - another drive on Windows
        return str(path)


@dataclass
class Provenance:
    """Where each key of a composed spec was set: a file, or the command line."""

    project_dir: Path
    conf_dirs: list[Path]
    choices: dict[str, str | None] = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)
    _primary: Any = None

    def where(self, key: str) -> str:
        """Name where ``key`` (dotted) was set, most specific source first."""
        for ov in self.overrides:
            name = ov.split("=", 1)[0].lstrip("+~")
            if "." not in name and name in self.choices and key != name:
                continue  # a group choice: keys inside it come from the option's file
            if key == name or key.startswith(name + ".") or name.startswith(key + "."):
                return f"command line: {ov}"
        primary = self.project_dir / "conf" / "config.yaml"
        if self._primary is None:
            try:
                self._primary = yaml.safe_load(primary.read_text()) or {}
            except Exception:  # noqa: BLE001 - composition reports a broken file
                self._primary = {}
        node = self._primary
        for part in key.split("."):
            node = node.get(part, _MISSING) if isinstance(node, dict) else _MISSING
        group = key.split(".", 1)[0]  # else the option file chosen for its group, if any
        choice = self.choices.get(group) if node is _MISSING else None
        files = (d / group / f"{choice}.yaml" for d in self.conf_dirs) if choice else ()
        path = next((f for f in files if f.is_file()), None)
        if path is None:
            return _at(primary, key.split("."))
        return f"{_at(path, key.split('.')[1:])} (group {group!r}, option {self.choices[group]!r})"


def _at(path: Path, keys: list[str]) -> str:
    """``path:line`` of the deepest of ``keys`` (a path into the file's mappings) that the
    file sets; just ``path`` when it sets none of them."""
    try:
        node = yaml.compose(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        node = None
    line = None
    for part in keys:
        found = next((pair for pair in node.value if getattr(pair[0], "value", None) == part),
                     None) if isinstance(node, yaml.MappingNode) else None
        if found is None:
            break
        line, node = found[0].start_mark.line + 1, found[1]
    return f"{_shown(path)}:{line}" if line else _shown(path)


def typed(schema: type, body: dict, key: str, prov: Provenance) -> Any:
    """Merge ``body`` into ``schema`` with OmegaConf, then check the declared constraints:
    unknown keys, wrong types and invalid values are :class:`ConfigError`s naming the key."""
    from omegaconf import OmegaConf  # ~0.1 s, on the cold path of `specloop validate`
    from omegaconf.errors import (ConfigKeyError, MissingMandatoryValue,
                                  OmegaConfBaseException, ValidationError)

    try:
        conf = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), body))
    except OmegaConfBaseException as exc:
        sub = getattr(exc, "full_key", "") or ""
        full, parts = f"{key}.{sub}" if sub else key, sub.split(".")
        if isinstance(exc, ConfigKeyError):
            names = list(_fields(schema, parts[:-1]))
            close = difflib.get_close_matches(parts[-1] or "?", names, n=1)
            raise ConfigError(
                f"unknown key {full!r}", key=full, file=prov.where(full),
                expected=f"one of the keys of {full.rsplit('.', 1)[0]}: {', '.join(names)}",
                fix=f"rename it to {close[0]!r}" if close else "remove it",
                extra=[("did you mean", close[0])] if close else []) from None
        if isinstance(exc, MissingMandatoryValue):
            raise ConfigError(f"missing required value {full}", key=full,
                              file=prov.where(full), expected="a value",
                              fix=f"set {full} in the spec or with {full}=...") from None
        if isinstance(exc, ValidationError):
            kind = _fields(schema, parts[:-1]).get(parts[-1])
            expected = "a value of the declared type" if kind is None else \
                f"a value of type {getattr(kind, '__name__', str(kind))}"
            raise ConfigError(f"wrong type for {full}", key=full, file=prov.where(full),
                              got=MASK if is_secret_key(full) else _lookup(body, parts),
                              expected=expected, fix=f"set {full} to {expected}") from None
        raise ConfigError(f"invalid value at {full}", key=full, file=prov.where(full),
                          extra=[("detail", str(exc).splitlines()[0])]) from None
    check_constraints(conf, key, prov.where)
    return conf


def _lookup(body: Any, parts: list[str]) -> Any:
    for p in parts:
        if isinstance(body, dict) and p in body:
            body = body[p]
        elif isinstance(body, list) and p.isdigit() and int(p) < len(body):
            body = body[int(p)]
        else:
            return None
    return body


def _fields(schema: Any, parts: list[str]) -> dict[str, Any]:
    """``{name: declared type}`` of the dataclass at ``parts`` inside ``schema`` (or ``{}``)."""
    for p in parts:
        schema = typing.get_type_hints(schema).get(p) if dataclasses.is_dataclass(schema) else None
    if not dataclasses.is_dataclass(schema):
        return {}
    return {f.name: f.type for f in dataclasses.fields(schema)}


@dataclass
class Composed:
    """A composed spec (plain containers, interpolations resolved) and its provenance."""

    config: dict
    provenance: Provenance


def compose(project_dir: Path, overrides: list[str], plugin_dirs: list[str]) -> Composed:
    """Compose ``project_dir/conf/config.yaml`` with ``overrides``; a missing project,
    malformed YAML, an unknown option or a bad override is a ConfigError naming it."""
    # hydra ~0.2 s: what imports this module without composing (the testing kit) skips it
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    project_dir = Path(project_dir).resolve()
    conf = project_dir / "conf"
    if not (conf / "config.yaml").is_file():
        raise ConfigError(
            f"no spec found in {str(project_dir)!r}", file=str(conf / "config.yaml"),
            expected="a project folder with conf/config.yaml",
            fix="pass --project DIR pointing at a project, or run from inside one")
    search = conf_search_dirs(plugin_dirs)
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(conf), version_base=None, job_name="specloop"):
            cfg = hydra_compose("config", overrides=[*hydra_overrides(overrides),
                                                     searchpath_override(search)],
                                return_hydra_config=True)
    except Exception as exc:
        raise translate_hydra_error(exc, project_dir, overrides) from None
    finally:
        GlobalHydra.instance().clear()
    return from_hydra_config(cfg, project_dir, search, cfg.hydra, overrides)


def from_hydra_config(cfg: Any, project_dir: Path, search: list[str], hydra: Any,
                      overrides: list[str]) -> Composed:
    """Turn a Hydra-composed config (Compose API or a multirun job, whose ``hydra`` node
    names the options chosen) into :class:`Composed`."""
    from omegaconf import OmegaConf, open_dict  # loaded with hydra (see compose)
    from omegaconf.errors import OmegaConfBaseException

    choices = {k: v for k, v in hydra.runtime.choices.items() if not k.startswith("hydra/")}
    overrides = [o[2:] if o.startswith("++") else o for o in overrides
                 if not o.startswith("hydra.")]
    prov = Provenance(project_dir, [project_dir / "conf", *map(Path, search)], choices,
                      overrides)
    cfg = cfg.copy()
    if "hydra" in cfg:
        with open_dict(cfg):
            del cfg["hydra"]
    try:
        plain = OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or None
        raise ConfigError(
            "cannot resolve an interpolation", key=key, file=prov.where(key) if key else None,
            expected="an interpolation that points at an existing key",
            fix="check the ${...} reference", extra=[("detail", _first_line(exc))]) from None
    return Composed(plain, prov)


def _bad_interpolation(exc: Any, project_dir: Path, overrides: list[str]) -> ConfigError:
    """A ``${...}`` that does not parse, with the file and line (or override) that wrote it."""
    value, key = str(getattr(exc, "value", "")), str(getattr(exc, "full_key", ""))
    where = next((f"command line: {o}" for o in overrides if value and value in o), None)
    for path in sorted((project_dir / "conf").rglob("*.yaml")) if where is None else ():
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        line = next((n for n, text in enumerate(lines, 1) if value and value in text), None)
        if line is not None:
            group = path.parent.relative_to(project_dir / "conf").as_posix()
            key = key if group == "." else f"{group.replace('/', '.')}.{key}"
            where = f"{_shown(path)}:{line}"
            break
    return ConfigError(f"malformed interpolation in {key}: {value}", key=key, file=where,
                       expected="${...} closed by '}', e.g. ${oc.env:DATA_DIR}/train.csv",
                       fix="close the interpolation with '}', or write a literal $ as \\${",
                       extra=[("detail", _first_line(exc))])


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def translate_hydra_error(exc: BaseException, project_dir: Path,
                          overrides: list[str]) -> ConfigError:
    """Render Hydra's and YAML's composition errors as a :class:`ConfigError`."""
    if isinstance(exc, ConfigError):
        return exc
    if isinstance(exc, yaml.YAMLError):
        mark = getattr(exc, "problem_mark", None)
        where = f"{os.path.relpath(mark.name)}, line {mark.line + 1}, column {mark.column + 1}" \
            if mark is not None and mark.name else None
        problem = getattr(exc, "problem", None) or _first_line(exc)
        return ConfigError(f"malformed YAML: {problem}", file=where,
                           expected="valid YAML", fix="fix the syntax at that line")
    from hydra.errors import MissingConfigException, OverrideParseException  # see compose

    text = str(exc).strip()
    if isinstance(exc, OverrideParseException):
        bad = next((o for o in overrides if o in text), None) or ", ".join(overrides)
        return ConfigError("bad override", file=f"command line: {bad}",
                           expected="key=value in Hydra's override grammar",
                           fix="quote values with special characters, e.g. key='a,b'; "
                               "use [a,b] for lists",
                           extra=[("detail", text.splitlines()[0])])
    if isinstance(exc, MissingConfigException):
        missing = getattr(exc, "missing_cfg_file", "") or ""
        option = missing.split("/")[-1]
        group = missing.split("/")[0] if "/" in missing else None
        options = list(getattr(exc, "options", None) or [])
        close = difflib.get_close_matches(option, options, n=1) if missing else []
        extra = [("available", ", ".join(options))] if options else []
        ov = next((o for o in overrides if group and o.lstrip("+~").startswith(group + "=")), None)
        return ConfigError(
            f"unknown option {option!r} for config group {group!r}" if group else
            f"config {missing!r} not found", key=group,
            file=f"command line: {ov}" if ov else _shown(project_dir / "conf" / "config.yaml"),
            expected=f"an option of group {group!r}" if group else "an existing config file",
            fix=f"pick one of the available options, or add conf/{missing}.yaml",
            extra=extra + [("did you mean", c) for c in close])
    from omegaconf.errors import GrammarParseError

    first, _, rest = text.partition("\n")
    key = getattr(exc.__cause__, "full_key", None)
    if isinstance(exc.__cause__, GrammarParseError):
        return _bad_interpolation(exc.__cause__, project_dir, overrides)
    if first.startswith("Ambiguous value for argument"):
        bad = next((o for o in overrides if o.lstrip("+") in first), first.split("'")[1])
        return ConfigError(
            f"{bad!r} gives one key several values", file=f"command line: {bad}",
            expected="one value per key; a comma list sweeps only with -m",
            fix=f"sweep them: specloop run -m {bad}; a list value: key=[a,b]; "
                "a string: key='a,b'")
    bad = next((o for o in overrides if o.split("=", 1)[0].lstrip("+~") in first), None)
    fix = rest.strip() or "check the override against the spec (specloop validate)"
    if "Could not override" in first and bad and not bad.startswith("+"):
        fix = f"the key does not exist in the spec; to add it use +{bad}"
        root = bad.split("=", 1)[0].lstrip("~").split(".", 1)[0]
        if root not in ROOT_KEYS:  # adding it would only fail validation
            return unknown_root_key(root, f"command line: {bad}")
    return ConfigError(first.rstrip("."), key=key, file=f"command line: {bad}" if bad else None,
                       expected="an override of an existing key", fix=fix)

"""What a project can be configured with: config groups and their options (from the conf
search path), the installed components and their schemas, the plugins' settings schemas.

Everything is read through public interfaces: ``specloop.plugin_manager()`` and its hooks
(``specloop_add_conf_dirs``, ``specloop_register_components``, ``specloop_settings_schema``),
the ``specloop.conf`` package, the entry points of the ``specloop.plugins`` group, and the
engine's own nodes (``specloop.ENGINE_NODES``, ``ROOT_KEYS``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

ENTRY_POINT_GROUP = "specloop.plugins"
STAGE_GROUPS = ("data", "model", "metrics", "gate", "deploy", "monitor", "retrain")
OPTIONAL_STAGES = ("gate", "deploy", "monitor", "retrain")


@dataclass
class ConfDir:
    """One directory of the conf search path."""

    path: Path
    source: str  # "project", "specloop" or "plugin <name> (<distribution>)"


@dataclass
class Option:
    """One option of a config group: ``conf/<group>/<name>.yaml`` in some conf dir."""

    group: str
    name: str
    path: Path
    source: str
    shadows: list[str] = field(default_factory=list)  # sources of same-named options it hides

    def header(self) -> list[str]:
        """The file's leading comment lines (without ``@package`` and modelines)."""
        out = []
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except OSError:
            return out
        for line in lines:
            s = line.strip()
            if not s.startswith("#"):
                break
            text = s.lstrip("#").strip()
            if text.startswith(("@package", "yaml-language-server:")) or not text:
                continue
            out.append(text)
        return out

    def node(self) -> dict:
        """The parsed file (``{}`` when it cannot be read)."""
        import yaml

        try:
            data = yaml.safe_load(self.path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            return {}
        return data if isinstance(data, dict) else {}

    def is_global(self) -> bool:
        """Whether the file is ``# @package _global_`` (it sets keys anywhere in the spec)."""
        try:
            head = self.path.read_text(encoding="utf-8")[:2000]
        except OSError:
            return False
        return bool(re.search(r"^#\s*@package\s+_global_\s*$", head, re.M))


def _distributions() -> dict[str, str]:
    """``{entry-point name: "distribution version"}`` of the installed plugins."""
    out = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        out.setdefault(ep.name, f"{ep.dist.name} {ep.dist.version}" if ep.dist else "?")
    return out


def _project_disable(project: Path | None) -> list[str]:
    """``plugins.disable`` of the project's ``conf/config.yaml``."""
    if project is None:
        return []
    import yaml

    try:
        data = yaml.safe_load((project / "conf" / "config.yaml").read_text(encoding="utf-8"))
        names = (data or {}).get("plugins", {}).get("disable") or []
        return [str(n) for n in names] if isinstance(names, list) else []
    except Exception:  # a broken config still gets a schema and completions
        return []


class Catalog:
    """Groups, options, components and settings for a project folder (or none).

    Args:
        project: The project folder (its ``conf/`` comes first on the search path), or
            ``None`` for what the installed plugins offer alone.
    """

    def __init__(self, project: Path | str | None = None) -> None:
        from specloop import plugin_manager

        self.project = Path(project).resolve() if project is not None else None
        self.pm = plugin_manager()
        self.dists = _distributions()
        for name in _project_disable(self.project):  # as the engine blocks them
            if self.pm.get_plugin(name) is not None:
                self.pm.unregister(name=name)
        self.table = self.pm.component_table()

    # -- plugins ---------------------------------------------------------------------------
    def plugin_label(self, name: str) -> str:
        """``plugin <name> (<distribution version>)``."""
        return f"plugin {name} ({self.dists.get(name, 'registered in-process')})"

    def plugin_names(self) -> list[str]:
        """Entry-point names of the installed plugins."""
        return sorted(self.dists)

    def settings_schemas(self) -> dict[str, type]:
        """``{plugin name: dataclass}`` of the ``plugins.<name>`` settings."""
        out = {}
        for impl in self.pm.hook.specloop_settings_schema.get_hookimpls():
            schema = impl.function()
            if schema is not None:
                out[impl.plugin_name] = schema
        return out

    def components(self, stage: str) -> list[Any]:
        """The component specs registered for ``stage``, by kind."""
        return [self.table.specs[(stage, kind)] for kind in self.table.kinds(stage)]

    # -- the conf search path ----------------------------------------------------------------
    def conf_dirs(self) -> list[ConfDir]:
        """The search path in Hydra's order: the project's ``conf/``, the framework's
        (``specloop.conf``), then every directory a plugin ships."""
        import importlib.util

        out = []
        if self.project is not None and (self.project / "conf").is_dir():
            out.append(ConfDir(self.project / "conf", "project"))
        spec = importlib.util.find_spec("specloop.conf")
        for loc in (spec.submodule_search_locations or []) if spec else []:
            out.append(ConfDir(Path(loc), "specloop"))
        for impl in self.pm.hook.specloop_add_conf_dirs.get_hookimpls():
            for d in impl.function() or []:
                if os.path.isdir(d):
                    out.append(ConfDir(Path(d), self.plugin_label(impl.plugin_name)))
        seen, unique = set(), []
        for d in out:
            if d.path.resolve() not in seen:
                seen.add(d.path.resolve())
                unique.append(d)
        return unique

    def options(self) -> dict[str, dict[str, Option]]:
        """``{group: {option: Option}}``; the first directory on the search path wins."""
        groups: dict[str, dict[str, Option]] = {}
        for d in self.conf_dirs():
            for path in sorted(d.path.rglob("*.yaml")):
                rel = path.relative_to(d.path)
                if len(rel.parts) < 2 or any(p.startswith((".", "__")) for p in rel.parts):
                    continue
                group, name = rel.parent.as_posix(), path.stem
                have = groups.setdefault(group, {})
                if name in have:
                    have[name].shadows.append(d.source)
                else:
                    have[name] = Option(group, name, path, d.source)
        return {g: dict(sorted(opts.items())) for g, opts in sorted(groups.items())}

    def groups(self) -> list[str]:
        """Every config group: the stage groups, ``store`` and ``stack``, and any other a
        conf directory holds."""
        return sorted(set(STAGE_GROUPS) | {"store", "stack"} | set(self.options()))

    def describe(self, option: Option) -> tuple[str, str]:
        """``(kind, one-line description)`` of an option."""
        node = option.node()
        if option.is_global():
            kind = "(global)"
        else:
            kind = str(node.get("kind", "")) if isinstance(node, dict) else ""
        header = option.header()
        text = header[0] if header else ""
        if not text:
            if kind == "none":
                text = f"no {option.group} stage"
            elif isinstance(node.get("estimator"), str):
                text = node["estimator"]
            elif option.group in STAGE_GROUPS and kind:
                try:
                    text = self.table.specs[(option.group, kind)].description
                except KeyError:
                    text = ""
        return kind or "-", text

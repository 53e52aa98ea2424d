"""The plugin manager: built fresh for every run, never a module global."""

from __future__ import annotations

import os
import warnings
from dataclasses import replace
from importlib.metadata import entry_points
from typing import Iterable

import pluggy

from . import hookspecs
from .components import BrokenPlugin, ComponentSpec, ComponentTable
from .errors import PluginError

ENTRY_POINT_GROUP = "specloop.plugins"


class SpecloopWarning(UserWarning):
    """A warning specloop shows compactly (a broken plugin, a skipped option …)."""


class PluginManager(pluggy.PluginManager):
    """pluggy's manager, taking only ``specloop_``-prefixed functions as hooks."""

    def __init__(self) -> None:
        super().__init__("specloop")
        self.add_hookspecs(hookspecs)
        self.broken: list[BrokenPlugin] = []
        self.distributions: dict[str, str] = {}

    def parse_hookimpl_opts(self, plugin, name):  # noqa: D102 - pluggy override
        return super().parse_hookimpl_opts(plugin, name) if name.startswith("specloop_") else None

    def distribution(self, name: str) -> str:
        """``name version`` of the distribution that ships plugin ``name``."""
        return self.distributions.get(name, "(registered in-process)")

    def _collect(self, hook: str) -> list[tuple[str, list]]:
        """``(plugin name, returned list)`` per implementation of a ``specloop_add_*`` hook, in
        registration order; a plugin that raises is a :class:`PluginError` naming it."""
        out = []
        for impl in getattr(self.hook, hook).get_hookimpls():
            try:
                out.append((impl.plugin_name, list(impl.function() or [])))
            except Exception as exc:
                name = impl.plugin_name
                raise PluginError(f"plugin {name!r} failed in {hook}", plugin=name,
                                  distribution=self.distribution(name),
                                  fix=f"upgrade it, or disable it with "
                                      f"SPECLOOP_DISABLE_PLUGINS={name}") from exc
        return out

    def component_table(self) -> ComponentTable:
        """Collect every plugin's components, attributed to plugin and distribution."""
        specs: list[ComponentSpec] = []
        for name, provided in self._collect("specloop_register_components"):
            dist = self.distribution(name)
            for spec in provided:
                if not isinstance(spec, ComponentSpec):
                    hint = (" (a class was returned: return ComponentSpec(...) instances)"
                            if isinstance(spec, type) else "")
                    raise PluginError(f"plugin {name!r} registered {spec!r}, not a ComponentSpec"
                                      + hint, plugin=name, distribution=dist)
                specs.append(replace(spec, plugin=name, distribution=dist))
        return ComponentTable(specs, self.broken)

    def _union(self, hook: str) -> list[str]:
        """Every value the plugins return for ``hook``, once each, in registration order."""
        return list(dict.fromkeys(v for _name, values in self._collect(hook) for v in values))

    def conf_dirs(self) -> list[str]:
        """The config directories the plugins ship, in registration order."""
        return [d for d in self._union("specloop_add_conf_dirs") if os.path.isdir(d)]

    def allowed_targets(self) -> list[str]:
        """The dotted-path prefixes plugins allow model specs to name."""
        return self._union("specloop_add_allowed_targets")

    def preload_modules(self) -> list[str]:
        """The modules plugins ask sweep workers to import once, before members start."""
        return self._union("specloop_add_preload_modules")

    def settings_schemas(self) -> dict[str, type]:
        """``{plugin name: dataclass}`` of the ``plugins.<name>`` settings plugins declare."""
        impls = self.hook.specloop_settings_schema.get_hookimpls()
        return {i.plugin_name: schema for i in impls if (schema := i.function()) is not None}

    def plugin_rows(self) -> list[dict]:
        """One row per plugin (loaded and broken) for ``specloop plugins``."""
        rows = [{"name": name, "distribution": self.distributions.get(name, "-"),
                 "status": "loaded"} for name, plugin in self.list_name_plugin()
                if plugin is not None]
        rows += [{"name": bp.name, "distribution": bp.distribution,
                  "status": f"failed to import: {bp.error}"} for bp in self.broken]
        return rows


def _split_env(name: str) -> list[str]:
    return [p.strip() for p in os.environ.get(name, "").split(",") if p.strip()]


def make_plugin_manager(*, load_entrypoints: bool = True, disable: Iterable[str] = (),
                        plugins: Iterable[object] = ()) -> PluginManager:
    """A fresh manager with the ``specloop.plugins`` entry points (less ``disable`` and
    ``SPECLOOP_DISABLE_PLUGINS``; only ``SPECLOOP_PLUGINS`` if set) and ``plugins`` (modules
    or instances). Plugins that fail to import are warned about and listed in ``pm.broken``."""
    pm = PluginManager()
    blocked = set(disable) | set(_split_env("SPECLOOP_DISABLE_PLUGINS"))
    allow = set(_split_env("SPECLOOP_PLUGINS"))
    for ep in entry_points(group=ENTRY_POINT_GROUP) if load_entrypoints else ():
        if ep.name in blocked or (allow and ep.name not in allow):
            pm.set_blocked(ep.name)
            continue
        if pm.is_blocked(ep.name) or pm.get_plugin(ep.name) is not None:
            continue
        dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist else "(unknown distribution)"
        try:
            module = ep.load()
        except Exception as exc:  # a broken plugin warns, never crashes the host
            error = f"{type(exc).__name__}: {exc}"
            pm.broken.append(BrokenPlugin(ep.name, dist, error))
            warnings.warn(f"plugin {ep.name!r} ({dist}) failed to import and was skipped ({error})"
                          "; it may be incompatible with this specloop or buggy: upgrade it, or "
                          f"disable it with SPECLOOP_DISABLE_PLUGINS={ep.name}",
                          SpecloopWarning, stacklevel=2)
            continue
        pm.register(module, name=ep.name)
        pm.distributions[ep.name] = dist
    for plugin in plugins:
        if not pm.is_registered(plugin):  # an installed plugin may be passed explicitly too
            pm.register(plugin, name=getattr(plugin, "__name__", None) or type(plugin).__name__)
    if os.environ.get("SPECLOOP_TRACE_PLUGINS"):
        pm.trace.root.setwriter(lambda msg: print(msg, end="", flush=True))
        pm.enable_tracing()
    return pm

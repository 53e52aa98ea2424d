"""The plugin manager: built fresh for every run, never a module global."""

from __future__ import annotations

import os
import warnings
from typing import Iterable

import pluggy

from . import hookspecs
from ._dists import describe, entry_points
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
        if not name.startswith("specloop_"):
            return None
        return super().parse_hookimpl_opts(plugin, name)

    def component_table(self) -> ComponentTable:
        """Collect every plugin's components, attributed to plugin and distribution."""
        specs: list[ComponentSpec] = []
        for impl in self.hook.specloop_register_components.get_hookimpls():
            name = impl.plugin_name
            dist = self.distributions.get(name, "(registered in-process)")
            try:
                provided = impl.function() or []
            except Exception as exc:
                raise PluginError(f"plugin {name!r} failed while registering its components: "
                                  f"{type(exc).__name__}: {exc}", plugin=name, distribution=dist,
                                  fix=f"upgrade it, or disable it with SPECLOOP_DISABLE_PLUGINS={name}"
                                  ) from exc
            for spec in provided:
                if not isinstance(spec, ComponentSpec):
                    hint = (" (a class was returned: return ComponentSpec(...) instances)"
                            if isinstance(spec, type) else "")
                    raise PluginError(f"plugin {name!r} registered {spec!r}, not a ComponentSpec"
                                      + hint, plugin=name, distribution=dist)
                specs.append(_attributed(spec, name, dist))
        return ComponentTable(specs, self.broken)

    def conf_dirs(self) -> list[str]:
        """Return the config directories the plugins ship, in registration order."""
        dirs: list[str] = []
        for group in reversed(self.hook.specloop_add_conf_dirs()):
            dirs.extend(d for d in group if os.path.isdir(d) and d not in dirs)
        return dirs

    def allowed_targets(self) -> list[str]:
        """Return the estimator allowlist: ``sklearn.`` plus what plugins declare."""
        out = ["sklearn."]
        for group in self.hook.specloop_add_allowed_targets():
            out.extend(p for p in group if p not in out)
        return out

    def plugin_rows(self) -> list[dict]:
        """One row per plugin (loaded and broken) for ``specloop plugins``."""
        rows = []
        for name, plugin in self.list_name_plugin():
            if plugin is None:
                continue
            rows.append({"name": name, "distribution": self.distributions.get(name, "-"),
                         "status": "loaded"})
        for bp in self.broken:
            rows.append({"name": bp.name, "distribution": bp.distribution,
                         "status": f"failed to import: {bp.error}"})
        return rows


def _attributed(spec: ComponentSpec, plugin: str, dist: str) -> ComponentSpec:
    from dataclasses import replace

    return replace(spec, plugin=plugin, distribution=dist)


def _split_env(name: str) -> list[str]:
    return [p.strip() for p in os.environ.get(name, "").split(",") if p.strip()]


def make_plugin_manager(*, load_entrypoints: bool = True, disable: Iterable[str] = (),
                        plugins: Iterable[object] = ()) -> PluginManager:
    """Build a fresh plugin manager.

    Args:
        load_entrypoints: Load plugins from the ``specloop.plugins`` entry-point group.
        disable: Entry-point names to block before they are imported (also read from
            ``SPECLOOP_DISABLE_PLUGINS``); ``SPECLOOP_PLUGINS`` is an allowlist.
        plugins: Plugin objects (modules or instances) to register explicitly.

    Returns:
        The manager. Plugins that failed to import are in ``pm.broken`` and were warned about.
    """
    pm = PluginManager()
    blocked = set(disable) | set(_split_env("SPECLOOP_DISABLE_PLUGINS"))
    allow = set(_split_env("SPECLOOP_PLUGINS"))
    if load_entrypoints:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in blocked or (allow and ep.name not in allow):
                pm.set_blocked(ep.name)
                continue
            if pm.is_blocked(ep.name) or pm.get_plugin(ep.name) is not None:
                continue
            dist = describe(ep.dist) if ep.dist else "(unknown distribution)"
            try:
                module = ep.load()
            except Exception as exc:  # a broken plugin warns, never crashes the host
                pm.broken.append(BrokenPlugin(ep.name, dist, f"{type(exc).__name__}: {exc}"))
                warnings.warn(
                    f"plugin {ep.name!r} ({dist}) failed to import and was skipped "
                    f"({type(exc).__name__}: {exc}); it may be incompatible with this specloop "
                    f"or buggy: upgrade it, or disable it with SPECLOOP_DISABLE_PLUGINS={ep.name}",
                    SpecloopWarning, stacklevel=2)
                continue
            pm.register(module, name=ep.name)
            pm.distributions[ep.name] = dist
    for plugin in plugins:
        if pm.is_registered(plugin):  # e.g. an installed plugin also passed explicitly
            continue
        name = getattr(plugin, "__name__", None) or type(plugin).__name__
        pm.register(plugin, name=name)
    if os.environ.get("SPECLOOP_TRACE_PLUGINS"):
        pm.trace.root.setwriter(lambda msg: print(msg, end="", flush=True))
        pm.enable_tracing()
    return pm


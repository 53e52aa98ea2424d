"""Plugins: the manager that loads them, built fresh for every run (never a module global),
and the one error boundary every call into their code goes through."""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import replace
from importlib.metadata import entry_points
from typing import Any, Callable, Iterable, NoReturn

import pluggy

from . import hookspecs
from .components import BrokenPlugin, ComponentSpec, ComponentTable
from .errors import PluginError, SpecloopError, StageError

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
        """``(plugin, returned list)`` per implementation of ``hook``; a raise names the plugin."""
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


# -- the error boundary: calls into a component go through Guarded (Resolved.build wraps what it
# builds), hooks through call_hook. A plugin's exception becomes a StageError (component) or
# PluginError (hook) naming component, distribution, version and run, chained from it for
# SPECLOOP_FULL_ERROR=1; a ModuleNotFoundError carries the install hint. specloop's own errors
# (a component's ConfigError blames the spec), KeyboardInterrupt and SystemExit pass unchanged.
def _passes(exc: BaseException) -> bool:  # ours, or not an Exception (KeyboardInterrupt …)
    return isinstance(exc, SpecloopError) or not isinstance(exc, Exception)


def _reraise(exc: BaseException, spec: Any, what: str, run_id: str | None) -> NoReturn:
    """Raise what the boundary makes of ``exc``, raised by component ``spec`` in ``what``."""
    if _passes(exc):
        raise exc
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        raise PluginError(f"component {spec.name} needs the module {exc.name!r}, which is not "
                          f"installed ({what})", plugin=spec.plugin,
                          distribution=spec.distribution,
                          fix=spec.install_hint or f"pip install {exc.name.split('.')[0]}") from exc
    raise StageError(f"{spec.name} failed in {what}", component=spec.name,
                     distribution=spec.distribution, version=spec.version, run_id=run_id) from exc


def guarded_call(spec: Any, what: str, fn: Callable[..., Any], *args: Any,
                 run_id: str | None = None, **kwargs: Any) -> Any:
    """Call ``fn`` (plugin code of component ``spec``) inside the boundary."""
    try:
        return fn(*args, **kwargs)
    except BaseException as exc:
        _reraise(exc, spec, what, run_id)


class Guarded:
    """A built component whose every method call goes through the boundary; attribute reads
    pass through, and :attr:`inner` is the plain object, for code that must hand it on."""

    __slots__ = ("inner", "spec", "run_id")

    def __init__(self, inner: Any, spec: Any, run_id: str | None = None) -> None:
        object.__setattr__(self, "inner", inner)
        object.__setattr__(self, "spec", spec)
        object.__setattr__(self, "run_id", run_id)

    def __getattr__(self, name: str) -> Any:
        try:  # an AttributeError stays one: getattr(component, "optional_method", None)
            value = getattr(self.inner, name)
        except AttributeError:
            raise
        except BaseException as exc:  # a property of the plugin's raised
            _reraise(exc, self.spec, name, self.run_id)
        if not callable(value) or isinstance(value, type):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            return guarded_call(self.spec, f"{name}()", value, *args, run_id=self.run_id,
                                **kwargs)

        return call

    def __reduce__(self) -> tuple:  # sweep launchers pickle what holds components
        return (Guarded, (self.inner, self.spec, self.run_id))

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.inner, name, value)

    def __repr__(self) -> str:
        return f"Guarded({self.inner!r})"


def _culprit(pm: Any, tb: Any) -> tuple[str, str]:
    """The plugin whose code raised: the innermost traceback frame in a plugin's module."""
    modules = {getattr(plugin, "__name__", type(plugin).__module__): name
               for name, plugin in pm.list_name_plugin() if plugin is not None}
    found = "?"
    while tb is not None:
        mod = tb.tb_frame.f_globals.get("__name__", "")
        for prefix, name in modules.items():
            if mod == prefix or mod.startswith(prefix + "."):
                found = name
        tb = tb.tb_next
    return found, pm.distribution(found)


def call_hook(pm: Any, hook: str, **kwargs: Any) -> list:
    """Call lifecycle hook ``hook``; a hook implementation that raises is a PluginError."""
    try:
        return getattr(pm.hook, hook)(**kwargs)
    except BaseException as exc:
        if _passes(exc):
            raise
        plugin, dist = _culprit(pm, sys.exc_info()[2])
        raise PluginError(f"plugin {plugin!r} failed in the hook {hook}", plugin=plugin,
                          distribution=dist,
                          fix=f"upgrade the plugin, or disable it with "
                              f"SPECLOOP_DISABLE_PLUGINS={plugin}") from exc

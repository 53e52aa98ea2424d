"""The one error boundary between the engine and plugin code: calls into a component go
through :class:`Guarded` (``Resolved.build`` wraps what it builds), hooks through
:func:`call_hook`. A plugin's exception becomes a StageError (component) or PluginError (hook)
naming component, distribution, version and run, chained ``from`` it for
``SPECLOOP_FULL_ERROR=1``; a ``ModuleNotFoundError`` carries the install hint. specloop's own
errors (a component's ConfigError blames the spec), ``KeyboardInterrupt`` and ``SystemExit``
pass unchanged."""

from __future__ import annotations

import sys
from typing import Any, Callable, NoReturn

from .errors import PluginError, SpecloopError, StageError


def _passes(exc: BaseException) -> bool:  # ours, or not an Exception (KeyboardInterrupt …)
    return isinstance(exc, SpecloopError) or not isinstance(exc, Exception)


def failure(exc: BaseException, spec: Any, what: str, run_id: str | None) -> BaseException:
    """The error to raise for ``exc`` raised inside component ``spec`` while doing ``what``."""
    if _passes(exc):
        return exc
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        return PluginError(f"component {spec.name} needs the module {exc.name!r}, which is not "
                           f"installed ({what})", plugin=spec.plugin,
                           distribution=spec.distribution,
                           fix=spec.install_hint or f"pip install {exc.name.split('.')[0]}")
    return StageError(f"{spec.name} failed in {what}", component=spec.name,
                      distribution=spec.distribution, version=spec.version, run_id=run_id)


def _reraise(exc: BaseException, spec: Any, what: str, run_id: str | None) -> NoReturn:
    err = failure(exc, spec, what, run_id)
    if err is exc:
        raise exc
    raise err from exc


def guarded_call(spec: Any, what: str, fn: Callable[..., Any], *args: Any,
                 run_id: str | None = None, **kwargs: Any) -> Any:
    """Call ``fn`` (plugin code of component ``spec``) inside the boundary."""
    try:
        return fn(*args, **kwargs)
    except BaseException as exc:
        _reraise(exc, spec, what, run_id)


class Guarded:
    """A built component whose every method call goes through the boundary.

    Attribute reads pass through (``component.primary``); calling a method wraps it. The
    wrapped object is :attr:`inner`, for code that must hand the plain object on.
    """

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

"""The component table: which ``(stage, kind)`` pairs the installed plugins provide.

A stage node in the spec names its component with ``kind:``. The table maps that pair to a
:class:`ComponentSpec`, whose ``factory`` is a lazy dotted path (fsspec's
``known_implementations`` pattern), so listing what is available never imports a heavy
library. The table is built fresh for every run from that run's plugin manager.
"""

from __future__ import annotations

import difflib
import enum
import importlib
import importlib.util
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping

from .errors import PluginError, UnknownKindError

__all__ = ["Stage", "ComponentSpec", "ComponentTable", "BrokenPlugin"]


class Stage(str, enum.Enum):
    """The stage kinds a component can plug into; fixed by the engine."""

    DATA = "data"
    MODEL = "model"
    METRICS = "metrics"
    GATE = "gate"
    DEPLOY = "deploy"
    MONITOR = "monitor"
    RETRAIN = "retrain"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class ComponentSpec:
    """What a plugin registers for one ``(stage, kind)``.

    Args:
        stage: The stage the component plugs into.
        kind: The name a spec selects it by (``kind: csv``).
        factory: ``"module:Class"``; imported only when the component is used.
        schema: A dataclass that declares the component's configuration.
        version: Bumped by the author when outputs change for the same config; part of
            every cache key the component takes part in.
        requires: Module names that must be importable to use the component.
        install_hint: What to run when ``requires`` are missing.
        description: One line for ``specloop plugins``.
        nested: Fields of the schema that hold nested component nodes, and their stage
            (``{"policies": Stage.RETRAIN}``); the engine validates those too.
        plugin: Filled in by the table: the plugin's entry-point name.
        distribution: Filled in by the table: ``name version`` of the distribution.
    """

    stage: Stage
    kind: str
    factory: str
    schema: type
    version: str = "1"
    requires: tuple[str, ...] = ()
    install_hint: str | None = None
    description: str = ""
    nested: Mapping[str, Stage] = field(default_factory=dict)
    plugin: str | None = None
    distribution: str | None = None

    @property
    def name(self) -> str:
        """``stage/kind``, as shown in tables and errors."""
        return f"{self.stage}/{self.kind}"

    def missing_requirements(self) -> list[str]:
        """Return the ``requires`` modules that cannot be imported."""
        return [m for m in self.requires if importlib.util.find_spec(m) is None]

    def load_factory(self) -> Any:
        """Import and return the factory (the component class)."""
        missing = self.missing_requirements()
        if missing:
            raise PluginError(
                f"component {self.name} needs {', '.join(missing)}, which is not installed",
                plugin=self.plugin, distribution=self.distribution,
                fix=self.install_hint or f"pip install {' '.join(missing)}")
        module, _, attr = self.factory.partition(":")
        try:
            obj = importlib.import_module(module)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except Exception as exc:
            raise PluginError(
                f"cannot load the factory {self.factory!r} of component {self.name}: "
                f"{type(exc).__name__}: {exc}",
                plugin=self.plugin, distribution=self.distribution,
                fix="upgrade the plugin, or disable it with SPECLOOP_DISABLE_PLUGINS="
                    f"{self.plugin}") from exc
        return obj


@dataclass(frozen=True)
class BrokenPlugin:
    """A plugin whose entry point failed to import."""

    name: str
    distribution: str
    error: str


class ComponentTable:
    """Read-only lookup of ``(stage, kind) -> ComponentSpec`` for one run.

    Args:
        specs: The registered specs (already attributed to their plugin).
        broken: Plugins that failed to import, so an unknown kind can name them.

    Raises:
        PluginError: if two distributions register the same ``(stage, kind)``.
    """

    def __init__(self, specs: list[ComponentSpec], broken: list[BrokenPlugin] = ()) -> None:
        table: dict[tuple[str, str], ComponentSpec] = {}
        for spec in specs:
            key = (str(spec.stage), spec.kind)
            if key in table:
                other = table[key]
                raise PluginError(
                    f"component {spec.name} is registered twice: by {other.distribution} (plugin "
                    f"{other.plugin!r}) and by {spec.distribution} (plugin {spec.plugin!r})",
                    plugin=spec.plugin, distribution=spec.distribution,
                    fix=f"disable one of them with SPECLOOP_DISABLE_PLUGINS={spec.plugin}")
            table[key] = spec
        self._table = MappingProxyType(table)
        self.broken = tuple(broken)

    @property
    def specs(self) -> Mapping[tuple[str, str], ComponentSpec]:
        """A read-only view of the table."""
        return self._table

    def kinds(self, stage: Stage | str) -> list[str]:
        """Return the kinds available for ``stage``, sorted."""
        return sorted(kind for (st, kind) in self._table if st == str(stage))

    def get(self, stage: Stage | str, kind: str, *, key: str | None = None,
            where: str | Callable[[], str] | None = None) -> ComponentSpec:
        """Return the spec for ``(stage, kind)``.

        Args:
            key: The spec key that named the kind (for the error), e.g. ``model.kind``.
            where: Where that key was set, or a callable returning it (for the error).

        Raises:
            UnknownKindError: with the available kinds, a "did you mean" and the plugins
                that failed to import (one of them may provide it).
        """
        spec = self._table.get((str(stage), kind))
        if spec is not None:
            return spec
        key = key or f"{stage}.kind"
        available = self.kinds(stage)
        close = difflib.get_close_matches(str(kind), available, n=1)
        extra = [("available", ", ".join(available) or "(none installed)"),
                 *(("did you mean", c) for c in close),
                 *(("note", f"plugin {bp.name!r} ({bp.distribution}) failed to import and may "
                            f"provide it: {bp.error}") for bp in self.broken)]
        raise UnknownKindError(
            f"unknown {stage} kind {kind!r}", key=key, file=where() if callable(where) else where,
            expected=f"a {stage} kind", extra=extra,
            fix=f"set {key} to {close[0]!r}" if close else
            f"use one of the available kinds, or install the plugin that provides {kind!r}")

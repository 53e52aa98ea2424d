"""A stand-in for the node context a component receives as ``ctx``, without a composed spec."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

WHERE = "conformance suite"


class _Provenance:
    """Answers ``where(key)`` for every key: the suite set them all."""

    def where(self, key: str) -> str:
        """Where ``key`` was set.

        Args:
            key: A dotted spec key.

        Returns:
            ``"conformance suite"``.
        """
        return WHERE


@dataclass
class StubContext:
    """Stands in for the :class:`specloop.NodeContext` a component receives as ``ctx``.

    It has what a node context has: ``key``, ``where(subkey)``, ``settings(plugin)``,
    ``say(text)``, ``project_dir``, ``seed``, ``run_id``, ``model_name``, ``spec`` (with
    ``spec.provenance.where``, ``spec.project``, ``spec.overrides``, ``spec.settings`` and
    ``spec.components``), and a real :class:`~specloop._registry.Registry` and
    :class:`~specloop._store.ArtifactStore` in the project folder, laid out as a project's
    default store and opened on first use. ``run`` is the stub itself, which plays the run
    context too. Call :meth:`close` (or use it in a ``with`` block) when done.

    Args:
        project_dir: The project folder.
        key: The dotted spec key of the component's node (``data``, ``loop.incoming`` …).
        seed: The project seed.
        run_id: The run's id.
        model_name: The model's registry name (``project.name``).
        plugin_settings: ``{plugin: validated settings}`` that ``settings(plugin)`` returns.
        description: ``project.description`` (the model card's line).
    """

    project_dir: Path
    key: str = "data"
    seed: int = 0
    run_id: str = "conformance"
    model_name: str = "conformance"
    plugin_settings: dict[str, Any] = field(default_factory=dict)
    description: str = "A model built by the conformance suite."
    messages: list[str] = field(default_factory=list)
    _spec: Any = field(default=None, init=False, repr=False)
    _registry: Any = field(default=None, init=False, repr=False)
    _store: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.project_dir = Path(self.project_dir)
        self._spec = SimpleNamespace(
            project_dir=self.project_dir, raw={}, overrides=[], components={},
            settings=self.plugin_settings, provenance=_Provenance(),
            project=SimpleNamespace(name=self.model_name, seed=self.seed,
                                    description=self.description, threads=None))

    @property
    def run(self) -> StubContext:
        """The run context: the stub plays it too (``ctx.run.store``, ``ctx.run.say`` …)."""
        return self

    @property
    def spec(self) -> Any:
        """The spec's parts components read: ``provenance``, ``project``, ``overrides``,
        ``settings``, ``components`` (stage name to resolved node; empty unless filled)."""
        return self._spec

    @property
    def registry(self) -> Any:
        """The model registry, ``.specloop/registry.db`` (opened on first use)."""
        if self._registry is None:
            from .._context import default_registry
            from .._registry import open_registry
            from .._store import ArtifactStore

            where = ArtifactStore.locate(".specloop/store", self.project_dir)
            self._registry = open_registry(None, default_registry(where, self.project_dir),
                                           self.project_dir, store_root=where[1])
        return self._registry

    @property
    def store(self) -> Any:
        """The artifact store, ``.specloop/store``, indexed by :attr:`registry`."""
        if self._store is None:
            from .._store import ArtifactStore

            self._store = ArtifactStore(".specloop/store", self.project_dir,
                                        index=self.registry.index)
        return self._store

    def where(self, subkey: str = "") -> str:
        """Where ``<key>.<subkey>`` (or the node itself) was set.

        Args:
            subkey: A key under the node (``path``, ``min.roc_auc`` …); empty for the node.

        Returns:
            ``"conformance suite"``.
        """
        return self.spec.provenance.where(f"{self.key}.{subkey}" if subkey else self.key)

    def settings(self, plugin: str) -> Any:
        """The validated ``plugins.<plugin>`` settings.

        Args:
            plugin: The plugin's entry-point name.

        Returns:
            Its settings, or ``None`` when it declares none.
        """
        return self.plugin_settings.get(plugin)

    def say(self, text: str) -> None:
        """Record a progress line in :attr:`messages`.

        Args:
            text: The line.
        """
        self.messages.append(text)

    def close(self) -> None:
        """Release the registry connection (a later use opens it again)."""
        if self._registry is not None:
            self._registry.close()
            self._registry = self._store = None

    def __enter__(self) -> StubContext:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

"""The run context (what every stage and hook of one run can reach) and the node context
(what one component sees). No globals."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

import yaml

from ._config import Composed, Provenance, compose, conf_search_dirs, from_hydra_config
from ._manager import PluginManager, make_plugin_manager
from ._registry import Registry, open_registry
from ._spec import Spec, validate
from ._store import ArtifactStore
from .components import ComponentTable
from .errors import RegistryError


def new_run_id() -> str:
    """A sortable, unique run id: ``YYYYmmdd-HHMMSS-<ms><hex>``."""
    now = datetime.now(timezone.utc)
    return f"{now:%Y%m%d-%H%M%S}-{now.microsecond // 1000:03d}{os.urandom(2).hex()}"


@dataclass
class RunContext:
    """One run: its validated spec, plugin manager, component table, store and registry.

    Plugin commands get one from :func:`specloop.make_context`; components get a
    :class:`NodeContext` view of it. Call :meth:`close` when done.

    Attributes:
        spec: The validated spec (``spec.raw`` is the composed config, ``spec.provenance``
            names where each key was set).
        pm: The run's plugin manager.
        table: The run's component table.
        run_id: This run's id (manifests live under ``runs/<run_id>/``).
        echo: Where progress lines go (a callable taking a string); default stderr.
    """

    spec: Spec
    pm: PluginManager
    table: ComponentTable
    run_id: str = field(default_factory=new_run_id)
    started: float = field(default_factory=time.time)
    echo: Callable[[str], Any] | None = None
    _store: ArtifactStore | None = None
    _registry: Registry | None = None
    _built: dict[str, Any] = field(default_factory=dict, repr=False)
    pending_hooks: list | None = field(default=None, repr=False)  # see _flow.committed

    project_dir = property(lambda self: self.spec.project_dir, doc="The project folder.")
    model_name = property(lambda self: self.spec.project.name,
                          doc="The registry name of the project's model (``project.name``).")
    seed = property(lambda self: self.spec.project.seed, doc="The project seed.")

    @property
    def registry(self) -> Registry:
        """The model registry (opened on first use; it also holds the artifact index)."""
        if self._registry is None:
            where = ArtifactStore.locate(self.spec.store.url, self.project_dir)
            self._registry = open_registry(self.spec.store.registry,
                                           default_registry(where, self.project_dir),
                                           self.project_dir, store_root=where[1])
        return self._registry

    @property
    def store(self) -> ArtifactStore:
        """The artifact store: reads are trusted only as far as the registry's index says."""
        if self._store is None:
            self._store = ArtifactStore(self.spec.store.url, self.project_dir,
                                        self.spec.store.storage_options,
                                        index=self.registry.index)
        return self._store

    def component(self, name: str) -> Any:
        """The built component of stage node ``name`` (``data``, ``model`` …), built once per
        run behind the error boundary; ``None`` when the stage is off."""
        if name not in self._built:
            resolved = self.spec.components.get(name)
            self._built[name] = resolved.build(self.run_id) if resolved is not None else None
        return self._built[name]

    def settings(self, plugin: str) -> Any:
        """The validated ``plugins.<plugin>`` settings (``None`` if the plugin declares none)."""
        return self.spec.settings.get(plugin)

    def node(self, key: str) -> "NodeContext":
        """The view of this context a component at spec key ``key`` gets."""
        return NodeContext(self, key)

    def say(self, text: str) -> None:
        """Print a progress line (to the CLI's output, or stderr when embedded)."""
        (self.echo or (lambda t: print(t, file=sys.stderr)))(text)

    def close(self) -> None:
        """Release the registry connection (the store holds no open resources)."""
        if self._registry is not None:
            self._registry.close()
            self._registry = None
            self._store = None


@dataclass(frozen=True)
class NodeContext:
    """What a component receives as ``ctx``: the run context seen from its spec node.

    Attributes:
        run: The :class:`RunContext`.
        key: The dotted spec key of the component's node (``data``, ``loop.incoming``,
            ``deploy.input``, ``retrain.policies.0`` …); errors about its config name
            ``f"{ctx.key}.<field>"`` and ``ctx.where(...)`` says which file set it.
    """

    run: RunContext
    key: str

    spec = property(lambda self: self.run.spec, doc="The validated spec.")
    store = property(lambda self: self.run.store, doc="The artifact store.")
    registry = property(lambda self: self.run.registry, doc="The model registry.")
    project_dir = property(lambda self: self.run.project_dir, doc="The project folder.")
    model_name = property(lambda self: self.run.model_name, doc="The model's registry name.")
    seed = property(lambda self: self.run.seed, doc="The project seed.")
    run_id = property(lambda self: self.run.run_id, doc="The run's id.")

    def where(self, subkey: str = "") -> str:
        """Where ``<key>.<subkey>`` (or the node itself) was set: a file or an override."""
        return self.run.spec.provenance.where(f"{self.key}.{subkey}" if subkey else self.key)

    def settings(self, plugin: str) -> Any:
        """The validated ``plugins.<plugin>`` settings."""
        return self.run.settings(plugin)

    def say(self, text: str) -> None:
        """Print a progress line."""
        self.run.say(text)


def _disabled_in_yaml(project_dir: Path, overrides: list[str]) -> list[str]:
    """``plugins.disable`` read before any plugin is imported (YAML, then overrides)."""
    names: list[str] = []
    try:
        text = (project_dir / "conf" / "config.yaml").read_text()
        if "disable" in text:  # parse the file only when it can matter
            names = list(((yaml.safe_load(text) or {}).get("plugins") or {}).get("disable") or [])
    except Exception:  # noqa: BLE001 - a malformed file is reported by composition
        pass
    for ov in overrides:
        if ov.lstrip("+").startswith("plugins.disable="):
            names = [v.strip() for v in ov.split("=", 1)[1].strip("[]").split(",") if v.strip()]
    return names


def make_context(project_dir: str | Path, overrides: Iterable[str] = (), *,
                 pm: PluginManager | None = None, plugins: Iterable[object] = (),
                 hydra_cfg: Any = None, recorded: dict | None = None,
                 echo: Any = None) -> RunContext:
    """Compose and validate a project's spec (a ConfigError for any problem) into a fresh run
    context: the one path every command, multirun member, reproduction and the testing kit
    takes. ``pm``: by default a fresh manager with the entry points and ``plugins``;
    ``hydra_cfg``: what Hydra composed for a multirun member; ``recorded``: a run manifest
    whose resolved config and choices stand for the composition."""
    project_dir = Path(project_dir).resolve()
    overrides = list(overrides)
    if pm is None:
        pm = make_plugin_manager(disable=_disabled_in_yaml(project_dir, overrides),
                                 plugins=plugins)
    table = pm.component_table()
    if recorded is not None:
        search = [project_dir / "conf", *map(Path, conf_search_dirs(pm.conf_dirs()))]
        prov = Provenance(project_dir, search, dict(recorded.get("choices") or {}), overrides)
        composed = Composed(json.loads(json.dumps(recorded["config"])), prov)  # a private copy
    elif hydra_cfg is None:
        composed = compose(project_dir, overrides, pm.conf_dirs())
    else:
        from hydra.core.hydra_config import HydraConfig  # ~0.2 s; only a multirun member

        hc = HydraConfig.get()
        composed = from_hydra_config(hydra_cfg, project_dir, conf_search_dirs(pm.conf_dirs()),
                                     hc, list(hc.overrides.task))
    inactive = {name for name, plugin in pm.list_name_plugin() if plugin is None}
    spec = validate(composed, table, pm.allowed_targets(), pm.settings_schemas(),
                    inactive | {b.name for b in pm.broken})
    return RunContext(spec=spec, pm=pm, table=table, echo=echo)


def default_registry(where: tuple[bool, str], project_dir: Path) -> Path:
    """The registry file of a store when ``store.registry`` is not set: in the project's
    ``.specloop/``, never inside the store (whoever can write the store must not rewrite the
    record of what it should hold); ``registry.db`` for the default store, else a file named
    from the store's location, so two stores never share model versions."""
    local, root = where
    if local and Path(root) == (project_dir / ".specloop" / "store").resolve():
        path = project_dir / ".specloop" / "registry.db"
        legacy = Path(root) / "registry.db"
        if legacy.is_file() and not path.exists():  # specloop 0.1 kept it inside the store
            raise RegistryError(f"the registry {legacy} lies inside the artifact store, where "
                                "specloop 0.1 kept it", fix=f"move it out of the store: mv "
                                f"{legacy} {path} (it is migrated when next opened)")
        return path
    tag = hashlib.sha256(root.encode()).hexdigest()[:12]
    return project_dir / ".specloop" / f"registry-{tag}.db"


def thread_limits(threads: int | None) -> Any:
    """Limit OpenMP/BLAS threads while stages run (a no-op when ``threads`` is ``None``)."""
    if threads is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits  # imports numpy's BLAS probe; only when set

    return threadpool_limits(limits=threads)

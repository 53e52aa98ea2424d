"""Validating a component's node and its plugin's settings through the engine's own code."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

from ..components import Stage
from . import make_test_plugin_manager


def _provenance() -> Any:
    from .._config import Provenance

    return Provenance(project_dir=Path("<conformance>"), conf_dirs=[])


def resolve_config(stage: Stage | str, kind: str, config: dict, *, pm: Any,
                   key: str | None = None) -> Any:
    """Validate a component node exactly as the engine validates a spec's stage node.

    Args:
        stage: The component's stage.
        kind: The component's kind.
        config: The node without ``kind``.
        pm: The plugin manager that provides the component.
        key: The node's key in error messages (default: the stage name).

    Returns:
        The resolved node: ``.spec``, the typed ``.config`` and ``.build()``, which returns
        the component behind the engine's error boundary (``.inner`` is the plain object).

    Raises:
        ConfigError: naming the key of the first problem (``UnknownKindError`` for a kind
            no registered plugin provides).
    """
    from .._spec import ValidationContext, resolve_node

    key = key or str(stage)
    prov = _provenance()
    vctx = ValidationContext(key, prov.where, pm.allowed_targets(), False)
    return resolve_node(Stage(stage), {**copy.deepcopy(config), "kind": kind}, key,
                        pm.component_table(), prov, vctx, optional=False)


@functools.lru_cache(maxsize=None)
def _entry_point(module: str) -> tuple[str, str] | None:
    from importlib.metadata import entry_points

    from .._manager import ENTRY_POINT_GROUP

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.value.split(":")[0] == module:
            dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist else "(unknown distribution)"
            return ep.name, dist
    return None


def plugin_manager_for(plugin: Any) -> Any:
    """A fresh plugin manager holding only ``plugin``, registered under the name the engine
    gives it: its entry-point name when it is installed (the ``plugins.<name>`` key of its
    settings), else its module or class name.

    Args:
        plugin: The plugin module or object.

    Returns:
        The plugin manager.
    """
    pm = make_test_plugin_manager()
    installed = _entry_point(plugin.__name__) if isinstance(
        getattr(plugin, "__name__", None), str) else None
    if installed is None:
        pm.register(plugin, name=getattr(plugin, "__name__", None) or type(plugin).__name__)
    else:
        pm.register(plugin, name=installed[0])
        pm.distributions[installed[0]] = installed[1]
    return pm


def resolve_settings(pm: Any, plugin: Any, node: dict | None) -> dict[str, Any]:
    """The validated settings of every plugin ``pm`` holds, as ``ctx.settings`` gives them.

    Args:
        pm: A manager from :func:`plugin_manager_for`.
        plugin: The plugin under test.
        node: Its ``plugins.<name>`` node (``None`` or empty: the declared defaults).

    Returns:
        ``{plugin name: settings}``.

    Raises:
        ConfigError: the node is invalid, or the plugin declares no settings.
    """
    from .._spec import _settings

    name = pm.get_name(plugin)
    return _settings({name: copy.deepcopy(node)} if node else {}, pm.settings_schemas(),
                     _provenance(), set())

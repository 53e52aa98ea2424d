"""From a project folder and overrides to a validated run context: the one path every
command (``run``, ``plan``, ``validate``, ``loop``, multirun jobs, the testing kit) takes."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from ._config import compose, from_hydra_config
from ._context import RunContext
from ._manager import PluginManager, make_plugin_manager
from ._spec import Spec, validate


def _disabled_in_yaml(project_dir: Path, overrides: list[str]) -> list[str]:
    """``plugins.disable`` read before any plugin is imported (YAML, then overrides).

    The YAML parser is loaded only when the file mentions ``disable`` at all.
    """
    names: list[str] = []
    try:
        text = (project_dir / "conf" / "config.yaml").read_text()
        raw: dict = {}
        if "disable" in text:
            import yaml

            raw = yaml.safe_load(text) or {}
        names = list(((raw.get("plugins") or {}).get("disable")) or [])
    except Exception:  # a malformed file is reported by composition, with its line
        pass
    for ov in overrides:
        if ov.lstrip("+").startswith("plugins.disable="):
            value = ov.split("=", 1)[1].strip("[]")
            names = [v.strip() for v in value.split(",") if v.strip()]
    return names


def make_context(project_dir: str | Path, overrides: Iterable[str] = (), *,
                 pm: PluginManager | None = None, plugins: Iterable[object] = (),
                 hydra_cfg: Any = None, echo: Any = None) -> RunContext:
    """Compose and validate a project's spec and return a fresh run context.

    Args:
        project_dir: The project folder.
        overrides: Hydra overrides.
        pm: A plugin manager to use (default: a fresh one loading entry points).
        plugins: Extra plugin objects to register on a fresh manager.
        hydra_cfg: A config already composed by Hydra (inside a multirun job).
        echo: Where progress lines go (a callable taking a string).

    Returns:
        The run context.

    Raises:
        ConfigError: for any problem with the spec.
    """
    project_dir = Path(project_dir).resolve()
    overrides = list(overrides)
    if pm is None:
        pm = make_plugin_manager(disable=_disabled_in_yaml(project_dir, overrides),
                                 plugins=plugins)
    table = pm.component_table()
    if hydra_cfg is None:
        composed = compose(project_dir, overrides, pm.conf_dirs())
    else:
        from hydra.core.hydra_config import HydraConfig

        from ._config import conf_search_dirs

        hc = HydraConfig.get()
        choices = {k: v for k, v in hc.runtime.choices.items() if not k.startswith("hydra/")}
        composed = from_hydra_config(hydra_cfg, project_dir,
                                     conf_search_dirs(project_dir, pm.conf_dirs()), choices,
                                     list(hc.overrides.task))
    inactive = {name for name, plugin in pm.list_name_plugin() if plugin is None}
    spec: Spec = validate(composed, table, pm.allowed_targets(), pm.settings_schemas(),
                          inactive | {b.name for b in pm.broken})
    return RunContext(spec=spec, pm=pm, table=table, echo=echo)

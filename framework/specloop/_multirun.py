"""``specloop run -m`` and ``specloop loop --backtest``: real Hydra multiruns over the spec.

Hydra's own ``hydra.main`` drives the sweep, so every sweeper (basic, Optuna) and launcher
(joblib, submitit, Ray) plugin works unchanged. The default launcher is specloop's own
(``hydra_plugins.specloop_launcher``): the shared stages once, then each member in a worker
process on this machine; ``hydra/launcher=basic`` runs them one after another in this one.

Each member builds its own plugin manager and run context from the config Hydra composed for
it (nothing global), and writes its outcome to ``result.json`` in its own job folder
(``<sweep dir>/<job number>/``). The parent reads those files back once the sweep ends, so
results survive any launcher, including ones that run members on other machines of a
cluster sharing the project folder.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from ._config import conf_search_dirs, hydra_overrides, searchpath_override
from ._manager import make_plugin_manager
from ._redact import redact_overrides, redact_text
from .errors import ConfigError

BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
DEFAULT_LAUNCHER = "specloop"

# the engine's own imports a member needs; plugins add theirs (specloop_add_preload_modules)
ENGINE_PRELOAD = ["pandas", "pyarrow.parquet", "sklearn.model_selection", "omegaconf",
                  "hydra.core.utils", "specloop._runner", "specloop._context"]


def start_method(chosen: str | None) -> str:
    """The start method for ``chosen`` (``auto``: forkserver on Linux, else spawn)."""
    if chosen in (None, "", "auto"):
        return "forkserver" if sys.platform.startswith("linux") else "spawn"
    if chosen not in multiprocessing.get_all_start_methods():
        raise ConfigError(f"the start method {chosen!r} does not exist on this platform",
                          key="hydra.launcher.start_method", got=chosen,
                          expected="one of " + ", ".join(
                              ["auto", *multiprocessing.get_all_start_methods()]),
                          fix="hydra.launcher.start_method=spawn works everywhere")
    return chosen


def start_server(modules: list[str]) -> None:
    """Start the forkserver now, importing ``modules`` (it imports while Hydra composes)."""
    import multiprocessing.forkserver as forkserver

    forkserver.set_forkserver_preload(list(dict.fromkeys(modules)))
    forkserver.ensure_running()


def register_plugin() -> None:
    """Make ``hydra/launcher=specloop`` known to Hydra in any install.

    Hydra finds plugins by listing the ``hydra_plugins`` namespace with ``pkgutil``, which
    does not see a portion that an editable install provides through an import hook.
    Importing the plugin module registers its config; ``Plugins.register`` (Hydra's API for
    plugins registered by hand) its class. Both are idempotent.
    """
    from hydra.core.plugins import Plugins

    plugins = Plugins.instance()  # the scan runs first (it may execute the module again)
    from hydra_plugins.specloop_launcher import specloop_launcher

    plugins.register(specloop_launcher.SpecloopLauncher)


class SweepJob:
    """The task function Hydra runs once per sweep member (picklable for launchers).

    Subclasses implement :meth:`member`; this class records the outcome. A member that fails
    (a bad value, a failing stage) is recorded as ``failed`` with its error and never stops
    the other members.
    """

    def __init__(self, project_dir: Path) -> None:
        self.project_dir = Path(project_dir)
        self.secret_keys: frozenset[str] = frozenset()

    def context(self, cfg: Any, overrides: list[str]) -> Any:
        """The member's run context; remembers which keys its schemas mark secret, so that
        its ``result.json`` masks them too."""
        from ._context import make_context
        from ._redact import secret_fields

        ctx = make_context(self.project_dir, overrides, hydra_cfg=cfg)
        self.secret_keys = secret_fields(ctx.spec)
        return ctx

    def member(self, cfg: Any, overrides: list[str], job_dir: Path) -> dict:
        """Run one member; return its result (``status``, ``metrics``, …)."""
        from ._runner import execute

        ctx = self.context(cfg, overrides)
        try:
            mode = ctx.spec.sweep.register
            doc = execute(ctx, register=mode == "all")
            metrics_c = ctx.component("metrics")
        finally:
            ctx.close()
        stages = {r["stage"]: r["action"] for r in doc["rows"]}
        return {"status": "succeeded", "run_id": doc["run_id"], "metrics": doc["metrics"],
                "primary": metrics_c.primary, "greater_is_better": metrics_c.greater_is_better,
                "model_version": doc["model_version"], "register": mode,
                "stages": stages,
                "cache_hits": sum(1 for a in stages.values() if a == "cached"),
                "model_key": doc["stages"]["train"]["key"]}

    @staticmethod
    def objective(result: dict) -> float:
        """The number a non-basic sweeper (Optuna) optimizes: the primary metric."""
        return float(result["metrics"][result["primary"]])

    def sweeper_value(self, result: dict, sweeper: Any) -> float:
        """The value handed back to a non-basic sweeper; a failed member is the worst value
        of the sweeper's direction (Optuna 2.10 refuses ``NaN`` and stops the study)."""
        direction = str(sweeper.get("direction", "minimize"))
        worst = -math.inf if "max" in direction.lower() else math.inf
        if result.get("status") != "succeeded":
            return worst
        value = self.objective(result)
        return worst if math.isnan(value) else value

    def warm_up(self, cfg: Any) -> None:
        """Before the members start (``hydra/launcher=specloop``): compute the stages they
        share, ``data`` and ``split`` of the first member (``cfg``), recorded as a run of its
        own (``command: sweep-warm-up``), so every member finds them in the store."""
        from hydra.core.hydra_config import HydraConfig

        from ._runner import execute, plan_run
        from ._context import make_context

        ctx = make_context(self.project_dir, _overrides(HydraConfig.get()), hydra_cfg=cfg)
        try:
            plans = {p.name: p for p in plan_run(ctx)}
            if not (plans["data"].cached and plans["split"].cached):  # else: no run to record
                execute(ctx, command="sweep-warm-up", until="split", register=False)
        finally:
            ctx.close()

    def lost(self, cfg: Any, why: str) -> Any:
        """Record a member whose process died without a result (called by the launcher)."""
        from hydra.core.hydra_config import HydraConfig

        return self._record(HydraConfig.get(), {"status": "failed", "error": why,
                                                "error_type": "LostMember"}, 0.0)

    def __call__(self, cfg: Any) -> Any:
        from hydra.core.hydra_config import HydraConfig

        from .errors import SpecloopError

        hc = HydraConfig.get()
        overrides = _overrides(hc)
        job_dir = Path(hc.runtime.output_dir)
        start = time.perf_counter()
        try:
            out = self.member(cfg, overrides, job_dir)
        except SpecloopError as exc:
            rendered = exc.render()
            print(rendered, file=sys.stderr, flush=True)
            out = {"status": "failed", "error": str(exc.args[0]), "error_type":
                   type(exc).__name__, "detail": rendered}
        except Exception as exc:  # a plugin's bug fails this member, not the sweep
            print(f"specloop: sweep member {hc.job.num} failed: {type(exc).__name__}: {exc}",
                  file=sys.stderr, flush=True)
            out = {"status": "failed", "error": f"{type(exc).__name__}: {exc}",
                   "error_type": type(exc).__name__}
        return self._record(hc, out, time.perf_counter() - start)

    def _record(self, hc: Any, out: dict, seconds: float) -> Any:
        """Write the member's ``result.json``; return what the sweeper expects."""
        from omegaconf import OmegaConf

        job_dir = Path(hc.sweep.dir) / str(hc.sweep.subdir) \
            if OmegaConf.is_missing(hc.runtime, "output_dir") else Path(hc.runtime.output_dir)
        for field in ("error", "detail"):
            if field in out:
                out[field] = redact_text(str(out[field]), self.secret_keys)
        out = {"job": int(hc.job.num), "overrides": redact_overrides(_overrides(hc),
                                                                    self.secret_keys),
               "seconds": round(seconds, 3), **out}
        job_dir.mkdir(parents=True, exist_ok=True)
        tmp = job_dir / "result.json.tmp"
        tmp.write_text(json.dumps(out, indent=2, default=str))
        tmp.replace(job_dir / "result.json")
        if hc.sweeper.get("_target_") != BASIC_SWEEPER:
            return self.sweeper_value(out, hc.sweeper)
        return out


def _overrides(hc: Any) -> list[str]:
    """A member's own overrides (without Hydra's), as ``specloop run`` takes them."""
    return [o[2:] if o.startswith("++") else o
            for o in hc.overrides.task if not o.startswith("hydra.")]


def new_sweep_dir(project_dir: Path, kind: str = "sweeps") -> Path:
    """A fresh folder for one sweep: ``.specloop/<kind>/<timestamp>``."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    return Path(project_dir).resolve() / ".specloop" / kind / stamp


# Hydra plugins a sweep may select, the module that provides each, and specloop's extra
PLUGIN_OPTIONS = {
    ("hydra/launcher", "specloop"): ("hydra_plugins.specloop_launcher", None),
    ("hydra/launcher", "joblib"): ("hydra_plugins.hydra_joblib_launcher", "joblib"),
    ("hydra/launcher", "submitit_local"): ("hydra_plugins.hydra_submitit_launcher", "submitit"),
    ("hydra/launcher", "submitit_slurm"): ("hydra_plugins.hydra_submitit_launcher", "submitit"),
    ("hydra/launcher", "ray"): ("hydra_plugins.hydra_ray_launcher", "ray"),
    ("hydra/launcher", "ray_aws"): ("hydra_plugins.hydra_ray_launcher", "ray"),
    ("hydra/sweeper", "optuna"): ("hydra_plugins.hydra_optuna_sweeper", "optuna"),
}


def check_plugins(overrides: list[str]) -> None:
    """Refuse a launcher or sweeper whose Hydra plugin is not installed, naming the extra.

    Raises:
        ConfigError: naming the override and the ``pip install`` that provides it.
    """
    from importlib.util import find_spec

    for ov in overrides:
        group, _, option = ov.lstrip("+").partition("=")
        entry = PLUGIN_OPTIONS.get((group, option))
        if entry is None:
            continue
        module, extra = entry
        try:
            found = find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            dist = module.split(".")[1].replace("_", "-")
            raise ConfigError(f"{group}={option} needs the Hydra plugin {dist}, which is not "
                              "installed", file=f"command line: {ov}",
                              expected=f"{dist} installed",
                              fix=f"pip install 'specloop[{extra}]'" if extra else
                              f"pip install {dist}")


def chosen_launcher(overrides: list[str]) -> str:
    """The ``hydra/launcher`` option a sweep over ``overrides`` runs with."""
    chosen = DEFAULT_LAUNCHER
    for ov in overrides:
        group, _, option = ov.lstrip("+").partition("=")
        if group == "hydra/launcher":
            chosen = option
    return chosen


def launcher_overrides(overrides: list[str]) -> list[str]:
    """The default parallel launcher, unless the overrides choose one."""
    if any(o.lstrip("+").startswith("hydra/launcher=") for o in overrides):
        return []
    return [f"hydra/launcher={DEFAULT_LAUNCHER}"]


def multirun(project_dir: Path, overrides: list[str], job: SweepJob | None = None,
             sweep_dir: Path | None = None) -> tuple[Path, list[dict]]:
    """Run a Hydra multirun of ``job`` over ``overrides``.

    With the specloop launcher's ``forkserver`` start method, the server starts here, before
    Hydra is imported, and imports what members need while Hydra composes the sweep.

    Returns:
        The sweep folder and one result per member, in job order.
    """
    project_dir = Path(project_dir).resolve()
    check_plugins(overrides)
    pm = make_plugin_manager()
    if chosen_launcher(overrides) == DEFAULT_LAUNCHER and \
            start_method(chosen_start_method(overrides)) == "forkserver":
        start_server([*ENGINE_PRELOAD, *pm.preload_modules()])
    return _multirun(project_dir, overrides, job, sweep_dir, pm)


def chosen_start_method(overrides: list[str]) -> str | None:
    """The ``hydra.launcher.start_method`` the overrides set, if any."""
    for ov in overrides:
        key, _, value = ov.lstrip("+").partition("=")
        if key == "hydra.launcher.start_method":
            return value
    return None


def _multirun(project_dir: Path, overrides: list[str], job: SweepJob | None,
              sweep_dir: Path | None, pm: Any) -> tuple[Path, list[dict]]:
    import hydra

    register_plugin()
    search = conf_search_dirs(pm.conf_dirs())
    job = job or SweepJob(project_dir)
    sweep_dir = sweep_dir or new_sweep_dir(project_dir)
    argv = ["specloop", "--multirun", *launcher_overrides(overrides), *hydra_overrides(overrides),
            searchpath_override(search), f"hydra.sweep.dir={sweep_dir}",
            "hydra.job.chdir=False", "hydra.output_subdir=null"]  # no copy of secrets there
    saved, saved_env = sys.argv, os.environ.get("HYDRA_FULL_ERROR")
    sys.argv = argv
    os.environ["HYDRA_FULL_ERROR"] = "1"  # raise instead of printing and exiting
    try:
        hydra.main(version_base=None, config_path=str(project_dir / "conf"),
                   config_name="config")(job)()
    except Exception as exc:  # the sweep could not start (members catch their own errors)
        from hydra.errors import HydraException
        from omegaconf.errors import OmegaConfBaseException

        from ._config import translate_hydra_error
        from .errors import PluginError

        if isinstance(exc, (HydraException, OmegaConfBaseException)):
            raise translate_hydra_error(exc, project_dir, overrides) from None
        raise PluginError(f"the sweep stopped: {type(exc).__name__}: {exc}",
                          plugin="the Hydra sweeper or launcher",
                          fix="see the messages above; SPECLOOP_FULL_ERROR=1 shows the "
                              "traceback") from exc
    finally:
        sys.argv = saved
        if saved_env is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = saved_env
    _redact_sweep_record(sweep_dir)
    return sweep_dir, read_results(sweep_dir)


def _redact_sweep_record(sweep_dir: Path) -> None:
    """Hydra's sweepers save the composed config as ``multirun.yaml``: mask its secrets."""
    import yaml  # a sweep has imported it long since

    from ._redact import redact

    path = Path(sweep_dir) / "multirun.yaml"
    if path.is_file():
        path.write_text(redact_text(yaml.safe_dump(redact(yaml.safe_load(path.read_text())),
                                                   sort_keys=False)))


def read_results(sweep_dir: Path) -> list[dict]:
    """The ``result.json`` of every member of a sweep folder, in job order."""
    results = []
    for path in Path(sweep_dir).glob("*/result.json"):
        try:
            results.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return sorted(results, key=lambda r: r.get("job", 0))

"""``specloop run -m`` and ``specloop loop --backtest``: real Hydra multiruns over the spec, so
every sweeper and launcher plugin works unchanged. Each member builds its own context from the
config Hydra composed for it and writes ``result.json`` in its job folder; the parent reads
those back, so results survive any launcher, even one running members on other machines."""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
from datetime import datetime
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import yaml
from hydra_plugins import specloop_launcher

from ._config import conf_search_dirs, hydra_overrides, searchpath_override, translate_hydra_error
from ._context import make_context
from ._manager import make_plugin_manager
from ._redact import redact, redact_overrides, redact_text, secret_fields
from ._runner import execute, plan_run
from .errors import ConfigError, PluginError, SpecloopError

BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
DEFAULT_LAUNCHER = "specloop"
# Hydra plugins a sweep may select, the module that provides each, and specloop's extra
PLUGIN_OPTIONS = {
    ("hydra/launcher", "joblib"): ("hydra_plugins.hydra_joblib_launcher", "joblib"),
    ("hydra/launcher", "submitit_local"): ("hydra_plugins.hydra_submitit_launcher", "submitit"),
    ("hydra/launcher", "submitit_slurm"): ("hydra_plugins.hydra_submitit_launcher", "submitit"),
    ("hydra/launcher", "ray"): ("hydra_plugins.hydra_ray_launcher", "ray"),
    ("hydra/launcher", "ray_aws"): ("hydra_plugins.hydra_ray_launcher", "ray"),
    ("hydra/sweeper", "optuna"): ("hydra_plugins.hydra_optuna_sweeper", "optuna"),
}


class SweepJob:
    """The task function Hydra runs once per sweep member (picklable for launchers); subclasses
    implement :meth:`member`. A failed member is recorded with its error, never stopping others."""

    def __init__(self, project_dir: Path) -> None:
        self.project_dir = Path(project_dir)
        self.secret_keys: frozenset[str] = frozenset()

    def context(self, cfg: Any, overrides: list[str]) -> Any:
        """The member's run context; keeps its schemas' secret keys for ``result.json``."""
        ctx = make_context(self.project_dir, overrides, hydra_cfg=cfg)
        self.secret_keys = secret_fields(ctx.spec)
        return ctx

    def member(self, cfg: Any, overrides: list[str], job_dir: Path) -> dict:
        """Run one member; return its result (``status``, ``metrics``, …)."""
        with contextlib.closing(self.context(cfg, overrides)) as ctx:
            mode = ctx.spec.sweep.register
            doc = execute(ctx, register=mode == "all")
            metrics_c = ctx.component("metrics")
        stages = {r["stage"]: r["action"] for r in doc["rows"]}
        return {"status": "succeeded", "run_id": doc["run_id"], "metrics": doc["metrics"],
                "primary": metrics_c.primary, "greater_is_better": metrics_c.greater_is_better,
                "model_version": doc["model_version"], "register": mode, "stages": stages,
                "cache_hits": list(stages.values()).count("cached"),
                "model_key": doc["stages"]["train"]["key"]}

    @staticmethod
    def sweeper_value(result: dict, sweeper: Any) -> float:
        """The primary metric for a non-basic sweeper (Optuna); a failed member or one without a
        value is the worst of the sweeper's direction (Optuna 2.10 stops the study on ``NaN``)."""
        value = (result.get("metrics") or {}).get(result.get("primary"))
        if result.get("status") == "succeeded" and value is not None and not math.isnan(value):
            return float(value)
        return -math.inf if "max" in str(sweeper.get("direction", "minimize")).lower() else math.inf

    def warm_up(self, cfg: Any) -> None:
        """Before the members start (``hydra/launcher=specloop``): compute ``data`` and
        ``split`` of the first member (``cfg``) as a run of its own (``sweep-warm-up``)."""
        from hydra.core.hydra_config import HydraConfig  # only inside a Hydra job

        with contextlib.closing(self.context(cfg, _overrides(HydraConfig.get()))) as ctx:
            plans = {p.name: p for p in plan_run(ctx)}
            if not (plans["data"].cached and plans["split"].cached):  # else: no run to record
                execute(ctx, command="sweep-warm-up", until="split", register=False)

    def lost(self, cfg: Any, why: str) -> Any:
        """Record a member whose process died without a result (called by the launcher)."""
        from hydra.core.hydra_config import HydraConfig

        return self._record(HydraConfig.get(), {"status": "failed", "error": why,
                                                "error_type": "LostMember"}, 0.0)

    def __call__(self, cfg: Any) -> Any:
        from hydra.core.hydra_config import HydraConfig

        hc, start = HydraConfig.get(), time.perf_counter()
        try:
            out = self.member(cfg, _overrides(hc), Path(hc.runtime.output_dir))
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
        out.update({f: redact_text(str(out[f]), self.secret_keys) for f in ("error", "detail")
                    if f in out})
        overrides = redact_overrides(_overrides(hc), self.secret_keys)
        out = {"job": int(hc.job.num), "overrides": overrides, "seconds": round(seconds, 3), **out}
        job_dir.mkdir(parents=True, exist_ok=True)
        tmp = job_dir / "result.json.tmp"
        tmp.write_text(json.dumps(out, indent=2, default=str))
        tmp.replace(job_dir / "result.json")
        return out if hc.sweeper.get("_target_") == BASIC_SWEEPER else \
            self.sweeper_value(out, hc.sweeper)


def _overrides(hc: Any) -> list[str]:
    """A member's own overrides (without Hydra's), as ``specloop run`` takes them."""
    return [o[2:] if o.startswith("++") else o
            for o in hc.overrides.task if not o.startswith("hydra.")]


def _chosen(overrides: list[str], key: str) -> str | None:
    """The value the overrides give ``key`` (a config group or a dotted key), if any."""
    values = [v for k, _, v in (ov.lstrip("+").partition("=") for ov in overrides) if k == key]
    return values[-1] if values else None


def new_sweep_dir(project_dir: Path, kind: str = "sweeps") -> Path:
    """A fresh folder for one sweep: ``.specloop/<kind>/<timestamp>``."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    return Path(project_dir).resolve() / ".specloop" / kind / stamp


def check_plugins(overrides: list[str]) -> None:
    """Refuse a launcher or sweeper whose Hydra plugin is not installed, naming the extra."""
    for ov in overrides:
        group, _, option = ov.lstrip("+").partition("=")
        module, extra = PLUGIN_OPTIONS.get((group, option), (None, None))
        try:
            missing = module is not None and find_spec(module) is None
        except ModuleNotFoundError:  # not even its parent package
            missing = True
        if missing:
            dist = module.split(".")[1].replace("_", "-")
            raise ConfigError(f"{group}={option} needs the Hydra plugin {dist}, which is not "
                              "installed", file=f"command line: {ov}", expected=f"{dist} installed",
                              fix=f"pip install 'specloop[{extra}]'" if extra else
                              f"pip install {dist}")


def multirun(project_dir: Path, overrides: list[str], job: SweepJob | None = None,
             sweep_dir: Path | None = None) -> tuple[Path, list[dict]]:
    """Run a Hydra multirun of ``job`` over ``overrides``; return the sweep folder and one
    result per member, in job order."""
    project_dir = Path(project_dir).resolve()
    check_plugins(overrides)
    pm = make_plugin_manager()
    launcher = _chosen(overrides, "hydra/launcher")
    if launcher in (None, DEFAULT_LAUNCHER):
        specloop_launcher.prestart(_chosen(overrides, "hydra.launcher.start_method"),
                                   pm.preload_modules())
    # Hydra only now, once the forkserver imports what members need alongside it
    import hydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    specloop_launcher.register()
    job = job or SweepJob(project_dir)
    sweep_dir = Path(sweep_dir or new_sweep_dir(project_dir))
    argv = ["specloop", "--multirun",
            *([f"hydra/launcher={DEFAULT_LAUNCHER}"] if launcher is None else []),
            *hydra_overrides(overrides), searchpath_override(conf_search_dirs(pm.conf_dirs())),
            f"hydra.sweep.dir={sweep_dir}", "hydra.job.chdir=False",
            "hydra.output_subdir=null"]  # no copy of secrets there
    saved, saved_env = sys.argv, os.environ.get("HYDRA_FULL_ERROR")
    sys.argv, os.environ["HYDRA_FULL_ERROR"] = argv, "1"  # raise, not print and exit
    try:
        hydra.main(version_base=None, config_path=str(project_dir / "conf"),
                   config_name="config")(job)()
    except (HydraException, OmegaConfBaseException) as exc:
        raise translate_hydra_error(exc, project_dir, overrides) from None
    except Exception as exc:  # the sweep could not start (members catch their own errors)
        raise PluginError(f"the sweep stopped: {type(exc).__name__}: {exc}",
                          plugin="the Hydra sweeper or launcher",
                          fix="see the messages above; SPECLOOP_FULL_ERROR=1 shows the "
                              "traceback") from exc
    finally:
        sys.argv = saved
        os.environ.pop("HYDRA_FULL_ERROR", None)
        if saved_env is not None:
            os.environ["HYDRA_FULL_ERROR"] = saved_env
    record = sweep_dir / "multirun.yaml"  # Hydra's copy of the composed config: mask secrets
    if record.is_file():
        record.write_text(redact_text(yaml.safe_dump(redact(yaml.safe_load(record.read_text())),
                                                     sort_keys=False)))
    results = []  # each member's result.json
    for path in sweep_dir.glob("*/result.json"):
        with contextlib.suppress(OSError, ValueError):  # unreadable: that member left no result
            results.append(json.loads(path.read_text()))
    return sweep_dir, sorted(results, key=lambda r: r.get("job", 0))

"""``specloop run -m``: a real Hydra multirun over the project's spec.

Hydra's own ``hydra.main`` drives the sweep, so every sweeper and launcher plugin works
unchanged. Each job builds its own plugin manager and run context from the config Hydra
composed for it (no shared state: jobs can run in other processes).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ._config import conf_search_dirs, hydra_overrides, searchpath_override
from ._manager import make_plugin_manager


class SweepJob:
    """The task function Hydra runs once per sweep member (picklable for launchers)."""

    def __init__(self, project_dir: Path) -> None:
        self.project_dir = project_dir
        self.results: list[dict] = []

    def __call__(self, cfg: Any) -> dict:
        from hydra.core.hydra_config import HydraConfig

        from ._pipeline import execute
        from ._session import make_context
        from .errors import SpecloopError

        overrides = [o[2:] if o.startswith("++") else o
                     for o in HydraConfig.get().overrides.task if not o.startswith("hydra.")]
        try:
            ctx = make_context(self.project_dir, overrides, hydra_cfg=cfg)
            try:
                doc = execute(ctx)
            finally:
                ctx.close()
            out = {"overrides": overrides, "status": "succeeded", "run_id": doc["run_id"],
                   "metrics": doc["metrics"], "model_version": doc["model_version"]}
        except SpecloopError as exc:
            print(exc.render(), file=sys.stderr)
            out = {"overrides": overrides, "status": "failed", "error": str(exc.args[0])}
        self.results.append(out)
        return out


def multirun(project_dir: Path, overrides: list[str]) -> list[dict]:
    """Run a Hydra multirun of ``run`` over ``overrides``; return one result per job."""
    import hydra

    project_dir = Path(project_dir).resolve()
    pm = make_plugin_manager()
    search = conf_search_dirs(project_dir, pm.conf_dirs())
    job = SweepJob(project_dir)
    argv = ["specloop", "--multirun", *hydra_overrides(overrides), searchpath_override(search),
            f"hydra.sweep.dir={project_dir / '.specloop' / 'sweeps'}/"
            "${now:%Y%m%d-%H%M%S-%f}",
            "hydra.job.chdir=False"]
    saved = sys.argv
    sys.argv = argv
    try:
        hydra.main(version_base=None, config_path=str(project_dir / "conf"),
                   config_name="config")(job)()
    finally:
        sys.argv = saved
    return job.results

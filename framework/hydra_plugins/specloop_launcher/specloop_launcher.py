"""The Hydra side of ``hydra/launcher=specloop``: its config and the ``Launcher`` class.

Hydra imports every module of the ``hydra_plugins`` namespace when it looks for plugins, so
this module stays light; the work is in :mod:`._launch`. (No ``from __future__ import
annotations``: Hydra's scan executes the module before it is in ``sys.modules``, where
``dataclass`` would look up string annotations.)
"""

from dataclasses import dataclass
from typing import Any, Optional, Sequence

from hydra.core.config_store import ConfigStore
from hydra.plugins.launcher import Launcher


@dataclass
class SpecloopLauncherConf:
    _target_: str = "hydra_plugins.specloop_launcher.specloop_launcher.SpecloopLauncher"
    # members running at the same time: -1 is one per core, -2 all cores but one (as joblib)
    n_jobs: int = -1
    # compute the stages members share (data, split) once before the members start
    warm_up: bool = True
    # how workers start: auto (forkserver on Linux, else spawn), forkserver, spawn or fork
    start_method: str = "auto"


ConfigStore.instance().store(group="hydra/launcher", name="specloop",
                             node=SpecloopLauncherConf, provider="specloop")


class SpecloopLauncher(Launcher):
    """Warm up once, then run each member in a worker process (see :mod:`._launch`)."""

    def __init__(self, n_jobs: int = -1, warm_up: bool = True, start_method: str = "auto") -> None:
        self.n_jobs = n_jobs
        self.warm_up = warm_up
        self.start_method = start_method
        self.config: Optional[Any] = None
        self.task_function: Optional[Any] = None
        self.hydra_context: Optional[Any] = None

    def setup(self, *, hydra_context: Any, task_function: Any, config: Any) -> None:
        self.config = config
        self.task_function = task_function
        self.hydra_context = hydra_context

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Any:
        from ._launch import launch

        return launch(self, job_overrides, initial_job_idx)

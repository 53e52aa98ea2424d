"""The ``specloop`` Hydra launcher: members of a sweep in forked worker processes.

``hydra/launcher=specloop`` (the default of ``specloop run -m``) runs a batch of members in
three steps:

1. **Warm-up, once, in this process.** The task function's ``warm_up(cfg)`` gets the first
   member's config; a :class:`~specloop._multirun.SweepJob` computes the stages every member
   shares (``data``, ``split``) and imports what members need (pandas, pyarrow,
   scikit-learn). A failing warm-up is ignored: each member then meets the problem itself
   and reports it as usual.
2. **Fork.** Each member runs in a child forked from this process (``multiprocessing``'s
   ``fork`` context), at most ``n_jobs`` at a time (default: one per core). A child inherits
   the imports and the warm page cache instead of starting a fresh interpreter, and finds
   the shared stages in the store: nothing is recomputed and nothing waits on a lock.
3. **Collect.** Each child sends its Hydra ``JobReturn`` back through a pipe. A member that
   fails raises inside its own child (recorded by the task function as ``failed``); a child
   that dies without answering (a crash, ``os._exit``, the OOM killer) is reported through
   the task function's ``lost`` method, so the other members and the sweep go on.

Fork-safety: a fork copies only the forking thread. Before forking, no thread of this process
may hold a lock a child would need; the warm-up's pipeline flushes and stops its store
writer thread, and every SQLite connection it opened is closed (``RunContext.close``), so a
child opens its own. Threads still alive at fork time are named in a warning.
Where ``fork`` does not exist (Windows), members run one after another in this process.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from pathlib import Path
from typing import Any, Sequence

log = logging.getLogger(__name__)


def worker_count(n_jobs: int | None) -> int:
    """``n_jobs`` as a process count, as joblib reads it: ``-1`` (or ``None``) is one per
    core, ``-2`` all cores but one, and so on."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    if not n_jobs:
        return cores
    return max(1, cores + 1 + n_jobs) if n_jobs < 0 else int(n_jobs)


class KeptConfigs:
    """A Hydra config loader that keeps the member configs it composes until a member asks.

    Hydra's sweepers compose every member's config before launching the batch, to fail early
    on one that does not compose, and throw it away; the member composes it again. Wrapped
    around the sweep's loader (:meth:`SpecloopLauncher.setup`), the loader hands the member
    (and the warm-up) a copy of the config composed for the check: one composition per member
    instead of two (about 0.2 s each; a copy takes milliseconds).
    """

    def __init__(self, loader: Any) -> None:
        self.loader = loader
        self.kept: dict[tuple[str, ...], Any] = {}

    def load_sweep_config(self, master_config: Any, sweep_overrides: list[str]) -> Any:
        import copy

        key = tuple(sweep_overrides)
        if key not in self.kept:
            self.kept[key] = self.loader.load_sweep_config(master_config, list(sweep_overrides))
        return copy.deepcopy(self.kept[key])

    def __getattr__(self, name: str) -> Any:  # the rest of the ConfigLoader interface
        if name.startswith("__") or name in ("loader", "kept"):
            raise AttributeError(name)  # not set yet (unpickling): no recursion
        return getattr(self.loader, name)


def keep_member_configs(hydra_context: Any) -> None:
    """Wrap ``hydra_context``'s config loader in :class:`KeptConfigs` (once)."""
    if not isinstance(hydra_context.config_loader, KeptConfigs):
        hydra_context.config_loader = KeptConfigs(hydra_context.config_loader)


def member_config(launcher: Any, idx: int, overrides: Sequence[str]) -> Any:
    """The config Hydra composes for member ``idx`` (as every Hydra launcher does)."""
    from omegaconf import open_dict

    cfg = launcher.hydra_context.config_loader.load_sweep_config(launcher.config,
                                                                list(overrides))
    with open_dict(cfg):
        cfg.hydra.job.id = f"{cfg.hydra.job.name}_{idx}"
        cfg.hydra.job.num = idx
    return cfg


def run_member(launcher: Any, idx: int, overrides: Sequence[str]) -> Any:
    """Run one member in this process; return its ``JobReturn``."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.utils import run_job

    cfg = member_config(launcher, idx, overrides)
    HydraConfig.instance().set_config(cfg)
    return run_job(hydra_context=launcher.hydra_context, config=cfg,
                   task_function=launcher.task_function, job_dir_key="hydra.sweep.dir",
                   job_subdir_key="hydra.sweep.subdir")


def _child(conn: Any, launcher: Any, idx: int, overrides: Sequence[str]) -> None:
    """The body of a forked worker: run the member, send its ``JobReturn``."""
    try:
        ret = run_member(launcher, idx, overrides)
    except BaseException as exc:  # noqa: BLE001 - Hydra's own failure, sent as the result
        from hydra.core.utils import JobReturn, JobStatus

        ret = JobReturn(overrides=list(overrides), status=JobStatus.FAILED, _return_value=exc)
    try:
        conn.send(ret)
    except Exception as exc:  # an unpicklable return value: send what can be sent
        from hydra.core.utils import JobReturn, JobStatus

        conn.send(JobReturn(overrides=list(overrides), status=JobStatus.FAILED,
                            _return_value=RuntimeError(f"could not send the result: {exc}")))
    conn.close()


def lost(launcher: Any, idx: int, overrides: Sequence[str], why: str) -> Any:
    """The ``JobReturn`` of a member whose process died without answering."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.utils import JobReturn, JobStatus

    cfg = member_config(launcher, idx, overrides)
    HydraConfig.instance().set_config(cfg)
    ret = JobReturn(overrides=list(overrides), cfg=cfg, hydra_cfg=cfg,
                    working_dir=os.getcwd(), task_name=cfg.hydra.job.name)
    record = getattr(launcher.task_function, "lost", None)
    if callable(record):
        ret.status, ret.return_value = JobStatus.COMPLETED, record(cfg, why)
    else:
        ret.status, ret._return_value = JobStatus.FAILED, RuntimeError(why)
    return ret


def warm_up(launcher: Any, idx: int, overrides: Sequence[str]) -> None:
    """Let the task function prepare what members share, in this process, before forking."""
    prepare = getattr(launcher.task_function, "warm_up", None)
    if not callable(prepare):
        return
    from hydra.core.hydra_config import HydraConfig

    cfg = member_config(launcher, idx, overrides)
    HydraConfig.instance().set_config(cfg)
    try:
        prepare(cfg)
    except Exception as exc:  # noqa: BLE001 - each member meets and reports it itself
        log.debug("sweep warm-up failed: %s", exc)


def threads_alive() -> list[str]:
    """Names of this process's threads other than the calling one."""
    me = threading.current_thread()
    return [t.name for t in threading.enumerate() if t is not me and t.is_alive()]


def launch(launcher: Any, job_overrides: Sequence[Sequence[str]],
           initial_job_idx: int) -> list[Any]:
    """Run a batch of members: in this process's fork server when it has one (the members
    inherit the server's imports), else from this process. Returns their ``JobReturn``s."""
    from ._fork_server import ForkServerError, current

    jobs = [list(ov) for ov in job_overrides]
    server = current()
    if server is not None:
        from hydra.core.singleton import Singleton

        # Hydra's singletons (its config store, the sweep's HydraConfig), as Hydra's joblib
        # launcher hands them to its workers; not OmegaConf's resolvers: Hydra registers them
        # as lambdas, which do not pickle, and setup_globals registers them again
        state = Singleton.get_state()["instances"]
        try:
            return server.call(launch_in_server, launcher, state, jobs, initial_job_idx)
        except ForkServerError as exc:
            log.warning(f"specloop launcher: {exc}; the members run from this process")
    return launch_here(launcher, jobs, initial_job_idx)


def launch_in_server(launcher: Any, state: Any, job_overrides: Sequence[Sequence[str]],
                     initial_job_idx: int) -> list[Any]:
    """:func:`launch_here` in the fork server, with the sweep process's Hydra singletons."""
    from hydra.core.plugins import Plugins
    from hydra.core.singleton import Singleton

    # as Singleton.set_state, without the resolvers and without scanning Hydra's plugins: the
    # members run their task function and need no plugin; a scan in a later batch would
    # execute the plugin modules again, and their classes would no longer pickle
    scanned = Singleton._instances.get(Plugins)
    Singleton._instances = dict(state)
    if scanned is not None:
        Singleton._instances[Plugins] = scanned
    return launch_here(launcher, job_overrides, initial_job_idx)


def launch_here(launcher: Any, job_overrides: Sequence[Sequence[str]],
                initial_job_idx: int) -> list[Any]:
    """Warm up, fork the members (``n_jobs`` at a time), collect their ``JobReturn``s."""
    from hydra.core.utils import configure_log, filter_overrides, setup_globals

    setup_globals()
    configure_log(launcher.config.hydra.hydra_logging, launcher.config.hydra.verbose)
    sweep_dir = Path(str(launcher.config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(initial_job_idx + i, list(ov)) for i, ov in enumerate(job_overrides)]
    forking = "fork" in multiprocessing.get_all_start_methods()
    n_jobs = min(worker_count(launcher.n_jobs), len(jobs)) if forking else 1
    log.info(f"specloop launcher: {len(jobs)} member(s), {n_jobs} at a time"
             f"{' in forked workers' if forking else ', one after another'}; "
             f"sweep output dir: {sweep_dir}")
    for idx, ov in jobs:
        log.info(f"\t#{idx} : {' '.join(filter_overrides(ov))}")
    if launcher.warm_up and len(jobs) > 1:
        start = time.perf_counter()
        warm_up(launcher, *jobs[0])
        log.info(f"specloop launcher: warm-up (shared stages, imports) took "
                 f"{time.perf_counter() - start:.1f} s")
    if not forking:
        return [run_member(launcher, idx, ov) for idx, ov in jobs]
    alive = threads_alive()
    if alive:
        log.warning(f"specloop launcher: forking with other threads alive ({', '.join(alive)})")
    import gc

    gc.freeze()  # the inherited objects stay out of the children's collections (fewer copies)
    try:
        return _fan_out(launcher, jobs, n_jobs)
    finally:
        gc.unfreeze()


def _fan_out(launcher: Any, jobs: list[tuple[int, list[str]]], n_jobs: int) -> list[Any]:
    from multiprocessing.connection import wait

    mp = multiprocessing.get_context("fork")
    results: dict[int, Any] = {}
    todo = list(jobs)
    running: dict[Any, tuple[int, list[str], Any]] = {}
    while todo or running:
        while todo and len(running) < n_jobs:
            idx, ov = todo.pop(0)
            recv, send = mp.Pipe(duplex=False)
            proc = mp.Process(target=_child, args=(send, launcher, idx, ov),
                              name=f"specloop-member-{idx}")
            proc.start()
            send.close()  # the child holds the only writing end: EOF when it dies
            running[recv] = (idx, ov, proc)
        for recv in wait(list(running)):
            idx, ov, proc = running.pop(recv)
            try:
                ret = recv.recv()
            except (EOFError, OSError):
                ret = None
            recv.close()
            proc.join()
            if ret is None:
                why = (f"the member's process died (exit code {proc.exitcode}) "
                       "before reporting a result")
                log.error(f"specloop launcher: member #{idx}: {why}")
                ret = lost(launcher, idx, ov, why)
            results[idx] = ret
    return [results[idx] for idx, _ in jobs]


def register_plugin() -> None:
    """Make ``hydra/launcher=specloop`` known to Hydra in any install.

    Hydra finds plugins by listing the ``hydra_plugins`` namespace with ``pkgutil``, which
    does not see a portion that an editable install (``pip install -e``) provides through an
    import hook, nor one installed after Hydra's scan ran in this process. Importing the
    plugin module registers its config; ``Plugins.register`` (Hydra's API for plugins
    registered by hand) its class. Both are idempotent.
    """
    from hydra.core.plugins import Plugins

    plugins = Plugins.instance()  # the scan runs first (it may execute the module again)
    from hydra_plugins.specloop_launcher import specloop_launcher

    plugins.register(specloop_launcher.SpecloopLauncher)

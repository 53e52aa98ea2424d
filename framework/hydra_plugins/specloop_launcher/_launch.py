"""The work of ``hydra/launcher=specloop``: sweep members in worker processes.

``hydra/launcher=specloop`` (the default of ``specloop run -m``) runs a batch in three steps:

1. **Compose, here.** Each member's config is composed in this process with Hydra's own
   ``load_sweep_config`` (as Hydra's joblib launcher does), so workers need no config
   loader, search path or Hydra plugin of their own.
2. **Warm-up, once.** The task function's ``warm_up(cfg)`` runs in one worker on the first
   member's config; a :class:`~specloop._multirun.SweepJob` computes the stages every member
   shares (``data``, ``split``) there, so no member computes them or waits on their lock. A
   failing warm-up is ignored: each member then meets the problem and reports it.
3. **Fan out.** Each member runs in its own process (at most ``n_jobs`` at a time) through
   Hydra's public ``run_job``, and sends its ``JobReturn`` back through a pipe. A process
   that dies without answering (a crash, the OOM killer) is reported through the task
   function's ``lost`` method; the other members and the sweep go on.

Processes come from ``multiprocessing`` with ``start_method`` (see ``_workers``):
``forkserver`` (the default where it exists) forks every worker from a clean server process
that imported the modules specloop and its plugins name (``specloop_add_preload_modules``)
once, while Hydra composed the sweep; ``spawn`` (the default elsewhere, and always available)
starts fresh interpreters; ``fork`` forks this process. Nothing of Hydra's private state is written:
workers get their composed config and ``HydraConfig.set_config``, Hydra's public API.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from pathlib import Path
from typing import Any, Sequence

from specloop._redact import redact_overrides

from ._workers import start_method

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


def _in_worker(conn: Any, task_function: Any, config: Any, warm: bool, callbacks: Any) -> None:
    """The body of a worker process: one member (or the warm-up) through Hydra's API."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.utils import JobReturn, JobStatus, run_job, setup_globals
    from hydra.types import HydraContext

    os.environ["SPECLOOP_QUIET"] = "1"  # the sweep's own bar is the parent's
    setup_globals()
    HydraConfig.instance().set_config(config)
    try:
        if warm:
            task_function.warm_up(config)
            ret: Any = True
        else:
            # the sweep's own callbacks object, pickled over as Hydra's joblib launcher does
            ret = run_job(hydra_context=HydraContext(config_loader=None, callbacks=callbacks),
                          task_function=task_function, config=config,
                          job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
    except BaseException as exc:  # noqa: BLE001 - Hydra's own failure, sent as the result
        ret = None if warm else JobReturn(status=JobStatus.FAILED, _return_value=exc)
    try:
        conn.send(ret)
    except Exception as exc:  # an unpicklable return value: send what can be sent
        from hydra.core.utils import JobReturn, JobStatus

        conn.send(JobReturn(status=JobStatus.FAILED,
                            _return_value=RuntimeError(f"could not send the result: {exc}")))
    conn.close()


def _member_config(launcher: Any, idx: int, overrides: Sequence[str]) -> Any:
    from omegaconf import open_dict

    cfg = launcher.hydra_context.config_loader.load_sweep_config(launcher.config, list(overrides))
    with open_dict(cfg):
        cfg.hydra.job.id = f"{cfg.hydra.job.name}_{idx}"
        cfg.hydra.job.num = idx
    return cfg


def lost(launcher: Any, cfg: Any, overrides: Sequence[str], why: str) -> Any:
    """The ``JobReturn`` of a member whose process died without answering."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.utils import JobReturn, JobStatus

    HydraConfig.instance().set_config(cfg)
    ret = JobReturn(overrides=list(overrides), cfg=cfg, hydra_cfg=cfg,
                    working_dir=os.getcwd(), task_name=cfg.hydra.job.name)
    record = getattr(launcher.task_function, "lost", None)
    if callable(record):
        ret.status, ret.return_value = JobStatus.COMPLETED, record(cfg, why)
    else:
        ret.status, ret._return_value = JobStatus.FAILED, RuntimeError(why)
    return ret


def launch(launcher: Any, job_overrides: Sequence[Sequence[str]],
           initial_job_idx: int) -> list[Any]:
    """Compose, warm up once, run the members; return their ``JobReturn`` in order."""
    from hydra.core.utils import configure_log, filter_overrides, setup_globals

    setup_globals()
    configure_log(launcher.config.hydra.hydra_logging, launcher.config.hydra.verbose)
    Path(str(launcher.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
    jobs = [(initial_job_idx + i, list(ov)) for i, ov in enumerate(job_overrides)]
    method = start_method(launcher.start_method)
    mp = multiprocessing.get_context(method)
    n_jobs = min(worker_count(launcher.n_jobs), len(jobs))
    log.info(f"specloop launcher: {len(jobs)} member(s), {n_jobs} at a time ({method})")
    configs = [(idx, ov, _member_config(launcher, idx, ov)) for idx, ov in jobs]
    for idx, ov, _ in configs:
        log.info(f"\t#{idx} : {' '.join(redact_overrides(filter_overrides(ov)))}")
    if launcher.warm_up and len(jobs) > 1 and callable(getattr(launcher.task_function,
                                                               "warm_up", None)):
        start = time.perf_counter()
        _run(mp, [(None, [], configs[0][2])], 1, launcher, warm=True)
        log.info(f"specloop launcher: warm-up (shared stages) took "
                 f"{time.perf_counter() - start:.1f} s")
    return _run(mp, configs, n_jobs, launcher)


def _run(mp: Any, configs: list[tuple], n_jobs: int, launcher: Any,
         warm: bool = False) -> list[Any]:
    from multiprocessing.connection import wait

    from specloop import progress

    results: dict[Any, Any] = {}
    todo = list(configs)
    running: dict[Any, tuple] = {}
    bar = progress(total=len(configs), desc="sweep", unit="member", disable=warm)
    while todo or running:
        while todo and len(running) < n_jobs:
            idx, ov, cfg = todo.pop(0)
            recv, send = mp.Pipe(duplex=False)
            proc = mp.Process(target=_in_worker, args=(send, launcher.task_function, cfg, warm,
                                                       launcher.hydra_context.callbacks),
                              name=f"specloop-member-{idx}")
            proc.start()
            send.close()  # the child holds the only writing end: EOF when it dies
            running[recv] = (idx, ov, cfg, proc)
        for recv in wait(list(running)):
            idx, ov, cfg, proc = running.pop(recv)
            try:
                ret = recv.recv()
            except (EOFError, OSError):
                ret = None
            recv.close()
            proc.join()
            if ret is None and not warm:
                why = (f"the member's process died (exit code {proc.exitcode}) before "
                       "reporting a result")
                log.error(f"specloop launcher: member #{idx}: {why}")
                ret = lost(launcher, cfg, ov, why)
            results[idx] = ret
            bar.update(1)
    bar.close()
    return [results[idx] for idx, _, _ in configs]



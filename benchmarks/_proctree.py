"""Wall time, CPU time and peak memory of a command's whole process tree.

Used by the benchmarks that compare commands which start helper processes (the artifact
writer, ``git``, sweep workers) with commands that do not (a plain script): timing only the
first process would leave the helpers' work out.

* **CPU**: user + sys of the command and every descendant, from ``os.wait4`` on the command
  (which includes the descendants it waited for, as ``RUSAGE_CHILDREN`` does) plus the
  ``wait4`` of every orphan it left. On Linux this process makes itself a *child subreaper*
  (:func:`become_subreaper`), so a descendant that outlives its parent (a helper told to exit
  but not waited for, a detached daemon) is handed to this process instead of to init, and
  its CPU is counted when it ends instead of being lost.
* **Peak tree memory**: the largest *sum* of RSS over all live descendants of this process
  (the command, its children, orphans handed to us), sampled every ``interval`` seconds on a
  thread with psutil. Shared pages (libraries mapped by several processes, copy-on-write
  after ``fork``) count once per process, as ``ps`` and ``top`` count them. A peak shorter
  than the interval can be missed.
* **Largest single process**: the largest ``ru_maxrss`` among the command and its
  descendants (the kernel's exact high-water mark, not sampled), for reference.

Only one command may be measured at a time, and this process must not start other children
meanwhile: everything this process reaps while a command runs is attributed to it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

import psutil

MIB = 1024 * 1024
_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Make orphaned descendants of this process's children its own children (Linux only).

    Returns whether it worked; elsewhere an orphan's CPU is not counted (see module doc).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _last_pid() -> bytes | None:
    """The last process id the kernel handed out (``/proc/loadavg``), or None."""
    try:
        with open("/proc/loadavg", "rb") as fh:
            return fh.read().rsplit(b" ", 1)[-1]
    except OSError:
        return None


class _Sampler(threading.Thread):
    """Samples the summed RSS of this process's descendants until :attr:`done` is set.

    Listing descendants means reading every process's ``/proc/PID/stat`` (~1 ms with ~100
    processes); it is repeated only when a process or thread was created since the last
    sample (the kernel's last pid changed). In between, only the known processes'
    ``statm`` are read.
    """

    def __init__(self, interval: float) -> None:
        super().__init__(name="tree-rss-sampler", daemon=True)
        self.interval = interval
        self.done = threading.Event()
        self.me = psutil.Process()
        self.procs: dict[int, psutil.Process] = {}
        self.marker: bytes | None = b""
        self.peak = 0
        self.seen: set[int] = set()
        self.samples = 0
        self.cpu = 0.0  # this thread's own CPU seconds: the measurement's overhead

    def run(self) -> None:
        t0 = time.thread_time()
        due = time.perf_counter()
        while True:
            self.sample()
            due += self.interval
            delay = due - time.perf_counter()
            if delay < 0:
                due, delay = time.perf_counter(), 0.0
            if self.done.wait(delay):
                break
        self.cpu = time.thread_time() - t0

    def sample(self) -> None:
        marker = _last_pid()
        if marker is None or marker != self.marker:
            self.marker = marker
            try:
                kids = self.me.children(recursive=True)
            except psutil.Error:
                kids = []
            self.procs = {p.pid: self.procs.get(p.pid, p) for p in kids}
            self.seen.update(self.procs)
        total = 0
        for pid, proc in list(self.procs.items()):
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                self.procs.pop(pid, None)
        self.samples += 1
        if total > self.peak:
            self.peak = total


@dataclass
class Measured:
    """One command's figures (seconds and bytes)."""

    wall: float  # until the command itself exited
    cpu: float  # user + sys of the whole tree
    user: float
    sys: float
    peak_tree_rss: int  # sampled peak of the summed RSS of the tree
    max_rss: int  # ru_maxrss of the largest single process in the tree
    processes: int  # distinct processes the sampler saw (short-lived ones may be missed)
    orphans: int  # descendants reaped after the command exited
    still_running: int  # orphans still alive when we stopped waiting (not counted)
    samples: int
    sampler_cpu: float
    returncode: int
    stdout: str
    stderr: str


def measure(cmd: list[str], *, cwd: str | os.PathLike | None = None,
            env: dict[str, str] | None = None, interval: float = 0.01,
            orphan_timeout: float = 120.0) -> Measured:
    """Run ``cmd`` to completion and measure its whole process tree (see module doc)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        sampler = _Sampler(interval)
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=err)
        sampler.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            proc.kill()
            proc.wait()
            sampler.done.set()
            raise
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        usages = [usage]
        still_running = 0
        deadline = time.monotonic() + orphan_timeout
        while True:  # orphans handed to us (subreaper): wait for them, count their CPU
            try:
                pid, _, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid:
                usages.append(usage)
            elif time.monotonic() > deadline:
                still_running = len(psutil.Process().children())
                break
            else:
                time.sleep(0.005)
        sampler.done.set()
        sampler.join()
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
    user = sum(u.ru_utime for u in usages)
    system = sum(u.ru_stime for u in usages)
    return Measured(
        wall=wall, cpu=user + system, user=user, sys=system, peak_tree_rss=sampler.peak,
        max_rss=max(u.ru_maxrss for u in usages) * 1024,  # KiB on Linux
        processes=len(sampler.seen), orphans=len(usages) - 1, still_running=still_running,
        samples=sampler.samples, sampler_cpu=sampler.cpu, returncode=proc.returncode,
        stdout=stdout, stderr=stderr)

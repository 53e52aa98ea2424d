"""A process that imports a sweep's libraries while Hydra composes the sweep.

A sweep's serial start is two jobs that do not depend on each other: Hydra composing the
spec and every member's config (about 0.2 s a member, in the sweep's process), and importing
pandas, pyarrow and scikit-learn (about 3 s). On one core they add up; a :class:`ForkServer`
runs the second on another core. It is forked at the start of ``specloop run -m`` (before
Hydra is imported), imports :data:`PRELOAD`, and waits. When the ``specloop`` launcher gets
its members it hands them to the server (:meth:`ForkServer.call`), which warms up and forks
the members from itself: they inherit the imports instead of paying for them, and the
sweep's process did not wait for them either.

The server is a plain ``os.fork`` with a pipe: calls are pickled ``(function, args)`` pairs
and answers are ``("ok", value)`` or ``("error", exception)``. It ends when the sweep's
process closes the pipe or exits, and leaves with ``os._exit``, so nothing the sweep's
process registered (``atexit``, buffered output) runs twice. Where ``fork`` does not exist,
nothing is started and the launcher works in the sweep's own process.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
from multiprocessing.connection import Connection, Pipe
from typing import Any, Callable, Sequence

# What a specloop run imports on its way to fitting a model, in import order. A module that
# is not installed is skipped: the member that needs it reports that itself. What only a
# component knows how to import (its serializer: the sklearn plugin imports skops with its
# remembered trusted-type lists) is left to the components' ``warm_up()`` in the warm-up.
PRELOAD = ("omegaconf", "hydra.core.utils", "numpy", "pandas",
           "pyarrow.parquet", "scipy.stats", "sklearn.base", "sklearn.pipeline",
           "sklearn.compose", "sklearn.impute", "sklearn.preprocessing", "sklearn.metrics",
           "sklearn.model_selection", "specloop._pipeline", "specloop._session",
           "specloop._tabular")

_current: ForkServer | None = None


class ForkServerError(RuntimeError):
    """The server could not take the call: it ended, or the call does not pickle."""


class ForkServer:
    """A forked process that imported :data:`PRELOAD` and runs the calls it is sent."""

    def __init__(self, pid: int, conn: Connection) -> None:
        self.pid = pid
        self.conn = conn

    @classmethod
    def start(cls, preload: Sequence[str] = PRELOAD) -> ForkServer | None:
        """Fork the server (it imports ``preload``); ``None`` where ``fork`` is missing.

        The server becomes :func:`current` for this process until :meth:`close`.
        """
        global _current
        if not hasattr(os, "fork"):
            return None
        ours, theirs = Pipe(duplex=True)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the server
            ours.close()
            _serve(theirs, preload)  # never returns
        theirs.close()
        _current = cls(pid, ours)
        return _current

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` in the server; return its value or raise its exception.

        ``fn`` must be a module-level function (it travels by name) and ``args`` picklable.

        Raises:
            ForkServerError: the call does not pickle (nothing was sent), or the server
                ended before answering.
        """
        import pickle

        try:
            payload = pickle.dumps((fn, args), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # noqa: BLE001 - any pickling failure
            raise ForkServerError(f"the call does not pickle: {type(exc).__name__}: {exc}") \
                from None
        try:
            self.conn.send_bytes(payload)
            status, value = self.conn.recv()
        except (EOFError, OSError) as exc:
            raise ForkServerError(f"the fork server (pid {self.pid}) ended without answering"
                                  f" ({type(exc).__name__})") from None
        if status == "error":
            raise value
        return value

    def close(self) -> None:
        """Stop the server (idle or not) and reap it; it is no longer :func:`current`."""
        global _current
        if _current is self:
            _current = None
        self.conn.close()
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass


def current() -> ForkServer | None:
    """The server this process started and has not closed, if any."""
    return _current


def _serve(conn: Connection, preload: Sequence[str]) -> None:
    """The server's body: import, then answer calls until the pipe closes."""
    global _current
    _current = None
    code = 0
    try:
        for name in preload:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - not installed or broken: the member says so
                pass
        while True:
            try:
                fn, args = conn.recv()
            except (EOFError, OSError):
                break
            try:
                answer = ("ok", fn(*args))
            except BaseException as exc:  # noqa: BLE001 - the caller raises it
                answer = ("error", exc)
            try:
                conn.send(answer)
            except Exception as exc:  # an answer that does not pickle
                conn.send(("error", RuntimeError(f"the fork server could not send its "
                                                 f"answer: {type(exc).__name__}: {exc}")))
    except BaseException:  # noqa: BLE001 - the sweep's process sees the pipe close
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)

"""The fork server a sweep starts before Hydra composes: it imports, then runs what the
sweep's process sends it, and it never outlives that process's use of it."""

from __future__ import annotations

import os
import signal
import sys
import time

import pytest

from specloop import _fork_server
from specloop._fork_server import ForkServer, ForkServerError

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")


def answer(x: int) -> tuple[int, int, bool]:
    """Runs in the server: its pid, and whether the preloaded module is imported there."""
    return x * 2, os.getpid(), "json.decoder" in sys.modules


def fail(message: str) -> None:
    raise ValueError(message)


def die() -> None:
    os._exit(5)


@pytest.fixture
def server():
    srv = ForkServer.start(preload=("json.decoder", "no_such_module_anywhere"))
    yield srv
    srv.close()


def test_runs_calls_in_its_own_process_after_importing(server):
    assert _fork_server.current() is server
    doubled, pid, imported = server.call(answer, 21)
    assert doubled == 42 and pid == server.pid != os.getpid()
    assert imported  # a missing module in the preload list is skipped, not fatal
    assert server.call(answer, 1)[0] == 2  # and it keeps serving


def test_an_exception_in_the_server_is_raised_here(server):
    with pytest.raises(ValueError, match="bad member"):
        server.call(fail, "bad member")
    assert server.call(answer, 2)[0] == 4


def test_a_call_that_does_not_pickle_is_refused_before_sending(server):
    with pytest.raises(ForkServerError, match="does not pickle"):
        server.call(answer, lambda: None)
    assert server.call(answer, 3)[0] == 6  # nothing half-sent: the pipe still works


def test_a_dead_server_is_an_error_not_a_hang(server):
    with pytest.raises(ForkServerError, match="ended without answering"):
        server.call(die)


def test_close_stops_and_reaps_the_server():
    srv = ForkServer.start(preload=())
    pid = srv.pid
    srv.close()
    assert _fork_server.current() is None
    with pytest.raises(ChildProcessError):  # reaped: no zombie left behind
        os.waitpid(pid, os.WNOHANG)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_the_server_ends_when_its_caller_goes_away():
    srv = ForkServer.start(preload=())
    srv.conn.close()  # as when the sweep's process dies: the server reads EOF
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pid, status = os.waitpid(srv.pid, os.WNOHANG)
        if pid:
            assert os.waitstatus_to_exitcode(status) == 0
            break
        time.sleep(0.05)
    else:
        os.kill(srv.pid, signal.SIGKILL)
        pytest.fail("the server did not exit after its pipe closed")
    _fork_server._current = None

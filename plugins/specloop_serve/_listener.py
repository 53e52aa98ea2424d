"""The listening socket of ``specloop serve``, bound before anything is loaded.

Binding first turns a busy port into one line and exit code 3 within a second, instead of a
server log line after the model has loaded; with one worker the bound socket is handed to
uvicorn, so nothing can take the port in between.
"""

from __future__ import annotations

import errno
import socket

from specloop import ConfigError, SpecloopError

#: ``specloop serve``'s exit code when the port is in use (a busy resource, not a wrong spec).
EXIT_PORT_IN_USE = 3


class PortInUseError(SpecloopError):
    """Another process listens on the port ``specloop serve`` was asked to use.

    Args:
        host: The interface.
        port: The port.
    """

    exit_code = EXIT_PORT_IN_USE

    def __init__(self, host: str, port: int) -> None:
        other = 8001 if port != 8001 else 8002
        super().__init__(f"port {port} on {host} is busy (address already in use): serve on "
                         f"another with --port, e.g. --port {other} (--port 0 picks a free one)")
        self.host, self.port = host, port


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``(host, port)`` as uvicorn binds it (``SO_REUSEADDR``).

    Args:
        host: An interface of this machine (IPv6 when it holds a colon).
        port: The port; 0 picks a free one (read it back with ``getsockname``).

    Returns:
        The bound, not yet listening, socket.

    Raises:
        PortInUseError: the port is in use (exit code 3).
        ConfigError: the host is not an address of this machine, or the port needs
            privileges (exit code 2).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUseError(host, port) from None
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise ConfigError(f"no permission to listen on port {port}", key="--port",
                              got=port, expected="a port above 1023 (or run with the right "
                                                 "to bind low ports)",
                              fix="pass --port 8000") from None
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                          key="--host", got=host, expected="an address of this machine, e.g. "
                                                           "127.0.0.1 or 0.0.0.0",
                          fix="pass --host 127.0.0.1") from None
    return sock

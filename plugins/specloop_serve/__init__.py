"""Real-time serving for specloop: ``specloop serve``, request logs, ``local_server``.

Components: ``deploy/local_server`` (a managed serving process for the champion; the deploy
stage succeeds once ``/ready`` answers) and ``data/serving_logs`` (logged traffic as the
loop's incoming batches). Commands: ``specloop serve``, ``specloop monitor --from-logs`` and
``specloop server start|status|stop``.

This module is what the ``specloop.plugins`` entry point loads: it declares schemas, lazy
factory paths and argument parsers only. FastAPI and uvicorn are imported when a server
starts, pandas when logs are read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from specloop import ComponentSpec, DataConf, Interval, Options, Stage, hookimpl, param

_HINT = "pip install 'specloop[serve]'"


@dataclass
class LocalServerConf:
    """A serving process on this machine, managed by the deploy stage."""

    host: str = param("127.0.0.1", help="interface to bind (loopback unless you mean it)")
    port: int = param(8000, check=Interval(int, 0, 65535),
                      help="TCP port (0: a free port chosen at start)")
    workers: int = param(1, check=Interval(int, 1, 64), help="uvicorn worker processes")
    alias: str = param("champion", help="the registry alias the server follows")
    runtime: str = param("sklearn", check=Options("sklearn", "onnx"),
                         help="what scores requests: the pipeline, or its parity-checked ONNX "
                              "export (extra onnx)")
    ready_timeout: float = param(60.0, check=Interval(float, 0, None, closed="neither"),
                                 help="seconds to wait for /ready before the stage fails")
    state_dir: str = param(".specloop-serve",
                           help="folder (relative to the project) for the pid file and log")


@dataclass
class ServingLogsConf(DataConf):
    """Sealed request-log parts written by ``specloop serve`` (one loop batch per part)."""

    target: str | None = param(None, help="the label column, if logged (as loop.incoming it is "
                                          "inherited from data)")
    model: str | None = param(None, help="model whose logs to read (default: project.name)")
    min_rows: int = param(1, check=Interval(int, 1, None),
                          help="skip parts with fewer logged rows than this")


@hookimpl
def specloop_register_components():
    """Register the local server deploy target and the serving-log data source."""
    return [
        ComponentSpec(Stage.DEPLOY, "local_server", "specloop_serve._local_server:LocalServer",
                      LocalServerConf, requires=("fastapi", "uvicorn"), install_hint=_HINT,
                      description="a managed local HTTP server following the champion"),
        ComponentSpec(Stage.DATA, "serving_logs", "specloop_serve._source:ServingLogsSource",
                      ServingLogsConf, description="logged serving traffic, one batch per "
                                                   "sealed log part"),
    ]


@hookimpl
def specloop_add_conf_dirs():
    """Ship the ``deploy/local_server`` preset."""
    return [str(Path(__file__).parent / "conf")]


@hookimpl
def specloop_settings_schema():
    """``plugins.serve``: the server's settings."""
    from ._settings import ServeSettings

    return ServeSettings


@hookimpl
def specloop_add_cli_commands(subparsers):
    """Add ``serve``, ``monitor`` and ``server``."""
    from ._cli import add_commands

    add_commands(subparsers)

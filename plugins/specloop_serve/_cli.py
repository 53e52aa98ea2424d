"""``specloop serve``, ``specloop monitor --from-logs`` and ``specloop server``."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import tempfile
from typing import Any


def _out(text: str = "") -> None:
    print(text, flush=True)


def _table(rows: list[dict], columns: list[str]) -> str:
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in columns]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(str(r[c]).ljust(w) for c, w in zip(columns, widths)).rstrip()
              for r in rows]
    return "\n".join(lines)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--project", default=".", metavar="DIR",
                   help="project folder holding conf/config.yaml (default: current folder)")
    p.add_argument("overrides", nargs="*", metavar="OVERRIDE",
                   help="Hydra overrides, e.g. store.url=/data/store")


def add_commands(sub: Any) -> None:
    """Register the commands on the ``specloop`` sub-parser collection."""
    p = sub.add_parser("serve", help="serve a model version over HTTP (FastAPI + uvicorn)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--alias", default=None,
                       help="follow this alias, reloading when it moves (default: champion)")
    which.add_argument("--version", type=int, default=None, dest="model_version",
                       help="serve this version, pinned (no reload)")
    p.add_argument("--host", default="127.0.0.1", help="interface (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default: 8000)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default: 1)")
    p.add_argument("--runtime", choices=("sklearn", "onnx"), default="sklearn",
                   help="score with the scikit-learn pipeline (default) or its ONNX export "
                        "in ONNX Runtime (extra onnx)")
    _common(p)
    p.set_defaults(handler=cmd_serve)

    p = sub.add_parser("monitor", help="drift of logged serving traffic against the "
                                       "champion's reference")
    p.add_argument("--from-logs", action="store_true", required=True,
                   help="read the request logs 'specloop serve' wrote to the store")
    p.add_argument("--since", default=None, help="ISO time or age (2h, 30m, 7d); default: all")
    p.add_argument("--until", default=None, help="ISO time or age; default: now")
    p.add_argument("--served-version", type=int, default=None,
                   help="only traffic that this version scored")
    p.add_argument("--alias", default="champion", help="whose reference to compare against")
    p.add_argument("--json", action="store_true")
    p.add_argument("--fail-on-drift", action="store_true",
                   help="exit with code 1 when the data set drifted")
    _common(p)
    p.set_defaults(handler=cmd_monitor)

    srv = sub.add_parser("server", help="the managed local server (deploy: local_server)")
    ssub = srv.add_subparsers(dest="server_cmd", metavar="start|status|stop", required=True)
    for name, text in (("start", "start it for the champion and wait until it is ready"),
                       ("status", "is it running, ready, and which version it serves"),
                       ("stop", "stop it gracefully (request logs are sealed)")):
        p = ssub.add_parser(name, help=text)
        _common(p)
        p.add_argument("--json", action="store_true")
    srv.set_defaults(handler=cmd_server)


#: What ``specloop serve`` imports, all installed by the ``serve`` extra.
SERVING_STACK = ("fastapi", "uvicorn", "orjson")


def _needs_serving_stack() -> None:
    """Import the serving stack, or fail naming what is missing and the extra to install.

    An import (rather than a look-up) also catches a package that is there but broken, e.g.
    fastapi without one of its own dependencies.
    """
    from specloop import PluginError

    missing = []
    for name in SERVING_STACK:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            missing.append(name if exc.name in (None, name) else f"{name} (it cannot import "
                                                                 f"{exc.name})")
    if missing:
        raise PluginError(f"specloop serve needs {', '.join(missing)}, which "
                          f"{'is' if len(missing) == 1 else 'are'} not installed",
                          plugin="serve", fix="pip install 'specloop[serve]'")


def _needs_onnx() -> None:
    """``--runtime onnx`` needs the onnx plugin and its extra (a ConfigError, exit 2)."""
    from specloop import ConfigError

    try:
        from specloop_onnx import require
    except ImportError:
        raise ConfigError("--runtime onnx needs the onnx plugin, which is not installed or "
                          "is disabled", key="--runtime", fix="pip install 'specloop[onnx]'; "
                          "check SPECLOOP_DISABLE_PLUGINS and plugins.disable") from None
    require(key="--runtime", where="command line: --runtime onnx")


def _context(args: argparse.Namespace) -> Any:
    from specloop import make_context

    return make_context(args.project, args.overrides, echo=_out)


def cmd_serve(args: argparse.Namespace) -> int:
    """``specloop serve``: check what would be served, bind the port, then run uvicorn.

    Exit codes: 0 after a clean stop; 1 when the serving stack is not installed or the server
    fails to start; 2 for a wrong flag, setting or version; 3 when the port is in use.
    """
    from specloop import ConfigError

    for flag, value, lo in (("--port", args.port, 0), ("--workers", args.workers, 1)):
        if not lo <= value <= (65535 if flag == "--port" else 64):
            raise ConfigError(f"bad value for {flag}", key=flag, got=value,
                              expected="a port in [0, 65535]" if flag == "--port"
                              else "an integer in [1, 64]", fix=f"pass a valid {flag}")
    _needs_serving_stack()
    if args.runtime == "onnx":
        _needs_onnx()
    from ._listener import bind
    from ._settings import OPTIONS_ENV

    sock = bind(args.host, args.port)  # first: a busy port fails before anything is loaded
    try:
        port = sock.getsockname()[1]
        settings, record, options, store_root = _what_to_serve(args)
        alias = options["alias"]
        if args.host not in ("127.0.0.1", "localhost", "::1") and not settings.token:
            _out(f"note: binding to {args.host}: /predict is reachable from other machines; "
                 "the admin routes stay off without a token")
        # several workers sum their /metrics counters through snapshots in a folder of their own
        metrics_dir = tempfile.mkdtemp(prefix="specloop-metrics-") if args.workers > 1 else None
        os.environ[OPTIONS_ENV] = json.dumps({**options, "metrics_dir": metrics_dir})
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        which = f"{alias} → v{record['version']}" if alias else f"v{record['version']} (pinned)"
        _out(f"serving {record.get('name', options['project'])} {which} on "
             f"http://{args.host}:{port} ({args.workers} worker(s)); request logs: "
             f"{store_root + '/logs' if settings.log.enabled else 'off'}; "
             f"admin routes: {'on' if settings.token else 'off'}; runtime: {args.runtime}")
        try:
            return _run_uvicorn(sock, args.host, port, args.workers)
        finally:
            if metrics_dir is not None:
                shutil.rmtree(metrics_dir, ignore_errors=True)
    finally:
        sock.close()


def _what_to_serve(args: argparse.Namespace) -> tuple[Any, dict, dict, str]:
    """The settings, registry record, worker options (``alias`` ``None``: pinned) and store
    root; raises before anything starts when the settings are wrong or there is no such
    version."""
    from specloop import RegistryError

    from ._settings import serve_settings

    ctx = _context(args)
    try:
        settings = serve_settings(ctx.spec)
        alias = None if args.model_version is not None else (args.alias or "champion")
        if alias is None:
            record = ctx.registry.get(ctx.model_name, args.model_version)
        else:
            record = ctx.registry.resolve(ctx.model_name, alias)
            if record is None:
                raise RegistryError(f"model {ctx.model_name!r} has no {alias!r} version to "
                                    "serve", fix="run 'specloop run' (a version that passes "
                                    "the gate becomes champion), or pass --version N")
        options = {"project": str(ctx.project_dir), "overrides": list(ctx.spec.overrides),
                   "alias": alias, "version": args.model_version,
                   "runtime": getattr(args, "runtime", "sklearn")}
        store_root = ctx.store.root
    finally:
        ctx.close()
    return settings, record, options, store_root


def _run_uvicorn(sock: Any, host: str, port: int, workers: int) -> int:
    """Serve until stopped; 0 after a clean stop, 1 when the server did not start.

    One worker is served on ``sock`` itself. Several are uvicorn's supervisor, which binds
    in this process (``sock`` is released just before, so the window is a few lines long).
    uvicorn's own exit code for a failed start is 3; it is 1 here, as 3 means a busy port.
    """
    import uvicorn

    options = dict(factory=True, workers=workers,
                   http="httptools" if importlib.util.find_spec("httptools") else "h11",
                   loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
                   log_level="warning", access_log=False, timeout_graceful_shutdown=10,
                   # our own header limit answers in the server's error shape (_request)
                   h11_max_incomplete_event_size=64 * 1024)
    app = "specloop_serve._app:create_app"
    try:
        if workers == 1:
            server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, **options))
            server.run(sockets=[sock])
            return 0 if server.started else 1
        sock.close()
        uvicorn.run(app, host=host, port=port, **options)
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it shut down for
        return 0
    except SystemExit as exc:
        return 0 if exc.code in (0, None) else 1
    return 0


def cmd_monitor(args: argparse.Namespace) -> int:
    """``specloop monitor --from-logs``: the spec's monitor on logged traffic."""
    from specloop import ConfigError, RegistryError

    from ._logs import inputs_frame, parse_when, read_logs

    ctx = _context(args)
    try:
        monitor_r = ctx.spec.components.get("monitor")
        if monitor_r is None:
            raise ConfigError("the spec declares no monitor", key="monitor",
                              file=ctx.spec.provenance.where("monitor"),
                              expected="a monitor node (e.g. kind: drift)",
                              fix="add '- monitor: drift' to the defaults of conf/config.yaml, "
                                  "or pass monitor=drift")
        when = {}
        for flag in ("since", "until"):
            try:
                when[flag] = parse_when(getattr(args, flag))
            except ValueError as exc:
                raise ConfigError(f"bad value for --{flag}", key=f"--{flag}",
                                  got=getattr(args, flag), expected="an ISO date/time or an "
                                  "age such as 2h", fix=str(exc)) from None
        name = ctx.model_name
        champion = ctx.registry.resolve(name, args.alias)
        if champion is None:
            raise RegistryError(f"model {name!r} has no {args.alias!r}, so there is no "
                                "reference to compare with", fix="run 'specloop run' first")
        records = read_logs(ctx.store, name, since=when["since"], until=when["until"],
                            version=args.served_version)
        if not records:
            span = " since " + when["since"].isoformat(timespec="seconds") if when["since"] \
                else ""
            raise ConfigError(f"no logged requests for model {name!r}{span}",
                              key="--since" if when["since"] else "--from-logs",
                              expected=f"request logs in {ctx.store.root}/logs/{name}",
                              fix="send traffic to 'specloop serve' (with plugins.serve.log."
                                  "enabled: true), or widen --since/--until")
        store = ctx.store
        import io

        import pandas as pd

        reference = pd.read_parquet(io.BytesIO(store.get(champion["reference_key"],
                                                         "train.parquet")))
        columns = json.loads(store.get(champion["reference_key"], "columns.json"))
        features = columns["features"]
        current = inputs_frame(records, features)
        report = monitor_r.build().check(reference[features], current, columns=features,
                                         categorical=columns["categorical"])
    finally:
        ctx.close()
    versions: dict[str, int] = {}
    for r in records:
        versions[str(r.get("version"))] = versions.get(str(r.get("version")), 0) + 1
    first, last = records[0]["ts"], records[-1]["ts"]
    if args.json:
        _out(json.dumps({"model": name, "reference_version": champion["version"],
                         "rows": len(records), "first": first, "last": last,
                         "served_by": versions, "report": report}, indent=2, default=str))
    else:
        _out(f"{name}: {len(records)} logged row(s) from {first} to {last} "
             f"(served by {', '.join(f'v{v}: {n}' for v, n in versions.items())}) "
             f"vs the training reference of {args.alias} v{champion['version']}")
        rows = []
        for c in report.get("columns", []):
            stat = c.get("statistic")
            rows.append({"feature": c["column"], "type": c.get("type"),
                         "method": c.get("method"),
                         "statistic": "-" if stat is None else f"{stat:.4g}",
                         "threshold": "-" if c.get("threshold") is None
                         else f"{c['threshold']:g}",
                         "psi": "-" if c.get("psi") is None else f"{c['psi']:.3f}",
                         "drifted": "yes" if c.get("drifted") else "no"})
        _out(_table(rows, ["feature", "type", "method", "statistic", "threshold", "psi",
                           "drifted"]))
        verdict = "DRIFT" if report.get("drifted") else "no data drift"
        _out(f"{verdict}: {report.get('n_drifted')} of {report.get('n_columns')} feature(s) "
             f"drifted (share {report.get('drift_share', 0):.2f}, threshold "
             f"{report.get('threshold_share', 0):g})")
    return 1 if args.fail_on_drift and report.get("drifted") else 0


def cmd_server(args: argparse.Namespace) -> int:
    """``specloop server start|status|stop``."""
    from specloop import ConfigError, RegistryError

    ctx = _context(args)
    try:
        dep = ctx.spec.components.get("deploy")
        if dep is None or dep.spec.kind != "local_server":
            raise ConfigError("the spec does not deploy to a local server",
                              key="deploy.kind", file=ctx.spec.provenance.where("deploy"),
                              got=dep.spec.kind if dep else None, expected="local_server",
                              fix="pass deploy=local_server, or set it in conf/config.yaml")
        comp = dep.build()
        if args.server_cmd == "start":
            champion = ctx.registry.resolve(ctx.model_name, dep.config.alias)
            if champion is None:
                raise RegistryError(f"model {ctx.model_name!r} has no {dep.config.alias!r}",
                                    fix="run 'specloop run' first")
            doc = comp.start(ctx, champion["version"])
            text = f"serving v{doc['version']} at {doc['location']} (pid {doc['pid']})"
        elif args.server_cmd == "stop":
            doc = comp.stop(ctx)
            text = f"stopped the server at {doc['url']} (pid {doc['pid']})" if doc["stopped"] \
                else "no managed server is running"
        else:
            doc = comp.status(ctx)
            if doc["running"]:
                text = (f"running: pid {doc['pid']} at {doc['url']}, "
                        f"{'ready' if doc['ready'] else 'not ready'}, serving "
                        f"v{doc['version']} ({doc.get('alias') or 'pinned'}); log {doc['log']}")
            else:
                text = "not running"
    finally:
        ctx.close()
    _out(json.dumps(doc, indent=2, default=str) if args.json else text)
    if args.server_cmd == "status" and not doc["running"]:
        return 1
    return 0



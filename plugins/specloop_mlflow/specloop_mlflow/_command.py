"""``specloop mlflow sync``: mirror what the record holds, after MLflow was away."""

from __future__ import annotations

import argparse

from specloop import ConfigError, PluginError, make_context


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``mlflow sync``."""
    top = subparsers.add_parser("mlflow", help="the MLflow bridge (specloop-mlflow)")
    sub = top.add_subparsers(dest="mlflow_cmd", metavar="sync", required=True)
    p = sub.add_parser("sync", help="mirror every recorded run, version and alias to MLflow; "
                                    "what is mirrored already is left as it is")
    p.add_argument("--project", default=".", metavar="DIR",
                   help="project folder holding conf/config.yaml (default: current folder)")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    p.add_argument("overrides", nargs="*", metavar="OVERRIDE", help="Hydra overrides")
    p.set_defaults(handler=sync)


def sync(args: argparse.Namespace) -> int:
    """``specloop mlflow sync``."""
    from ._bridge import failure, public_uri, sync as mirror_all

    ctx = make_context(args.project, args.overrides)
    try:
        settings = ctx.settings("mlflow")
        if settings is None or not settings.tracking_uri:
            raise ConfigError("plugins.mlflow.tracking_uri is not set: nothing to mirror to",
                              key="plugins.mlflow.tracking_uri",
                              fix="set it in conf/config.yaml or on the command line, e.g. "
                                  "plugins.mlflow.tracking_uri=http://127.0.0.1:5000")
        try:
            done = mirror_all(ctx, settings)
        except PluginError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported without MLflow's raw message
            raise failure(settings, "record", exc) from None
    finally:
        ctx.close()
    if not args.quiet:
        print(f"mirrored to {public_uri(settings.tracking_uri)}: {done['runs']} runs, "
              f"{done['versions']} versions, {done['aliases']} aliases")
    return 0

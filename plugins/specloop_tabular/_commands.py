"""``specloop export dvc`` and ``specloop dvc-stage``: DVC drives a project's stages.

``export dvc`` writes ``dvc.yaml`` (see ``_export``); each of its stages runs ``specloop
dvc-stage --until <stage> --params params.yaml --write-keys <marker>``, which applies the
params DVC changed (``dvc exp run -S key=value``) as overrides, runs the pipeline up to that
stage through the public API, and writes the marker DVC tracks.
"""

from __future__ import annotations

import argparse
from pathlib import Path

STAGES = ("data", "split", "train", "evaluate", "register", "deploy")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--project", default=".", metavar="DIR",
                   help="project folder holding conf/config.yaml (default: current folder)")
    p.add_argument("overrides", nargs="*", metavar="OVERRIDE", help="Hydra overrides")


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``export dvc`` and ``dvc-stage``."""
    exp = subparsers.add_parser("export", help="export the project to another tool")
    esub = exp.add_subparsers(dest="export_cmd", metavar="dvc", required=True)
    p = esub.add_parser("dvc", help="write dvc.yaml and params.yaml that run specloop")
    _common(p)
    p.set_defaults(handler=export)
    p = subparsers.add_parser("dvc-stage", help="one stage of an exported dvc.yaml: run up to "
                                                "a stage with the params DVC changed")
    p.add_argument("--until", choices=STAGES, required=True, help="the last stage to run")
    p.add_argument("--params", default="params.yaml", metavar="FILE",
                   help="apply the values changed in this params file since the export")
    p.add_argument("--write-keys", required=True, metavar="FILE",
                   help="write the stage keys (and metrics) to FILE, relative to the project")
    _common(p)
    p.set_defaults(handler=stage)


def export(args: argparse.Namespace) -> int:
    """``specloop export dvc``."""
    from specloop import make_context

    from ._export import export_dvc

    ctx = make_context(args.project, args.overrides, echo=print)
    try:
        written = export_dvc(ctx)
    finally:
        ctx.close()
    for path in written:
        print(f"wrote {path}")
    project = written[0].parent
    if not any((d / ".dvc").is_dir() for d in (project, *project.parents)):
        print(f"note: {project} is not inside a DVC repository; dvc repro needs one "
              "(git init && dvc init there)")
    print("next: dvc repro   (or: dvc exp run -S model.params.<key>=<value>)")
    return 0


def stage(args: argparse.Namespace) -> int:
    """``specloop dvc-stage``."""
    from specloop import make_context, run

    from ._export import params_overrides, write_keys

    overrides = [*params_overrides(Path(args.project), args.params), *args.overrides]
    ctx = make_context(args.project, overrides, echo=print)
    try:
        doc = run(ctx, until=args.until)
    finally:
        ctx.close()
    write_keys(Path(args.project) / args.write_keys, doc)
    print(f"run {doc['run_id']}: " + ", ".join(
        f"{r['stage']} {r['action']}" for r in doc.get("rows", [])))
    return 0

"""The ``specloop`` command line: thin wrappers over the engine. Errors print without a
traceback (unless ``SPECLOOP_FULL_ERROR=1``) and exit with their class's code (errors.py):
2 a user error, 1 a stage or plugin failure naming stage, component and distribution."""

from __future__ import annotations

import argparse
import atexit
import gc
import json
import os
import sys
import traceback
import warnings
from contextlib import closing, nullcontext
from functools import partial
from pathlib import Path
from typing import Any, Callable

from . import __version__
from . import _cli_records as records
from ._cli_records import JSON, command, emit, table
from ._manager import call_hook, make_plugin_manager
from ._redact import redact, secret_fields
from .errors import ConfigError, SpecloopError

# Each command imports the engine modules it needs when it runs: they add ~0.07 s (Hydra,
# pandas and the store more) to `specloop plugins` and `--help`, which stay well under 0.5 s.


_out = partial(print, flush=True)


def _err(text: str) -> None:  # sys.stderr looked up at each call: callers may redirect it
    print(text, file=sys.stderr, flush=True)


def _project(args: argparse.Namespace) -> closing:
    """The run context of ``--project`` and the overrides, closed when the command is done."""
    from ._context import make_context

    return closing(make_context(args.project, args.overrides, echo=_out))


# -- commands -------------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    """``specloop run``: the pipeline up to deploy (``-m``: a Hydra multirun)."""
    if args.multirun:
        from ._sweep import run_sweep

        code, folder = run_sweep(Path(args.project), args.overrides, _out)
        _report(args, None, "sweep", folder)
        return code
    from ._runner import execute

    with _project(args) as ctx:
        doc = execute(ctx, until=args.until)
        _out(f"run {doc['run_id']}")
        _out(table([{**r, "seconds": f"{r['seconds']:.2f}"} for r in doc["rows"]],
                   ["stage", "action", "seconds", "component"]))
        if doc.get("metrics"):
            _out("metrics: " + ", ".join(f"{k}={v:.4f}" for k, v in doc["metrics"].items()))
        if doc.get("gate"):
            _out(f"gate: {doc['gate']['summary']}")
        for change in doc.get("alias_changes", []):
            _out(f"alias {change['alias']}: " + (f"v{change['from']} " if change["from"]
                                                 else "") + f"→ v{change['to']}")
        if doc.get("deployment"):
            where = doc["deployment"].get("location")
            _out(f"deployed v{doc['deployment'].get('version', '?')}" + (
                f" to {where}" if where else ""))
        _report(args, ctx, "run")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    """``specloop plan``: what ``run`` would do, and why; nothing executes."""
    from ._runner import plan_run

    with _project(args) as ctx:
        rows = [p.row() for p in plan_run(ctx)]
    if args.json:
        return emit(_out, rows)
    _out(table(rows, ["stage", "component", "action", "reason"]))
    todo = [r["stage"] for r in rows if r["action"] == "run"]
    _out(f"{len(todo)} stage(s) would run" + (f": {', '.join(todo)}" if todo else
                                              " (everything is cached)"))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """``specloop validate``: the spec's checks (every command runs them), then those that
    would surface only once a stage runs: each component's ``preflight`` and the model's task
    against the data's (declared, known from the cached split, or inferred from the data)."""
    from ._spec import check_task

    with _project(args) as ctx:
        for name, resolved in ctx.spec.components.items():
            check = getattr(ctx.component(name), "preflight", None) if resolved else None
            if callable(check):
                check(ctx.node(name))
        ask = getattr(ctx.component("model"), "task", None)
        if callable(ask) and ask() is not None:  # only then is the data's task worth finding
            check_task(ctx.spec, ctx.component("model"), *_data_task(ctx))
    _out(f"spec OK: {ctx.spec.project.name} — " + ", ".join(
        f"{k}={r.spec.kind}" for k, r in ctx.spec.components.items() if r is not None))
    if args.show:
        import yaml  # loaded by Hydra already; at the top it would slow down --help

        _out(yaml.safe_dump(redact(ctx.spec.raw, secret_fields(ctx.spec)),
                            sort_keys=False).rstrip())
    return 0


def _data_task(ctx: Any) -> tuple[str, str]:
    """``(task, target)`` of the project's data, reading the data only when it must."""
    from ._runner import plan_run, snapshot
    from ._tabular import columns_for

    conf = ctx.spec.components["data"].config
    if conf.task != "auto":
        return conf.task, conf.target
    plans = {p.name: p for p in plan_run(ctx)}
    if plans["split"].cached:
        columns = json.loads(ctx.store.get(plans["split"].key, "columns.json"))
    else:
        columns = columns_for(snapshot(ctx, plans["data"].files), conf, ctx.spec.provenance.where)
    return columns["task"], columns["target"]


def cmd_loop(args: argparse.Namespace) -> int:
    """``specloop loop``: process the incoming batches (``--backtest``: compare policies)."""
    if args.backtest:
        from ._sweep import run_backtest

        code, folder = run_backtest(Path(args.project), args.overrides, _out, limit=args.limit)
        _report(args, None, "sweep", folder)
        return code
    if args.multirun:
        raise ConfigError("'specloop loop -m' sweeps only in a backtest", file="command line",
                          expected="--backtest with -m",
                          fix="add --backtest to replay the batches once per policy in "
                              "isolation, e.g. specloop loop --backtest -m "
                              "retrain=never,on_drift,on_decay")
    from ._loop import Loop, loop_status

    with _project(args) as ctx:
        if args.status:
            return emit(_out, loop_status(ctx))
        done = Loop(ctx).run(limit=args.limit)
        _report(args, ctx, "loop")
    retrains = sum(1 for r in done if r["retrain"])
    promoted = sum(1 for r in done if r.get("outcome") == "promoted")
    _out(f"processed {len(done)} batch(es): {retrains} retrain(s), {promoted} promotion(s)")
    return 0


def _report(args: argparse.Namespace, ctx: Any, what: str, source: Path | None = None) -> None:
    """``--report [FILE]``: the report of what the command did, by the plugin that writes it."""
    if args.report is None:
        return
    if ctx is None:  # after a sweep: the project as its members share it (store, registry)
        from hydra.core.override_parser.overrides_parser import OverridesParser

        parsed = OverridesParser.create().parse_overrides(args.overrides)
        args.overrides = [o.input_line for o in parsed if not o.is_sweep_override()]
    with nullcontext(ctx) if ctx is not None else _project(args) as ctx:
        path = call_hook(ctx.pm, "specloop_write_report", run=ctx, what=what, path=args.report
                         or None, source=None if source is None else str(source))
    if path is None:
        raise ConfigError("--report: no installed plugin writes reports", file="command line",
                          expected="a plugin implementing specloop_write_report (built in: "
                                   "report)", fix="enable the report plugin (plugins.disable, "
                                                  "SPECLOOP_DISABLE_PLUGINS) or install one")
    _out(f"report: {path}")


def cmd_plugins(args: argparse.Namespace) -> int:
    """``specloop plugins``: installed plugins and the components each provides."""
    pm = make_plugin_manager()
    by_plugin: dict[str, list] = {}
    for spec in pm.component_table().specs.values():
        by_plugin.setdefault(spec.plugin, []).append(spec)
    if args.json:
        return emit(_out, [{**row, "components": [
            {"stage": str(s.stage), "kind": s.kind, "version": s.version,
             "description": s.description, "missing": s.missing_requirements()}
            for s in by_plugin.get(row["name"], [])]} for row in pm.plugin_rows()])
    for row in pm.plugin_rows():
        _out(f"{row['name']}  ({row['distribution']})  {row['status']}")
        for s in sorted(by_plugin.get(row["name"], []), key=lambda s: (str(s.stage), s.kind)):
            missing = s.missing_requirements()
            note = f"  [needs: {s.install_hint or ', '.join(missing)}]" if missing else ""
            _out(f"    {str(s.stage) + '/' + s.kind:<24} {s.description}{note}")
    return 0


def cmd_records(fn: Callable[..., int], args: argparse.Namespace) -> int:
    with _project(args) as ctx:
        return fn(ctx, args, _out)


# -- parser ---------------------------------------------------------------------------------
REPORT = ("--report", {"nargs": "?", "const": "", "metavar": "FILE", "help": "write an HTML "
           "report at the end (a plugin's; default file: the plugin's choice)"})
BUILTIN = ("run", "plan", "validate", "loop", "plugins", "runs", "registry", "reproduce")


def build_parser(pm: Any = None) -> argparse.ArgumentParser:
    """The argument parser, with the sub-commands the plugins of ``pm`` add (if given)."""
    parser = argparse.ArgumentParser(
        prog="specloop", description="The MLOps loop as a declarative spec.")
    parser.add_argument("--version", action="version", version=f"specloop {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    stages = ("data", "split", "train", "evaluate", "register", "deploy")
    flag = {"action": "store_true"}
    command(sub, "run", "run the pipeline up to deploy",
            (("-m", "--multirun"), {**flag, "help": "Hydra multirun (sweep)"}),
            ("--until", {"choices": stages, "help": "the last stage to run"}), REPORT,
            handler=cmd_run)
    command(sub, "plan", "show what run would do, and why", JSON, handler=cmd_plan)
    command(sub, "validate", "compose and validate the spec",
            ("--show", {**flag, "help": "print the composed spec"}), handler=cmd_validate)
    command(sub, "loop", "score, monitor and retrain on incoming batches",
            ("--limit", {"type": int, "help": "process at most N batches"}),
            ("--backtest", {**flag, "help": "replay every batch once per sweep member in an "
                            "isolated registry and store; print a leaderboard of retraining "
                            "policies"}),
            (("-m", "--multirun"), {**flag, "help": "sweep (with --backtest), e.g. "
                                    "-m retrain=never,on_drift,on_decay"}),
            ("--status", {**flag, "help": "who runs the loop now, and what it processed last"}),
            REPORT, handler=cmd_loop)
    command(sub, "plugins", "installed plugins and their components", JSON,
            handler=cmd_plugins, project=False, overrides=False)
    records.add_commands(sub, {"runs": partial(cmd_records, records.runs),
                               "registry": partial(cmd_records, records.registry),
                               "reproduce": partial(records.reproduce, out=_out)})
    if pm is not None:
        pm.hook.specloop_add_cli_commands(subparsers=sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``specloop`` command (in-process callers use it too)."""
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    warnings.showwarning = lambda message, *_args, **_kw: _err(f"specloop: warning: {message}")
    argv = list(sys.argv[1:] if argv is None else argv)
    quiet = os.environ.get("SPECLOOP_QUIET")  # as the caller had it, restored at the end
    try:
        # a built-in command loads the plugins once, with the project's plugins.disable; other
        # commands and --help need the plugins' sub-commands to parse the line
        builtin = argv and argv[0] in BUILTIN and not {"-h", "--help"} & set(argv)
        parser = build_parser(None if builtin else make_plugin_manager())
        args = parser.parse_args(argv)
        handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
        if handler is None:
            parser.print_help()
            return 2
        if getattr(args, "quiet", False) or getattr(args, "json", False):
            os.environ["SPECLOOP_QUIET"] = "1"  # progress bars off, here and in workers
        return handler(args)
    except SpecloopError as exc:
        if os.environ.get("SPECLOOP_FULL_ERROR"):
            traceback.print_exc()
        _err(exc.render())
        return exc.exit_code
    except KeyboardInterrupt:
        _err("specloop: interrupted (the store and the registry are consistent; run again "
             "to resume)")
        return 130
    except BrokenPipeError:  # the reader went away (specloop … | head): end quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    finally:
        if quiet is None:
            os.environ.pop("SPECLOOP_QUIET", None)
        else:
            os.environ["SPECLOOP_QUIET"] = quiet


def console_main() -> None:
    """The ``specloop`` console script: :func:`main`, then exit with its code. ``gc.freeze``
    (registered first, so it runs after the other exit handlers) keeps what scikit-learn and
    pandas left alive out of the last collections at exit: ~9% of a first run's CPU
    (docs/benchmarks.md); only cyclic garbage, which CPython never promises to finalize at exit,
    is left to the operating system. Not for in-process callers of :func:`main`."""
    atexit.register(gc.freeze)
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    console_main()

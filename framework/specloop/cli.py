"""The ``specloop`` command line: thin wrappers over the engine.

Exit codes: 0 success; 2 a user error (bad spec, bad override, missing file, unknown kind),
printed without a traceback unless ``SPECLOOP_FULL_ERROR=1``; 1 a stage or plugin failure,
naming the stage, the component and its distribution.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
import warnings
from pathlib import Path
from typing import Any, Callable

from .errors import SpecloopError


def _out(text: str = "") -> None:
    print(text, flush=True)


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _table(rows: list[dict], columns: list[str]) -> str:
    if not rows:
        return "(none)"
    cells = [[str(r.get(c, "")) if r.get(c) is not None else "-" for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


def _context(args: argparse.Namespace):
    from ._session import make_context

    return make_context(args.project, args.overrides, echo=_out)


# -- commands -------------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    """``specloop run``: the pipeline up to deploy (``-m``: a Hydra multirun)."""
    if args.multirun:
        from ._sweep import run_sweep

        return run_sweep(Path(args.project), args.overrides, _out)
    from ._pipeline import execute

    if getattr(args, "params", None):
        from ._dvc_export import params_overrides

        args.overrides = [*params_overrides(Path(args.project), args.params), *args.overrides]
    ctx = _context(args)
    try:
        doc = execute(ctx, until=args.until)
    finally:
        ctx.close()
    if args.write_keys:
        _write_keys(Path(args.project) / args.write_keys, doc)
    _out(f"run {doc['run_id']}")
    _out(_table([{**r, "seconds": f"{r['seconds']:.2f}"} for r in doc["rows"]],
                ["stage", "action", "seconds", "component"]))
    if doc.get("metrics"):
        _out("metrics: " + ", ".join(f"{k}={v:.4f}" for k, v in doc["metrics"].items()))
    if doc.get("gate"):
        _out(f"gate: {doc['gate']['summary']}")
    for change in doc.get("alias_changes", []):
        _out(f"alias {change['alias']}: v{change['from']} → v{change['to']}"
             if change["from"] else f"alias {change['alias']}: → v{change['to']}")
    if doc.get("deployment"):
        _out(f"deployed v{doc['deployment']['version']} to {doc['deployment']['location']}")
    return 0


def _write_keys(path: Path, doc: dict) -> None:
    """The stage keys (and metrics) of a run, for tools that track files (DVC outs)."""
    body = {"stages": {k: v["key"] for k, v in doc["stages"].items()}}
    if doc.get("metrics"):
        body["metrics"] = doc["metrics"]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def cmd_reproduce(args: argparse.Namespace) -> int:
    """``specloop reproduce RUN_ID``: re-run a recorded run and compare its metrics."""
    from ._reproduce import reproduce

    report = reproduce(args.project, args.run_id, tolerance=args.tolerance, echo=_out)
    if args.json:
        _out(json.dumps(report, indent=2, default=str))
        return 0 if report["reproduced"] else 1
    _out(f"reproduction {report['run_id']} of run {report['reproduces']} "
         f"(tolerance {report['tolerance']:g})")
    for note in report["notes"]:
        _out(f"note: {note}")
    _out(_table([{**r, "ok": "yes" if r["ok"] else "NO",
                  **{k: f"{r[k]:.6g}" for k in ("recorded", "reproduced", "difference")
                     if isinstance(r[k], (int, float))}} for r in report["metrics"]],
                ["metric", "recorded", "reproduced", "difference", "ok"]))
    if report["stage_keys"]:
        _out("stage keys that differ (component versions or pinned data):")
        _out(_table(report["stage_keys"], ["stage", "recorded", "reproduced"]))
    if report["environment"]:
        _out("environment differences:")
        _out(_table(report["environment"], ["what", "recorded", "now"]))
    else:
        _out("environment: same python and package versions")
    _out("reproduced" if report["reproduced"] else "NOT reproduced: the metrics differ")
    return 0 if report["reproduced"] else 1


def cmd_export(args: argparse.Namespace) -> int:
    """``specloop export dvc``: a dvc.yaml (and params.yaml) that runs the project."""
    from ._dvc_export import export_dvc

    ctx = _context(args)
    try:
        written = export_dvc(ctx)
    finally:
        ctx.close()
    for path in written:
        _out(f"wrote {path}")
    project = written[0].parent
    if not any((d / ".dvc").is_dir() for d in (project, *project.parents)):
        _out(f"note: {project} is not inside a DVC repository; dvc repro needs one "
             "(git init && dvc init there)")
    _out("next: dvc repro   (or: dvc exp run -S model.params.<key>=<value>)")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    """``specloop plan``: what ``run`` would do, and why; nothing executes."""
    from ._pipeline import Pipeline

    ctx = _context(args)
    try:
        plans = Pipeline(ctx).plan()
    finally:
        ctx.close()
    rows = [p.row() for p in plans]
    if args.json:
        _out(json.dumps(rows, indent=2))
        return 0
    _out(_table(rows, ["stage", "component", "action", "reason"]))
    todo = [r["stage"] for r in rows if r["action"] == "run"]
    _out(f"{len(todo)} stage(s) would run" + (f": {', '.join(todo)}" if todo else
                                               " (everything is cached)"))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """``specloop validate``: compose and validate only."""
    ctx = _context(args)
    comps = [(k, r) for k, r in ctx.spec.components.items() if r is not None]
    for _name, resolved in comps:  # the heavy checks too (e.g. estimator parameters)
        check = getattr(resolved.build(), "preflight", None)
        if callable(check):
            check(ctx)
    _out(f"spec OK: {ctx.spec.project.name} — " + ", ".join(
        f"{k}={r.spec.kind}" for k, r in comps))
    if args.show:
        import yaml

        _out(yaml.safe_dump(ctx.spec.raw, sort_keys=False).rstrip())
    return 0


def cmd_loop(args: argparse.Namespace) -> int:
    """``specloop loop``: process the incoming batches (``--backtest``: compare policies)."""
    if args.backtest:
        from ._backtest import run_backtest

        return run_backtest(Path(args.project), args.overrides, _out, limit=args.limit)
    if args.multirun:
        from .errors import ConfigError

        raise ConfigError("'specloop loop -m' sweeps only in a backtest", file="command line",
                          expected="--backtest with -m",
                          fix="add --backtest to replay the batches once per policy in "
                              "isolation, e.g. specloop loop --backtest -m "
                              "retrain=never,on_drift,on_decay")
    from ._loop import Loop

    ctx = _context(args)
    try:
        records = Loop(ctx).run(limit=args.limit)
    finally:
        ctx.close()
    retrains = sum(1 for r in records if r["retrain"])
    promoted = sum(1 for r in records if r.get("outcome") == "promoted")
    _out(f"processed {len(records)} batch(es): {retrains} retrain(s), {promoted} promotion(s)")
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    """``specloop plugins``: installed plugins and the components each provides."""
    from ._manager import make_plugin_manager

    pm = make_plugin_manager()
    table = pm.component_table()
    by_plugin: dict[str, list] = {}
    for spec in table.specs.values():
        by_plugin.setdefault(spec.plugin, []).append(spec)
    if args.json:
        doc = [{**row, "components": [{"stage": str(s.stage), "kind": s.kind,
                                       "version": s.version, "description": s.description,
                                       "missing": s.missing_requirements()}
                                      for s in by_plugin.get(row["name"], [])]}
               for row in pm.plugin_rows()]
        _out(json.dumps(doc, indent=2))
        return 0
    for row in pm.plugin_rows():
        _out(f"{row['name']}  ({row['distribution']})  {row['status']}")
        for s in sorted(by_plugin.get(row["name"], []), key=lambda s: (str(s.stage), s.kind)):
            missing = s.missing_requirements()
            note = f"  [needs: {s.install_hint or ', '.join(missing)}]" if missing else ""
            _out(f"    {str(s.stage) + '/' + s.kind:<24} {s.description}{note}")
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    """``specloop runs list|show``."""
    from ._manifest import list_manifests

    ctx = _context(args)
    manifests = list_manifests(ctx.store)
    if args.runs_cmd == "show":
        match = [m for m in manifests if m["run_id"] == args.run_id]
        if not match:
            from .errors import RegistryError

            raise RegistryError(f"no run {args.run_id!r} in {ctx.store.root}",
                                fix="list runs with 'specloop runs list'")
        m = match[0]
        if args.json:
            _out(json.dumps(m, indent=2, default=str))
            return 0
        _out(f"run {m['run_id']}  {m['command']}  {m['status']}  {m['started']} → {m['ended']}")
        _out(f"overrides: {' '.join(m['overrides']) or '(none)'}")
        git = m.get("git") or {}
        _out(f"git: {git.get('commit') or '-'}{' (dirty)' if git.get('dirty') else ''}")
        _out(_table([{"stage": k, **v} for k, v in m["stages"].items()],
                    ["stage", "component", "status", "seconds", "key"]))
        if m.get("metrics"):
            _out("metrics: " + ", ".join(f"{k}={v:.4f}" for k, v in m["metrics"].items()))
        _out(f"model version: {m.get('model_version') or '-'}")
        if m.get("error"):
            _out(f"error: {m['error']}")
        return 0
    rows = [{"run": m["run_id"], "command": m["command"], "status": m["status"],
             "started": m["started"], "version": m.get("model_version"),
             "overrides": " ".join(m.get("overrides", []))} for m in manifests]
    if args.json:
        _out(json.dumps(rows, indent=2))
    else:
        _out(_table(rows, ["run", "command", "status", "started", "version", "overrides"]))
    return 0


def _redeploy(ctx, args: argparse.Namespace) -> None:
    """After ``champion`` moved: deploy its new holder, unless ``--no-deploy``."""
    if args.alias != "champion" or args.no_deploy:
        return
    from ._governance import deploy_champion

    result = deploy_champion(ctx)
    if result is not None:
        where = result.get("location")
        _out(f"deployed v{result.get('version', '?')}" + (f" → {where}" if where else ""))


def cmd_registry(args: argparse.Namespace) -> int:
    """``specloop registry list|show|promote|rollback|history``."""
    ctx = _context(args)
    reg, name = ctx.registry, ctx.model_name
    sub = args.registry_cmd
    try:
        if sub == "list":
            versions = reg.versions(name)
            rows = [{"version": v["version"], "aliases": ",".join(v["aliases"]),
                     "created": v["created_at"], "run": v["run_id"],
                     **{k: f"{x:.4f}" for k, x in list(v["metrics"].items())[:3]},
                     "gate": "passed" if (v.get("gate") or {}).get("passed") else "failed"}
                    for v in versions]
            if args.json:
                _out(json.dumps(versions, indent=2, default=str))
            else:
                metric_cols = list(versions[0]["metrics"])[:3] if versions else []
                _out(_table(rows, ["version", "aliases", "created", *metric_cols, "gate", "run"]))
        elif sub == "show":
            from ._governance import model_card, render_card
            from ._registry import check_name

            alias = check_name(args.alias or "champion", "alias")
            version = args.version if args.version is not None else reg.aliases(name).get(alias)
            if version is None:
                from .errors import RegistryError

                raise RegistryError(f"model {name!r} has no {alias!r}",
                                    fix="give a version: specloop registry show VERSION")
            card = model_card(ctx, version)
            _out(json.dumps(card, indent=2, default=str) if args.json else render_card(card))
        elif sub == "promote":
            from ._governance import promote

            res = promote(ctx, args.version, alias=args.alias, force=args.force,
                          reason=args.reason)
            if res.get("unchanged"):
                _out(f"{args.alias}: already v{args.version} (nothing changed)")
                return 0
            if res["gate"] is not None:
                _out(("gate FAILED (forced): " if res["forced"] else "gate: ")
                     + res["gate"]["summary"])
            _out(f"{args.alias}: v{res['from']} → v{res['to']}" if res["from"] else
                 f"{args.alias}: → v{res['to']}")
            _redeploy(ctx, args)
        elif sub == "rollback":
            old, new = reg.rollback(name, args.alias, reason=args.reason or "rollback")
            _out(f"{args.alias}: v{old} → v{new} (rolled back)")
            _redeploy(ctx, args)
        elif sub == "history":
            hist = reg.alias_history(name)
            audit = reg.audit(name)
            if args.json:
                _out(json.dumps({"aliases": hist, "audit": audit}, indent=2, default=str))
                return 0
            _out("alias history:")
            _out(_table([{"at": h["at"], "alias": h["alias"], "from": h["previous"],
                          "to": h["version"], "reason": h["reason"]} for h in hist],
                        ["at", "alias", "from", "to", "reason"]))
            _out("\naudit log:")
            _out(_table([{"at": a["at"], "action": a["action"], "version": a["version"],
                          "alias": a["alias"], "reason": a["reason"]} for a in audit],
                        ["at", "action", "version", "alias", "reason"]))
    finally:
        ctx.close()
    return 0


# -- parser ---------------------------------------------------------------------------------
def _common(p: argparse.ArgumentParser, overrides: bool = True) -> None:
    p.add_argument("--project", default=".", metavar="DIR",
                   help="project folder holding conf/config.yaml (default: current folder)")
    if overrides:
        p.add_argument("overrides", nargs="*", metavar="OVERRIDE",
                       help="Hydra overrides, e.g. model=random_forest model.params.max_depth=8")


class _Skipped:
    """Stands in for the parser of a sub-command that is not being parsed: building all of
    them (argparse looks up a translation for every help text) costs more than a cached run's
    whole pipeline decision."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: self


class _OnlySubparsers:
    """``add_subparsers()`` that builds the parser of the command ``only`` and skips the rest."""

    def __init__(self, sub: Any, only: str) -> None:
        self.sub, self.only = sub, only

    def add_parser(self, name: str, **kwargs: Any) -> Any:
        return self.sub.add_parser(name, **kwargs) if name == self.only else _Skipped()


def build_parser(pm: Any = None, only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser, with the sub-commands plugins add.

    Args:
        pm: The plugin manager whose plugins add sub-commands (none: the built-in ones only).
        only: Build just this built-in sub-command (what ``main`` parses when the command line
            names one and asks for no help).
    """
    parser = argparse.ArgumentParser(
        prog="specloop", description="The MLOps loop as a declarative spec.")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    if only is not None:
        sub = _OnlySubparsers(sub, only)

    p = sub.add_parser("run", help="run the pipeline up to deploy")
    _common(p)
    p.add_argument("-m", "--multirun", action="store_true", help="Hydra multirun (sweep)")
    p.add_argument("--until", choices=("data", "split", "train", "evaluate", "register",
                                       "deploy"), default=None, help="the last stage to run")
    p.add_argument("--params", default=None, metavar="FILE",
                   help="apply the values changed in a params file written by 'export dvc'")
    p.add_argument("--write-keys", default=None, metavar="FILE",
                   help="write the stage keys (and metrics) to FILE, relative to the project")
    p.set_defaults(handler=cmd_run)

    p = sub.add_parser("plan", help="show what run would do, and why")
    _common(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_plan)

    p = sub.add_parser("validate", help="compose and validate the spec")
    _common(p)
    p.add_argument("--show", action="store_true", help="print the composed spec")
    p.set_defaults(handler=cmd_validate)

    p = sub.add_parser("loop", help="score, monitor and retrain on incoming batches")
    _common(p)
    p.add_argument("--limit", type=int, default=None, help="process at most N batches")
    p.add_argument("--backtest", action="store_true",
                   help="replay every batch once per sweep member in an isolated registry "
                        "and store; print a leaderboard of retraining policies")
    p.add_argument("-m", "--multirun", action="store_true",
                   help="sweep (with --backtest), e.g. -m retrain=never,on_drift,on_decay")
    p.set_defaults(handler=cmd_loop)

    p = sub.add_parser("plugins", help="installed plugins and their components")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_plugins)

    runs = sub.add_parser("runs", help="recorded runs")
    rsub = runs.add_subparsers(dest="runs_cmd", metavar="list|show", required=True)
    p = rsub.add_parser("list", help="every run, oldest first")
    _common(p)
    p.add_argument("--json", action="store_true")
    p = rsub.add_parser("show", help="one run's manifest")
    p.add_argument("run_id")
    _common(p)
    p.add_argument("--json", action="store_true")
    runs.set_defaults(handler=cmd_runs)

    reg = sub.add_parser("registry", help="model versions and aliases")
    gsub = reg.add_subparsers(dest="registry_cmd", metavar="list|show|promote|rollback|history",
                              required=True)
    p = gsub.add_parser("list", help="every version")
    _common(p)
    p.add_argument("--json", action="store_true")
    p = gsub.add_parser("show", help="one version's model card (default: the champion)")
    p.add_argument("version", nargs="?", type=int)
    p.add_argument("--alias", default=None, help="show the version this alias points at")
    _common(p)
    p.add_argument("--json", action="store_true")
    p = gsub.add_parser("promote", help="point an alias (default champion) at a version; "
                                        "champion only if the declared gate passes")
    p.add_argument("version", type=int)
    p.add_argument("--alias", default="champion")
    p.add_argument("--reason", default=None, help="why (recorded in the audit log)")
    p.add_argument("--force", action="store_true",
                   help="promote although the gate fails (needs --reason)")
    p.add_argument("--no-deploy", action="store_true",
                   help="move the alias only; do not deploy the new champion")
    _common(p)
    p = gsub.add_parser("rollback", help="move an alias back to its previous version "
                                         "(and deploy it, for champion)")
    p.add_argument("--alias", default="champion")
    p.add_argument("--reason", default=None)
    p.add_argument("--no-deploy", action="store_true",
                   help="move the alias only; do not deploy the previous champion")
    _common(p)
    p = gsub.add_parser("history", help="alias history and the audit log")
    _common(p)
    p.add_argument("--json", action="store_true")
    reg.set_defaults(handler=cmd_registry)

    p = sub.add_parser("reproduce", help="re-run a recorded run and compare its metrics")
    p.add_argument("run_id")
    p.add_argument("--tolerance", type=float, default=0.0,
                   help="largest absolute metric difference accepted (default: exact)")
    p.add_argument("--json", action="store_true")
    _common(p, overrides=False)
    p.set_defaults(handler=cmd_reproduce)

    exp = sub.add_parser("export", help="export the project to another tool")
    esub = exp.add_subparsers(dest="export_cmd", metavar="dvc", required=True)
    p = esub.add_parser("dvc", help="write dvc.yaml and params.yaml that run specloop")
    _common(p)
    p.set_defaults(handler=cmd_export)

    if pm is not None:
        pm.hook.specloop_add_cli_commands(subparsers=sub)
    return parser


def _version() -> str:
    from . import __version__

    return f"specloop {__version__}"


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    _err(f"specloop: warning: {message}")


_exit_hooked = False


def _skip_exit_collections() -> None:
    """Keep what is alive at exit out of the garbage collector's exit passes.

    After a run, scikit-learn, pandas and their dependencies (over a thousand modules) are
    loaded; tearing the modules down at interpreter exit runs full collections over all their
    objects, ~0.3 s of a first run. An ``atexit`` handler freezes those objects
    (``gc.freeze``) just before that teardown. Everything else about exit is unchanged:
    the other ``atexit`` handlers, flushing, module teardown and reference counting. What it
    skips is collecting objects left in reference cycles at exit, whose memory the
    operating system reclaims with the process.
    """
    global _exit_hooked
    if not _exit_hooked:
        import atexit
        import gc

        atexit.register(gc.freeze)  # registered first, so it runs after later handlers
        _exit_hooked = True


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``specloop`` command."""
    _skip_exit_collections()
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    warnings.showwarning = _show_warning
    argv = list(sys.argv[1:] if argv is None else argv)
    from ._manager import make_plugin_manager

    needs_plugins = any(a in argv for a in ("-h", "--help")) or not argv or \
        argv[0] not in ("run", "plan", "validate", "loop", "plugins", "runs", "registry",
                        "reproduce", "export")
    parser = build_parser(make_plugin_manager(), None) if needs_plugins else \
        build_parser(None, only=argv[0])
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

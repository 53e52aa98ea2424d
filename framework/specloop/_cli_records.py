"""The record commands, ``specloop runs …``, ``registry …`` and ``reproduce``, thin over
``_manifest``, ``_registry`` and ``_governance``; how every sub-command declares its arguments,
and the plain-text tables commands, sweeps and backtests print."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Callable

from .errors import RegistryError

Out = Callable[[str], None]
JSON = ("--json", {"action": "store_true", "help": "print JSON"})


def table(rows: list[dict], columns: list[str]) -> str:
    """``rows`` as aligned columns with a header rule; ``-`` for missing values."""
    if not rows:
        return "(none)"
    cells = [[str(r.get(c, "")) if r.get(c) is not None else "-" for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


def command(sub: Any, name: str, help: str, *args: tuple, handler: Any = None,
            project: bool = True, overrides: bool = True) -> argparse.ArgumentParser:
    """Add sub-command ``name`` with ``args`` (``(flags, kwargs)`` pairs) and ``--project``."""
    p = sub.add_parser(name, help=help)
    for flags, kwargs in args:
        p.add_argument(*((flags,) if isinstance(flags, str) else flags), **kwargs)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    if project:
        p.add_argument("--project", default=".", metavar="DIR",
                       help="project folder holding conf/config.yaml (default: current folder)")
    if overrides:
        p.add_argument("overrides", nargs="*", metavar="OVERRIDE",
                       help="Hydra overrides, e.g. model=random_forest model.params.max_depth=8")
    if handler is not None:
        p.set_defaults(handler=handler)
    return p


def add_commands(sub: Any, handlers: dict[str, Callable]) -> None:
    """Add ``runs``, ``registry`` and ``reproduce`` to the ``specloop`` parser."""
    no_deploy = ("--no-deploy", {"action": "store_true",
                                 "help": "move the alias only; do not deploy"})
    runs = sub.add_parser("runs", help="recorded runs")
    runs.set_defaults(handler=handlers["runs"])
    rsub = runs.add_subparsers(dest="runs_cmd", metavar="list|show|diff", required=True)
    command(rsub, "list", "every run, oldest first", JSON)
    command(rsub, "show", "one run's manifest", ("run_id", {}), JSON)
    command(rsub, "diff", "two runs side by side: config, overrides, data, stage keys, metrics "
            "and model versions", ("run_a", {}), ("run_b", {}),
            ("--all", {"action": "store_true", "help": "also what is the same"}), JSON)
    reg = sub.add_parser("registry", help="model versions, aliases and the record's health")
    reg.set_defaults(handler=handlers["registry"])
    gsub = reg.add_subparsers(dest="registry_cmd", required=True,
                              metavar="list|show|promote|rollback|history|check|backup")
    command(gsub, "list", "every version", JSON)
    command(gsub, "show", "one version's model card (default: the champion)",
            ("version", {"nargs": "?", "type": int}),
            ("--alias", {"help": "show the version this alias points at"}), JSON)
    command(gsub, "promote", "point an alias (default champion) at a version; champion only "
            "if the declared gate passes", ("version", {"type": int}),
            ("--alias", {"default": "champion"}),
            ("--reason", {"help": "why (recorded in the audit log)"}),
            ("--force", {"action": "store_true",
                         "help": "promote although the gate fails (needs --reason)"}),
            no_deploy)
    command(gsub, "rollback", "move an alias back to its previous holder (and deploy it, for "
            "champion)", ("--alias", {"default": "champion"}), ("--reason", {}), no_deploy)
    command(gsub, "history", "alias history and the audit log", JSON)
    command(gsub, "check", "the registry file, every version's artifacts and the champion's "
            "deployment, against the record", JSON)
    command(gsub, "backup", "a consistent copy of the registry (SQLite's online backup)",
            ("file", {"help": "where the copy goes"}))
    command(sub, "reproduce", "re-run a recorded run and compare its metrics",
            ("run_id", {}), ("--tolerance", {"type": float, "default": 0.0, "help":
                         "largest absolute metric difference accepted (default: exact)"}),
            JSON, handler=handlers["reproduce"], overrides=False)


def runs(ctx: Any, args: argparse.Namespace, out: Out) -> int:
    """``specloop runs list|show``."""
    from ._manifest import read_manifest  # ~60 ms: `specloop --help` imports this module

    if args.runs_cmd == "diff":
        doc = diff_runs(read_manifest(ctx, args.run_a), read_manifest(ctx, args.run_b),
                        args.all)
        if args.json:
            return emit(out, doc)
        for section, rows in doc.items():
            if section not in ("a", "b"):
                out(f"{section}:")
                rows = [{k: f"{v:.6g}" if isinstance(v, float) else v for k, v in r.items()}
                        for r in rows]
                out(table(rows, ["what", "a", "b", "b - a"]) if rows else "(no difference)")
        return 0
    if args.runs_cmd == "show":
        m = read_manifest(ctx, args.run_id)
        if args.json:
            return emit(out, m)
        out(f"run {m['run_id']}  {m['command']}  {m['status']}  {m['started']} → {m['ended']}")
        out(f"overrides: {' '.join(m['overrides']) or '(none)'}")
        git = m.get("git") or {}
        out(f"git: {git.get('commit') or '-'}{' (dirty)' if git.get('dirty') else ''}")
        out(table([{"stage": k, **v} for k, v in m["stages"].items()],
                  ["stage", "component", "status", "seconds", "key"]))
        if m.get("metrics"):
            out("metrics: " + ", ".join(f"{k}={v:.4f}" for k, v in m["metrics"].items()))
        out(f"model version: {m.get('model_version') or '-'}")
        if m.get("error"):
            out(f"error: {m['error']}")
        return 0
    rows = [{"run": r["run_id"], "command": r["command"], "status": r["status"],
             "started": r["started"], "version": r["model_version"],
             "overrides": " ".join(r["overrides"])} for r in ctx.registry.runs()]
    return emit(out, rows, None if args.json else
                ["run", "command", "status", "started", "version", "overrides"])


def diff_runs(a: dict, b: dict, everything: bool = False) -> dict:
    """Two manifests side by side, section by section: rows of ``{what, a, b}`` that differ
    (all rows with ``everything``). Secrets were masked when the manifests were written."""
    from ._plan import flatten

    def rows(left: dict, right: dict) -> list[dict]:
        out = [{"what": k, "a": left.get(k), "b": right.get(k)}
               for k in sorted(set(left) | set(right), key=str)
               if everything or left.get(k) != right.get(k)]
        for r in out:  # numbers (metrics, parameters) also say by how much
            if all(isinstance(r[s], (int, float)) and not isinstance(r[s], bool) for s in "ab"):
                r["b - a"] = round(r["b"] - r["a"], 6)
        return out

    def stage_keys(m: dict) -> dict:
        return {name: st.get("key") for name, st in m.get("stages", {}).items()}

    return {"a": a["run_id"], "b": b["run_id"],
            "run": rows(*({k: m.get(k) for k in ("run_id", "command", "status", "started",
                                                  "specloop_version")} for m in (a, b))),
            "overrides": rows(*({"overrides": " ".join(m.get("overrides", []))} for m in (a, b))),
            "choices": rows(a.get("choices", {}), b.get("choices", {})),
            "config": rows(flatten("", a.get("config", {})), flatten("", b.get("config", {}))),
            "data": rows(a.get("data_fingerprint") or {}, b.get("data_fingerprint") or {}),
            "stage keys": rows(stage_keys(a), stage_keys(b)),
            "metrics": rows(a.get("metrics") or {}, b.get("metrics") or {}),
            "model version": rows({"model_version": a.get("model_version")},
                                  {"model_version": b.get("model_version")})}


def registry(ctx: Any, args: argparse.Namespace, out: Out) -> int:
    """``specloop registry list|show|promote|rollback|history|check|backup``."""
    from . import _governance as gov  # the engine: `specloop --help` imports this module
    from ._registry import check_name  # sqlite3 ~10 ms, likewise

    if args.registry_cmd == "check":  # before opening it: a broken file is a finding here
        rows = gov.check_registry(ctx)
        emit(out, rows, None if args.json else ["what", "status", "detail"])
        return 0 if all(r["status"] == "ok" for r in rows) else 1
    reg, name, sub = ctx.registry, ctx.model_name, args.registry_cmd
    if sub == "list":
        versions = reg.versions(name)
        if args.json:
            return emit(out, versions)
        metric_cols = list(versions[0]["metrics"])[:3] if versions else []
        out(table([{"version": v["version"], "aliases": ",".join(v["aliases"]),
                    "created": v["created_at"], "run": v["run_id"],
                    **{k: f"{x:.4f}" for k, x in list(v["metrics"].items())[:3]},
                    "gate": "passed" if (v.get("gate") or {}).get("passed") else "failed"}
                   for v in versions],
                  ["version", "aliases", "created", *metric_cols, "gate", "run"]))
    elif sub == "show":
        alias = check_name(args.alias or "champion", "alias")
        version = args.version if args.version is not None else reg.aliases(name).get(alias)
        if version is None:
            raise RegistryError(f"model {name!r} has no {alias!r}",
                                fix="give a version: specloop registry show VERSION")
        card = gov.model_card(ctx, version)
        out(json.dumps(card, indent=2, default=str) if args.json else gov.render_card(card))
    elif sub in ("promote", "rollback"):  # the move itself was said as it committed
        if sub == "promote":
            res = gov.promote(ctx, args.version, alias=args.alias, force=args.force,
                              reason=args.reason, deploy=not args.no_deploy)
        else:
            res = gov.rollback(ctx, args.alias, reason=args.reason, deploy=not args.no_deploy)
        deployed = res.get("deployment") or {}
        if res.get("unchanged"):
            out(f"{args.alias}: already v{args.version} (nothing changed)")
        elif deployed:
            where = deployed.get("location")
            out(f"deployed v{deployed.get('version', '?')}" + (f" → {where}" if where else ""))
    elif sub == "history":
        hist, audit = reg.alias_history(name), reg.audit(name)
        if args.json:
            return emit(out, {"aliases": hist, "audit": audit})
        out("alias history:")
        out(table([{**h, "from": h["previous"], "to": h["version"]} for h in hist],
                  ["at", "alias", "from", "to", "action", "reason"]))
        out("\naudit log:")
        out(table(audit, ["at", "action", "version", "alias", "reason"]))
    elif sub == "backup":
        out(f"wrote {reg.backup(Path(args.file))} (a consistent copy of {reg.path})")
    return 0


def reproduce(args: argparse.Namespace, out: Out) -> int:
    """``specloop reproduce RUN_ID``: exit code 1 if the metrics did not come back."""
    from ._governance import reproduce  # likewise

    report = reproduce(args.project, args.run_id, tolerance=args.tolerance, echo=out)
    code = 0 if report["reproduced"] else 1
    if args.json:
        emit(out, report)
        return code
    out(f"reproduction {report['run_id']} of run {report['reproduces']} "
        f"(tolerance {report['tolerance']:g})")
    for note in report["notes"]:
        out(f"note: {note}")
    out(table([{**r, "ok": "yes" if r["ok"] else "NO",
                **{k: f"{r[k]:.6g}" for k in ("recorded", "reproduced", "difference")
                   if isinstance(r[k], (int, float))}} for r in report["metrics"]],
              ["metric", "recorded", "reproduced", "difference", "ok"]))
    if report["stage_keys"]:
        out("stage keys that differ (component versions or pinned data):")
        out(table(report["stage_keys"], ["stage", "recorded", "reproduced"]))
    if report["environment"]:
        out("environment differences:")
        out(table(report["environment"], ["what", "recorded", "now"]))
    else:
        out("environment: same python and package versions")
    out("reproduced" if code == 0 else "NOT reproduced: the metrics differ")
    return code


def emit(out: Out, doc: Any, columns: list[str] | None = None) -> int:
    """Print ``doc`` as JSON, or as a table of ``columns``."""
    out(json.dumps(doc, indent=2, default=str) if columns is None else table(doc, columns))
    return 0


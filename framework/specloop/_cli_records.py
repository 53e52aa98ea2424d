"""``specloop runs …`` and ``specloop registry …``: the commands over the record.

Thin wrappers: the work is in ``_manifest`` (runs), ``_registry`` and ``_governance``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Callable

from ._text import table
from .errors import RegistryError

Out = Callable[[str], None]


def add_commands(sub: Any, common: Callable, handlers: dict[str, Callable]) -> None:
    """Add ``runs`` and ``registry`` to the ``specloop`` parser."""
    runs = sub.add_parser("runs", help="recorded runs")
    rsub = runs.add_subparsers(dest="runs_cmd", metavar="list|show", required=True)
    p = rsub.add_parser("list", help="every run, oldest first")
    common(p)
    p.add_argument("--json", action="store_true")
    p = rsub.add_parser("show", help="one run's manifest")
    p.add_argument("run_id")
    common(p)
    p.add_argument("--json", action="store_true")
    runs.set_defaults(handler=handlers["runs"])

    reg = sub.add_parser("registry", help="model versions, aliases and the record's health")
    gsub = reg.add_subparsers(dest="registry_cmd", required=True,
                              metavar="list|show|promote|rollback|history|check|backup")
    p = gsub.add_parser("list", help="every version")
    common(p)
    p.add_argument("--json", action="store_true")
    p = gsub.add_parser("show", help="one version's model card (default: the champion)")
    p.add_argument("version", nargs="?", type=int)
    p.add_argument("--alias", default=None, help="show the version this alias points at")
    common(p)
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
    common(p)
    p = gsub.add_parser("rollback", help="move an alias back to its previous holder "
                                         "(and deploy it, for champion)")
    p.add_argument("--alias", default="champion")
    p.add_argument("--reason", default=None)
    p.add_argument("--no-deploy", action="store_true",
                   help="move the alias only; do not deploy the previous champion")
    common(p)
    p = gsub.add_parser("history", help="alias history and the audit log")
    common(p)
    p.add_argument("--json", action="store_true")
    p = gsub.add_parser("check", help="the registry file, every version's artifacts and the "
                                      "champion's deployment, against the record")
    common(p)
    p.add_argument("--json", action="store_true")
    p = gsub.add_parser("backup", help="a consistent copy of the registry (SQLite's online "
                                       "backup)")
    p.add_argument("file", help="where the copy goes")
    common(p)
    reg.set_defaults(handler=handlers["registry"])


def runs(ctx: Any, args: argparse.Namespace, out: Out) -> int:
    """``specloop runs list|show``."""
    from ._manifest import list_runs, read_manifest

    if args.runs_cmd == "show":
        m = read_manifest(ctx, args.run_id)
        if args.json:
            out(json.dumps(m, indent=2, default=str))
            return 0
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
             "overrides": " ".join(r["overrides"])} for r in list_runs(ctx)]
    out(json.dumps(rows, indent=2) if args.json else
        table(rows, ["run", "command", "status", "started", "version", "overrides"]))
    return 0


def registry(ctx: Any, args: argparse.Namespace, out: Out) -> int:
    """``specloop registry list|show|promote|rollback|history|check|backup``."""
    from . import _governance as gov
    from ._registry import check_name

    reg, name, sub = ctx.registry, ctx.model_name, args.registry_cmd
    if sub == "list":
        versions = reg.versions(name)
        if args.json:
            out(json.dumps(versions, indent=2, default=str))
            return 0
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
    elif sub == "promote":
        res = gov.promote(ctx, args.version, alias=args.alias, force=args.force,
                          reason=args.reason, deploy=not args.no_deploy)
        if res.get("unchanged"):
            out(f"{args.alias}: already v{args.version} (nothing changed)")
            return 0
        _deployed(res, out)  # the move itself was said as it committed
    elif sub == "rollback":
        _deployed(gov.rollback(ctx, args.alias, reason=args.reason, deploy=not args.no_deploy),
                  out)
    elif sub == "history":
        hist, audit = reg.alias_history(name), reg.audit(name)
        if args.json:
            out(json.dumps({"aliases": hist, "audit": audit}, indent=2, default=str))
            return 0
        out("alias history:")
        out(table([{"at": h["at"], "alias": h["alias"], "from": h["previous"],
                    "to": h["version"], "action": h.get("action"), "reason": h["reason"]}
                   for h in hist], ["at", "alias", "from", "to", "action", "reason"]))
        out("\naudit log:")
        out(table([{"at": a["at"], "action": a["action"], "version": a["version"],
                    "alias": a["alias"], "reason": a["reason"]} for a in audit],
                  ["at", "action", "version", "alias", "reason"]))
    elif sub == "check":
        rows = gov.check_registry(ctx)
        out(json.dumps(rows, indent=2) if args.json else
            table(rows, ["what", "status", "detail"]))
        return 0 if all(r["status"] == "ok" for r in rows) else 1
    elif sub == "backup":
        dest = reg.backup(Path(args.file))
        out(f"wrote {dest} (a consistent copy of {reg.path})")
    return 0


def _deployed(res: dict, out: Out) -> None:
    result = res.get("deployment")
    if result:
        where = result.get("location")
        out(f"deployed v{result.get('version', '?')}" + (f" → {where}" if where else ""))

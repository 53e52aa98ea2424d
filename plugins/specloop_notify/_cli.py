"""``specloop notify retry``: re-send the deliveries kept in the outbox."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ._delivery import OUTBOX, read_outbox, retry_outbox


def add_commands(sub: Any) -> None:
    """Register ``notify`` and its sub-commands."""
    p = sub.add_parser("notify", help="lifecycle notifications (webhook, chat, log)")
    nsub = p.add_subparsers(dest="notify_command", metavar="COMMAND")
    nsub.required = True
    for name, text, fn in (
            ("retry", "re-send the failed deliveries kept in .specloop/notify/failed.jsonl; "
                      "remove those that got through", cmd_retry),
            ("pending", "list the failed deliveries kept in the outbox", cmd_pending)):
        q = nsub.add_parser(name, help=text)
        q.add_argument("--project", default=".", metavar="DIR",
                       help="project folder holding conf/config.yaml (default: current folder)")
        q.add_argument("overrides", nargs="*", metavar="OVERRIDE",
                       help="Hydra overrides, e.g. +notify=webhook")
        q.set_defaults(handler=fn)


def _context(args: argparse.Namespace) -> Any:
    from specloop import make_context

    return make_context(args.project, args.overrides, echo=lambda text: print(text, flush=True))


def cmd_retry(args: argparse.Namespace) -> int:
    """Exit 0 when the outbox is empty afterwards, 1 when deliveries still failed."""
    ctx = _context(args)
    try:
        project_dir = Path(ctx.project_dir)
        if not read_outbox(project_dir):
            print(f"nothing to retry ({OUTBOX} is empty)")
            return 0
        delivered, left = retry_outbox(project_dir, ctx.settings("notify").sinks)
        for entry, why in left:
            print(f"still failing: {entry['event'].get('event')} → {entry['sink']['kind']} "
                  f"sink ({entry['sink']['id']}): {why}")
        print(f"delivered {delivered}, {len(left)} left in {OUTBOX}")
        return 0 if not left else 1
    finally:
        ctx.close()


def cmd_pending(args: argparse.Namespace) -> int:
    """List the outbox."""
    entries = read_outbox(Path(args.project).resolve())
    for e in entries:
        ev = e.get("event", {})
        print(f"{e.get('failed_at')}  {ev.get('event'):<15} {e['sink']['kind']:<8} "
              f"{e['sink']['id']}  {e.get('error')}")
    print(f"{len(entries)} pending in {OUTBOX}")
    return 0

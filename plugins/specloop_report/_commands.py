"""``specloop report [--run RUN_ID | --loop | --sweep [DIR]] [-o FILE]``."""

from __future__ import annotations

import argparse
import os
import re
import time
from contextlib import closing
from pathlib import Path


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``report``."""
    p = subparsers.add_parser(
        "report", help="write a self-contained HTML report of a run, the loop or a sweep",
        description="Write one self-contained HTML file (inline SVG charts, no network): a "
                    "run's model card, data fingerprint and lineage (default: the latest "
                    "run), the loop's timeline and per-feature drift (--loop), or a sweep's "
                    "leaderboard (--sweep).")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--run", metavar="RUN_ID", help="report this run (default: the latest)")
    what.add_argument("--loop", action="store_true",
                      help="report the loop: timeline, decisions, per-feature drift")
    what.add_argument("--sweep", nargs="?", const="", metavar="DIR",
                      help="report a sweep or policy backtest folder (default: the newest "
                           "under .specloop/sweeps and .specloop/backtests)")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="where to write the HTML (default: .specloop/reports/<what>.html in "
                        "the project)")
    p.add_argument("--project", default=".", metavar="DIR",
                   help="project folder holding conf/config.yaml (default: current folder)")
    p.add_argument("overrides", nargs="*", metavar="OVERRIDE",
                   help="Hydra overrides selecting the store and registry to read")
    p.set_defaults(handler=report)


def report(args: argparse.Namespace) -> int:
    """``specloop report``."""
    from specloop import make_context

    started = time.perf_counter()
    what = "loop" if args.loop else "sweep" if args.sweep is not None else "run"
    if args.sweep and "=" in args.sweep:  # `--sweep stack=s3`: an override, not a folder
        args.overrides, args.sweep = [args.sweep, *args.overrides], ""
    with closing(make_context(args.project, args.overrides, echo=print)) as ctx:
        out, page = write_report(ctx, what, args.sweep if what == "sweep" else args.run,
                                 args.output)
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} kB, {len(page.sections)} sections) "
          f"in {time.perf_counter() - started:.2f} s")
    return 0


def write_report(ctx, what: str, source: str | None, output: str | None):
    """Write the report of ``what`` (``run``: the run ``source``, default the latest;
    ``loop``; ``sweep``: the folder ``source``, default the newest) to ``output`` (default
    ``.specloop/reports/`` in the project); return the file and the page."""
    import specloop

    page, name = build(ctx, what, source)
    out = Path(output) if output else \
        Path(ctx.project_dir) / ".specloop" / "reports" / f"{name}.html"
    write(out, page.html(specloop.__version__).encode())
    return out, page


def build(ctx, what: str, source: str | None):
    """The page and its default file name."""
    if what == "loop":
        from . import _loop

        return _loop.build(ctx), f"loop-{ctx.model_name}"
    if what == "sweep":
        from . import _sweep

        page = _sweep.build(ctx, source or "")
        return page, f"{page.kind}-{_safe(page.title.rsplit(' ', 1)[-1])}"
    from . import _run

    page = _run.build(ctx, source)
    return page, f"run-{_safe(page.title.rsplit(' ', 1)[-1])}"


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:80]


def write(path: Path, data: bytes) -> None:
    """Write ``data`` atomically (a reader never sees half a report)."""
    from specloop import ConfigError

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        raise ConfigError(f"cannot write the report to {path}: {exc.strerror or exc}",
                          key="--output", got=str(path), expected="a writable file path",
                          fix="choose another file with -o FILE") from None

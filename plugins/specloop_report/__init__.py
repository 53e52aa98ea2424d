"""``specloop report``: one self-contained HTML file for a run, the loop or a sweep.

Plots are inline SVG drawn in Python (``_svg``); the page has no script and a
Content-Security-Policy that forbids loading anything. What is drawn comes from specloop's
record (manifests checked against their recorded hashes, registry versions, the loop's batch
records) and from the store, read only against the SHA-256 specloop recorded; a model is
loaded with :func:`specloop.load_model`. See docs/reports.md.
"""

from __future__ import annotations

from specloop import hookimpl


@hookimpl
def specloop_add_cli_commands(subparsers):
    """Add ``specloop report``."""
    from ._commands import add_commands

    add_commands(subparsers)


@hookimpl
def specloop_write_report(run, what, source, path):
    """``--report`` of ``run``, ``run -m``, ``loop`` and ``loop --backtest``."""
    from ._commands import write_report

    return str(write_report(run, what, run.run_id if what == "run" else source, path)[0])

"""Project and plugin scaffolds, and editor support for specloop's YAML.

Commands: ``specloop new project`` / ``new plugin`` (a project that validates and runs at
once; an installable plugin from the template), ``specloop schema`` (the JSON Schema of a
project's config, for the YAML language server), ``specloop options GROUP`` (a group's
options) and ``specloop completion bash|zsh`` (shell completion).

This module is what the ``specloop.plugins`` entry point imports: it only adds the commands;
their work is imported when one runs.
"""

from __future__ import annotations

from specloop import hookimpl


@hookimpl
def specloop_add_cli_commands(subparsers):
    """Add ``new``, ``schema``, ``options``, ``completion`` and the hidden ``__complete``."""
    from ._commands import add_commands

    add_commands(subparsers)


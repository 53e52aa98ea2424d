"""Every hook specloop calls. The docstrings below are the hook reference.

Plugins implement hooks with :data:`specloop.hookimpl`; a hook implementation may accept a
subset of a hook's arguments, so adding an argument to a hook never breaks a plugin.
Every hook name starts with ``specloop_``; other functions in a plugin module are ignored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    import argparse

    from ._context import RunContext
    from .components import ComponentSpec

hookspec = pluggy.HookspecMarker("specloop")
hookimpl = pluggy.HookimplMarker("specloop")


@hookspec
def specloop_register_components() -> list[ComponentSpec]:
    """Return the components this plugin provides.

    Called once per run, after every plugin is registered; the results of all plugins are
    concatenated into the run's component table. A ``(stage, kind)`` registered by two
    distributions is an error that names both.

    Returns:
        A list of :class:`specloop.ComponentSpec`.
    """


@hookspec
def specloop_add_conf_dirs() -> list[str]:
    """Return config directories this plugin ships (``conf/<group>/<option>.yaml`` inside).

    They are put on Hydra's search path after the project's own ``conf/`` and the
    framework's, so ``model=my_preset`` finds a plugin's presets.

    Returns:
        A list of absolute directory paths.
    """


@hookspec
def specloop_add_allowed_targets() -> list[str]:
    """Return dotted-path prefixes that model specs may name as estimators.

    The allowlist starts empty: the scikit-learn plugin adds ``"sklearn."``, a plugin
    providing its own estimators adds its package (``"my_pkg.models."``).
    ``allow_python_targets: true`` in the spec lifts the allowlist.

    Returns:
        A list of dotted-path prefixes.
    """


@hookspec
def specloop_add_preload_modules() -> list[str]:
    """Return modules worth importing once before the members of a sweep start.

    The ``specloop`` sweep launcher imports them in its ``forkserver`` process, so members
    forked from it start with them imported (under ``spawn`` each member imports them
    itself). Name what your components import at run time (``"my_pkg.model"``,
    ``"xgboost"``); modules that are not installed are skipped.

    Returns:
        A list of module names.
    """


@hookspec
def specloop_settings_schema() -> type | None:
    """Return the dataclass that declares this plugin's ``plugins.<name>`` settings.

    ``<name>`` is the plugin's entry-point name. The engine validates the spec's
    ``plugins.<name>`` node against it before anything runs (unknown keys, types, declared
    constraints, with the same errors as a component node) and hands the typed object to
    the plugin as ``ctx.settings(<name>)``.

    Returns:
        A dataclass, or ``None``.
    """


@hookspec
def specloop_before_stage(stage: str, component: ComponentSpec | None, run: RunContext,
                          cached: bool) -> None:
    """Called before a stage executes, or is taken from the cache.

    Args:
        stage: The stage name (``data``, ``split``, ``train``, ``evaluate``, ``register``,
            ``deploy``, or in the loop ``score``, ``monitor``, ``retrain``).
        component: The component that runs it, or ``None`` for engine-owned stages.
        run: The run context (run id, project, store, registry).
        cached: Whether the stage's output will be taken from the cache.
    """


@hookspec
def specloop_after_stage(stage: str, component: ComponentSpec | None, run: RunContext,
                         cached: bool, duration: float, key: str | None) -> None:
    """Called after a stage succeeded (ran or was taken from the cache).

    Args:
        stage: The stage name.
        component: The component that ran it, or ``None``.
        run: The run context.
        cached: Whether the output came from the cache.
        duration: Seconds spent in the stage.
        key: The stage's cache key, if it has one.
    """


@hookspec
def specloop_on_stage_error(stage: str, component: ComponentSpec | None, run: RunContext,
                            error: BaseException) -> None:
    """Called when a stage raised, before the run is reported as failed.

    Args:
        stage: The stage name.
        component: The component that raised, or ``None``.
        run: The run context.
        error: The exception.
    """


@hookspec
def specloop_after_run(run: RunContext, manifest: dict[str, Any]) -> None:
    """Called once a run (or one loop step) has ended, successfully or not.

    Args:
        run: The run context.
        manifest: The run manifest as written to the store (status, stages, metrics …).
    """


@hookspec
def specloop_after_register(run: RunContext, version: dict[str, Any]) -> None:
    """Called after a model version was registered (by a run, a sweep or the loop).

    Args:
        run: The run context.
        version: The registry record of the new version (metrics, gate, source, run id …).
    """


@hookspec
def specloop_after_alias_change(run: RunContext, name: str, alias: str, version: int,
                                previous: int | None, action: str, reason: str) -> None:
    """Called after an alias moved (promote, rollback, challenger) and the move committed.

    Notifiers and bridges to other registries belong here (or in ``specloop_after_run``),
    not in a deploy target: a hook observes, a deploy target serves a model.

    Args:
        run: The run context.
        name: The model name.
        alias: The alias (``champion``, ``challenger`` …).
        version: The version it points at now.
        previous: The version it pointed at before, or ``None``.
        action: ``promote``, ``force-promote``, ``rollback`` or ``register-<alias>``.
        reason: Why, as recorded in the alias history.
    """


@hookspec(firstresult=True)
def specloop_write_report(run: RunContext, what: str, source: str | None,
                          path: str | None) -> str | None:
    """Write the report of what a command just did, for ``--report`` of ``run`` and ``loop``.

    Args:
        run: The run context of the project.
        what: ``run`` (the run ``run.run_id`` names), ``loop``, or ``sweep`` (a sweep's or a
            backtest's folder, ``source``).
        source: The sweep folder, for ``sweep``; else ``None``.
        path: The file asked for (``None``: the plugin's default place).

    Returns:
        The file written, or ``None`` when this plugin writes no such report (the next
        plugin is asked; none at all is a user error naming the missing plugin).
    """


@hookspec
def specloop_add_cli_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add sub-commands to the ``specloop`` command line.

    Add a parser with ``subparsers.add_parser(name, help=...)`` and set its handler with
    ``parser.set_defaults(handler=fn)``; ``fn(args) -> int`` returns the exit code.

    Args:
        subparsers: The ``argparse`` sub-parser collection of the ``specloop`` command.
    """

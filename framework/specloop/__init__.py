"""specloop: the MLOps loop as a declarative spec.

The public API. Everything not re-exported here (modules starting with ``_``) is internal;
plugins import only ``specloop`` and ``specloop.testing``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._plugin_types import Batch, Decision, Observation, file_md5, progress
from ._remote import open_url, remote_errors
from .components import ComponentSpec, Stage
from .errors import (ArtifactError, BatchNotReady, BusyError, ConfigError, PluginError,
                     RegistryError, SpecloopError, StageError, UnknownKindError)
from .hookspecs import hookimpl, hookspec
from .schema import (ENGINE_NODES, NAME_PATTERN, ROOT_KEYS, DataConf, Interval, Options,
                     RetrainConf, SplitConf, param)

__version__ = "0.2.0"

if TYPE_CHECKING:  # the context types load with the engine, on the first make_context
    from ._context import NodeContext, RunContext


def __getattr__(name: str):
    """``specloop.RunContext`` and ``specloop.NodeContext``, imported when first named (the
    engine behind them takes ~0.1 s to import; plugin modules stay cheap)."""
    if name in ("RunContext", "NodeContext"):
        from . import _context

        return getattr(_context, name)
    raise AttributeError(f"module 'specloop' has no attribute {name!r}")


# The functions below import the engine when first called: it would add ~0.1 s to
# `import specloop`, which every plugin module does.


def make_context(project_dir, overrides=(), *, echo=None):
    """Compose and validate a project's spec and return its run context.

    The entry point for plugin commands (``specloop_add_cli_commands``) that work on a
    project: the context holds the validated spec, the store, the registry and the run id.
    Call ``close()`` on it when done.

    Args:
        project_dir: The project folder (holding ``conf/config.yaml``).
        overrides: Hydra overrides, as on the command line.
        echo: Where progress lines go (a callable taking a string); default stderr.

    Returns:
        A ``RunContext``.

    Raises:
        ConfigError: for any problem with the spec.
    """
    from ._context import make_context as _make_context

    return _make_context(project_dir, overrides, echo=echo)


def load_model(ctx, version):
    """Deserialize a registered model version the one safe way the engine does.

    The bytes are checked against the SHA-256 the registry recorded before anything is
    deserialized, and loaded by the component that saved them, with the trusted types
    recorded at save time (pickle only if the spec allows it).

    Args:
        ctx: A run context (from :func:`make_context`).
        version: The registry record of the version (``ctx.registry.get(name, n)``).

    Returns:
        The fitted model.

    Raises:
        ArtifactError: for a missing, tampered or untrusted artifact.
        PluginError: the component that saved it is not installed.
    """
    from ._model_artifacts import load_model as _load

    return _load(ctx, version["model_key"], version)


def plugin_manager():
    """The plugin manager the ``specloop`` command uses: every installed plugin's entry point
    (less ``SPECLOOP_DISABLE_PLUGINS``; only ``SPECLOOP_PLUGINS`` if set), for plugin commands
    that work without a project (its ``component_table()`` lists every component)."""
    from ._manager import make_plugin_manager

    return make_plugin_manager()


def command_parser(pm=None):
    """The ``specloop`` command line's ``argparse`` parser, with the sub-commands of the
    plugins of ``pm`` (default: :func:`plugin_manager`), e.g. for shell completion."""
    from .cli import build_parser

    return build_parser(pm or plugin_manager())


def redact(ctx, value):
    """``value`` with every secret masked as ``***``, by the rule records are written with:
    the fields the spec's schemas declare secret, anything under ``storage_options`` and
    credential-like key names. ``value`` is a config (nested dicts and lists), a list of
    overrides, or text holding ``key=value`` pairs (an error message, ``override_dirname``)."""
    from ._redact import redact as _redact, redact_text, secret_fields

    keys = secret_fields(ctx.spec)
    return redact_text(value, keys) if isinstance(value, str) else _redact(value, keys)


def read_manifest(ctx, run_id):
    """A recorded run's manifest, once its bytes match the SHA-256 the registry recorded.

    Raises:
        RegistryError: no such run, or its manifest is missing or altered.
        ConfigError: a newer specloop wrote it.
    """
    from ._manifest import read_manifest as _read

    return _read(ctx, run_id)


def run(ctx, *, until=None):
    """Run the project's pipeline the way ``specloop run`` does (planned, cached, recorded).

    Args:
        ctx: A run context (from :func:`make_context`).
        until: The last stage to run (``data``, ``split``, ``train``, ``evaluate``,
            ``register``, ``deploy``; default: all of them).

    Returns:
        The run's manifest (``run_id``, ``status``, ``stages`` with their keys, ``metrics``,
        ``model_version``, ``alias_changes``, ``deployment`` …) and ``rows``, one per stage.

    Raises:
        ConfigError: for a problem with the spec or the data; StageError: a component failed.
    """
    from ._runner import execute

    return execute(ctx, until=until)


def promote(ctx, version, *, alias="champion", force=False, reason=None, deploy=True):
    """Point ``alias`` at ``version`` the governed way ``specloop registry promote`` does.

    For ``champion`` the project's declared gate judges the candidate's recorded metrics
    against the champion's; a failing gate changes nothing unless ``force`` is given with a
    ``reason``, and the forced promotion is audited as such. The new champion is then
    deployed with the spec's deploy component, under the model's lock.

    Args:
        ctx: A run context (from :func:`make_context`); its spec declares the gate.
        version: The version to promote.
        alias: The alias to move (only ``champion`` is gated and deployed).
        force: Promote although the gate fails (needs ``reason``).
        reason: Why; recorded in the alias history and the audit log.
        deploy: Deploy the new champion.

    Returns:
        ``{"alias", "from", "to", "gate", "forced", "deployment"}``.

    Raises:
        RegistryError: an unknown version, ``force`` without ``reason``, a gate that
            refuses (then the error's ``gate`` attribute holds the gate's result), or the
            alias moved meanwhile.
    """
    from ._governance import promote as _promote

    return _promote(ctx, version, alias=alias, force=force, reason=reason, deploy=deploy)


def rollback(ctx, *, alias="champion", reason=None, deploy=True):
    """Move ``alias`` back to its previous holder the governed way ``specloop registry
    rollback`` does (never to the version just rolled back from), and deploy it.

    Args:
        ctx: A run context (from :func:`make_context`).
        alias: The alias to move back.
        reason: Why; recorded in the alias history and the audit log.
        deploy: Deploy the restored champion.

    Returns:
        ``{"alias", "from", "to", "deployment"}``.

    Raises:
        RegistryError: no earlier holder, or the alias moved meanwhile.
    """
    from ._governance import rollback as _rollback

    return _rollback(ctx, alias, reason=reason, deploy=deploy)


__all__ = [
    "ENGINE_NODES", "NAME_PATTERN", "ROOT_KEYS", "ArtifactError", "Batch", "BatchNotReady",
    "BusyError", "ComponentSpec", "ConfigError", "DataConf", "Decision", "Interval",
    "NodeContext", "Observation", "Options", "PluginError", "RegistryError", "RetrainConf",
    "RunContext", "SpecloopError", "SplitConf", "Stage", "StageError", "UnknownKindError",
    "__version__", "command_parser", "file_md5", "hookimpl", "hookspec", "load_model",
    "make_context", "open_url", "param", "plugin_manager", "progress", "promote",
    "read_manifest", "redact", "remote_errors", "rollback", "run",
]

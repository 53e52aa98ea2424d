"""specloop: the MLOps loop as a declarative spec.

The public API. Everything not re-exported here (modules starting with ``_``) is internal;
plugins import only ``specloop`` and ``specloop.testing``.
"""

from __future__ import annotations

from ._hashing import file_md5
from ._policy import Decision, Observation
from ._remote import open_url, remote_errors
from .components import ComponentSpec, Stage
from .errors import (ArtifactError, ConfigError, PluginError, RegistryError, SpecloopError,
                     StageError, UnknownKindError)
from .hookspecs import hookimpl, hookspec
from .schema import DataConf, Interval, Options, RetrainConf, SplitConf, param

__version__ = "0.1.0"


def make_context(project_dir, overrides=(), *, echo=None):
    """Compose and validate a project's spec and return its run context.

    The entry point for plugin commands (``specloop_add_cli_commands``) that work on a
    project: the context holds the validated spec, the store, the registry and the run id.
    Call ``close()`` on it when done. Hydra and the plugins load on the first call, not when
    ``specloop`` is imported.

    Args:
        project_dir: The project folder (holding ``conf/config.yaml``).
        overrides: Hydra overrides, as on the command line.
        echo: Where progress lines go (a callable taking a string); default stderr.

    Returns:
        A ``RunContext``.

    Raises:
        ConfigError: for any problem with the spec.
    """
    from ._session import make_context as _make_context

    return _make_context(project_dir, overrides, echo=echo)


def load_model(ctx, version):
    """Deserialize a registered model version the one safe way the engine does.

    The bytes are checked against the SHA-256 the registry recorded before anything is
    deserialized, and loaded with the spec's model component (skops with the version's
    recorded trusted types; pickle only if the spec allows it).

    Args:
        ctx: A run context (from :func:`make_context`).
        version: The registry record of the version (``ctx.registry.get(name, n)``).

    Returns:
        The fitted model.

    Raises:
        ArtifactError: for a tampered, truncated or untrusted artifact.
    """
    from ._model_artifacts import load_model as _load

    component = ctx.spec.components["model"].build()
    return _load(ctx, component, version["model_key"], version)


def promote(ctx, version, *, alias="champion", force=False, reason=None):
    """Point ``alias`` at ``version`` the governed way ``specloop registry promote`` does.

    For ``champion`` the project's declared gate judges the candidate's recorded metrics
    against the champion's; a failing gate changes nothing unless ``force`` is given with a
    ``reason``, and the forced promotion is audited as such.

    Args:
        ctx: A run context (from :func:`make_context`); its spec declares the gate.
        version: The version to promote.
        alias: The alias to move (only ``champion`` is gated).
        force: Promote although the gate fails (needs ``reason``).
        reason: Why; recorded in the alias history and the audit log.

    Returns:
        ``{"alias", "from", "to", "gate", "forced"}``.

    Raises:
        RegistryError: an unknown version, ``force`` without ``reason``, or a gate that
            refuses (then the error's ``gate`` attribute holds the gate's result).
    """
    from ._governance import promote as _promote

    return _promote(ctx, version, alias=alias, force=force, reason=reason)


def cache_dir(name):
    """The per-user folder where the cache ``name`` lives (``None``: caching is off).

    For a plugin that remembers something costly to compute and cheap to recompute, keyed
    by what it depends on (as specloop's own cache of composed specs is):
    ``$SPECLOOP_CACHE_DIR/<name>``, else ``$XDG_CACHE_HOME/specloop/<name>``, else
    ``~/.cache/specloop/<name>``; ``SPECLOOP_CACHE_DIR=off`` switches every cache off. The
    folder may not exist yet; entries should be written atomically and an unreadable entry
    treated as a miss.

    Args:
        name: The cache's name (one folder per cache, e.g. the plugin's name).

    Returns:
        A ``pathlib.Path``, or ``None``.
    """
    from ._compose_cache import user_cache

    return user_cache(name)


__all__ = [
    "ArtifactError",
    "ComponentSpec",
    "ConfigError",
    "DataConf",
    "Decision",
    "Interval",
    "Observation",
    "Options",
    "PluginError",
    "RegistryError",
    "RetrainConf",
    "SpecloopError",
    "SplitConf",
    "Stage",
    "StageError",
    "UnknownKindError",
    "__version__",
    "cache_dir",
    "file_md5",
    "hookimpl",
    "hookspec",
    "load_model",
    "make_context",
    "open_url",
    "param",
    "promote",
    "remote_errors",
]

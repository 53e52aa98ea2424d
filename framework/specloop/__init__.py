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
    "file_md5",
    "hookimpl",
    "hookspec",
    "load_model",
    "make_context",
    "open_url",
    "param",
    "remote_errors",
]

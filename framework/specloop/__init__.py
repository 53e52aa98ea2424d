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
    "open_url",
    "param",
    "remote_errors",
]

"""The engine's own nodes (``project``, ``store``, ``loop``, ``sweep``) and root keys, as the
editor schema describes them.

The engine validates these nodes against dataclasses that are not part of its public API
yet, so they are mirrored here; ``tests/plugins/test_scaffold_schema.py`` holds the mirror to
the engine's (same fields, types, defaults and constraints).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from specloop import Interval, Options, param

ROOT_KEYS = ("project", "data", "model", "metrics", "gate", "store", "deploy", "monitor",
             "retrain", "loop", "sweep", "plugins", "allow_python_targets")
NAME_PATTERN = r"^(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"


@dataclass
class ProjectConf:
    """The ``project:`` node."""

    name: str = param("project", help="model name in the registry")
    seed: int = param(0, check=Interval(int, 0, 2**32 - 1),
                      help="the seed every stage derives its randomness from")
    description: str = param("", help="one line for the model card")
    threads: int | None = param(None, check=Interval(int, 1, None, allow_none=True),
                                help="threads native libraries (OpenMP, BLAS) may use while "
                                     "stages run (default: their own choice)")


@dataclass
class StoreConf:
    """The ``store:`` node: where artifacts, manifests and the registry live."""

    url: str = param(".specloop/store", help="artifact store: a folder (relative to the "
                                             "project) or an fsspec URL (s3://bucket/prefix)")
    registry: str | None = param(None, help="the registry's SQLite file: a path or "
                                            "sqlite:///PATH (default: .specloop/registry.db "
                                            "in the project, never inside the store)")
    storage_options: dict[str, Any] = param(default_factory=dict, secret=True,
                                            help="passed to fsspec (endpoint, credentials …)")


@dataclass
class LoopConf:
    """The ``loop:`` node: incoming batches and how a challenger is judged."""

    evaluate_on: str = param("recent", check=Options("recent", "window"),
                             help="judge challenger and champion on a holdout of the recent "
                                  "batches, or of the whole training window")
    holdout: float = param(0.25, check=Interval(float, 0, 1, closed="neither"),
                           help="fraction of each window part held out to judge models")
    settle_seconds: float = param(1.0, check=Interval(float, 0, None),
                                  help="a batch changed less than this long ago is read only "
                                       "if it stays unchanged for this long")


@dataclass
class SweepConf:
    """The ``sweep:`` node (used by multirun)."""

    register: str = param("best", check=Options("best", "all", "none"),
                          help="what a sweep registers: the best member, all, or none")


ENGINE_NODES = {"project": ProjectConf, "store": StoreConf, "loop": LoopConf,
                "sweep": SweepConf}

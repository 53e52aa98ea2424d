"""Deploy targets for specloop: ``batch`` and ``object_store``.

* ``batch`` scores a data set (any data component, e.g. ``csv`` or ``parquet``) with the
  champion, chunk by chunk, into one Parquet file; memory is bounded by ``chunk_size``.
* ``object_store`` publishes the champion's bundle (the ``bundle`` target's files) to any
  fsspec URL (``s3://``, ``gs://``, ``memory://``, a folder …), ``metadata.json`` last.

This module only declares the components and is cheap to import; pandas, pyarrow and the
filesystem drivers (``s3fs``) load when a target runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from specloop import ComponentSpec, ConfigError, Interval, Stage, hookimpl, param


@dataclass
class ObjectStoreConf:
    """Where the bundle is published."""

    url: str = param("???", help="fsspec URL of the bundle folder, e.g. "
                                 "s3://bucket/deploy/champion (required)")
    storage_options: dict = param(default_factory=dict, secret=True,
                                  help="passed to fsspec (endpoint, credentials …)")


@dataclass
class BatchConf:
    """What is scored, and where the scores go."""

    input: Any = None
    output: str = param("deploy/scores.parquet",
                        help="the Parquet file written: a path relative to the project, or an "
                             "fsspec URL")
    storage_options: dict = param(default_factory=dict, secret=True,
                                  help="passed to fsspec when output is a URL")
    chunk_size: int = param(10_000, check=Interval(int, 1, None),
                            help="rows scored at a time; bounds memory")
    passthrough: list[str] = param(default_factory=list,
                                   help="input columns copied to the output (e.g. an id)")
    progress: bool = param(True, help="print a progress bar to stderr")

    def validate_spec(self, ctx: Any) -> None:
        """The data set to score must be declared."""
        if self.input is None:
            raise ConfigError("the batch target has no input", key=f"{ctx.key}.input",
                              file=ctx.where(ctx.key), expected="a data node such as "
                              "{kind: csv, path: data/score.csv, target: <label column>}",
                              fix=f"set {ctx.key}.input (any data kind: csv, parquet …)")


@hookimpl
def specloop_register_components():
    """Register the ``batch`` and ``object_store`` deploy targets."""
    return [
        ComponentSpec(Stage.DEPLOY, "batch", "specloop_targets._batch:BatchScorer", BatchConf,
                      nested={"input": Stage.DATA}, requires=("pyarrow",),
                      install_hint="pip install pyarrow",
                      description="scores a data set in chunks to one Parquet file"),
        ComponentSpec(Stage.DEPLOY, "object_store",
                      "specloop_targets._object_store:ObjectStoreDeployer", ObjectStoreConf,
                      description="publishes the bundle to any fsspec URL (s3://, gs:// …)"),
    ]


@hookimpl
def specloop_add_conf_dirs():
    """Ship the ``deploy/`` presets."""
    return [str(Path(__file__).parent / "conf")]

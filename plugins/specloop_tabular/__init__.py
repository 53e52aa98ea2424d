"""Tabular data sources for specloop: ``csv``, ``parquet`` and ``sklearn_dataset``.

The file sources read a DVC-tracked file at a git revision when ``rev`` (or ``repo``) is set.

This module is what the ``specloop.plugins`` entry point loads: it only declares components
(schemas and lazy factory paths) and is cheap to import; pandas loads when data is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from specloop import ComponentSpec, DataConf, Options, Stage, hookimpl, param


@dataclass
class FileDataConf(DataConf):
    """A file, or a glob of files, of tabular data."""

    path: str = param("???", help="file path or glob, relative to the project folder (required)")
    options: dict = param(default_factory=dict, help="passed to pandas' reader")
    rev: str | None = param(None, help="read the DVC-tracked file as of this git revision "
                                       "(tag, branch or commit) through dvc.api")
    repo: str | None = param(None, help="the DVC repository (folder or git URL; default: the "
                                        "nearest one holding the file)")
    remote: str | None = param(None, help="the DVC remote to fetch from (default: the repo's)")


@dataclass
class SklearnDatasetConf(DataConf):
    """A data set that ships with scikit-learn (no download)."""

    name: str = param("breast_cancer", check=Options("breast_cancer", "iris", "wine", "diabetes",
                                                     "digits"), help="the bundled data set")
    target: str = param("target")


@hookimpl
def specloop_register_components():
    """Register the tabular data sources."""
    return [
        ComponentSpec(Stage.DATA, "csv", "specloop_tabular._sources:CsvSource", FileDataConf,
                      description="CSV file(s); a glob makes one batch per file"),
        ComponentSpec(Stage.DATA, "parquet", "specloop_tabular._sources:ParquetSource",
                      FileDataConf, requires=("pyarrow",), install_hint="pip install pyarrow",
                      description="Parquet file(s); a glob makes one batch per file"),
        ComponentSpec(Stage.DATA, "sklearn_dataset", "specloop_tabular._sources:SklearnDataset",
                      SklearnDatasetConf, description="a data set bundled with scikit-learn"),
    ]


@hookimpl
def specloop_add_conf_dirs():
    """Ship the ``data/`` presets."""
    return [str(Path(__file__).parent / "conf")]


@hookimpl
def specloop_add_cli_commands(subparsers):
    """Add ``export dvc`` and ``dvc-stage`` (DVC drives the stages)."""
    from ._commands import add_commands

    add_commands(subparsers)

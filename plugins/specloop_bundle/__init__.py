"""The ``bundle`` deploy target: the champion as a self-describing folder.

A bundle holds the model, its input signature, metadata and a model card, written to a
temporary folder and swapped in, so a reader never sees half a bundle.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from specloop import ComponentSpec, Stage, hookimpl, param

# the bundle's files and their atomic writers, for targets that publish a bundle elsewhere
from ._bundle import METADATA, bundle_files, read_verified, write_fs, write_local

__all__ = ["METADATA", "bundle_files", "read_verified", "write_fs", "write_local"]


@dataclass
class BundleConf:
    """Where the bundle goes."""

    path: str = param("deploy/champion", help="bundle folder, relative to the project")


@hookimpl
def specloop_register_components():
    """Register the bundle deploy target."""
    return [ComponentSpec(Stage.DEPLOY, "bundle", "specloop_bundle._bundle:BundleDeployer",
                          BundleConf, description="a self-describing folder with the champion")]


@hookimpl
def specloop_add_conf_dirs():
    """Ship the ``deploy/`` presets."""
    return [str(Path(__file__).parent / "conf")]

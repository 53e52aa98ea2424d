"""Versions of installed distributions, read from their ``name-version.dist-info`` folders.

``importlib.metadata.version()`` parses a distribution's whole METADATA file with the email
parser. Every run records a dozen versions in its manifest and every plugin's distribution,
so on a command that finds everything cached that parsing was a visible share of the time.
The folder names carry the same two facts; a distribution without such a folder (an old
egg-info install) falls back to importlib.metadata.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from typing import Any


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


@functools.cache
def _index() -> dict[str, str]:
    out: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.endswith(".dist-info"):
                dist, _, ver = name[: -len(".dist-info")].partition("-")
                if ver:
                    out.setdefault(_norm(dist), ver)
    return out


def version(name: str) -> str | None:
    """The installed version of distribution ``name``, or ``None``."""
    found = _index().get(_norm(name))
    if found is not None:
        return found
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as metadata_version

    try:
        return metadata_version(name)
    except PackageNotFoundError:
        return None


def describe(dist: Any) -> str:
    """``"name version"`` of an ``importlib.metadata.Distribution`` (entry points carry one)."""
    folder = getattr(dist, "_path", None)
    stem = os.path.basename(str(folder)) if folder is not None else ""
    if stem.endswith(".dist-info") and "-" in stem:
        name, _, ver = stem[: -len(".dist-info")].partition("-")
        return f"{name.replace('_', '-')} {ver}"
    return f"{dist.name} {dist.version}"

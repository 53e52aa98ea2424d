"""Versions and entry points of installed distributions, read from their ``.dist-info`` folders.

``importlib.metadata.version()`` parses a distribution's whole METADATA file with the email
parser. Every run records a dozen versions in its manifest and every plugin's distribution,
so on a command that finds everything cached that parsing was a visible share of the time.
The folder names carry the same two facts; a distribution without such a folder (an old
egg-info install) falls back to importlib.metadata.

Entry points likewise: importing ``importlib.metadata`` (it pulls in the ``email`` package)
and scanning every distribution cost an unchanged re-run about 30 ms, a sixth of it.
:func:`entry_points` reads ``entry_points.txt`` of the ``*.dist-info`` folders on
``sys.path``, first folder of a distribution wins, as importlib.metadata does; where
anything else could declare entry points (an ``.egg-info`` folder, an egg, a zip on the
path) it asks importlib.metadata instead.
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


_EP_VALUE = re.compile(r"(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?((?P<extras>\[.*\])\s*)?$")


class _Dist:
    """The two facts :func:`describe` needs of a distribution."""

    def __init__(self, path: str) -> None:
        self._path = path
        stem = os.path.basename(path)[: -len(".dist-info")]
        name, _, self.version = stem.partition("-")
        self.name = name.replace("_", "-")


class EntryPoint:
    """An entry point read from a ``*.dist-info/entry_points.txt`` (``importlib.metadata``'s
    ``name``, ``value``, ``group``, ``dist`` and ``load()``)."""

    def __init__(self, name: str, value: str, group: str, dist: _Dist) -> None:
        self.name, self.value, self.group, self.dist = name, value, group, dist

    def load(self) -> Any:
        """Import the module and return the object the entry point names."""
        import importlib

        match = _EP_VALUE.match(self.value)
        if match is None:
            raise ValueError(f"malformed entry point value {self.value!r}")
        obj = importlib.import_module(match.group("module"))
        for attr in filter(None, (match.group("attr") or "").split(".")):
            obj = getattr(obj, attr)
        return obj


def _dist_info_folders() -> list[str] | None:
    """Every ``*.dist-info`` folder on ``sys.path`` (first of each name), or ``None`` when
    something else on the path could also declare entry points."""
    seen: set[str] = set()
    out: list[str] = []
    for entry in sys.path:
        base = entry or "."
        try:
            names = os.listdir(base)
        except NotADirectoryError:
            return None  # a zip or an egg file on the path
        except OSError:
            continue
        for name in names:
            if name.endswith((".egg-info", ".egg")):
                return None
            if name.endswith(".dist-info"):
                dist = _norm(name[: -len(".dist-info")].partition("-")[0])
                if dist not in seen:
                    seen.add(dist)
                    out.append(os.path.join(base, name))
    return out


def entry_points(group: str) -> list[Any]:
    """The installed entry points of ``group`` (see the module docstring)."""
    folders = _dist_info_folders()
    if folders is None:
        from importlib.metadata import entry_points as metadata_entry_points

        return list(metadata_entry_points(group=group))
    out = []
    for folder in folders:
        try:
            with open(os.path.join(folder, "entry_points.txt"), encoding="utf-8") as fh:
                text = fh.read()
        except OSError:
            continue
        section = None
        for line in text.splitlines():
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("[") and line.endswith("]"):
                section = line[1:-1].strip()
            elif section == group and "=" in line:
                name, _, value = line.partition("=")
                out.append(EntryPoint(name.strip(), value.strip(), group, _Dist(folder)))
    return out


def describe(dist: Any) -> str:
    """``"name version"`` of an ``importlib.metadata.Distribution`` (entry points carry one)."""
    folder = getattr(dist, "_path", None)
    stem = os.path.basename(str(folder)) if folder is not None else ""
    if stem.endswith(".dist-info") and "-" in stem:
        name, _, ver = stem[: -len(".dist-info")].partition("-")
        return f"{name.replace('_', '-')} {ver}"
    return f"{dist.name} {dist.version}"

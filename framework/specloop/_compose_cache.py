"""A cache of composed specs, so a command on an unchanged spec does not start Hydra.

Composition is a pure function of the YAML files on the search path, the overrides, the
environment variables the YAML reads with ``${oc.env:NAME}`` and the versions of the
composing libraries. The key hashes all of them, file *contents* included (a few dozen small
files: well under a millisecond), so an edit, a new option file or a changed variable is a
miss. A spec that uses any other resolver (``${now:...}``, ``${hydra:...}``, a resolver a
plugin registers) is never cached: its value may change between two identical calls.

The cache is per user, like Python's bytecode cache (``$SPECLOOP_CACHE_DIR``, else
``$XDG_CACHE_HOME/specloop``, else ``~/.cache/specloop``); ``SPECLOOP_CACHE_DIR=off``
disables it. Entries are small JSON files written atomically; an unreadable entry is a miss.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

FORMAT = 1
_RESOLVER = re.compile(r"\$\{\s*([A-Za-z_][\w.]*)\s*:")
_ENV = re.compile(r"\$\{\s*oc\.env\s*:\s*([A-Za-z_]\w*)")
_SAFE_RESOLVERS = {"oc.env"}


def user_cache(name: str) -> Path | None:
    """The per-user folder of the cache ``name``, or ``None`` when caching is switched off.

    ``$SPECLOOP_CACHE_DIR/<name>``, else ``$XDG_CACHE_HOME/specloop/<name>``, else
    ``~/.cache/specloop/<name>``; ``SPECLOOP_CACHE_DIR=off`` switches every cache off.
    """
    configured = os.environ.get("SPECLOOP_CACHE_DIR")
    if configured is not None:
        if configured.strip().lower() in {"", "0", "off", "false", "no"}:
            return None
        return Path(configured) / name
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "specloop" / name


def cache_dir() -> Path | None:
    """Where entries live, or ``None`` when the cache is switched off."""
    return user_cache("compose")


def _versions() -> list[str]:
    """specloop's version and the installed Hydra and OmegaConf (their files' stat: an
    upgrade or reinstall changes it, and no package metadata has to be parsed)."""
    from importlib.util import find_spec

    from . import __version__

    out = [__version__]
    for module in ("hydra", "omegaconf"):
        spec = find_spec(module)
        origin = spec.origin if spec is not None else None
        st = os.stat(origin) if origin else None
        out.append(f"{origin}:{st.st_size}:{st.st_mtime_ns}" if st else "?")
    return out


def key(conf_dirs: list[Path], overrides: list[str]) -> str | None:
    """The cache key of composing with these search directories and overrides.

    Returns ``None`` when the result must not be cached (a resolver other than ``oc.env``).
    """
    h = hashlib.sha256()
    env_names: set[str] = set()
    texts = [("override", ov) for ov in overrides]
    for d in conf_dirs:
        h.update(f"\0dir {d}\0".encode())
        if not d.is_dir():
            continue
        for path in sorted(d.rglob("*.yaml")):
            data = path.read_bytes()
            h.update(f"\0{path.relative_to(d)}\0".encode())
            h.update(data)
            if b"${" in data:
                texts.append((str(path), data.decode("utf-8", "replace")))
    for _, text in texts:
        if any(name not in _SAFE_RESOLVERS for name in _RESOLVER.findall(text)):
            return None
        env_names.update(_ENV.findall(text))
    h.update(json.dumps([FORMAT, _versions(), overrides,
                         {n: os.environ.get(n) for n in sorted(env_names)}]).encode())
    return h.hexdigest()[:40]


def load(entry: str) -> dict[str, Any] | None:
    """The entry stored under ``entry``, or ``None``."""
    root = cache_dir()
    if root is None:
        return None
    try:
        doc = json.loads((root / f"{entry}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and doc.get("format") == FORMAT else None


def save(entry: str, doc: dict[str, Any]) -> None:
    """Store ``doc`` under ``entry`` (atomically; a failure to write is not an error)."""
    root = cache_dir()
    if root is None:
        return
    try:
        text = json.dumps({**doc, "format": FORMAT})
    except (TypeError, ValueError):
        return
    write_entry(root / f"{entry}.json", text)


def write_entry(path: str | os.PathLike, text: str) -> None:
    """Write a cache entry atomically, creating its folder; a failure leaves no entry and no
    temporary file, and is not an error (the entry is computed again next time)."""
    folder = os.path.dirname(os.fspath(path))
    tmp = None
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except OSError:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)

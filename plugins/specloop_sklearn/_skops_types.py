"""skops, imported without rebuilding its table of trusted types every time.

``import skops.io`` builds the lists of type names skops trusts by default
(``skops.io._trusted_types``): it imports every scikit-learn module to list the estimators
(pytest among them, through ``sklearn.utils._testing``), and looks up the module of each
numpy and scipy ufunc by scanning every loaded module. That is ~0.9 s of CPU in every process
that saves or loads a model, for lists that depend only on the installed packages.

So the lists are remembered per user (``specloop.cache_dir("skops")``), keyed by the
Python version and the installed skops, scikit-learn, numpy and scipy (each package's
``__init__`` path, size and modification time: an upgrade or a reinstall is a miss, and
nothing is imported to compute the key). On a hit, a module holding exactly the remembered
lists stands in for ``skops.io._trusted_types`` while ``skops.io`` is imported; on a miss
skops builds them as usual and they are written for the next process. What skops trusts is
the same either way: the lists are the ones skops itself computed for these very packages.
Anything unexpected (an unreadable entry, a skops that wants another name) falls back to
the plain import.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import types
from typing import Any

_MODULE = "skops.io._trusted_types"
_FORMAT = 1


def skops_io() -> Any:
    """``skops.io``, imported with the remembered trusted-type lists when there are some."""
    if "skops.io" in sys.modules:
        return sys.modules["skops.io"]
    path = _entry()
    table = _read(path) if path is not None and _MODULE not in sys.modules else None
    if table is not None:
        stand_in = types.ModuleType(_MODULE, "skops' trusted-type lists, as remembered")
        stand_in.__dict__.update(table)
        sys.modules[_MODULE] = stand_in
        try:
            import skops.io

            return skops.io
        except Exception:  # noqa: BLE001 - e.g. a skops that imports another name: start over
            for name in [m for m in sys.modules if m == "skops.io" or m.startswith("skops.io.")]:
                del sys.modules[name]
    import skops.io

    if path is not None and table is None:
        _write(path, sys.modules[_MODULE])
    return skops.io


def _entry() -> str | None:
    """The cache file for the installed packages, or ``None`` (caching off, or unknown)."""
    from importlib.util import find_spec

    from specloop import cache_dir

    folder = cache_dir("skops")
    if folder is None:
        return None
    parts = [f"{_FORMAT}", sys.version]
    for package in ("skops", "sklearn", "numpy", "scipy"):
        try:
            spec = find_spec(package)
            origin = spec.origin if spec is not None else None
            st = os.stat(origin) if origin else None
        except (ImportError, ValueError, OSError):
            return None
        if st is None:
            return None
        parts.append(f"{origin}:{st.st_size}:{st.st_mtime_ns}")
    digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]
    return os.path.join(folder, f"trusted-types-{digest}.json")


def _read(path: str) -> dict[str, list[str]] | None:
    try:
        with open(path, encoding="utf-8") as fh:
            table = json.load(fh)
    except (OSError, ValueError):
        return None
    if not isinstance(table, dict) or not table or not all(
            isinstance(k, str) and k.endswith("_NAMES") and isinstance(v, list)
            and all(isinstance(x, str) for x in v) for k, v in table.items()):
        return None
    return table


def _write(path: str, module: Any) -> None:
    """Remember the module's ``*_NAMES`` lists (atomically; a failure is only a miss later)."""
    table = {k: list(v) for k, v in vars(module).items()
             if k.endswith("_NAMES") and isinstance(v, list) and all(isinstance(x, str) for x in v)}
    if not table:
        return
    import tempfile

    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    except OSError:
        return
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(table, fh)
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass

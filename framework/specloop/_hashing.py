"""Content hashes: cache keys of stages and fingerprints of data files."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: equal values give equal text."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def cache_key(*parts: Any) -> str:
    """SHA-256 (hex, first 32 characters) of the canonical JSON of ``parts``."""
    return hashlib.sha256(canonical_json(parts).encode()).hexdigest()[:32]


# a file changed less than this many seconds before it is hashed is not remembered: some
# file systems keep coarse timestamps, so a write in the same tick would not change them
_SETTLED = 2.0


def file_md5(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """MD5 of a file's bytes, as DVC records it for a file output.

    The result is remembered per user (``SPECLOOP_CACHE_DIR``'s ``md5`` folder) under the
    file's path, device, inode, size, modification and status-change times (nanoseconds), as
    git's index and DVC's state database do. Any write to a file changes its status-change
    time (ctime), which no tool can set back, so a remembered md5 is never that of other
    content; a file whose times are less than two seconds old is hashed but not remembered
    (a write within the same timestamp tick would go unnoticed otherwise).
    """
    st = os.stat(path)
    entry = _remembered(path, st)
    if entry is not None:
        try:
            with open(entry, encoding="ascii") as fh:
                known = fh.read()
            if len(known) == 32 and all(c in "0123456789abcdef" for c in known):
                return known
        except (OSError, UnicodeDecodeError):
            pass
    h = hashlib.md5()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    digest = h.hexdigest()
    if entry is not None and time.time() - max(st.st_mtime, st.st_ctime) > _SETTLED:
        from ._compose_cache import write_entry

        write_entry(entry, digest)  # a failure: hashed again next time
    return digest


def _remembered(path: str | os.PathLike, st: os.stat_result) -> str | None:
    """Where the md5 of the file in state ``st`` is remembered (``None``: caching is off)."""
    from ._compose_cache import user_cache

    folder = user_cache("md5")
    if folder is None:
        return None
    state = "\0".join(map(str, (os.path.abspath(path), st.st_dev, st.st_ino, st.st_size,
                                 st.st_mtime_ns, st.st_ctime_ns)))
    return os.path.join(folder, hashlib.sha256(state.encode()).hexdigest()[:40])


def files_fingerprint(paths: list[Path]) -> dict[str, str]:
    """``{path: md5}`` for each file, in sorted path order."""
    return {str(p): file_md5(p) for p in sorted(paths)}

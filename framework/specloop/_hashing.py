"""Content hashes: cache keys of stages and fingerprints of data."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any


def cache_key(*parts: Any) -> str:
    """SHA-256 (hex, first 32 characters) of the canonical JSON of ``parts`` (sorted keys, no
    whitespace: equal values give equal keys)."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def file_md5(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """MD5 of a file's bytes, as DVC records it for a file output (a data fingerprint)."""
    h = hashlib.md5()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


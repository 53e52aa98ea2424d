"""The artifact store: content-addressed folders behind an fsspec URL.

Layout under the store root::

    artifacts/<key>/<file>…      one folder per stage output, named by its cache key
    artifacts/<key>/_meta.json   written last: the commit marker, with each file's SHA-256
    runs/<run_id>/manifest.json  one manifest per run

A reader only trusts an artifact whose ``_meta.json`` exists, and verifies each file's
SHA-256 against it. On a local folder an artifact is first written to a temporary folder and
then renamed into place, so a crash never leaves a half-written artifact visible; on object
stores, where rename is a copy, ``_meta.json`` written last plays that role.

Concurrent writers of one key (parallel sweep members, two sweeps on one cache) take
:meth:`ArtifactStore.lock` around "check, compute, put": on a local store an exclusive
``fcntl.flock`` on ``artifacts/.locks/<key>.lock``, so the second process waits, re-checks
:meth:`ArtifactStore.has` and takes the cache hit instead of computing the key again. Remote
stores have no shared lock; there both compute and the first complete ``_meta.json`` wins,
which is still safe because readers verify every file's SHA-256.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from ._remote import open_url, remote_errors
from .errors import ArtifactError


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ArtifactStore:
    """Read and write artifacts and manifests.

    Args:
        url: A local folder (relative paths are taken from ``base_dir``) or an fsspec URL.
        base_dir: The project folder.
        storage_options: Passed to fsspec for remote URLs.
    """

    def __init__(self, url: str, base_dir: Path, storage_options: dict | None = None) -> None:
        self.url = url
        self.storage_options = dict(storage_options or {})
        self.local = "://" not in url or url.startswith("file://")
        if self.local:
            path = Path(url.removeprefix("file://"))
            self.root = str(path if path.is_absolute() else (Path(base_dir) / path).resolve())
        else:
            # the protocol-less form (``bucket/prefix``) is what fsspec paths look like; it is
            # also what names the local registry of a remote store, so it never changes
            self.protocol, self.root = url.split("://", 1)
            self.root = self.root.rstrip("/")
        self._fs = None

    @property
    def fs(self):
        """The fsspec filesystem (imported on first use; a remote store is checked once)."""
        if self._fs is None:
            if self.local:
                import fsspec

                self._fs = fsspec.filesystem("file")
            else:
                self._fs, _ = open_url(self.url, self.storage_options)
        return self._fs

    def __getstate__(self) -> dict:
        # sent to the artifact writer process: it opens its own filesystem
        return {**self.__dict__, "_fs": None}

    def _remote(self) -> remote_errors:
        return remote_errors(self.url, self.storage_options)

    def path(self, *parts: str) -> str:
        """A path inside the store (local path or bucket path)."""
        return "/".join([self.root, *parts])

    # -- artifacts ---------------------------------------------------------------------------
    def has(self, key: str) -> bool:
        """Whether a complete artifact exists for ``key``."""
        meta = self.path("artifacts", key, "_meta.json")
        if self.local:
            return os.path.exists(meta)
        with self._remote():
            self.fs.invalidate_cache(meta)  # another process may have written it meanwhile
            return self.fs.exists(meta)

    @contextmanager
    def lock(self, key: str) -> Iterator[bool]:
        """Hold an exclusive per-key lock while computing ``key``; yields whether it is held.

        Local stores lock a file next to the artifacts with ``fcntl.flock`` (released by the
        kernel if the process dies, so a crash never leaves a stale lock). Where no such lock
        exists (object stores, platforms without ``fcntl``) it yields ``False`` and writers
        fall back to "compute and publish atomically, first complete writer wins".
        """
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            fcntl = None
        if not self.local or fcntl is None:
            yield False
            return
        folder = self.path("artifacts", ".locks")
        os.makedirs(folder, exist_ok=True)
        fd = os.open(os.path.join(folder, f"{key}.lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def put(self, key: str, files: dict[str, bytes], meta: dict[str, Any] | None = None) -> dict:
        """Write an artifact atomically; a concurrent writer of the same key wins harmlessly.

        Args:
            key: The cache key.
            files: File name to content.
            meta: Extra metadata stored in ``_meta.json``.

        Returns:
            The metadata written (with ``files: {name: {sha256, size}}``).
        """
        record = {"key": key, "files": {n: {"sha256": _sha256(b), "size": len(b)}
                                        for n, b in files.items()}, **(meta or {})}
        body = json.dumps(record, indent=1, sort_keys=True).encode()
        final = self.path("artifacts", key)
        if self.local:
            tmp = self.path("artifacts", f".tmp-{key}-{uuid.uuid4().hex[:8]}")
            os.makedirs(tmp)
            try:
                for name, data in files.items():
                    with open(os.path.join(tmp, name), "wb") as fh:
                        fh.write(data)
                        fh.flush()
                        os.fsync(fh.fileno())
                with open(os.path.join(tmp, "_meta.json"), "wb") as fh:
                    fh.write(body)
                if os.path.exists(final) and not os.path.exists(os.path.join(final, "_meta.json")):
                    shutil.rmtree(final, ignore_errors=True)  # leftover of an old crash
                try:
                    os.rename(tmp, final)
                except OSError:
                    if not self.has(key):
                        raise
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        else:
            with self._remote():
                for name, data in files.items():
                    self.fs.pipe_file(f"{final}/{name}", data)
                self.fs.pipe_file(f"{final}/_meta.json", body)  # the commit marker, last
        return record

    def meta(self, key: str) -> dict:
        """The ``_meta.json`` of an artifact.

        Raises:
            ArtifactError: if the artifact does not exist.
        """
        path = self.path("artifacts", key, "_meta.json")
        try:
            return json.loads(self._read(path))
        except FileNotFoundError:
            raise ArtifactError(f"artifact {key} is not in the store", path=path) from None

    def get(self, key: str, name: str, *, registered: str | None = None) -> bytes:
        """Read one file of an artifact and verify its SHA-256.

        Args:
            key: The artifact's key.
            name: The file name inside the artifact.
            registered: The SHA-256 the model registry recorded for this file, checked
                first: it still holds when the artifact's own ``_meta.json`` was rewritten.

        Raises:
            ArtifactError: if it is missing, or its hash does not match the recorded one.
        """
        meta = self.meta(key)
        path = self.path("artifacts", key, name)
        if name not in meta["files"]:
            raise ArtifactError(f"artifact {key} has no file {name!r}", path=path)
        try:
            data = self._read(path)
        except FileNotFoundError:
            raise ArtifactError("an artifact file is missing", path=path,
                                expected=registered or meta["files"][name]["sha256"]) from None
        actual = _sha256(data)
        if registered is not None and actual != registered:
            raise ArtifactError("artifact file does not match its recorded SHA-256 in the "
                                "model registry (truncated or tampered with); refusing to use it",
                                path=path, expected=registered, actual=actual)
        if actual != meta["files"][name]["sha256"]:
            raise ArtifactError("artifact file does not match its recorded SHA-256 "
                                "(truncated or tampered with); refusing to use it",
                                path=path, expected=meta["files"][name]["sha256"], actual=actual)
        return data

    def _read(self, path: str) -> bytes:
        if self.local:
            with open(path, "rb") as fh:
                return fh.read()
        with self._remote():
            return self.fs.cat_file(path)

    # -- small JSON documents (manifests) ---------------------------------------------------
    def write_json(self, relpath: str, doc: dict) -> str:
        """Write a JSON document atomically (temporary file, then rename)."""
        path = self.path(*relpath.split("/"))
        body = json.dumps(doc, indent=2, sort_keys=False, default=str).encode()
        if self.local:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
            with open(tmp, "wb") as fh:
                fh.write(body)
            os.replace(tmp, path)
        else:
            with self._remote():
                self.fs.pipe_file(path, body)  # one PUT: an object store never shows half
        return path

    def read_json(self, relpath: str) -> dict:
        """Read a JSON document written by :meth:`write_json`."""
        return json.loads(self._read(self.path(*relpath.split("/"))))

    def list_dir(self, relpath: str) -> list[str]:
        """Names of the entries of a folder of the store (empty if it does not exist)."""
        path = self.path(*relpath.split("/"))
        if self.local:
            return sorted(os.listdir(path)) if os.path.isdir(path) else []
        with self._remote():
            self.fs.invalidate_cache(path)
            try:
                return sorted(p.rstrip("/").rsplit("/", 1)[-1]
                              for p in self.fs.ls(path, detail=False))
            except FileNotFoundError:
                return []


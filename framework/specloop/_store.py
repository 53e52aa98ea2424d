"""The artifact store (``artifacts/<key>/<file>``, ``runs/<id>/manifest.json``) behind an fsspec
URL, trusted only through the registry's artifact index: an artifact exists when the index records
it and its files are there, and every read is checked against the recorded SHA-256. Anything
else under a key (planted, or a crash's) is ignored, and replaced when the key is next written."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from contextlib import contextmanager, suppress
from functools import cached_property
from pathlib import Path
from typing import Any, Iterator

from ._remote import open_url, remote_errors
from .errors import ArtifactError

LEFTOVER_AGE = 3600.0  # seconds after which a temporary folder is surely a dead writer's


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pid_alive(pid: int | None) -> bool:
    """Whether process ``pid`` exists on this host (a pid we may not signal counts as alive):
    temporary folders, runs and the loop's lock holder name their writer's pid."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ArtifactStore:
    """Artifacts and manifests under ``url`` (a folder, relative to the project's
    ``base_dir``, or an fsspec URL), trusted through ``index`` (the registry's). With ``base``,
    copy-on-write over that store: an artifact not written here is read there, trusted by its
    own index (a backtest reads the project's store and never writes it)."""

    def __init__(self, url: str, base_dir: Path, storage_options: dict | None = None, *,
                 index: Any = None, base: ArtifactStore | None = None) -> None:
        self.url = url
        self.storage_options = dict(storage_options or {})
        self.local, self.root = self.locate(url, base_dir)
        self.index, self.base = index, base
        self._swept = False

    @staticmethod
    def locate(url: str, base_dir: Path) -> tuple[bool, str]:
        """``(local, root)`` of a store URL: an absolute folder, or ``bucket/prefix``."""
        if "://" not in url or url.startswith("file://"):
            path = Path(url.removeprefix("file://"))
            return True, str(path if path.is_absolute() else (Path(base_dir) / path).resolve())
        return False, url.split("://", 1)[1].rstrip("/")

    @cached_property
    def fs(self) -> Any:
        """The fsspec filesystem of a remote store (opened, and its bucket checked, once)."""
        return open_url(self.url, self.storage_options)[0]

    def _remote(self) -> Any:
        return remote_errors(self.url, self.storage_options)

    def path(self, *parts: str) -> str:
        """A path inside the store (local path or bucket path; parts may hold ``/``)."""
        return "/".join([self.root, *parts])

    def _below(self, key: str) -> ArtifactStore | None:
        """``base``, if ``key`` is read there (this store has not written it)."""
        return None if self.base is None or self.index.get(key) is not None else self.base

    def record(self, key: str) -> dict | None:
        """specloop's record of artifact ``key`` (files, hashes, metadata), or ``None``."""
        rec = self.index.get(key) if self.index is not None else None
        return rec if rec is not None or self.base is None else self.base.record(key)

    def has(self, key: str) -> bool:
        """Whether a recorded artifact exists for ``key`` with all its files present."""
        if (below := self._below(key)) is not None:
            return below.has(key)
        rec = self.record(key)
        if rec is None:
            return False
        paths = [self.path("artifacts", key, name) for name in rec["files"]]
        if self.local:
            return all(os.path.exists(p) for p in paths)
        with self._remote():
            self.fs.invalidate_cache(self.path("artifacts", key))
            return all(self.fs.exists(p) for p in paths)

    def meta(self, key: str) -> dict:
        """The recorded metadata of an artifact (an :class:`ArtifactError` if unrecorded)."""
        rec = self.record(key)
        if rec is None:
            raise ArtifactError(f"artifact {key} is not recorded by specloop; refusing to use "
                                "it", path=self.path("artifacts", key),
                                fix="run the stage that produces it (specloop run)")
        return rec

    @contextmanager
    def lock(self, key: str) -> Iterator[bool]:
        """Hold an exclusive per-key file lock (the kernel drops it if the holder dies) while
        computing ``key``; yields whether it is held. Object stores have none: there the last
        record wins, which is safe because every read checks the hashes."""
        if not self.local:
            yield False
            return
        from filelock import FileLock  # ~30 ms: `specloop validate` opens a store

        folder = self.path("artifacts", ".locks")
        os.makedirs(folder, exist_ok=True)
        with FileLock(os.path.join(folder, f"{key}.lock")):
            yield True

    def put(self, key: str, files: dict[str, bytes], meta: dict[str, Any] | None = None) -> dict:
        """Write an artifact (file name → bytes) and record it, with ``meta``, in the index;
        return the record (``files: {name: {sha256, size}}`` plus ``meta``)."""
        record = {"key": key, "files": {n: {"sha256": sha256(b), "size": len(b)}
                                        for n, b in files.items()}, **(meta or {})}
        final = self.path("artifacts", key)
        if self.local:
            self._sweep_leftovers()
            tmp = self.path("artifacts", f".tmp-{key}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
            os.makedirs(tmp)
            try:
                for name, data in files.items():
                    with open(os.path.join(tmp, name), "wb") as fh:
                        fh.write(data)
                        fh.flush()
                        os.fsync(fh.fileno())
                shutil.rmtree(final, ignore_errors=True)  # unrecorded (planted, or a crash's)
                os.rename(tmp, final)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        else:
            with self._remote():
                if self.fs.exists(final):  # unrecorded files (planted, or a crash's) go too
                    self.fs.rm(final, recursive=True)
                for name, data in files.items():
                    self.fs.pipe_file(f"{final}/{name}", data)
        if self.index is not None:
            self.index.put(key, record)
        return record

    def _sweep_leftovers(self) -> None:
        """Remove the ``.tmp-<key>-<pid>-<rand>/`` folders of dead writers (once per store)."""
        if self._swept:
            return
        self._swept = True
        folder = self.path("artifacts")
        try:
            names = [n for n in os.listdir(folder) if n.startswith(".tmp-")]
        except OSError:
            return
        for name in names:
            path = os.path.join(folder, name)
            pid = name.split("-")[-2] if name.count("-") >= 3 else ""
            with suppress(OSError):  # removed meanwhile
                if (time.time() - os.stat(path).st_mtime > LEFTOVER_AGE or not pid.isdigit()
                        or not pid_alive(int(pid))):
                    shutil.rmtree(path, ignore_errors=True)

    def get(self, key: str, name: str, *, registered: str | None = None) -> bytes:
        """Read one file of an artifact, verified against the SHA-256 the model registry
        recorded (``registered``) or else specloop's index; an :class:`ArtifactError` if it
        is unrecorded, missing (``missing``: computed again) or does not match."""
        if (below := self._below(key)) is not None:
            return below.get(key, name, registered=registered)
        path = self.path("artifacts", key, name)
        recorded = ((self.record(key) or {}).get("files", {}).get(name) or {}).get("sha256")
        expected = registered or recorded
        if expected is None:
            raise ArtifactError(f"artifact file {key}/{name} is not recorded by specloop; "
                                "refusing to read it", path=path,
                                fix="run the stage that produces it (specloop run)")
        try:
            data = self.read_bytes(f"artifacts/{key}/{name}")
        except FileNotFoundError:
            raise ArtifactError("an artifact file is missing from the store", path=path,
                                expected=expected, missing=True,
                                fix="the stage that wrote it computes it again on the next "
                                    "run; a registered version's files can be restored from "
                                    "a backup of the store") from None
        actual = sha256(data)
        if registered and actual != registered and actual == recorded:
            # the registered bytes went missing and a run computed the key again: specloop
            # wrote these bytes (the index says so), they are just not the version's
            raise ArtifactError("the registered bytes of an artifact file are missing: the "
                                "store holds a later recomputation, which is not byte for "
                                "byte the registered file; refusing to use it", path=path,
                                expected=expected, actual=actual, missing=True,
                                fix="restore the file from a backup of the store (the "
                                    "registry's SHA-256 identifies it), or promote another "
                                    "version")
        if actual != expected:
            raise ArtifactError("artifact file does not match the SHA-256 specloop recorded "
                                "(truncated or tampered with); refusing to use it",
                                path=path, expected=expected, actual=actual,
                                fix="find out who changed it; restore it from a backup of the "
                                    "store, or remove its folder so the stage computes it "
                                    "again ('specloop registry check' lists every file)")
        return data

    def write_json(self, relpath: str, doc: dict) -> bytes:
        """Write a JSON document atomically (temporary file, then rename); return its bytes."""
        path = self.path(relpath)
        body = json.dumps(doc, indent=2, sort_keys=False, default=str).encode()
        if self.local:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = Path(f"{path}.tmp-{uuid.uuid4().hex[:8]}")
            tmp.write_bytes(body)
            tmp.replace(path)
        else:
            with self._remote():
                self.fs.pipe_file(path, body)  # one PUT: an object store never shows half
        return body

    def read_bytes(self, relpath: str) -> bytes:
        """The bytes of a file of the store (unverified: :meth:`get` checks artifacts)."""
        if self.local:
            return Path(self.path(relpath)).read_bytes()
        with self._remote():
            return self.fs.cat_file(self.path(relpath))

    def list_dir(self, relpath: str) -> list[str]:
        """Names of the entries of a folder of the store (empty if it does not exist)."""
        path = self.path(relpath)
        if self.local:
            return sorted(os.listdir(path)) if os.path.isdir(path) else []
        with self._remote():
            self.fs.invalidate_cache(path)
            try:
                return sorted(p.rstrip("/").rsplit("/", 1)[-1]
                              for p in self.fs.ls(path, detail=False))
            except FileNotFoundError:
                return []


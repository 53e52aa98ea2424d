"""The ``object_store`` target: the champion's bundle published to any fsspec URL.

The files are the ``bundle`` target's own (built once by ``specloop_bundle``); on an object
store they are uploaded first and ``metadata.json``, which records every file's SHA-256, last,
so a reader that finds ``metadata.json`` finds a whole bundle. ``verify`` reads every file
back and checks it against those hashes: a bundle edited in the bucket is re-published.
"""

from __future__ import annotations

import hashlib
from typing import Any

from specloop import open_url, remote_errors
from specloop_bundle import METADATA, bundle_files, read_verified, write_fs

KEY = "deploy.url"


class ObjectStoreDeployer:
    """Publishes a model version's bundle under ``url``."""

    def __init__(self, config: Any) -> None:
        self.config = config

    def _open(self, url: str) -> tuple[Any, str]:
        return open_url(url, self.config.storage_options, key=KEY)

    def deploy(self, bundle: dict, ctx: Any) -> dict:
        """Upload the bundle and return ``{"location", "version", "sha256"}``."""
        url = self.config.url.rstrip("/")
        fs, root = self._open(url)
        files = bundle_files(bundle)
        with remote_errors(url, self.config.storage_options, key=KEY):
            write_fs(fs, root.rstrip("/"), files)
        return {"location": url, "version": bundle["version"]["version"],
                "sha256": hashlib.sha256(bundle["model"]).hexdigest(),
                "metadata_sha256": hashlib.sha256(files[METADATA]).hexdigest()}

    def verify(self, result: dict, ctx: Any) -> bool:
        """Whether the published bundle is whole and still the one recorded in ``result``."""
        fs, root = self._open(result["location"])
        with remote_errors(result["location"], self.config.storage_options, key=KEY):
            return read_verified(fs, root.rstrip("/"), result["sha256"],
                                 result.get("metadata_sha256")) is not None

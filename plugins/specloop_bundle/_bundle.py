"""Builds a bundle's files once, and writes them to a local folder or any fsspec filesystem.

The contents (``model.bin``, ``signature.json``, ``MODEL_CARD.md`` and ``metadata.json``, which
records every other file's SHA-256) are built by :func:`bundle_files`. A local folder is
written to a temporary folder and swapped in; an object store, where a rename is a copy, gets
the files first and ``metadata.json`` last, so a reader that waits for ``metadata.json`` and
checks the hashes never uses half a bundle (the artifact store's commit marker, the same way).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

METADATA = "metadata.json"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def bundle_files(bundle: dict) -> dict[str, bytes]:
    """The files of a bundle, ``metadata.json`` last (it records the others' SHA-256)."""
    version = bundle["version"]
    model = bundle["model"]
    files = {"model.bin": model,
             "signature.json": json.dumps(bundle["signature"], indent=2).encode()}
    meta = {
        "name": bundle["name"], "version": version["version"],
        "aliases": version.get("aliases", []), "created_at": version["created_at"],
        "deployed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "metrics": version["metrics"], "data_fingerprint": version["data_fingerprint"],
        "run_id": version["run_id"], "model_file": "model.bin", "model_sha256": _sha(model),
        "model_format": bundle["model_meta"].get("format", "pickle"),
        "model_trusted_types": list(bundle["model_meta"].get("trusted_types") or []),
        "model_component": bundle["model_meta"].get("component"),
    }
    files["MODEL_CARD.md"] = _card(bundle, meta).encode()
    meta["files"] = {name: _sha(data) for name, data in files.items()}
    files[METADATA] = json.dumps(meta, indent=2, default=str).encode()
    return files


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def _sweep(target: Path) -> None:
    """Remove the folders of swaps that a killed writer left beside ``target``: its new
    bundle not yet renamed in (``.tmp-``), or the old one moved aside (``.old-``). Each
    name carries its writer's pid; one whose writer is alive is left alone."""
    try:
        names = os.listdir(target.parent)
    except OSError:
        return
    for name in names:
        for kind in (".tmp-", ".old-"):
            prefix = f".{target.name}{kind}"
            pid = name[len(prefix):].split("-", 1)[0] if name.startswith(prefix) else ""
            if pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(target.parent / name, ignore_errors=True)


def write_local(target: Path, files: dict[str, bytes]) -> None:
    """Write ``files`` as the folder ``target``, swapped in whole (never half visible); the
    leftovers of a writer killed mid-swap are removed first."""
    if target.parent.is_dir():
        _sweep(target)
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp = target.parent / f".{target.name}.tmp-{tag}"
    tmp.mkdir(parents=True)
    try:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        old = target.parent / f".{target.name}.old-{tag}"
        if target.exists():
            os.rename(target, old)
        os.rename(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_fs(fs: Any, root: str, files: dict[str, bytes]) -> None:
    """Write ``files`` under ``root`` on an fsspec filesystem, ``metadata.json`` last.

    The old ``metadata.json`` is removed first, so while the new files go up a reader sees
    no bundle rather than a mix of two versions.
    """
    meta = f"{root}/{METADATA}"
    fs.makedirs(root, exist_ok=True)  # a folder needs it; on object stores it does nothing
    if fs.exists(meta):
        fs.rm_file(meta)
    for name, data in files.items():
        if name != METADATA:
            fs.pipe_file(f"{root}/{name}", data)
    fs.pipe_file(meta, files[METADATA])


def read_verified(fs: Any, root: str, model_sha256: str,
                  metadata_sha256: str | None = None) -> dict | None:
    """The bundle's metadata if every file matches its recorded SHA-256, the model is
    ``model_sha256`` and (when given) ``metadata.json`` is ``metadata_sha256``; ``None`` when
    anything is missing, different or tampered with. ``fs`` is an fsspec filesystem, or
    ``None`` for a local folder."""
    def read(name: str) -> bytes:
        if fs is None:
            return (Path(root) / name).read_bytes()
        return fs.cat_file(f"{root}/{name}")

    try:
        if fs is not None:
            fs.invalidate_cache(root)
        raw = read(METADATA)
        if metadata_sha256 is not None and _sha(raw) != metadata_sha256:
            return None
        meta = json.loads(raw)
        files = meta.get("files") or {}
        if meta.get("model_sha256") != model_sha256 or files.get("model.bin") != model_sha256:
            return None
        return meta if all(_sha(read(name)) == sha for name, sha in files.items()) else None
    except (OSError, ValueError, KeyError):
        return None


class BundleDeployer:
    """Materializes a model version as ``model.bin``, ``signature.json``, ``metadata.json``
    and ``MODEL_CARD.md`` in one folder."""

    def __init__(self, config: Any) -> None:
        self.config = config

    def _target(self, ctx: Any) -> Path:
        path = Path(self.config.path)
        return path if path.is_absolute() else ctx.project_dir / path

    def deploy(self, bundle: dict, ctx: Any) -> dict:
        """Write the bundle and return ``{"location", "version", "sha256"}``."""
        target = self._target(ctx)
        files = bundle_files(bundle)
        write_local(target, files)
        return {"location": str(target), "version": bundle["version"]["version"],
                "sha256": _sha(bundle["model"]), "metadata_sha256": _sha(files[METADATA])}

    def verify(self, result: dict, ctx: Any) -> bool:
        """Whether the bundle on disk is whole and still the one recorded in ``result``:
        every file matches the SHA-256 its ``metadata.json`` records, and the model is the
        deployed one. A bundle edited, truncated or removed is deployed again."""
        return read_verified(None, str(result["location"]), result["sha256"],
                             result.get("metadata_sha256")) is not None


def _card(bundle: dict, meta: dict) -> str:
    sig = bundle["signature"]
    lines = [f"# {meta['name']} — version {meta['version']}", ""]
    if bundle.get("description"):
        lines += [bundle["description"], ""]
    lines += [f"- task: {sig['task']}", f"- target: `{sig['target']}`",
              f"- trained in run `{meta['run_id']}` on data `{meta['data_fingerprint']}`",
              f"- model file: `model.bin` ({meta['model_format']}, sha256 `{meta['model_sha256']}`)",
              "- trusted types (pass as `trusted=` when loading with skops): "
              + (", ".join(f"`{t}`" for t in meta["model_trusted_types"]) or "none"),
              "", "## Metrics", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v:.4f} |" for k, v in meta["metrics"].items()]
    lines += ["", "## Inputs", "", "| feature | type | categorical |", "|---|---|---|"]
    lines += [f"| {f['name']} | {f['type']} | {'yes' if f['categorical'] else 'no'} |"
              for f in sig["inputs"]]
    return "\n".join(lines) + "\n"

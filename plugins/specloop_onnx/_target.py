"""The ``onnx`` deploy target: the champion exported to ONNX, once it answers as its pipeline.

``deploy`` gets the version's export (``_export.ensure_export``: converted with skl2onnx and
compared with the scikit-learn pipeline on the version's test rows, or the recorded export
whose bytes still match their SHA-256), then writes the edge-export folder, swapped in whole:

    <path>/model.onnx       the ONNX model
    <path>/signature.json   the input signature (feature names and types)
    <path>/metadata.json    version, SHA-256 of every file, input types, opset, the parity
                            check, the converter's and the runtime's versions

A failed check raises before anything is written, so the deploy does not count. ``verify``
checks the folder against ``metadata.json`` and the recorded result, and the store's copy
against the artifact index: a missing or edited file is exported and written again.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from specloop import ArtifactError
from specloop_bundle import write_local

from ._export import ONNX_FILE, describe, ensure_export

METADATA = "metadata.json"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class OnnxTarget:
    """Exports a model version to ONNX under ``path`` after checking it against its pipeline."""

    def __init__(self, config: Any) -> None:
        self.config = config

    def _target(self, ctx: Any) -> Path:
        path = Path(self.config.path)
        return path if path.is_absolute() else ctx.project_dir / path

    def deploy(self, bundle: dict, ctx: Any) -> dict:
        """Export, check and write; return the location, the SHA-256s and the parity check."""
        version, signature = bundle["version"], bundle["signature"]
        runner, record, key = ensure_export(ctx, version, signature, self.config,
                                            bundle["load_model"])
        parity = record["parity"]
        files = {ONNX_FILE: runner.data,
                 "signature.json": json.dumps(signature, indent=2).encode()}
        meta = {"name": bundle["name"], "version": version["version"],
                "deployed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "model_file": ONNX_FILE, "onnx_sha256": runner.sha256,
                "source_model_sha256": _sha(bundle["model"]),
                "inputs": [{"name": onnx, "feature": name,
                            "type": "string" if string else runner.dtype, "shape": [None, 1]}
                           for onnx, name, string in runner.inputs],
                "outputs": [o.name for o in runner.session.get_outputs()],
                "classes": record.get("classes"), "dtype": runner.dtype,
                "opset": record["opset"], "parity": parity,
                "converter": {k: record.get(k) for k in ("skl2onnx", "onnx", "onnxruntime")},
                "files": {name: _sha(data) for name, data in files.items()}}
        files[METADATA] = json.dumps(meta, indent=2, default=str).encode()
        target = self._target(ctx)
        write_local(target, files)
        ctx.say(f"deploy: {describe(parity)}")
        return {"location": str(target), "version": version["version"],
                "sha256": _sha(bundle["model"]), "onnx_sha256": runner.sha256,
                "onnx_key": key, "metadata_sha256": _sha(files[METADATA]),
                "dtype": runner.dtype, "opset": record["opset"], "parity": parity}

    def verify(self, result: dict, ctx: Any) -> bool:
        """Whether the export folder is whole and the recorded one (every file matches the
        SHA-256 ``metadata.json`` lists, ``metadata.json`` and ``model.onnx`` the hashes the
        result recorded) and the store still holds the recorded ONNX bytes."""
        folder = Path(result["location"])
        try:
            raw = (folder / METADATA).read_bytes()
            if _sha(raw) != result.get("metadata_sha256"):
                return False
            files = json.loads(raw).get("files") or {}
            if files.get(ONNX_FILE) != result.get("onnx_sha256"):
                return False
            if any(_sha((folder / name).read_bytes()) != sha for name, sha in files.items()):
                return False
        except (OSError, ValueError):
            return False
        try:
            ctx.store.get(result["onnx_key"], ONNX_FILE, registered=result["onnx_sha256"])
        except ArtifactError:
            return False
        return True

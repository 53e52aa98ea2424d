"""Writes a bundle folder."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


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
        version = bundle["version"]
        model = bundle["model"]
        sha = hashlib.sha256(model).hexdigest()
        meta = {
            "name": bundle["name"], "version": version["version"],
            "aliases": version.get("aliases", []), "created_at": version["created_at"],
            "deployed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "metrics": version["metrics"], "data_fingerprint": version["data_fingerprint"],
            "run_id": version["run_id"], "model_file": "model.bin", "model_sha256": sha,
            "model_format": bundle["model_meta"].get("format", "pickle"),
            "model_trusted_types": list(bundle["model_meta"].get("trusted_types") or []),
            "model_component": bundle["model_meta"].get("component"),
        }
        tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
        tmp.mkdir(parents=True)
        try:
            (tmp / "model.bin").write_bytes(model)
            (tmp / "signature.json").write_text(json.dumps(bundle["signature"], indent=2))
            (tmp / "metadata.json").write_text(json.dumps(meta, indent=2, default=str))
            (tmp / "MODEL_CARD.md").write_text(_card(bundle, meta))
            old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
            if target.exists():
                os.rename(target, old)
            os.rename(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return {"location": str(target), "version": version["version"], "sha256": sha}

    def verify(self, result: dict, ctx: Any) -> bool:
        """Whether the bundle on disk is still the one recorded in ``result``."""
        meta = Path(result["location"]) / "metadata.json"
        try:
            return json.loads(meta.read_text())["model_sha256"] == result["sha256"]
        except (OSError, ValueError, KeyError):
            return False


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

"""Deploy target ``onnx``: the champion as an ONNX model, checked against its pipeline.

The target converts the champion with skl2onnx, runs the ONNX model with ONNX Runtime on a
sample of the version's recorded test rows and compares it with the scikit-learn pipeline
(probabilities within ``atol``, the same labels; predictions within ``atol`` for a
regressor). Only a model that passes is written: as an artifact in the store (recorded with
its SHA-256 in the registry's artifact index, which is what ``specloop serve --runtime onnx``
loads) and as an edge-export folder (``model.onnx``, ``signature.json``, ``metadata.json``).
The deployment result records the parity check.

This module is what the ``specloop.plugins`` entry point loads: schemas, the component and a
check for the optional dependencies only. skl2onnx, onnx and onnxruntime are imported when a
model is converted or loaded.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from specloop import ComponentSpec, ConfigError, Interval, Options, Stage, hookimpl, param

#: What the ``onnx`` extra installs, and how.
REQUIRES = ("skl2onnx", "onnx", "onnxruntime")
INSTALL_HINT = "pip install 'specloop[onnx]'"

__all__ = ["INSTALL_HINT", "OnnxConf", "REQUIRES", "load_onnx", "require"]


@dataclass
class OnnxConf:
    """Where the export goes and how it is checked."""

    path: str = param("deploy/onnx", help="edge-export folder, relative to the project")
    dtype: str = param("auto", check=Options("auto", "float32", "float64"),
                       help="numeric input type: auto takes float64 where ONNX Runtime runs "
                            "the graph in double (linear models), else float32 (trees)")
    sample_rows: int = param(1000, check=Interval(int, 1, None),
                             help="recorded test rows the parity check compares")
    atol: float = param(1e-5, check=Interval(float, 0, None),
                        help="largest allowed absolute difference of a probability "
                             "(classifiers) or a prediction (regressors)")
    rtol: float = param(1e-6, check=Interval(float, 0, None),
                        help="regressors: also allow rtol × |prediction| (float32, which "
                             "ONNX Runtime's trees and imputers compute in, holds ~7 digits)")
    target_opset: int | None = param(None, check=Interval(int, 9, None, allow_none=True),
                                     help="ONNX opset (null: the newest skl2onnx supports)")

    def validate_spec(self, ctx: Any) -> None:
        """The target needs the ``onnx`` extra: say so before anything runs."""
        require(key=f"{ctx.key}.kind", where=ctx.where(ctx.key), probe=True)


def require(*, key: str = "deploy.kind", where: str | None = None, probe: bool = False) -> None:
    """Raise a :class:`specloop.ConfigError` (exit 2) naming what is missing from the ``onnx``
    extra and how to install it. ``probe``: only look the packages up (cheap, for validation);
    otherwise import them, which also catches a broken install."""
    missing = []
    for name in REQUIRES:
        if probe:
            try:
                found = importlib.util.find_spec(name) is not None
            except (ImportError, ValueError):
                found = False
            if not found:
                missing.append(name)
            continue
        try:
            importlib.import_module(name)
        except ImportError as exc:
            missing.append(name if exc.name in (None, name) else
                           f"{name} (it cannot import {exc.name})")
    if missing:
        raise ConfigError(f"ONNX export and serving need {', '.join(missing)}, which "
                          f"{'is' if len(missing) == 1 else 'are'} not installed", key=key,
                          file=where, expected="the onnx extra (skl2onnx, onnx, onnxruntime)",
                          fix=INSTALL_HINT)


def load_onnx(ctx: Any, version: dict, signature: dict) -> Any:
    """The ONNX model of a registered version, ready to score (``specloop serve --runtime
    onnx``): its recorded export, read only if its bytes match the SHA-256 the registry's
    artifact index holds, else exported now (converted and parity-checked, then recorded)."""
    require(key="--runtime")
    from ._export import load_onnx as _load

    return _load(ctx, version, signature)


@hookimpl
def specloop_register_components():
    """Register the ``onnx`` deploy target."""
    return [ComponentSpec(Stage.DEPLOY, "onnx", "specloop_onnx._target:OnnxTarget", OnnxConf,
                          requires=REQUIRES, install_hint=INSTALL_HINT,
                          description="the champion as ONNX, checked against its pipeline")]


@hookimpl
def specloop_add_conf_dirs():
    """Ship the ``deploy/onnx`` preset."""
    return [str(Path(__file__).parent / "conf")]

"""The run context: what every stage and hook of one run can reach. No globals."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from ._manager import PluginManager
from ._registry import Registry, open_registry
from ._spec import Spec
from ._store import ArtifactStore
from .components import ComponentTable


def new_run_id() -> str:
    """A sortable, unique run id: ``YYYYmmdd-HHMMSS-<ms><hex>``."""
    now = datetime.now(timezone.utc)
    return now.strftime("%Y%m%d-%H%M%S-") + f"{now.microsecond // 1000:03d}" + \
        os.urandom(2).hex()


@dataclass
class RunContext:
    """One run: its spec, plugin manager, component table, store and registry.

    Args:
        spec: The validated spec.
        pm: The run's plugin manager.
        table: The run's component table.
        run_id: Defaults to a new id.
    """

    spec: Spec
    pm: PluginManager
    table: ComponentTable
    run_id: str = field(default_factory=new_run_id)
    started: float = field(default_factory=time.time)
    _store: ArtifactStore | None = None
    _registry: Registry | None = None
    echo: Any = None

    @property
    def project_dir(self) -> Path:
        """The project folder."""
        return self.spec.project_dir

    @property
    def model_name(self) -> str:
        """The registry name of the project's model."""
        return self.spec.project.name

    @property
    def seed(self) -> int:
        """The project seed."""
        return self.spec.project.seed

    @property
    def store(self) -> ArtifactStore:
        """The artifact store (opened on first use)."""
        if self._store is None:
            self._store = ArtifactStore(self.spec.store.url, self.project_dir,
                                        self.spec.store.storage_options)
        return self._store

    @property
    def registry(self) -> Registry:
        """The model registry (opened on first use)."""
        if self._registry is None:
            self._registry = open_registry(self.spec.store.registry, self.store.root,
                                           self.store.local, self.project_dir)
        return self._registry

    def say(self, text: str) -> None:
        """Print a progress line (to the CLI's output, or nowhere when embedded)."""
        (self.echo or (lambda t: print(t, file=sys.stderr)))(text)

    def close(self) -> None:
        """Release the registry connection."""
        if self._registry is not None:
            self._registry.close()
            self._registry = None


def thread_limits(threads: int | None) -> Any:
    """Limit OpenMP/BLAS threads while stages run (a no-op when ``threads`` is ``None``)."""
    import contextlib

    if threads is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=threads)


def environment() -> dict[str, Any]:
    """Python and package versions recorded in every manifest."""
    from ._dists import version

    pkgs = {name: version(name) for name in (
        "specloop", "hydra-core", "omegaconf", "pluggy", "scikit-learn", "numpy", "pandas",
        "pyarrow", "scipy", "fsspec", "skops", "dvc")}
    return {"python": sys.version.split()[0], "platform": sys.platform, "packages": pkgs,
            "env": {k: v for k, v in os.environ.items() if k.startswith("SPECLOOP_")}}


def git_state(path: Path) -> Callable[[], dict[str, Any]]:
    """Start finding the git commit of ``path`` and whether the work tree is dirty.

    Both ``git`` commands start at once and run while the caller goes on; the returned
    function waits for them and gives ``{"commit", "dirty"}`` (``None`` values outside git).
    """
    import subprocess

    cmds = (["git", "rev-parse", "HEAD"], ["git", "status", "--porcelain", "--untracked-files=no"])
    try:
        procs = [subprocess.Popen(c, cwd=path, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  stdin=subprocess.DEVNULL, text=True) for c in cmds]
    except OSError:
        return lambda: {"commit": None, "dirty": None}
    result: dict[str, Any] = {}

    def wait() -> dict[str, Any]:
        if not result:
            outs = []
            for proc in procs:
                try:
                    out, _ = proc.communicate(timeout=10)
                except subprocess.SubprocessError:
                    proc.kill()
                    proc.communicate()
                    out = None
                outs.append(out if proc.returncode == 0 else None)
            commit, status = outs
            result.update({"commit": commit.strip(), "dirty": bool(status and status.strip())}
                          if commit else {"commit": None, "dirty": None})
        return result

    return wait

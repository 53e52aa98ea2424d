"""How ``hydra/launcher=specloop`` starts its worker processes: the start method, and the
forkserver that ``specloop run -m`` starts before Hydra is imported.

Light on purpose (no Hydra, no pandas): the sweep imports it first, so the server imports
what members need while Hydra composes the sweep.
"""

from __future__ import annotations

import multiprocessing
import sys

from specloop.errors import ConfigError

# the engine's own imports a member needs; plugins add theirs (specloop_add_preload_modules)
ENGINE_PRELOAD = ["pandas", "pyarrow.parquet", "sklearn.model_selection", "omegaconf",
                  "hydra.core.utils", "specloop._runner", "specloop._context"]


def start_method(chosen: str | None) -> str:
    """The start method for ``chosen`` (``auto``: forkserver on Linux, else spawn)."""
    if chosen in (None, "", "auto"):
        return "forkserver" if sys.platform.startswith("linux") else "spawn"
    if chosen not in multiprocessing.get_all_start_methods():
        raise ConfigError(f"the start method {chosen!r} does not exist on this platform",
                          key="hydra.launcher.start_method", got=chosen,
                          expected="one of " + ", ".join(
                              ["auto", *multiprocessing.get_all_start_methods()]),
                          fix="hydra.launcher.start_method=spawn works everywhere")
    return chosen


def start_server(modules: list[str]) -> None:
    """Start the forkserver now, importing ``modules`` (it imports while Hydra composes)."""
    import multiprocessing.forkserver as forkserver  # POSIX only: imported where it is used

    forkserver.set_forkserver_preload(list(dict.fromkeys(modules)))
    forkserver.ensure_running()


def prestart(chosen: str | None, preload: list[str]) -> None:
    """Start the forkserver early if the start method ``chosen`` resolves to it, preloading
    the engine's modules and ``preload`` (the plugins').

    Raises:
        ConfigError: ``chosen`` is no start method of this platform.
    """
    if start_method(chosen) == "forkserver":
        start_server([*ENGINE_PRELOAD, *preload])

"""``hydra/launcher=specloop``: sweep members in worker processes (see ``_launch``). Hydra
finds it in the ``hydra_plugins`` namespace; a sweep calls :func:`prestart` before Hydra is
imported and :func:`register` after. Nothing here imports Hydra at import time."""

from ._workers import prestart

__all__ = ["prestart", "register"]


def register() -> None:
    """Make ``hydra/launcher=specloop`` known to Hydra in any install: Hydra's ``pkgutil``
    scan misses a portion an editable install provides through an import hook. Importing the
    module registers its config, ``Plugins.register`` its class; both are idempotent."""
    from hydra.core.plugins import Plugins  # Hydra only once the forkserver is started

    plugins = Plugins.instance()  # the scan runs first (it may execute the module again)
    from . import specloop_launcher

    plugins.register(specloop_launcher.SpecloopLauncher)

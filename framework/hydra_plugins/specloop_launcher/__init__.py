"""``hydra/launcher=specloop``: sweep members in worker processes (see ``_launch``). Hydra
finds it in the ``hydra_plugins`` namespace."""

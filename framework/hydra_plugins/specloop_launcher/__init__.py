"""``hydra/launcher=specloop``: sweep members in forked worker processes (see
:mod:`specloop._launcher`). Hydra finds it in the ``hydra_plugins`` namespace."""

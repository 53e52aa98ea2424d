"""Makes this folder importable as ``specloop_scaffold.template``, the files
``specloop new plugin`` copies; a plugin made from it does not need this file."""

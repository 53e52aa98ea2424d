"""The public API: a snapshot of ``specloop.__all__``, documented, and the only thing plugins
import from specloop."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import specloop
import specloop.testing
import specloop.testing.suites

ROOT = Path(__file__).resolve().parents[2]

# Changing this list changes the public API: update it deliberately, with the changelog.
PUBLIC = [
    "ArtifactError",
    "Batch",
    "BatchNotReady",
    "BusyError",
    "ComponentSpec",
    "ConfigError",
    "DataConf",
    "Decision",
    "Interval",
    "NodeContext",
    "Observation",
    "Options",
    "PluginError",
    "RegistryError",
    "RetrainConf",
    "RunContext",
    "SpecloopError",
    "SplitConf",
    "Stage",
    "StageError",
    "UnknownKindError",
    "__version__",
    "file_md5",
    "hookimpl",
    "hookspec",
    "load_model",
    "make_context",
    "open_url",
    "param",
    "progress",
    "promote",
    "read_manifest",
    "redact",
    "remote_errors",
    "rollback",
    "run",
    "ENGINE_NODES",
    "NAME_PATTERN",
    "ROOT_KEYS",
    "command_parser",
    "plugin_manager",
]


def test_all_snapshot():
    assert sorted(specloop.__all__) == sorted(PUBLIC)


def test_all_names_exist():
    for module in (specloop, specloop.testing, specloop.testing.suites):
        missing = [n for n in module.__all__ if not hasattr(module, n)]
        assert missing == [], f"{module.__name__}.__all__ names missing objects: {missing}"


def _documentable(module):
    for name in module.__all__:
        obj = getattr(module, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            yield f"{module.__name__}.{name}", obj


PUBLIC_OBJECTS = dict(o for m in (specloop, specloop.testing, specloop.testing.suites)
                      for o in _documentable(m))


@pytest.mark.parametrize("name", sorted(PUBLIC_OBJECTS))
def test_public_object_has_docstring(name):
    obj = PUBLIC_OBJECTS[name]
    assert (obj.__doc__ or "").strip(), f"{name} has no docstring"


@pytest.mark.parametrize("name", sorted(n for n, o in PUBLIC_OBJECTS.items() if inspect.isclass(o)))
def test_public_methods_have_docstrings(name):
    cls = PUBLIC_OBJECTS[name]
    undocumented = [attr for attr, value in vars(cls).items()
                    if not attr.startswith("_") and (inspect.isfunction(value)
                                                    or isinstance(value, property))
                    and not (inspect.getdoc(value) or "").strip()]
    assert undocumented == [], f"{name}: methods without a docstring: {undocumented}"


PLUGIN_FILES = sorted(p for p in (ROOT / "plugins").glob("specloop_*/**/*.py")
                      if "tests" not in p.relative_to(ROOT / "plugins").parts)


def _imported_modules(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.extend((node.lineno, f"{node.module}.{alias.name}") for alias in node.names)
    return out


def test_there_are_builtin_plugins():
    assert len(PLUGIN_FILES) >= 6


@pytest.mark.parametrize("path", PLUGIN_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_builtin_plugins_import_only_public_specloop(path):
    bad = []
    for line, name in _imported_modules(path):
        parts = name.split(".")
        if parts[0] != "specloop":
            continue
        # ``from specloop import X`` and ``from specloop.testing import X`` are public;
        # any ``_private`` part, or another submodule, is not.
        if any(p.startswith("_") for p in parts[1:]) or (
                len(parts) > 2 and parts[1] != "testing"):
            bad.append(f"line {line}: {name}")
        elif len(parts) == 2 and parts[1] not in specloop.__all__ and parts[1] != "testing":
            bad.append(f"line {line}: {name} (not in specloop.__all__)")
    assert bad == [], f"{path.name} imports specloop internals: {bad}"


@pytest.mark.parametrize("path", PLUGIN_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_builtin_plugins_use_only_public_names_of_each_other(path):
    own = path.relative_to(ROOT / "plugins").parts[0]
    bad = [f"line {line}: {name}" for line, name in _imported_modules(path)
           if name.startswith("specloop_") and name.split(".")[0] != own
           and any(p.startswith("_") for p in name.split(".")[1:])]
    assert bad == [], f"{path.name} imports another plugin's private modules: {bad}"


def test_the_engine_names_no_builtin_plugin():
    """Allowlists, preload lists and stack presets come from the plugins that need them."""
    engine = ROOT / "framework" / "specloop"
    named = []
    for path in sorted(engine.rglob("*.py")):
        if "testing" in path.relative_to(engine).parts:
            continue
        for line, name in _imported_modules(path):
            if name.startswith("specloop_"):
                named.append(f"{path.name}:{line}: {name}")
        tree = ast.parse(path.read_text())
        docs = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr)}
        if any(isinstance(n, ast.Constant) and n.value == "sklearn." and id(n) not in docs
               for n in ast.walk(tree)):
            named.append(f"{path.name}: the 'sklearn.' allowlist prefix")
    for yaml_file in sorted((ROOT / "conf").rglob("*.yaml")):
        text = yaml_file.read_text()
        for kind in ("object_store", "bundle", "local_server"):
            if f"/deploy: {kind}" in text or f"kind: {kind}" in text:
                named.append(f"{yaml_file.relative_to(ROOT)}: deploy {kind}")
    assert named == [], named


def test_an_installed_plugin_passed_again_is_registered_once(project):
    """ProjectBuilder loads entry points; naming an installed plugin too is harmless."""
    import specloop_gates

    ctx = project.context(plugins=[specloop_gates])
    assert [p for p in ctx.pm.get_plugins() if p is specloop_gates] == [specloop_gates]
    ctx.close()

"""The generic conformance checks every component passes, as a pytest class and without
pytest (:func:`check_component`)."""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar, Iterator

from ..components import ComponentSpec, Stage
from ..errors import ConfigError
from ._resolve import plugin_manager_for, resolve_config, resolve_settings
from ._stub_context import StubContext

try:  # fixtures need pytest; check_component does not
    import pytest
    _fixture: Any = pytest.fixture
    _SKIPPED: tuple = (pytest.skip.Exception,)
except ImportError:  # pragma: no cover
    _fixture = lambda fn=None, **kw: fn or (lambda f: f)  # noqa: E731
    _SKIPPED = ()

HEAVY_MODULES = ("sklearn", "pandas", "scipy", "torch", "tensorflow", "matplotlib")
GENERIC_CHECKS = ("test_registered_once", "test_factory_is_lazy", "test_plugin_imports_quickly",
                  "test_valid_config_validates", "test_invalid_values_rejected",
                  "test_unknown_key_rejected", "test_metric_declarations",
                  "test_construct_does_no_io", "test_picklable")


class NotApplicable(Exception):
    """A check that does not apply to the component (raised outside pytest)."""


def skip(reason: str) -> None:
    """End a check that does not apply: a pytest skip in a test, else :class:`NotApplicable`.

    Args:
        reason: Why it does not apply.
    """
    if _SKIPPED:
        pytest.skip(reason)
    raise NotApplicable(reason)


def _constrained(schema: type, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple, Any]]:
    """``(path, check)`` of every field with a declared check, in nested dataclasses too."""
    for f in dataclasses.fields(schema):
        if f.metadata.get("check") is not None:
            yield (*prefix, f.name), f.metadata["check"]
        default = f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
        if dataclasses.is_dataclass(default):
            yield from _constrained(type(default), (*prefix, f.name))


def _with(config: dict, path: tuple, value: Any) -> dict:
    out = node = copy.deepcopy(config)
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value
    return out


def _has_key(node: Any, subkey: str) -> bool:
    """Whether dotted ``subkey`` names a value in ``node`` (mappings and lists)."""
    for part in subkey.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    return True


def _rejection(suite: ComponentSuite, config: dict, what: str) -> ConfigError:
    try:
        suite.resolve(config)
    except ConfigError as exc:
        return exc
    raise AssertionError(f"{what} was accepted; expected a ConfigError")


@functools.lru_cache(maxsize=None)
def _import_report(module: str) -> dict:
    code = ("import json, sys, time, specloop\nt = time.perf_counter()\n"
            f"import {module}\nt = time.perf_counter() - t\n"
            f"print(json.dumps({{'seconds': t, 'heavy': [m for m in {HEAVY_MODULES!r} "
            "if m in sys.modules]}))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=60)
    assert proc.returncode == 0, f"importing {module} failed:\n{proc.stderr[-2000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


class ComponentSuite:
    """Generic checks every component passes; subclass a stage suite, not this one.

    The configuration is either a ``config`` attribute or, when it depends on ``tmp_path``
    (a file the config points at, a URL under a temporary folder), a ``config`` pytest
    fixture on the subclass; inside a test ``self.config`` is then the fixture's value, for
    every generic and stage check::

        @pytest.fixture
        def config(self, tmp_path):
            return {"url": f"file://{tmp_path}/bucket"}

    Attributes:
        stage: The component's stage (set by each stage suite).
        kind: The component's kind.
        plugin: The plugin module or object that registers it.
        config: A valid node for it, without ``kind`` (a dict, or a fixture returning one).
        plugin_settings: The plugin's ``plugins.<name>`` node; ``ctx.settings(name)`` gives
            it validated against the schema the plugin declares (defaults when empty).
        import_budget: Seconds the plugin module may take to import (in a fresh process).
        construct_budget: Seconds the constructor may take.
    """

    stage: ClassVar[Stage]
    kind: ClassVar[str]
    plugin: ClassVar[Any]
    config: ClassVar[dict] = {}
    plugin_settings: ClassVar[dict] = {}
    import_budget: ClassVar[float] = 2.0
    construct_budget: ClassVar[float] = 0.5

    @_fixture(autouse=True)
    def _suite_config(self, request: Any) -> Iterator[None]:
        """Use the subclass's ``config`` fixture as :attr:`config`; close the contexts a
        test opened."""
        if not isinstance(type(self).config, Mapping):
            value = request.getfixturevalue("config")
            if not isinstance(value, Mapping):
                raise TypeError(f"the config fixture of {type(self).__name__} returned "
                                f"{type(value).__name__}; it must return a dict")
            self.config = dict(value)
        yield
        for ctx in self.__dict__.pop("_contexts", []):
            ctx.close()

    def node_config(self) -> dict:
        """The configuration in use: :attr:`config`, or its fixture's value in a test.

        Returns:
            The node, without ``kind``.

        Raises:
            TypeError: ``config`` is a fixture and this runs outside a pytest test.
        """
        if not isinstance(self.config, Mapping):
            raise TypeError(f"{type(self).__name__}.config is a fixture: its value exists "
                            "only inside a test (or pass the node to resolve())")
        return dict(self.config)

    def prepare_project(self, root: Path) -> None:
        """Override to write the files the component reads into the project folder.

        Args:
            root: The project folder, ``tmp_path / "project"`` (it exists; a ``config``
                fixture may have written into it already).
        """

    @_fixture
    def project_dir(self, tmp_path: Path) -> Path:
        """A project folder prepared by :meth:`prepare_project` (override for more)."""
        root = tmp_path / "project"
        root.mkdir(exist_ok=True)
        self.prepare_project(root)
        return root

    def plugin_manager(self) -> Any:
        """A fresh plugin manager with only :attr:`plugin`, registered under its
        entry-point name when it is installed.

        Returns:
            The plugin manager.
        """
        return plugin_manager_for(self.plugin)

    def resolve(self, config: dict | None = None) -> Any:
        """Validate a node as the engine does.

        Args:
            config: The node (default: :meth:`node_config`).

        Returns:
            The resolved node (``.spec``, ``.config``, ``.build()``).
        """
        return resolve_config(self.stage, self.kind,
                              self.node_config() if config is None else config,
                              pm=self.plugin_manager())

    def component(self) -> Any:
        """Build the component from the validated configuration, as the engine does.

        Returns:
            The component behind the engine's error boundary (``.inner`` is the plain
            object; an exception it raises by mistake becomes a ``StageError``).
        """
        return self.resolve().build("conformance")

    def context(self, project_dir: Path, key: str | None = None) -> StubContext:
        """A node-context stand-in rooted at ``project_dir``, closed when the test ends.

        Args:
            project_dir: The project folder.
            key: The node's spec key (default: the stage name).

        Returns:
            The context.
        """
        pm = self.plugin_manager()
        ctx = StubContext(Path(project_dir), key=key or str(self.stage),
                          plugin_settings=resolve_settings(pm, self.plugin,
                                                           self.plugin_settings))
        self.__dict__.setdefault("_contexts", []).append(ctx)
        return ctx

    def test_registered_once(self, tmp_path: Path) -> None:
        """The plugin registers ``stage/kind`` exactly once and the table finds it."""
        pm = self.plugin_manager()
        own = [s for impl in pm.hook.specloop_register_components.get_hookimpls()
               if impl.plugin is self.plugin for s in (impl.function() or [])]
        n = sum((str(s.stage), s.kind) == (str(self.stage), self.kind) for s in own)
        assert n == 1, f"{self.stage}/{self.kind} is registered {n} times"
        found = pm.component_table().get(self.stage, self.kind)
        assert found.kind == self.kind, f"the table found {found.name} for {self.kind!r}"

    def test_factory_is_lazy(self, tmp_path: Path) -> None:
        """The factory is a ``"module:attr"`` string that resolves to a callable."""
        spec = self.plugin_manager().component_table().get(self.stage, self.kind)
        assert isinstance(spec.factory, str) and ":" in spec.factory, \
            f"the factory must be a lazy 'module:attr' string, not {spec.factory!r}"
        assert callable(spec.load_factory()), f"{spec.factory} is not callable"

    def test_plugin_imports_quickly(self, tmp_path: Path) -> None:
        """The plugin module imports fast and without heavy libraries, in a fresh process."""
        if not isinstance(self.plugin, ModuleType):
            skip("the plugin is an object, not an importable module")
        name, report = self.plugin.__name__, _import_report(self.plugin.__name__)
        assert not report["heavy"], f"importing {name} imports {report['heavy']}"
        assert report["seconds"] < self.import_budget, \
            f"importing {name} took {report['seconds']:.2f}s"

    def test_valid_config_validates(self, tmp_path: Path) -> None:
        """The schema is a dataclass and the configuration validates."""
        resolved = self.resolve()
        assert dataclasses.is_dataclass(resolved.spec.schema), "the schema must be a dataclass"
        assert isinstance(resolved.config, resolved.spec.schema), type(resolved.config)

    def test_invalid_values_rejected(self, tmp_path: Path) -> None:
        """Each declared ``Interval``/``Options`` rejects values outside it, naming the key."""
        for path, check in _constrained(self.resolve().spec.schema):
            key = ".".join((str(self.stage), *path))
            for bad in check.invalid_values():
                error = _rejection(self, _with(self.node_config(), path, bad),
                                   f"{key}={bad!r}")
                assert error.key == key, f"{key}={bad!r} was rejected naming {error.key!r}"

    def test_unknown_key_rejected(self, tmp_path: Path) -> None:
        """An unknown key is rejected with a ConfigError naming it."""
        error = _rejection(self, {**self.node_config(), "no_such_key": 1}, "an unknown key")
        assert error.key == f"{self.stage}.no_such_key", error.key

    def test_metric_declarations(self, tmp_path: Path) -> None:
        """A schema's optional ``metric_names()`` is a non-empty list of names, and its
        ``metrics_used()`` maps keys that exist in the node to metric names (the engine
        holds the two against each other, naming ``<stage>.<key>``)."""
        config = self.resolve().config
        names_of, used_of = (getattr(config, "metric_names", None),
                             getattr(config, "metrics_used", None))
        if not callable(names_of) and not callable(used_of):
            skip("the schema declares neither metric_names() nor metrics_used()")
        if callable(names_of):
            names = list(names_of())
            assert names and all(isinstance(n, str) and n for n in names), names
        if callable(used_of):
            used = used_of()
            assert isinstance(used, Mapping), f"metrics_used() returned {used!r}"
            from .._spec import plain

            node = plain(config)
            for subkey, metric in used.items():
                assert isinstance(metric, str) and metric, (subkey, metric)
                assert isinstance(subkey, str) and _has_key(node, subkey), \
                    f"metrics_used() names {self.stage}.{subkey}, which is not in the node"

    def test_construct_does_no_io(self, tmp_path: Path) -> None:
        """The constructor creates no files and is cheap (work belongs in the methods)."""
        resolved = self.resolve()
        factory, empty, cwd = resolved.spec.load_factory(), tmp_path / "empty", os.getcwd()
        empty.mkdir()
        os.chdir(empty)
        try:
            start = time.perf_counter()
            factory(resolved.config)
            elapsed = time.perf_counter() - start
        finally:
            os.chdir(cwd)
        assert not list(empty.iterdir()), "the constructor created files"
        assert elapsed < self.construct_budget, f"the constructor took {elapsed:.2f}s"

    def test_picklable(self, tmp_path: Path) -> None:
        """The built component (behind its boundary) and its config survive pickling
        (multirun launchers pickle what holds components)."""
        resolved = self.resolve()
        assert pickle.loads(pickle.dumps(resolved.config)) == resolved.config, \
            "the config differs once unpickled"
        built = resolved.build()
        again = pickle.loads(pickle.dumps(built))
        assert type(again.inner) is type(built.inner), (type(again.inner), type(built.inner))


def check_component(spec_or_kind: ComponentSpec | str, plugin: Any, config: dict | None = None,
                    *, stage: Stage | str | None = None) -> None:
    """Run the generic conformance checks of one component, without pytest.

    Args:
        spec_or_kind: A :class:`specloop.ComponentSpec`, ``"stage/kind"``, or a kind that
            ``plugin`` registers for one stage only.
        plugin: The plugin module or object that registers it.
        config: A valid node for it, without ``kind``.
        stage: The stage, when ``spec_or_kind`` is a bare kind registered for several.

    Raises:
        AssertionError: naming the first check that failed and why.
    """
    if isinstance(spec_or_kind, ComponentSpec):
        stage, kind = spec_or_kind.stage, spec_or_kind.kind
    elif "/" in spec_or_kind:
        stage, kind = spec_or_kind.split("/", 1)
    else:
        kind = spec_or_kind
        stages = [st for (st, k) in plugin_manager_for(plugin).component_table().specs
                  if k == kind and stage in (None, st, Stage(st))]
        if len(stages) != 1:
            raise AssertionError(f"kind {kind!r} is registered for stages {stages}; "
                                 "pass stage= or 'stage/kind'")
        stage = stages[0]
    suite = type("CheckComponent", (ComponentSuite,), {
        "stage": Stage(stage), "kind": kind, "plugin": plugin, "config": dict(config or {})})()
    with tempfile.TemporaryDirectory() as tmp:
        for name in GENERIC_CHECKS:
            (Path(tmp) / name).mkdir()
            try:
                getattr(suite, name)(Path(tmp) / name)
            except (NotApplicable, *_SKIPPED):
                continue
            except Exception as exc:
                why = str(exc) if isinstance(exc, AssertionError) else \
                    f"raised {type(exc).__name__}: {exc}"
                raise AssertionError(f"{stage}/{kind}: {name} failed: {why}") from exc

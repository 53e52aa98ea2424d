"""The plugin-author kit: build projects in a temporary folder, run them, record hooks, and
check components against the stage contracts.

Fixtures (auto-registered with pytest through the ``pytest11`` entry point):
``specloop_pm`` and ``specloop_project``. Conformance suites live in
:mod:`specloop.testing.suites`; subclass one per component.
"""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

__all__ = ["HookRecorder", "ProjectBuilder", "CliResult", "make_test_plugin_manager",
           "registered", "write_yaml"]


def make_test_plugin_manager(plugins: Iterable[object] = (), *, entrypoints: bool = False):
    """A fresh plugin manager; entry points load only when asked for.

    Args:
        plugins: Plugin modules or objects to register.
        entrypoints: Also load the installed ``specloop.plugins`` entry points.

    Returns:
        The plugin manager.
    """
    from .._manager import make_plugin_manager

    return make_plugin_manager(load_entrypoints=entrypoints, plugins=plugins)


@contextlib.contextmanager
def registered(pm: Any, plugin: object, name: str | None = None) -> Iterator[object]:
    """Register ``plugin`` on ``pm`` for the duration of a ``with`` block.

    Args:
        pm: The plugin manager.
        plugin: The plugin object.
        name: Its name (default: pluggy's choice).

    Yields:
        The plugin.
    """
    pm.register(plugin, name=name)
    try:
        yield plugin
    finally:
        pm.unregister(plugin)


class HookRecorder:
    """A plugin that records every lifecycle hook call (pytest's ``HookRecorder`` idea)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    def _rec(self, name: str, **kw: Any) -> None:
        self.calls.append((name, kw))

    from ..hookspecs import hookimpl as _hookimpl

    @_hookimpl
    def specloop_before_stage(self, stage, component, cached):
        """Record it."""
        self._rec("specloop_before_stage", stage=stage, component=component, cached=cached)

    @_hookimpl
    def specloop_after_stage(self, stage, component, cached, duration, key):
        """Record it."""
        self._rec("specloop_after_stage", stage=stage, component=component, cached=cached,
                  key=key)

    @_hookimpl
    def specloop_on_stage_error(self, stage, component, error):
        """Record it."""
        self._rec("specloop_on_stage_error", stage=stage, component=component, error=error)

    @_hookimpl
    def specloop_after_run(self, manifest):
        """Record it."""
        self._rec("specloop_after_run", manifest=manifest)

    def named(self, hook: str) -> list[dict]:
        """The recorded calls of one hook, in order."""
        return [kw for name, kw in self.calls if name == hook]

    def assert_called(self, hook: str, **match: Any) -> dict:
        """Assert that ``hook`` was called with arguments including ``match``; return it."""
        for kw in self.named(hook):
            if all(kw.get(k) == v for k, v in match.items()):
                return kw
        raise AssertionError(f"{hook} was not called with {match}; calls: {self.named(hook)}")


def write_yaml(path: Path, data: Any) -> Path:
    """Write ``data`` (a mapping, or YAML text) to ``path``, creating folders."""
    import yaml

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


@dataclass
class CliResult:
    """The outcome of an in-process ``specloop`` command."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        """stdout and stderr together."""
        return self.stdout + self.stderr


@dataclass
class ProjectBuilder:
    """Builds a project folder and runs it in-process.

    Args:
        root: The project folder (created on first write).
    """

    root: Path
    plugins: list = field(default_factory=list)

    def write_conf(self, relpath: str, data: Any) -> Path:
        """Write ``conf/<relpath>`` (a mapping or YAML text)."""
        return write_yaml(self.root / "conf" / relpath, data)

    def write_file(self, relpath: str, content: str | bytes) -> Path:
        """Write any file inside the project."""
        path = self.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
        return path

    def context(self, overrides: Iterable[str] = (), *, entrypoints: bool = True,
                plugins: Iterable[object] = ()):
        """Compose and validate; return the run context."""
        from .._context import make_context

        pm = make_test_plugin_manager([*self.plugins, *plugins], entrypoints=entrypoints)
        return make_context(self.root, overrides, pm=pm, echo=lambda _t: None)

    def run(self, overrides: Iterable[str] = (), **kw: Any) -> "RunResult":
        """Run the pipeline in-process and return the manifest and recorded hooks."""
        from .._runner import execute

        recorder = HookRecorder()
        ctx = self.context(overrides, plugins=[recorder, *kw.pop("plugins", ())], **kw)
        try:
            doc = execute(ctx)
        finally:
            ctx.close()
        return RunResult(doc, recorder)

    def cli(self, *args: str) -> CliResult:
        """Run ``specloop ARGS --project ROOT`` in-process, capturing output."""
        from ..cli import main

        out, err = io.StringIO(), io.StringIO()
        argv = list(args)
        if argv and argv[0] != "plugins" and "--project" not in argv:
            n = _cmd_len(argv)
            argv = [*argv[:n], "--project", str(self.root), *argv[n:]]
        cwd = os.getcwd()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            finally:
                os.chdir(cwd)
        return CliResult(code, out.getvalue(), err.getvalue())


def _cmd_len(argv: list[str]) -> int:
    if argv[0] == "runs" and len(argv) > 1 and argv[1] == "show":
        return 3
    if argv[0] == "export" and len(argv) > 1:
        return 2
    if argv[0] in ("runs", "registry") and len(argv) > 1:
        if argv[1] in ("show", "promote") and len(argv) > 2 and argv[2].isdigit():
            return 3
        return 2
    return 1


@dataclass
class RunResult:
    """A finished in-process run: its manifest and the hooks it called."""

    manifest: dict
    hooks: HookRecorder

    def assert_stages(self, *, ran: Iterable[str] = (), cached: Iterable[str] = ()) -> None:
        """Assert which stages ran and which came from the cache."""
        stages = self.manifest["stages"]
        for name in ran:
            assert stages[name]["status"] == "ran", (name, stages[name]["status"])
        for name in cached:
            assert stages[name]["status"] == "cached", (name, stages[name]["status"])


"""The exceptions specloop raises, and how the CLI renders them.

The tree::

    SpecloopError                      every error specloop raises on purpose
    ├── ConfigError (+ ValueError)     spec or data is wrong: key, file, got, expected, fix
    │   └── UnknownKindError           a ``kind:`` no installed plugin provides
    ├── PluginError                    a plugin is broken or missing: plugin, distribution
    ├── StageError                     a component raised: stage, component, distribution, run
    ├── RegistryError                  a registry operation that cannot be done
    ├── ReproduceError                 a recorded run cannot be re-run as recorded
    ├── ArtifactError                  an artifact is missing, unrecorded or tampered with
    ├── BusyError                      a resource another process holds (the loop, a port)
    └── BatchNotReady                  a data source's batch is still being written

Exit codes: ``ConfigError`` and ``RegistryError`` are user errors (2); ``StageError``,
``PluginError``, ``ArtifactError`` and ``ReproduceError`` are failures (1), and never blame
the user for a plugin bug: they name the plugin and its distribution; ``BusyError`` is 3.
"""

from __future__ import annotations

__all__ = ["SpecloopError", "ConfigError", "UnknownKindError", "PluginError", "StageError",
           "RegistryError", "ReproduceError", "ArtifactError", "BusyError", "BatchNotReady"]


class SpecloopError(Exception):
    """Base class of every error specloop raises on purpose.

    Attributes:
        exit_code: The process exit code the CLI uses for this error.
    """

    exit_code = 1
    _shown: tuple[tuple[str, str], ...] = ()  # (label, attribute) of each detail line

    def details(self) -> list[tuple[str, object]]:
        """Return the ``(label, text)`` detail lines shown under the message."""
        return [(label, getattr(self, name)) for label, name in self._shown]

    def render(self) -> str:
        """Return the compact, traceback-free text the CLI prints."""
        lines = [f"specloop: {self.args[0] if self.args else type(self).__name__}"]
        rows = [(label, text) for label, text in self.details() if text not in (None, "")]
        width = max((len(label) for label, _ in rows), default=0)
        for label, text in rows:
            text = str(text).replace("\n", "\n" + " " * (width + 4))
            lines.append(f"  {label + ':':<{width + 1}} {text}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()


class ConfigError(SpecloopError, ValueError):
    """The spec (YAML or an override), or the data it names, is wrong.

    Args:
        message: What is wrong, lower-case and short.
        key: The full dotted key, e.g. ``model.params.max_depth``.
        file: Where the value was set (a file, or ``command line: key=value``).
        got: The offending value.
        expected: What would have been accepted.
        fix: How to fix it.
        extra: More ``(label, text)`` lines.
    """

    exit_code = 2

    def __init__(self, message: str, *, key: str | None = None, file: str | None = None,
                 got: object = None, expected: str | None = None, fix: str | None = None,
                 extra: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.key, self.file, self.got, self.expected = key, file, got, expected
        self.fix, self.extra = fix, list(extra or [])

    def details(self) -> list[tuple[str, object]]:
        return [("key", self.key), ("where", self.file),
                ("got", None if self.got is None else repr(self.got)),
                ("expected", self.expected), *self.extra, ("fix", self.fix)]


class UnknownKindError(ConfigError):
    """A stage node names a ``kind`` that no installed plugin provides."""


class PluginError(SpecloopError):
    """A plugin failed to import, broke its contract, or is not installed.

    Args:
        plugin: The entry-point name of the plugin.
        distribution: The distribution (and version) that ships it.
        fix: How to fix it (an install hint, an upgrade, how to disable it).
    """

    def __init__(self, message: str, *, plugin: str | None = None,
                 distribution: str | None = None, fix: str | None = None) -> None:
        super().__init__(message)
        self.plugin, self.distribution, self.fix = plugin, distribution, fix

    def details(self) -> list[tuple[str, object]]:
        cause = self.__cause__
        return [("plugin", self.plugin), ("distribution", self.distribution),
                ("cause", f"{type(cause).__name__}: {cause}" if cause else None),
                ("fix", self.fix)]


class StageError(SpecloopError):
    """A component raised while the engine called it; wraps the original exception.

    Args:
        stage: The stage that was running (``train``, ``score`` …), when known.
        component: ``stage/kind`` of the component that raised.
        distribution: The distribution (and version) that ships the component.
        version: The component's own version (``ComponentSpec.version``).
        run_id: The run in which it happened.
    """

    def __init__(self, message: str, *, stage: str | None = None, component: str | None = None,
                 distribution: str | None = None, version: str | None = None,
                 run_id: str | None = None) -> None:
        super().__init__(message)
        self.stage, self.component, self.distribution = stage, component, distribution
        self.version, self.run_id = version, run_id

    def details(self) -> list[tuple[str, object]]:
        cause = self.__cause__
        return [("stage", self.stage),
                ("component", f"{self.component} (component version {self.version})"
                 if self.component and self.version else self.component),
                ("distribution", self.distribution), ("run", self.run_id),
                ("cause", f"{type(cause).__name__}: {cause}" if cause else None),
                ("hint", "set SPECLOOP_FULL_ERROR=1 for the full traceback" if cause else None)]


class RegistryError(SpecloopError):
    """A registry operation that cannot be done (unknown version, no champion, a broken
    registry file …)."""

    exit_code = 2

    def __init__(self, message: str, *, fix: str | None = None,
                 extra: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.fix, self.extra = fix, list(extra or [])

    def details(self) -> list[tuple[str, object]]:
        return [*self.extra, ("fix", self.fix)]


class ReproduceError(SpecloopError):
    """A recorded run cannot be re-run as recorded (e.g. its data changed since).

    Args:
        file: The file concerned.
        recorded: What the manifest recorded.
        current: What is there now.
        fix: How to fix it.
    """

    _shown = (("file", "file"), ("recorded", "recorded"), ("now", "current"), ("fix", "fix"))

    def __init__(self, message: str, *, file: str | None = None, recorded: str | None = None,
                 current: str | None = None, fix: str | None = None) -> None:
        super().__init__(message)
        self.file, self.recorded, self.current, self.fix = file, recorded, current, fix


class ArtifactError(SpecloopError):
    """An artifact is missing, not recorded by specloop, or does not match its recorded
    SHA-256 (``missing`` tells the first case apart: the bytes are gone, not altered).

    Args:
        path: The file in the store.
        expected: The SHA-256 specloop recorded.
        actual: The SHA-256 of the bytes found.
        missing: The file is gone (not tampered with).
        fix: How to recover.
    """

    _shown = (("file", "path"), ("recorded sha256", "expected"), ("actual sha256", "actual"),
              ("fix", "fix"))

    def __init__(self, message: str, *, path: str | None = None, expected: str | None = None,
                 actual: str | None = None, missing: bool = False,
                 fix: str | None = None) -> None:
        super().__init__(message)
        self.path, self.expected, self.actual = path, expected, actual
        self.missing, self.fix = missing, fix


class BusyError(SpecloopError):
    """A resource is held by another process: the project's loop, a port.

    Args:
        holder: Who holds it (pid, host, since), when known.
        fix: What to do.
    """

    exit_code = 3
    _shown = (("held by", "holder"), ("fix", "fix"))

    def __init__(self, message: str, *, holder: str | None = None, fix: str | None = None) -> None:
        super().__init__(message)
        self.holder, self.fix = holder, fix


class BatchNotReady(SpecloopError):
    """Raised by a data source when a batch is not complete yet (a file still being written,
    not parseable to its end); the loop leaves it for a later pass and never marks it done.

    Args:
        message: Why it is not ready (one line, shown to the user).
    """

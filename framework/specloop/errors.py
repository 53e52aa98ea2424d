"""The exceptions specloop raises, and how the CLI renders them.

The tree::

    SpecloopError                      every error specloop raises on purpose
    ├── ConfigError (+ ValueError)     the spec is wrong: file, key, got, expected, fix
    │   └── UnknownKindError           a ``kind:`` no installed plugin provides
    ├── PluginError                    a plugin is broken: plugin name and distribution
    ├── StageError                     a component raised while a stage ran
    ├── RegistryError                  a registry operation that cannot be done
    ├── ReproduceError                 a recorded run cannot be re-run as recorded
    └── ArtifactError                  an artifact is missing, corrupt or tampered with

``ConfigError`` and its children are user errors (CLI exit code 2). ``StageError`` and
``PluginError`` are failures of a component (exit code 1), and never blame the user for a
plugin bug: they name the plugin and its distribution.
"""

from __future__ import annotations

__all__ = [
    "SpecloopError",
    "ConfigError",
    "UnknownKindError",
    "PluginError",
    "StageError",
    "RegistryError",
    "ReproduceError",
    "ArtifactError",
]


class SpecloopError(Exception):
    """Base class of every error specloop raises on purpose.

    Attributes:
        exit_code: The process exit code the CLI uses for this error.
    """

    exit_code = 1

    def details(self) -> list[tuple[str, str]]:
        """Return the ``(label, text)`` detail lines shown under the message."""
        return []

    def render(self) -> str:
        """Return the compact, traceback-free text the CLI prints."""
        lines = [f"specloop: {self.args[0] if self.args else type(self).__name__}"]
        width = max((len(label) for label, _ in self.details()), default=0)
        for label, text in self.details():
            if text is None or text == "":
                continue
            text = str(text).replace("\n", "\n" + " " * (width + 4))
            lines.append(f"  {label + ':':<{width + 1}} {text}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()


class ConfigError(SpecloopError, ValueError):
    """The spec (YAML or an override) is wrong.

    Args:
        message: What is wrong, lower-case and short.
        key: The full dotted key, e.g. ``model.params.max_depth``.
        file: Where the value was set (a file, or ``command line: key=value``).
        got: The offending value.
        expected: What would have been accepted.
        fix: How to fix it.
    """

    exit_code = 2

    def __init__(self, message: str, *, key: str | None = None, file: str | None = None,
                 got: object = None, expected: str | None = None, fix: str | None = None,
                 extra: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.key = key
        self.file = file
        self.got = got
        self.expected = expected
        self.fix = fix
        self.extra = list(extra or [])

    def details(self) -> list[tuple[str, str]]:
        rows = []
        if self.key:
            rows.append(("key", self.key))
        if self.file:
            rows.append(("where", self.file))
        if self.got is not None:
            rows.append(("got", repr(self.got)))
        if self.expected:
            rows.append(("expected", self.expected))
        rows.extend(self.extra)
        if self.fix:
            rows.append(("fix", self.fix))
        return rows


class UnknownKindError(ConfigError):
    """A stage node names a ``kind`` that no installed plugin provides."""


class PluginError(SpecloopError):
    """A plugin failed to import, or broke its contract.

    Args:
        message: What went wrong.
        plugin: The entry-point name of the plugin.
        distribution: The distribution (and version) that ships it.
    """

    def __init__(self, message: str, *, plugin: str | None = None,
                 distribution: str | None = None, fix: str | None = None) -> None:
        super().__init__(message)
        self.plugin = plugin
        self.distribution = distribution
        self.fix = fix

    def details(self) -> list[tuple[str, str]]:
        return [("plugin", self.plugin), ("distribution", self.distribution), ("fix", self.fix)]


class StageError(SpecloopError):
    """A component raised while its stage ran; wraps the original exception.

    Args:
        message: What failed.
        stage: The stage name (``train``, ``evaluate`` …).
        component: ``stage/kind`` of the component that raised.
        distribution: The distribution that ships the component.
        run_id: The run in which it happened.
    """

    def __init__(self, message: str, *, stage: str, component: str | None = None,
                 distribution: str | None = None, run_id: str | None = None) -> None:
        super().__init__(message)
        self.stage = stage
        self.component = component
        self.distribution = distribution
        self.run_id = run_id

    def details(self) -> list[tuple[str, str]]:
        cause = self.__cause__
        return [
            ("stage", self.stage),
            ("component", self.component),
            ("distribution", self.distribution),
            ("run", self.run_id),
            ("cause", f"{type(cause).__name__}: {cause}" if cause else None),
            ("hint", "set SPECLOOP_FULL_ERROR=1 for the full traceback" if cause else None),
        ]


class RegistryError(SpecloopError):
    """A registry operation that cannot be done (unknown version, no champion …)."""

    exit_code = 2

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        self.fix = fix

    def details(self) -> list[tuple[str, str]]:
        return [("fix", self.fix)]


class ReproduceError(SpecloopError):
    """A recorded run cannot be re-run as recorded (e.g. its data changed since).

    Args:
        message: What is wrong.
        file: The file concerned.
        recorded: What the manifest recorded.
        current: What is there now.
        fix: How to fix it.
    """

    def __init__(self, message: str, *, file: str | None = None, recorded: str | None = None,
                 current: str | None = None, fix: str | None = None) -> None:
        super().__init__(message)
        self.file, self.recorded, self.current, self.fix = file, recorded, current, fix

    def details(self) -> list[tuple[str, str]]:
        return [("file", self.file), ("recorded", self.recorded), ("now", self.current),
                ("fix", self.fix)]


class ArtifactError(SpecloopError):
    """An artifact is missing, truncated or does not match its recorded SHA-256."""

    def __init__(self, message: str, *, path: str | None = None, expected: str | None = None,
                 actual: str | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.expected = expected
        self.actual = actual

    def details(self) -> list[tuple[str, str]]:
        return [("file", self.path), ("recorded sha256", self.expected),
                ("actual sha256", self.actual)]

"""Lifecycle notifications for specloop: promotions, rollbacks, drift, retrains and failures
sent to webhooks, chat webhooks (Slack/Mattermost ``{"text": ...}``) and JSON-lines log files.

Settings live in ``plugins.notify`` (the ``notify`` config group fills them: ``notify: webhook``
in the defaults list, or ``+notify=log`` on the command line). A delivery is retried with
exponential backoff; one that still fails is kept in ``.specloop/notify/failed.jsonl`` with a
warning, never raised: a notification does not change an exit code or stop the loop.
``specloop notify retry`` re-sends the outbox.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from specloop import ConfigError, Interval, Options, hookimpl, param

from . import _events
from ._delivery import DeliveryError, deliver, record_failure, warn, wants

KINDS = ("webhook", "chat", "log")


@dataclass
class SinkConf:
    """One place events go."""

    kind: str = param("webhook", check=Options(*KINDS), help="webhook, chat or log")
    url: str | None = param(None, secret=True,
                            help="webhook/chat: where to POST (often holds a token: "
                                 "${oc.env:NAME})")
    token: str | None = param(None, secret=True, help="webhook/chat: sent as a Bearer token")
    path: str | None = param(None, help="log: JSON-lines file (relative: to the project)")
    events: list[str] = param(default_factory=list,
                              help="events to send (empty: all): " + ", ".join(_events.EVENTS))
    timeout: float = param(5.0, check=Interval(float, 0, 120, closed="right"),
                           help="seconds per attempt")
    retries: int = param(3, check=Interval(int, 0, 10), help="attempts after the first")
    backoff: float = param(0.5, check=Interval(float, 0, 60),
                           help="seconds before the first retry, doubled after each")


class _SinksCheck:
    """Checks each sink of ``plugins.notify.sinks`` (the engine checks no list items), raising
    a ConfigError naming the sink's own key, with a secret never shown."""

    prefix = "plugins.notify.sinks"

    def accepts(self, sinks: Any) -> bool:
        for i, sink in enumerate(sinks or []):
            key = f"{self.prefix}.{i}"
            for name in ("kind", "timeout", "retries", "backoff"):
                check = next(f for f in fields(SinkConf) if f.name == name).metadata["check"]
                if not check.accepts(getattr(sink, name)):
                    raise ConfigError(f"invalid value for {key}.{name}", key=f"{key}.{name}",
                                      got=getattr(sink, name), expected=check.describe(),
                                      fix=f"set {key}.{name} to {check.describe()}")
            # no url is allowed (a preset reading an unset variable): that sink sends nothing
            # and says so once per event; a url that is not http(s) is refused
            if sink.kind in ("webhook", "chat") and sink.url and not str(sink.url).startswith(
                    ("http://", "https://")):
                raise ConfigError(f"{key}.url is not an http(s) URL", key=f"{key}.url",
                                  got="***", expected="http://… or https://…",
                                  fix=f"set {key}.url to the webhook's URL")
            if sink.kind == "log" and not sink.path:
                raise ConfigError(f"{key} (log) has no path", key=f"{key}.path",
                                  expected="a file path", fix=f"set {key}.path, e.g. "
                                  ".specloop/notify/events.jsonl")
            unknown = [e for e in sink.events if e not in _events.EVENTS]
            if unknown:
                raise ConfigError(f"unknown event {unknown[0]!r} in {key}.events",
                                  key=f"{key}.events", got=unknown,
                                  expected="events among: " + ", ".join(_events.EVENTS),
                                  fix="remove it, or leave events empty for all")
        return True

    def describe(self) -> str:
        return "a list of sinks {kind: webhook|chat|log, url | path, events, ...}"

    def invalid_values(self) -> list[Any]:
        return []


@dataclass
class NotifySettings:
    """``plugins.notify``: where lifecycle events go."""

    sinks: list[SinkConf] = param(default_factory=list, check=_SinksCheck(),
                                  help="the sinks events are sent to (none: nothing is sent)")


def _send(run: Any, events: list[dict]) -> None:
    """Send each event to every sink that wants it; never raise."""
    if not events:
        return
    try:
        settings = run.settings("notify")
    except Exception as exc:  # noqa: BLE001
        warn(f"notify: no settings ({exc}); events not sent")
        return
    from specloop import redact

    project_dir = Path(run.project_dir)
    for index, sink in enumerate(settings.sinks):
        for event in events:
            if not wants(sink, event["event"]):
                continue
            if sink.kind != "log" and not sink.url:
                warn(f"notify: {sink.kind} sink {index} has no url (plugins.notify.sinks."
                     f"{index}.url; notify=webhook reads SPECLOOP_NOTIFY_URL, notify=chat "
                     f"SPECLOOP_CHAT_WEBHOOK_URL): event {event['event']!r} not sent")
                continue
            try:
                deliver(sink, event, project_dir)
            except DeliveryError as exc:
                try:
                    record_failure(project_dir, sink, index, event, str(exc),
                                   lambda v: redact(run, v))
                    kept = "kept in .specloop/notify/failed.jsonl (specloop notify retry)"
                except Exception as again:  # noqa: BLE001
                    kept = f"not kept either ({type(again).__name__}: {again})"
                warn(f"notify: {sink.kind} sink {index} did not take event "
                     f"{event['event']!r}: {exc}; {kept}")
            except Exception as exc:  # noqa: BLE001 - a bug here must not stop the loop
                warn(f"notify: {sink.kind} sink {index} failed on {event['event']!r}: "
                     f"{type(exc).__name__}: {exc}")


def _guarded(build: Any, run: Any, *args: Any, **kwargs: Any) -> None:
    try:
        events = build(run, *args, **kwargs)
    except Exception as exc:  # noqa: BLE001
        warn(f"notify: could not build the event ({type(exc).__name__}: {exc})")
        return
    _send(run, events)


@hookimpl
def specloop_settings_schema():
    """Declare ``plugins.notify``."""
    return NotifySettings


@hookimpl
def specloop_add_conf_dirs():
    """Ship the ``notify/`` group (webhook, chat, log, none)."""
    return [str(Path(__file__).parent / "conf")]


@hookimpl
def specloop_after_alias_change(run, name, alias, version, previous, action, reason):
    """``promoted``, ``force_promoted``, ``rolled_back`` (champion moves only)."""
    _guarded(_events.from_alias_change, run, name, alias, version, previous, action, reason)


@hookimpl
def specloop_after_run(run, manifest):
    """``drift_detected`` and ``retrained`` per loop batch; ``run_failed``."""
    _guarded(_events.from_run, run, manifest)


@hookimpl
def specloop_on_stage_error(stage, component, run, error):
    """``loop_failed`` when a loop stage raised."""
    _guarded(_events.from_stage_error, run, stage, component, error)


@hookimpl
def specloop_add_cli_commands(subparsers):
    """``specloop notify retry``."""
    from ._cli import add_commands

    add_commands(subparsers)

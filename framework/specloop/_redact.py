"""Secrets stay secret before anything is recorded or printed: values at or under a
``param(secret=True)`` field or any ``storage_options``, or whose last key part names a
credential (``token``, ``password``, ``api_key`` …). Credentials belong in ``${oc.env:NAME}``."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

MASK = "***"
_CREDENTIAL = re.compile(r"(^|_|-)(token|password|passwd|secret|api_?key|access_?key|"
                         r"credentials?|private_?key|auth)($|_|-)", re.IGNORECASE)


def is_secret_key(key: str, secret_keys: frozenset[str] = frozenset()) -> bool:
    """Whether dotted ``key`` names a secret (itself, or below a secret field)."""
    parts = key.split(".")
    return (bool(_CREDENTIAL.search(parts[-1].lstrip("+~"))) or "storage_options" in parts[:-1]
            or any(".".join(parts[:i]) in secret_keys for i in range(1, len(parts) + 1)))


def secret_fields(spec: Any) -> frozenset[str]:
    """The dotted keys of every field the spec's schemas mark secret."""
    out = {"store.storage_options"}

    def walk(obj: Any, prefix: str) -> None:
        if not dataclasses.is_dataclass(obj):
            return
        for f in dataclasses.fields(obj):
            key = f"{prefix}.{f.name}"
            if f.metadata.get("secret"):
                out.add(key)
            value = getattr(obj, f.name, None)
            for i, item in enumerate(value if isinstance(value, list) else [value]):
                inner = getattr(item, "config", item)
                walk(inner, f"{key}.{i}" if isinstance(value, list) else key)

    for name, resolved in spec.components.items():
        if resolved is not None:
            walk(resolved.config, name)
    if spec.incoming is not None:
        walk(spec.incoming.config, "loop.incoming")
    for name, settings in spec.settings.items():
        walk(settings, f"plugins.{name}")
    return frozenset(out)


def redact(value: Any, secret_keys: frozenset[str] = frozenset(), prefix: str = "") -> Any:
    """A copy of ``value`` (nested dicts and lists) with every secret value masked."""
    if isinstance(value, dict):
        keys = {k: f"{prefix}.{k}" if prefix else str(k) for k in value}
        return {k: MASK if not isinstance(v, (dict, list)) and v not in (None, "")
                and is_secret_key(keys[k], secret_keys) else redact(v, secret_keys, keys[k])
                for k, v in value.items()}
    if isinstance(value, list):
        return [redact_overrides([v], secret_keys)[0] if isinstance(v, str) else
                redact(v, secret_keys, f"{prefix}.{i}") for i, v in enumerate(value)]
    return value


def redact_overrides(overrides: list[str], secret_keys: frozenset[str] = frozenset()) -> list[str]:
    """Command-line overrides with the values of secret keys masked."""
    return [f"{key}={MASK}" if eq and is_secret_key(key.lstrip("+~"), secret_keys) else ov
            for ov in overrides for key, eq, _ in [ov.partition("=")]]


_ASSIGNMENT = re.compile(r"(?P<key>[+~]*[A-Za-z_][\w.]*)=(?P<value>[^,\s\]'\"]+)")


def redact_text(text: str, secret_keys: frozenset[str] = frozenset()) -> str:
    """``text`` with every ``key=value`` of a secret key masked (override lists joined into
    one string, as Hydra's ``override_dirname``)."""
    return _ASSIGNMENT.sub(lambda m: f"{m['key']}={MASK}" if is_secret_key(
        m["key"].lstrip("+~"), secret_keys) else m[0], text)


def redact_env(env: dict[str, str]) -> dict[str, str]:
    """Environment variables with credential-like names masked."""
    return {k: (MASK if _CREDENTIAL.search(k.lower().replace("specloop_", "", 1)) else v)
            for k, v in env.items()}

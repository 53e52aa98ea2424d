"""The state-changing routes, ``/admin/*``; they exist only when a token is configured.

Each needs ``Authorization: Bearer <token>`` (missing: 401, wrong: 403, compared in
constant time). A body is one JSON object checked against the schema below, which is also
what ``/openapi.json`` shows, so the documentation and the checks cannot disagree.
"""

from __future__ import annotations

import hmac
import re
from typing import TYPE_CHECKING, Any

# route signatures are read by FastAPI at run time, so Request is a real import
from fastapi import FastAPI, Request
from fastapi.responses import Response

from ._model import FLOAT_EXACT, INT_MAX
from ._request import (InputError, check_json_content_type, error_doc, error_response,
                       json_response, parse_json, read_body)

if TYPE_CHECKING:
    from ._app import Server

#: An admin body is a few short fields; this leaves room for a long reason in any script.
MAX_BODY_BYTES = 65_536
REASON_MAX = 1000
# the registry's rule for alias names
ALIAS_PATTERN = r"^(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
_ALIAS = {"type": "string", "pattern": ALIAS_PATTERN,
          "description": "the alias to move (default: the one the server follows, else "
                         "champion): 1-128 letters, digits, '_', '.' or '-', starting with a "
                         "letter or digit, no '..'"}
_REASON = {"type": ["string", "null"], "maxLength": REASON_MAX,
           "description": "why; recorded in the alias history and the audit log"}

PROMOTE_BODY = {
    "type": "object", "title": "Promotion", "additionalProperties": False,
    "required": ["version"],
    "properties": {
        "version": {"type": "integer", "minimum": 1, "maximum": INT_MAX,
                    "description": "the version to promote"},
        "alias": _ALIAS, "reason": _REASON,
        "force": {"type": "boolean", "description": "promote although the declared gate "
                                                    "refuses (needs a reason; audited)"}},
    "example": {"version": 2, "reason": "canary ok"},
}
ROLLBACK_BODY = {
    "type": "object", "title": "Rollback", "additionalProperties": False,
    "properties": {"alias": _ALIAS, "reason": _REASON},
    "example": {"reason": "error rate up"},
}

_PY = {"integer": int, "string": str, "boolean": bool, "null": type(None)}
_NOUN = {"integer": "an integer", "string": "a string", "boolean": "true or false",
         "null": "null"}


def checked_body(doc: Any, schema: dict) -> dict:
    """``doc`` if it satisfies ``schema`` (the subset of JSON Schema used above).

    Args:
        doc: The parsed body.
        schema: ``PROMOTE_BODY`` or ``ROLLBACK_BODY``.

    Returns:
        The body (a whole number written as a float, such as ``2.0``, becomes an int).

    Raises:
        InputError: 422 naming the first key that is unexpected, missing or wrong.
    """
    if type(doc) is not dict:
        raise InputError(422, f"the body must be a JSON object, not {_jtype(doc)}",
                         kind="type_error")
    props = schema["properties"]
    for key in doc:
        if key not in props:
            shown = key if len(key) <= 60 else key[:60] + "…"
            raise InputError(422, f"unexpected key {shown!r}; the body takes: "
                                  + ", ".join(props), [shown], "extra_forbidden")
    for key in schema.get("required", ()):
        if key not in doc:
            raise InputError(422, f"{key!r} is required: {props[key]['description']}", [key],
                             "missing")
    for key, value in doc.items():
        rule = props[key]
        types = rule["type"] if isinstance(rule["type"], list) else [rule["type"]]
        if "integer" in types and type(value) is float and value.is_integer() and \
                abs(value) <= FLOAT_EXACT:
            value = doc[key] = int(value)  # 2.0 is an integer in JSON Schema too
        if not any(type(value) is _PY[t] for t in types):
            raise InputError(422, f"{key!r} must be {' or '.join(_NOUN[t] for t in types)}, "
                                  f"not {_jtype(value)}", [key], "type_error")
        if value is None:
            continue
        if "minimum" in rule and not rule["minimum"] <= value <= rule["maximum"]:
            raise InputError(422, f"{key!r} must be from {rule['minimum']} to "
                                  f"{rule['maximum']}, got {value}", [key], "value_error")
        if "maxLength" in rule and len(value) > rule["maxLength"]:
            raise InputError(422, f"{key!r} has {len(value)} characters; the limit is "
                                  f"{rule['maxLength']}", [key], "value_error")
        if "pattern" in rule and not re.fullmatch(rule["pattern"], value):
            raise InputError(422, f"{key!r} must be {rule['description'].split(': ', 1)[-1]}",
                             [key], "value_error")
    return doc


def _jtype(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            int: "an integer", float: "a number", type(None): "null"}.get(type(value),
                                                                          type(value).__name__)


async def _body(request: Request, schema: dict) -> dict:
    check_json_content_type(request.headers)
    raw = await read_body(request, MAX_BODY_BYTES, "the admin routes' fixed limit")
    if not raw.strip() and "required" not in schema:
        return {}  # every field is optional
    return checked_body(parse_json(raw), schema)


def add_admin_routes(app: FastAPI, server: Server, token: str) -> None:
    """Add ``/admin/reload``, ``/admin/promote`` and ``/admin/rollback`` to ``app``.

    Args:
        app: The server's app.
        server: What the process holds (context, model, refresh).
        token: The bearer token the routes require.
    """
    expected = f"Bearer {token}".encode()

    def denied(request: Request) -> Response | None:
        got = request.headers.get("authorization")
        if got is None:
            return json_response(401, error_doc(
                401, "this route needs 'Authorization: Bearer <token>'", "unauthorized",
                "header"), {"www-authenticate": "Bearer"})
        if not hmac.compare_digest(got.encode("latin-1"), expected):
            return json_response(403, error_doc(403, "wrong token", "forbidden", "header"))
        return None

    async def answer(changed: bool, extra: dict | None = None) -> Response:
        model = server.model
        return json_response(200, {"changed": changed,
                                   "version": model.version if model else None,
                                   **(extra or {})})

    def refused(exc: Any) -> Response:
        doc = error_doc(409, exc.args[0], "registry_refused")
        gate = getattr(exc, "gate", None)  # the gate refused: say why
        if gate:
            doc["gate"] = gate.get("summary")
        return json_response(409, doc)

    @app.post("/admin/reload", summary="Re-read the alias now and load what it points at")
    async def reload(request: Request) -> Response:
        if (resp := denied(request)) is not None:
            return resp
        return await answer(await server.refresh())

    @app.post("/admin/promote", summary="Point the alias at a version, through the declared "
                                        "gate (body: {version, reason, force})")
    async def promote(request: Request) -> Response:
        from specloop import RegistryError
        from specloop import promote as governed_promote

        if (resp := denied(request)) is not None:
            return resp
        try:
            doc = await _body(request, PROMOTE_BODY)
            alias = doc.get("alias", server.alias or "champion")
            force = doc.get("force", False)
            res = governed_promote(server.ctx, doc["version"], alias=alias, force=force,
                                   reason=doc.get("reason") or
                                   (None if force else "promoted over HTTP"))
        except InputError as exc:
            return error_response(exc)
        except RegistryError as exc:
            return refused(exc)
        return await answer(await server.refresh(), {"alias": alias, "previous": res["from"]})

    @app.post("/admin/rollback", summary="Move the alias back to its previous version")
    async def rollback(request: Request) -> Response:
        from specloop import RegistryError
        from specloop import rollback as governed_rollback

        if (resp := denied(request)) is not None:
            return resp
        try:
            doc = await _body(request, ROLLBACK_BODY)
            alias = doc.get("alias", server.alias or "champion")
            old = governed_rollback(server.ctx, alias=alias, reason=doc.get("reason") or
                                    "rolled back over HTTP")["from"]
        except InputError as exc:
            return error_response(exc)
        except RegistryError as exc:
            return refused(exc)
        return await answer(await server.refresh(), {"alias": alias, "previous": old})

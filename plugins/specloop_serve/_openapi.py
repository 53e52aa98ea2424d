"""``/openapi.json``: FastAPI's document, completed with what the routes really take and answer.

The routes read their requests themselves (no per-request pydantic model), so FastAPI sees
neither the bodies nor the refusals. This module fills them in: ``/predict``'s body from the
served version's signature, the admin bodies from the schemas their checks use, and on every
operation every status the server can answer, each refusal with the one error body. The
document is regenerated when a hot reload changes the version.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._admin import MAX_BODY_BYTES, PROMOTE_BODY, ROLLBACK_BODY
from ._request import MAX_HEADER_BYTES, REQUEST_ID_MAX, REQUEST_ID_PATTERN, REQUEST_ID_RULE

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ._app import Server

_ERROR_REF = {"$ref": "#/components/schemas/Error"}
SCHEMAS: dict[str, dict] = {
    "Error": {
        "type": "object", "title": "Error", "required": ["error", "detail"],
        "properties": {
            "error": {"type": "string", "description": "what is wrong (lower-case)"},
            "detail": {"type": "array", "items": {"$ref": "#/components/schemas/ErrorDetail"}},
            "gate": {"type": ["string", "null"],
                     "description": "409 from /admin/promote: the gate's summary"}}},
    "ErrorDetail": {
        "type": "object", "title": "ErrorDetail", "required": ["loc", "msg", "type"],
        "properties": {
            "loc": {"type": "array", "items": {"type": ["string", "integer"]},
                    "description": "where: 'body', 'header' or 'path', then keys and list "
                                   "indexes"},
            "msg": {"type": "string"},
            "type": {"type": "string", "description": "the kind of problem, e.g. missing, "
                                                      "type_error, too_large"}}},
    "Health": {"type": "object", "title": "Health", "required": ["status"],
               "properties": {"status": {"type": "string", "enum": ["ok"]}}},
    "Readiness": {
        "type": "object", "title": "Readiness", "required": ["ready"],
        "properties": {"ready": {"type": "boolean"}, "version": {"type": "integer"},
                       "reason": {"type": "string", "description": "why not ready"}}},
    "Metadata": {
        "type": "object", "title": "Metadata",
        "required": ["model", "version", "alias", "signature", "fast_path", "record_schema",
                     "loaded_at"],
        "properties": {
            "model": {"type": "string"}, "version": {"type": "integer"},
            "alias": {"type": ["string", "null"]}, "aliases": {"type": "array"},
            "created_at": {"type": ["string", "null"]}, "run_id": {"type": ["string", "null"]},
            "metrics": {"type": "object"}, "task": {"type": ["string", "null"]},
            "target": {"type": ["string", "null"]}, "classes": {"type": ["array", "null"]},
            "signature": {"type": "object"}, "fast_path": {"type": "boolean"},
            "runtime": {"type": "string", "enum": ["sklearn", "onnx"]},
            "onnx": {"type": "object", "description": "runtime onnx: the export's key, "
                                                      "SHA-256, input type, opset, parity"},
            "record_schema": {"type": "object"}, "loaded_at": {"type": "string"}}},
    "AdminResult": {
        "type": "object", "title": "AdminResult", "required": ["changed", "version"],
        "properties": {
            "changed": {"type": "boolean", "description": "whether the served version changed"},
            "version": {"type": ["integer", "null"], "description": "the version served now"},
            "alias": {"type": "string"},
            "previous": {"type": ["integer", "null"],
                         "description": "the version the alias pointed at before"}}},
    "Promotion": PROMOTE_BODY,
    "Rollback": ROLLBACK_BODY,
}


def _err(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": _ERROR_REF}}}


def _ok(description: str, schema: dict, media: str = "application/json") -> dict:
    return {"description": description, "content": {media: {"schema": schema}}}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


_HEADERS_TOO_LARGE = _err(f"the request headers exceed {MAX_HEADER_BYTES} bytes")
_NOT_READY = _err("no model is loaded yet")
_ADMIN_DENIED = {
    "401": {**_err("no 'Authorization: Bearer <token>' header"),
            "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}}},
    "403": _err("the token is wrong"),
}


def _predict(server: Server, body: dict) -> dict:
    limit = server.settings.body_limit
    return {
        "parameters": [{
            "name": "X-Request-ID", "in": "header", "required": False,
            "description": "echoed in the answer and written to the request log (default: a "
                           f"random id); 1 to {REQUEST_ID_MAX} characters: {REQUEST_ID_RULE}",
            "schema": {"type": "string", "minLength": 1, "maxLength": REQUEST_ID_MAX,
                       "pattern": REQUEST_ID_PATTERN}}],
        "requestBody": {"required": True, "content": {"application/json": body}},
        "responses": {
            "200": {**_ok("predictions", _ref("Prediction")), "headers": {
                "X-Model-Version": {"description": "the version that scored the request",
                                    "schema": {"type": "string"}}}},
            "400": _err("the body is empty or not JSON (malformed, NaN or Infinity, not UTF-8, "
                        "nested too deep), or X-Request-ID breaks its rule"),
            "413": _err(f"the body is over {limit} bytes (plugins.serve.max_body_bytes) or "
                        f"holds more than {server.settings.max_rows} records "
                        "(plugins.serve.max_rows)"),
            "415": _err("the Content-Type is not JSON in UTF-8"),
            "422": _err("a record does not match the signature (the message names the field),"
                        " a number does not fit, or the model could not score it"),
            "431": _err(f"X-Request-ID is over {REQUEST_ID_MAX} characters, or the request "
                        f"headers exceed {MAX_HEADER_BYTES} bytes"),
            "503": _NOT_READY}}


def _prediction(server: Server) -> dict:
    model = server.model
    props: dict[str, Any] = {
        "model": {"type": "string"}, "version": {"type": "integer"},
        "request_id": {"type": "string"},
        "predictions": {"type": "array", "items": {}, "description": "one per record; null "
                        "when the model's output for it is not a finite number"}}
    required = ["model", "version", "predictions", "request_id"]
    if model is not None and model.classes is not None:
        props["probabilities"] = {"type": "array", "items": {
            "type": "object", "additionalProperties": {"type": ["number", "null"]}},
            "description": "class label → probability, one object per record (null: the "
                           "model overflowed on extreme inputs)"}
        required.append("probabilities")
    return {"type": "object", "title": "Prediction", "required": required, "properties": props}


def _predict_body(server: Server, comps: dict) -> dict:
    model = server.model
    if model is None:  # no signature yet: any record
        record: dict[str, Any] = {"type": "object", "title": "Record"}
        example = None
    else:
        record = model.contract.json_schema()
        for prop in record["properties"].values():
            prop["type"] = [prop["type"], "null"]
            prop.pop("nullable", None)
        example = record.pop("example")
    comps["Record"] = record
    ref = _ref("Record")
    body: dict[str, Any] = {"schema": {"oneOf": [ref, {
        "type": "array", "items": ref, "minItems": 1, "maxItems": server.settings.max_rows}]}}
    if example is not None:
        body["example"] = example
    return body


def _admin(op: dict, name: str | None) -> None:
    op["security"] = [{"bearer": []}]
    responses: dict[str, Any] = {"200": _ok("done (or nothing to do)", _ref("AdminResult")),
                                 **_ADMIN_DENIED, "431": _HEADERS_TOO_LARGE}
    if name is not None:
        op["requestBody"] = {"required": "required" in SCHEMAS[name], "content": {
            "application/json": {"schema": _ref(name), "example": SCHEMAS[name]["example"]}}}
        responses.update({
            "400": _err("the body is not JSON"),
            "409": _err("the registry refused (unknown version, nothing to roll back to, "
                        "the gate refused, force without a reason)"),
            "413": _err(f"the body is over {MAX_BODY_BYTES} bytes"),
            "415": _err("the Content-Type is not JSON in UTF-8"),
            "422": _err("a key is unexpected, missing or has a wrong value (the message "
                        "names it)")})
    op["responses"] = responses


def build_openapi(app: FastAPI, server: Server) -> dict:
    """The OpenAPI document for the version being served (cached until it changes).

    Args:
        app: The server's app.
        server: What the process holds (settings, the loaded model).

    Returns:
        The document, as ``/openapi.json`` serves it.
    """
    from fastapi.openapi.utils import get_openapi

    model = server.model
    version = model.version if model else None
    if app.openapi_schema is not None and getattr(app.state, "openapi_for", "unset") == version:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description,
                         routes=app.routes)
    comps = schema.setdefault("components", {})
    schemas = comps.setdefault("schemas", {})
    schemas.update(SCHEMAS)
    schemas["Prediction"] = _prediction(server)
    paths = schema["paths"]
    paths["/predict"]["post"].update(_predict(server, _predict_body(server, schemas)))
    paths["/health"]["get"]["responses"] = {"200": _ok("alive", _ref("Health")),
                                            "431": _HEADERS_TOO_LARGE}
    paths["/ready"]["get"]["responses"] = {
        "200": _ok("a model is loaded", _ref("Readiness")),
        "431": _HEADERS_TOO_LARGE,
        "503": _ok("no model is loaded yet", _ref("Readiness"))}
    paths["/metadata"]["get"]["responses"] = {
        "200": _ok("the served version", _ref("Metadata")), "431": _HEADERS_TOO_LARGE,
        "503": _NOT_READY}
    paths["/metrics"]["get"]["responses"] = {
        "200": _ok("Prometheus text format", {"type": "string"}, "text/plain"),
        "431": _HEADERS_TOO_LARGE}
    admin = {"/admin/reload": None, "/admin/promote": "Promotion",
             "/admin/rollback": "Rollback"}
    if any(path in paths for path in admin):
        comps["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        for path, name in admin.items():
            if path in paths:
                _admin(paths[path]["post"], name)
    app.openapi_schema = schema
    app.state.openapi_for = version
    return schema

"""What a request may be, and the one shape of every refusal.

Every check here turns bad client input into a precise 4xx before anything else sees it:

- headers: the whole header block is capped (431); ``X-Request-ID``, which the server echoes
  and logs, has a length limit (431) and a character rule (400);
- the body: a JSON content type (415), a size cap counted while it streams in (413), and one
  strict parser, ``orjson``: UTF-8 only, no ``NaN``/``Infinity``, at most 1,024 levels of
  nesting, numbers that fit a 64-bit float (400, or 422 for a number out of range). The body
  is never handed to a second, recursive parser, so no input can exhaust the stack.

A refusal is an :class:`InputError`, rendered as
``{"error": message, "detail": [{"loc": [...], "msg": message, "type": kind}]}``.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

#: Request headers in total (names and values), as h11 allows by default.
MAX_HEADER_BYTES = 16_384
#: ``X-Request-ID``: what the server echoes and writes to the request log.
REQUEST_ID_MAX = 128
REQUEST_ID_RULE = "letters, digits and - _ . : / + = @"
REQUEST_ID_PATTERN = r"^[A-Za-z0-9._:/+=@-]{1,128}$"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=@-]+")
#: orjson's nesting limit; a deeper body is refused, not parsed.
MAX_DEPTH = 1024


class InputError(Exception):
    """A request the server refuses: an HTTP status and FastAPI-style error details.

    Args:
        status: The HTTP status (a 4xx).
        msg: What is wrong and, where it helps, how to fix it (lower-case).
        loc: Where, below ``where``: keys and list indexes.
        kind: A short machine-readable name of the problem.
        where: ``body``, ``header`` or ``path``.
        headers: Extra response headers (e.g. ``Allow`` on a 405).
    """

    def __init__(self, status: int, msg: str, loc: list | None = None,
                 kind: str = "value_error", *, where: str = "body",
                 headers: dict | None = None) -> None:
        super().__init__(msg)
        self.status = status
        self.headers = headers
        self.detail = [{"loc": [where, *(loc or [])], "msg": msg, "type": kind}]

    def body(self) -> dict:
        """The JSON error body."""
        return {"error": str(self), "detail": self.detail}


def dumps(doc: Any) -> bytes:
    """JSON bytes of a response document (non-finite floats become ``null``)."""
    return orjson.dumps(doc, option=orjson.OPT_NON_STR_KEYS)


def json_response(status: int, doc: Any, headers: dict | None = None) -> Any:
    """A JSON response."""
    from starlette.responses import Response

    return Response(dumps(doc), status_code=status, media_type="application/json",
                    headers=headers)


def error_response(exc: InputError) -> Any:
    """The response for a refusal."""
    return json_response(exc.status, exc.body(), exc.headers)


def error_doc(status: int, msg: str, kind: str, where: str = "body") -> dict:
    """An error body for a refusal that is not raised (e.g. 503, 409)."""
    return InputError(status, msg, kind=kind, where=where).body()


# -- headers -----------------------------------------------------------------------------------
def request_id(headers: Any) -> str | None:
    """The client's ``X-Request-ID``, checked, or ``None`` when it sent none.

    Raises:
        InputError: 431 when it is longer than ``REQUEST_ID_MAX``, 400 when it is empty or
            holds another character than ``REQUEST_ID_RULE`` allows.
    """
    rid = headers.get("x-request-id")
    if rid is None:
        return None
    if len(rid) > REQUEST_ID_MAX:
        raise InputError(431, f"the X-Request-ID header has {len(rid)} characters; the limit "
                              f"is {REQUEST_ID_MAX}", ["x-request-id"], "header_too_large",
                         where="header")
    if not _REQUEST_ID.fullmatch(rid):
        raise InputError(400, "the X-Request-ID header must be 1 to "
                              f"{REQUEST_ID_MAX} characters: {REQUEST_ID_RULE}",
                         ["x-request-id"], "header_invalid", where="header")
    return rid


class HeaderLimit:
    """Refuses a request whose header block exceeds ``MAX_HEADER_BYTES`` (plain ASGI).

    httptools accepts header blocks of any size; this makes the limit the same whichever
    HTTP implementation uvicorn runs, and answers it in the server's error shape.
    """

    def __init__(self, app: Any, limit: int = MAX_HEADER_BYTES) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            size = sum(len(k) + len(v) + 4 for k, v in scope["headers"])
            if size > self.limit:
                exc = InputError(431, f"the request headers take {size} bytes; the limit is "
                                      f"{self.limit}", kind="headers_too_large", where="header")
                await error_response(exc)(scope, receive, send)
                return
        await self.app(scope, receive, send)


# -- the body ----------------------------------------------------------------------------------
def check_json_content_type(headers: Any) -> None:
    """Refuse a body declared as anything but JSON in UTF-8 (no ``Content-Type``: JSON).

    Raises:
        InputError: 415 naming the type that was sent.
    """
    value = headers.get("content-type")
    if value is None:
        return
    media, _, params = value.partition(";")
    media = media.strip().lower()
    if media == "application/json" or (media.startswith("application/") and
                                       media.endswith("+json")):
        charset = _param(params, "charset")
        if charset is None or charset.lower() in ("utf-8", "utf8"):
            return
        raise InputError(415, f"the body must be UTF-8 JSON, not charset {charset!r}",
                         ["content-type"], "unsupported_media_type", where="header")
    raise InputError(415, f"the body must be JSON: send 'Content-Type: application/json' "
                          f"(got {_short(value)!r})", ["content-type"],
                     "unsupported_media_type", where="header")


def _param(params: str, name: str) -> str | None:
    for part in params.split(";"):
        key, _, val = part.partition("=")
        if key.strip().lower() == name:
            return val.strip().strip('"')
    return None


async def read_body(request: Any, limit: int, setting: str) -> bytes:
    """The body, read with a size cap: by ``Content-Length`` first, then while it streams.

    Args:
        request: The Starlette request.
        limit: The largest body accepted, in bytes.
        setting: The setting that holds ``limit``, named in the message.

    Raises:
        InputError: 400 for a malformed ``Content-Length``, 413 for a body over ``limit``.
    """
    length = request.headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise InputError(400, "the Content-Length header is not a number",
                             ["content-length"], "header_invalid", where="header")
        if int(length) > limit:
            raise InputError(413, f"the body has {length} bytes; the limit is {limit} "
                                  f"({setting})", kind="too_large")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise InputError(413, f"the body exceeds {limit} bytes ({setting})",
                             kind="too_large")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(body: bytes) -> Any:
    """The parsed body; any body ``orjson`` refuses is a 400 (422: a number out of range).

    Raises:
        InputError: with a message that says what is wrong and where (line, column).
    """
    if not body or body.isspace():
        raise InputError(400, "the body is empty: send one record (a JSON object) or a list "
                              "of records", kind="body_empty")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _refusal(body, exc) from None


_CONSTANTS = (b"NaN", b"Infinity", b"-Infinity", b"+Infinity")


def _refusal(body: bytes, exc: Any) -> InputError:
    msg, pos = str(exc.msg), exc.pos
    where = f"line {exc.lineno} column {exc.colno} (char {pos})"
    low = msg.lower()
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as bad:
        return InputError(400, f"the body is not valid UTF-8: byte {bad.start} "
                               f"(0x{body[bad.start]:02x}) cannot start or continue a character",
                          kind="json_invalid")
    if "depth" in low or "recursion" in low:
        return InputError(400, f"the body nests deeper than {MAX_DEPTH} levels; a record is "
                               "a flat JSON object", kind="json_too_deep")
    if "infinity" in low or "range" in low:
        return InputError(422, f"a number at {where} does not fit a 64-bit float",
                          kind="number_out_of_range")
    start = pos - 1 if pos and body[pos - 1:pos] in (b"-", b"+") else pos  # "-Infinity"
    rest = body[start:start + 10].lstrip()
    for constant in _CONSTANTS:
        if rest.startswith(constant):
            return InputError(400, f"the body is not valid JSON: {constant.decode()} is not a "
                                   f"JSON value ({where}); send null for a missing value",
                              kind="json_invalid")
    if "bom" in low or "byte order mark" in low:
        return InputError(400, "the body is not valid JSON: it starts with a byte order mark; "
                               "send UTF-8 without one", kind="json_invalid")
    if "surrogate" in low:
        return InputError(400, f"the body is not valid JSON: a \\u escape at {where} is an "
                               "unpaired UTF-16 surrogate", kind="json_invalid")
    return InputError(400, f"the body is not valid JSON: {msg} at {where}", kind="json_invalid")


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit] + "…"

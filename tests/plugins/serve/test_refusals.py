"""Whatever a client sends, a real ``specloop serve`` answers a precise 4xx in the one error
shape and keeps serving; ``/metrics`` shows that no request ever got a 5xx."""

from __future__ import annotations

import http.client
import json

import pytest

from serving_helpers import RECORD, Served, served_project, server  # noqa: F401

pytestmark = pytest.mark.slow

JSON = {"Content-Type": "application/json"}
GOOD = json.dumps(RECORD)


def _deep(levels: int, inner: bytes = b"") -> bytes:
    return b"[" * levels + inner + b"]" * levels


BAD = [
    # (name, body, headers, status, words the message must hold)
    ("missing feature", json.dumps({"x1": 1.0, "color": "red"}), JSON, 422, "x2"),
    ("extra feature", json.dumps({**RECORD, "x3": 1}), JSON, 422, "x3"),
    ("string for a number", json.dumps({**RECORD, "x1": "1.5"}), JSON, 422, "x1"),
    ("number for a string", json.dumps({**RECORD, "color": 3}), JSON, 422, "color"),
    ("boolean for a number", json.dumps({**RECORD, "x2": True}), JSON, 422, "x2"),
    ("object for a number", json.dumps({**RECORD, "x2": {"a": 1}}), JSON, 422, "x2"),
    ("bad record in a list", json.dumps([RECORD, {**RECORD, "x1": "a"}]), JSON, 422,
     "record 1"),
    ("non-object in a list", json.dumps([RECORD, 5]), JSON, 422, "record 1"),
    ("a list of numbers", "[1, 2, 3]", JSON, 422, "record 0 must be a JSON object"),
    ("a list of lists", json.dumps([[RECORD]]), JSON, 422, "record 0 must be a JSON object"),
    ("a list of strings", '["a", "b"]', JSON, 422, "record 0 must be a JSON object"),
    ("non-JSON body", "x1=1&x2=2", JSON, 400, "not valid JSON"),
    ("truncated JSON", GOOD[:-3], JSON, 400, "not valid JSON"),
    ("trailing content", GOOD + " {}", JSON, 400, "not valid JSON"),
    ("single quotes", GOOD.replace('"', "'"), JSON, 400, "not valid JSON"),
    ("NaN", GOOD.replace("0.5", "NaN"), JSON, 400, "NaN is not a JSON value"),
    ("Infinity", GOOD.replace("0.5", "Infinity"), JSON, 400, "Infinity is not a JSON value"),
    ("-Infinity", GOOD.replace("0.5", "-Infinity"), JSON, 400, "-Infinity is not a JSON value"),
    ("empty list", "[]", JSON, 422, "empty list"),
    ("empty body", "", JSON, 400, "the body is empty"),
    ("blank body", " \r\n\t ", JSON, 400, "the body is empty"),
    ("scalar body", "42", JSON, 422, "JSON object"),
    ("null body", "null", JSON, 422, "not null"),
    ("string body", '"x1"', JSON, 422, "not a string"),
    ("a number beyond float range", GOOD.replace("0.5", "1" + "0" * 400), JSON, 422,
     "does not fit a 64-bit float"),
    ("an exponent beyond float range", GOOD.replace("0.5", "1e400"), JSON, 422,
     "does not fit a 64-bit float"),
    # orjson refuses more than 1,024 levels; the old fallback parser recursed and answered 500
    ("nesting 1,025 levels", _deep(1025), JSON, 400, "nests deeper than 1024 levels"),
    ("nesting 100,000 levels", _deep(100_000), JSON, 400, "nests deeper than 1024 levels"),
    ("deep objects", b'{"a":' * 5000 + b"1" + b"}" * 5000, JSON, 400, "nests deeper"),
    # 1,000 levels parse; the message names the type instead of serializing the value
    ("a feature nested 1,000 levels", b'{"x1": ' + _deep(1000) + b', "x2": 1, "color": "red"}',
     JSON, 422, "'x1' must be a number, got a list"),
    ("invalid UTF-8", GOOD.encode().replace(b"red", b"r\xffd"), JSON, 400,
     "not valid UTF-8: byte"),
    ("UTF-16", GOOD.encode("utf-16"), JSON, 400, "not valid UTF-8"),
    ("a byte order mark", b"\xef\xbb\xbf" + GOOD.encode(), JSON, 400, "byte order mark"),
    ("an unpaired surrogate in a key", GOOD.replace('"x1"', '"\\ud800"'), JSON, 400,
     "unpaired UTF-16 surrogate"),
    ("an unpaired surrogate in a value", GOOD.replace('"red"', '"\\udc00"'), JSON, 400,
     "unpaired UTF-16 surrogate"),
    ("a NUL byte", GOOD.encode() + b"\x00", JSON, 400, "not valid JSON"),
    ("a 100,000-character key", json.dumps({**RECORD, "k" * 100_000: 1}), JSON, 422,
     "unexpected feature 'kkkk"),
    ("text/plain", GOOD, {"Content-Type": "text/plain"}, 415, "Content-Type: application/json"),
    ("a form", GOOD, {"Content-Type": "application/x-www-form-urlencoded"}, 415,
     "'application/x-www-form-urlencoded'"),
    ("JSON in Latin-1", GOOD, {"Content-Type": "application/json; charset=latin-1"}, 415,
     "UTF-8 JSON"),
    ("too many records", json.dumps([RECORD] * 501), JSON, 413, "max_rows"),
    ("too large a body", json.dumps([{**RECORD, "color": "x" * 1000}] * 300), JSON, 413,
     "max_body_bytes"),
    ("an X-Request-ID of 129 characters", GOOD, {**JSON, "X-Request-ID": "r" * 129}, 431,
     "X-Request-ID header has 129 characters; the limit is 128"),
    ("an X-Request-ID with a space", GOOD, {**JSON, "X-Request-ID": "a b"}, 400,
     "X-Request-ID header must be 1 to 128 characters"),
    ("an X-Request-ID with a quote", GOOD, {**JSON, "X-Request-ID": 'a"b'}, 400,
     "X-Request-ID"),
    ("an empty X-Request-ID", GOOD, {**JSON, "X-Request-ID": ""}, 400, "X-Request-ID"),
    ("a 20 KB header", GOOD, {**JSON, "X-Padding": "p" * 20_000}, 431,
     "the limit is 16384"),
    ("200 headers of 100 bytes", GOOD, {**JSON, **{f"X-Pad-{i}": "p" * 100 for i in range(200)}},
     431, "the request headers take"),
]


@pytest.mark.parametrize("name,body,headers,status,named", BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_a_precise_4xx_and_the_server_keeps_serving(server, name, body, headers,
                                                                 status, named):
    got, raw, answer_headers = server.client.request("POST", "/predict", body, headers)
    assert got == status, raw[:300]
    assert answer_headers["content-type"] == "application/json"
    doc = json.loads(raw)
    assert named in doc["error"], doc
    [detail] = doc["detail"]
    assert detail["msg"] == doc["error"] and detail["type"]
    assert detail["loc"][0] in ("body", "header")
    assert len(raw) < 2000  # nothing the client sent is echoed at length
    if status == 422 and (named in RECORD or named == "x3"):
        assert detail["loc"][-1] == named
    assert server.client.json("POST", "/predict", RECORD)[0] == 200


def test_a_whole_number_written_as_a_float_is_an_integer_and_json_types_are_exact(server):
    # the test model has number and string features: an integer is a number, not vice versa
    status, doc = server.client.json("POST", "/predict", {**RECORD, "x1": 3})
    assert status == 200
    status, raw, _ = server.client.request("POST", "/predict",
                                           json.dumps({**RECORD, "color": 3.0}), JSON)
    assert status == 422 and b"'color' must be a string, got a number 3.0" in raw


@pytest.mark.parametrize("content_type", [None, "application/json",
                                          "application/json; charset=utf-8",
                                          "Application/JSON; charset=UTF-8",
                                          "application/vnd.api+json"])
def test_json_content_types_and_none_are_accepted(server, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    status, raw, _ = server.client.request("POST", "/predict", GOOD, headers)
    assert status == 200, raw


def test_the_request_id_is_checked_echoed_and_generated(server):
    rid = "req-7:a/b+c=d@e_f.g"
    status, doc = server.client.json("POST", "/predict", RECORD, headers={"X-Request-ID": rid})
    assert status == 200 and doc["request_id"] == rid
    status, doc = server.client.json("POST", "/predict", RECORD,
                                     headers={"X-Request-ID": "r" * 128})
    assert status == 200 and doc["request_id"] == "r" * 128
    status, doc = server.client.json("POST", "/predict", RECORD)
    assert status == 200 and len(doc["request_id"]) == 16


def test_unknown_routes_and_methods_answer_in_the_error_shape(server):
    status, raw, headers = server.client.request("GET", "/nope/" + "x" * 500)
    doc = json.loads(raw)
    assert status == 404 and doc["detail"][0]["type"] == "not_found"
    assert "/docs" in doc["error"] and len(doc["error"]) < 200
    for method, path, allow in (("GET", "/predict", "POST"), ("PUT", "/predict", "POST"),
                                ("DELETE", "/health", "GET")):
        status, raw, headers = server.client.request(method, path)
        doc = json.loads(raw)
        assert status == 405 and allow in headers["allow"], (method, path, headers)
        assert f"method {method} is not allowed on '{path}'" in doc["error"]
        assert doc["detail"][0]["loc"] == ["path"]


def test_too_large_chunked_body_without_content_length(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    chunks = (b"[" + b"1," * 50_000 for _ in range(6))
    conn.request("POST", "/predict", body=chunks, encode_chunked=True,
                 headers={"Transfer-Encoding": "chunked"})
    r = conn.getresponse()
    assert r.status == 413 and b"max_body_bytes" in r.read()
    conn.close()
    assert server.client.json("POST", "/predict", RECORD)[0] == 200


ADMIN_BAD = [
    ("/admin/promote", "", JSON, 400, "the body is empty"),
    ("/admin/promote", "{", JSON, 400, "not valid JSON"),
    ("/admin/promote", _deep(2000), JSON, 400, "nests deeper"),
    ("/admin/promote", '{"version": 2}', {"Content-Type": "text/plain"}, 415,
     "application/json"),
    ("/admin/promote", "[2]", JSON, 422, "must be a JSON object, not a list"),
    ("/admin/promote", "{}", JSON, 422, "'version' is required"),
    ("/admin/promote", '{"version": "2"}', JSON, 422, "'version' must be an integer"),
    ("/admin/promote", '{"version": true}', JSON, 422, "'version' must be an integer"),
    ("/admin/promote", '{"version": 2.5}', JSON, 422, "'version' must be an integer"),
    ("/admin/promote", '{"version": 0}', JSON, 422, "'version' must be from 1"),
    ("/admin/promote", '{"version": 18446744073709551615}', JSON, 422,
     "'version' must be from 1 to 9223372036854775807"),
    ("/admin/promote", '{"version": 2, "reasn": "typo"}', JSON, 422,
     "unexpected key 'reasn'; the body takes: version, alias, reason, force"),
    ("/admin/promote", '{"version": 2, "alias": "../x"}', JSON, 422, "'alias' must be"),
    ("/admin/promote", '{"version": 2, "alias": "a..b"}', JSON, 422, "no '..'"),
    ("/admin/promote", '{"version": 2, "alias": 7}', JSON, 422, "'alias' must be a string"),
    ("/admin/promote", '{"version": 2, "reason": ["x"]}', JSON, 422,
     "'reason' must be a string or null"),
    ("/admin/promote", json.dumps({"version": 2, "reason": "r" * 1001}), JSON, 422,
     "'reason' has 1001 characters; the limit is 1000"),
    ("/admin/promote", '{"version": 2, "force": "yes"}', JSON, 422,
     "'force' must be true or false"),
    ("/admin/promote", json.dumps({"version": 2, "reason": "r" * 70_000}), JSON, 413,
     "the limit is 65536"),
    ("/admin/rollback", "[]", JSON, 422, "must be a JSON object"),
    ("/admin/rollback", '{"version": 1}', JSON, 422, "unexpected key 'version'"),
    ("/admin/promote", '{"version": 99}', JSON, 409, "no version 99"),
]


def test_admin_routes_refuse_bad_bodies_precisely_and_change_nothing(served_project, server):
    admin = Served(served_project.root, env={"SPECLOOP_SERVE_TOKEN": "s3cret-token"})
    auth = {"Authorization": "Bearer s3cret-token"}
    try:
        c = admin.client
        for path, body, headers, status, named in ADMIN_BAD:
            got, raw, _ = c.request("POST", path, body, {**headers, **auth})
            assert got == status, (path, body[:80], raw[:300])
            doc = json.loads(raw)
            assert named in doc["error"], (body[:80], doc)
            assert doc["detail"][0]["msg"] == doc["error"]
        got, raw, headers = c.request("POST", "/admin/reload")
        assert got == 401 and headers["www-authenticate"] == "Bearer"
        assert json.loads(raw)["detail"][0]["loc"] == ["header"]
        got, raw, _ = c.request("POST", "/admin/reload", None,
                                {"Authorization": "Bearer s3cret-tokeñ".encode().decode(
                                    "latin-1")})
        assert got == 403 and json.loads(raw)["error"] == "wrong token"
        assert c.json("GET", "/metadata")[1]["version"] == 1  # nothing changed
    finally:
        admin.stop()
    assert "Traceback" not in admin.log.read_text()


def test_no_client_input_produced_a_5xx(server):
    for body in (_deep(5000), b'{"\\ud800": 1}', b'{"x1": ' + _deep(1020) + b"}", b"\xff",
                 b"[" + b"9" * 5000 + b"]"):
        assert 400 <= server.client.request("POST", "/predict", body, JSON)[0] < 500
    text = server.client.request("GET", "/metrics")[1].decode()
    counts = [line for line in text.splitlines() if line.startswith("specloop_requests_total")]
    assert [c for c in counts if 'status="4' in c]
    assert not [c for c in counts if 'status="5' in c], counts
    assert "Traceback" not in server.log.read_text()

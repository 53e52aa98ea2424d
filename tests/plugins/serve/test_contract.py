"""The request contract on its own: integer features, whole floats, and messages that stay
short whatever a record holds."""

from __future__ import annotations

import orjson
import pytest

from specloop_serve._model import FLOAT32_MAX, INT_MAX, INT_MIN, Contract
from specloop_serve._request import InputError, parse_json

SIGNATURE = {"inputs": [{"name": "n", "type": "integer"}, {"name": "x", "type": "number"},
                        {"name": "c", "type": "string"}, {"name": "b", "type": "boolean"}],
             "task": "classification", "target": "y"}


def _rows(text: str | bytes, max_rows: int = 100) -> list[dict]:
    return Contract(SIGNATURE).rows(parse_json(text if isinstance(text, bytes)
                                               else text.encode()), max_rows)


def _refusal(text: str | bytes) -> InputError:
    with pytest.raises(InputError) as info:
        _rows(text)
    return info.value


def test_integer_features_take_int64_and_whole_floats():
    rows = _rows(f'[{{"n": {INT_MAX}, "x": 1, "c": "a", "b": true}},'
                 f' {{"n": {INT_MIN}, "x": 1.5, "c": null, "b": null}},'
                 ' {"n": 3.0, "x": -0.0, "c": "", "b": false}]')
    assert [r["n"] for r in rows] == [INT_MAX, INT_MIN, 3]
    assert type(rows[2]["n"]) is int  # what the model and the request log see
    frame = Contract(SIGNATURE).frame(rows)
    assert str(frame["n"].dtype) == "int64" and frame["n"].tolist() == [INT_MAX, INT_MIN, 3]


@pytest.mark.parametrize("value,words", [
    (str(INT_MAX + 1), "must be a 64-bit integer from"),
    (str(2**64 - 1), "must be a 64-bit integer from"),
    (str(INT_MIN - 1), "written as an integer"),  # the parser reads it as a float
    ("1e19", "written as an integer"),
    ("2.5", "must be an integer, got a number 2.5"),
    ('"3"', 'must be an integer, got a string "3"'),
    ("true", "must be an integer, got a boolean true"),
])
def test_integer_features_refuse_what_int64_cannot_hold(value, words):
    exc = _refusal(f'{{"n": {value}, "x": 1, "c": "a", "b": true}}')
    assert exc.status == 422 and words in str(exc)
    assert exc.detail[0]["loc"] == ["body", "n"]


def test_a_refused_value_is_described_not_serialized():
    deep = b"[" * 1000 + b"]" * 1000
    exc = _refusal(b'{"n": 1, "x": ' + deep + b', "c": "a", "b": true}')
    assert str(exc) == "feature 'x' must be a number, got a list"
    exc = _refusal('{"n": 1, "x": 1, "c": ' + orjson.dumps({"k": "v" * 10_000}).decode() +
                   ', "b": true}')
    assert str(exc) == "feature 'c' must be a string, got an object"
    exc = _refusal('{"n": 1, "x": "' + "s" * 10_000 + '", "c": "a", "b": true}')
    assert len(str(exc)) < 120 and str(exc).endswith('…"')


def test_an_unexpected_key_is_named_short():
    exc = _refusal(orjson.dumps({"n": 1, "x": 1, "c": "a", "b": True, "k" * 10_000: 1}))
    assert exc.status == 422 and len(str(exc)) < 200
    assert exc.detail[0]["loc"] == ["body", "k" * 60 + "…"]


def test_every_parser_refusal_is_an_input_error():
    for body in (b"", b"[" * 2000, b"[1e999]", b'["\\ud800"]', b"\xff", b"NaN", b"[1,]"):
        with pytest.raises(InputError) as info:
            parse_json(body)
        assert info.value.status in (400, 422), body[:20]


@pytest.mark.parametrize("value", ["1e300", "-3.5e38", "1" + "0" * 39])
def test_number_features_stay_within_float32(value):
    exc = _refusal(f'{{"n": 1, "x": {value}, "c": "a", "b": true}}')
    assert exc.status == 422 and exc.detail[0]["loc"] == ["body", "x"]
    assert "must be a number from -3.40282e+38 to 3.40282e+38 (the float32 range)" in str(exc)


def test_the_record_schema_states_the_bounds_the_checks_apply():
    props = Contract(SIGNATURE).json_schema()["properties"]
    assert (props["n"]["minimum"], props["n"]["maximum"]) == (INT_MIN, INT_MAX)
    assert (props["x"]["minimum"], props["x"]["maximum"]) == (-FLOAT32_MAX, FLOAT32_MAX)
    rows = _rows(f'{{"n": 1, "x": {FLOAT32_MAX!r}, "c": "a", "b": true}}')
    assert rows[0]["x"] == FLOAT32_MAX

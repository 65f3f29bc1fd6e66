"""POST /api/orders/execute: what the engine accepts, and the 4xx every bad body gets.

Some requests here cannot be built with an HTTP client (no Content-Type, a
chunked body, a length the body never reaches), so they go over a raw socket.
"""

from __future__ import annotations

import contextlib
import json
import uuid

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.iostream import StreamClosedError
from tornado.tcpclient import TCPClient

LIMIT = 64 * 1024


@pytest.fixture
def venues_config() -> dict:
    """BONK trades only on raydium, JUP only on meteora: BONK->JUP has no enabled venue.

    A disabled venue trades that pair, to show disabled venues do not count.
    """
    return {
        "tokens": {
            "SOL": {"reference_price": 150},
            "USDC": {"reference_price": 1},
            "BONK": {"reference_price": 0.00002},
            "JUP": {"reference_price": 0.9},
        },
        "venues": {
            "raydium": {"plugin": "mock-raydium", "failure_rate": 0, "tokens": ["SOL", "USDC", "BONK"]},
            "meteora": {"plugin": "mock-meteora", "failure_rate": 0, "tokens": ["SOL", "USDC", "JUP"]},
            "orca": {"plugin": "mock-raydium", "enabled": False, "tokens": ["BONK", "JUP"]},
        },
    }


@pytest.fixture
def engine_overrides() -> dict:
    # The in-memory waiting store: these tests look into it (engine.waiting.peek).
    return {"orders": {"max_amount": 1000, "waiting_store": "memory"}}


ORDER = {"fromToken": "SOL", "toToken": "USDC", "amount": 1.5, "orderType": "market"}


async def raw_request(port: int, head: bytes, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are; read the reply until the server closes the connection."""
    stream = await TCPClient().connect("127.0.0.1", port)
    with contextlib.suppress(StreamClosedError):  # the server may answer before reading it all
        await stream.write(head + b"\r\n" + body)
    data = await stream.read_until_close()
    header_blob, _, reply_body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = header_blob.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        reply_body = _dechunk(reply_body)
    return int(status_line.split()[1]), headers, reply_body


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        out, data = out + data[:size], data[size + 2 :]
    return out


def post_head(
    length: int | None, content_type: str | None = "application/json", chunked: bool = False
) -> bytes:
    lines = ["POST /api/orders/execute HTTP/1.1", "Host: localhost", "Connection: close"]
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    if length is not None:
        lines.append(f"Content-Length: {length}")
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    return ("\r\n".join(lines) + "\r\n").encode()


def chunked(body: bytes, size: int = 8192) -> bytes:
    parts = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


@pytest.fixture
def port(http_server, http_port) -> int:
    """The running test server's port, for raw-socket requests."""
    return http_port


def assert_client_error(code: int, body: dict, status: int = 400, field: str | None = None) -> None:
    """The contract's error shape: a 4xx, a sentence, the field when one is at fault."""
    assert code == status, body
    assert isinstance(body["error"], str) and body["error"]
    assert "Traceback" not in body["error"]
    if field is None:
        assert "field" not in body
    else:
        assert body["field"] == field
    assert set(body) <= {"error", "field"}


# -- success ---------------------------------------------------------------------------------------


@pytest.mark.gen_test(timeout=15)
async def test_valid_order_gets_a_uuid4_and_pending(client):
    code, body = await client.post_order(ORDER)
    assert code == 200
    assert set(body) == {"orderId", "status", "wsUrl"}  # wsUrl: added to the original's two, additively
    assert body["status"] == "pending"
    assert body["wsUrl"] == f"{client.ws_url}/ws?orderId={body['orderId']}"
    assert uuid.UUID(body["orderId"]).version == 4
    assert str(uuid.UUID(body["orderId"])) == body["orderId"]


@pytest.mark.gen_test(timeout=15)
async def test_each_order_gets_its_own_id(client):
    ids = {await client.submit() for _ in range(3)}
    assert len(ids) == 3


@pytest.mark.gen_test(timeout=15)
async def test_order_type_defaults_to_market(client, engine):
    code, body = await client.post_order({"fromToken": "SOL", "toToken": "USDC", "amount": 2})
    assert code == 200
    assert engine.waiting.peek(body["orderId"]).order_type == "market"


@pytest.mark.gen_test(timeout=15)
async def test_content_type_with_charset_is_accepted(client):
    code, body = await client.post_order(ORDER, content_type="application/json; charset=utf-8")
    assert code == 200, body


@pytest.mark.gen_test(timeout=15)
async def test_amount_at_the_maximum_is_accepted(client):
    code, body = await client.post_order({**ORDER, "amount": 1000})
    assert code == 200, body


@pytest.mark.gen_test(timeout=15)
async def test_accepted_order_is_only_in_the_waiting_store_not_in_redis(client, engine):
    """Until its socket opens the order is not recorded or queued: only listed (GET /api/orders)."""
    before = await engine.redis.keys(f"{engine.keys.prefix}:*")
    code, body = await client.post_order(ORDER)
    assert code == 200
    order = engine.waiting.peek(body["orderId"])
    assert (order.from_token, order.to_token, order.amount) == ("SOL", "USDC", 1.5)
    after = set(await engine.redis.keys(f"{engine.keys.prefix}:*")) - set(before)
    assert after <= {engine.keys.order_index(None)}
    assert await engine.redis.zscore(engine.keys.order_index(None), body["orderId"]) is not None
    assert not await engine.store.exists(body["orderId"])
    assert await engine.queue.depth() == 0


# -- the body is not an order ------------------------------------------------------------------------


@pytest.mark.gen_test(timeout=15)
@pytest.mark.parametrize(
    "raw",
    [b"{", b'{"fromToken": "SOL",}', b"not json", b"{'fromToken': 'SOL'}", b'{"a": 1} trailing'],
)
async def test_malformed_json_is_400(client, raw):
    code, body = await client.post_order(raw)
    assert_client_error(code, body)
    assert "not valid JSON" in body["error"]


@pytest.mark.gen_test(timeout=15)
async def test_malformed_json_error_says_where(client):
    code, body = await client.post_order(b'{\n  "fromToken": "SOL",\n  oops\n}')
    assert_client_error(code, body)
    assert "line 3" in body["error"]


@pytest.mark.gen_test(timeout=15)
@pytest.mark.parametrize("raw", [b"", b"   ", b"\r\n"])
async def test_empty_body_is_400(client, raw):
    code, body = await client.post_order(raw)
    assert_client_error(code, body)
    assert "empty" in body["error"]


@pytest.mark.gen_test(timeout=15)
@pytest.mark.parametrize("raw", [b"[]", b'[{"fromToken": "SOL"}]', b'"SOL"', b"42", b"null", b"true"])
async def test_body_that_is_not_an_object_is_400(client, raw):
    code, body = await client.post_order(raw)
    assert_client_error(code, body)
    assert "JSON object" in body["error"]


@pytest.mark.gen_test(timeout=15)
async def test_deeply_nested_json_is_400_not_500(client):
    code, body = await client.post_order(b"[" * 30_000 + b"]" * 30_000)
    assert_client_error(code, body)
    assert body["error"] == "the body is not valid JSON: nested too deeply"


@pytest.mark.gen_test(timeout=15)
async def test_non_utf8_bytes_are_400(client):
    code, body = await client.post_order(b'{"fromToken": "SOL\xff\xfe", "toToken": "USDC", "amount": 1}')
    assert_client_error(code, body)
    assert "UTF-8" in body["error"]


@pytest.mark.gen_test(timeout=15)
async def test_utf16_body_is_400_because_json_must_be_utf8(client):
    code, body = await client.post_order(json.dumps(ORDER).encode("utf-16"))
    assert_client_error(code, body)
    assert "UTF-8" in body["error"]


# -- content type and size -------------------------------------------------------------------------


@pytest.mark.gen_test(timeout=15)
@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/jsonx"]
)
async def test_wrong_content_type_is_415(client, content_type):
    code, body = await client.post_order(ORDER, content_type=content_type)
    assert_client_error(code, body, status=415)
    assert "application/json" in body["error"]


@pytest.mark.gen_test(timeout=15)
async def test_missing_content_type_is_415(port):
    payload = json.dumps(ORDER).encode()
    code, headers, raw = await raw_request(port, post_head(len(payload), content_type=None), payload)
    assert headers["content-type"].startswith("application/json")
    assert_client_error(code, json.loads(raw), status=415)


@pytest.mark.gen_test(timeout=15)
async def test_body_over_64k_is_413(client):
    padded = json.dumps({**ORDER, "pad": "x" * LIMIT}).encode()
    code, body = await client.post_order(padded)
    assert_client_error(code, body, status=413)
    assert str(LIMIT) in body["error"]


@pytest.mark.gen_test(timeout=15)
async def test_content_length_over_64k_is_413_before_the_body_is_read(port):
    code, headers, raw = await raw_request(port, post_head(LIMIT + 1))
    assert headers["content-type"].startswith("application/json")
    assert_client_error(code, json.loads(raw), status=413)


@pytest.mark.gen_test(timeout=15)
async def test_chunked_body_over_64k_is_413(port):
    padded = json.dumps({**ORDER, "pad": "x" * LIMIT}).encode()
    code, headers, raw = await raw_request(port, post_head(None, chunked=True), chunked(padded))
    assert headers["content-type"].startswith("application/json")
    assert_client_error(code, json.loads(raw), status=413)


@pytest.mark.gen_test(timeout=15)
async def test_chunked_body_under_the_limit_is_accepted(port):
    payload = json.dumps(ORDER).encode()
    code, _, raw = await raw_request(port, post_head(None, chunked=True), chunked(payload, size=7))
    assert code == 200, raw
    assert json.loads(raw)["status"] == "pending"


@pytest.mark.gen_test(timeout=15)
async def test_body_of_exactly_64k_is_not_rejected_for_size(client):
    body = json.dumps({**ORDER, "pad": ""}).encode()
    body = body[:-1] + b" " * (LIMIT - len(body)) + b"}"
    assert len(body) == LIMIT
    code, reply = await client.post_order(body)
    assert code == 200, reply


# -- missing and mistyped fields ---------------------------------------------------------------------


@pytest.mark.gen_test(timeout=15)
@pytest.mark.parametrize("missing", ["fromToken", "toToken", "amount"])
async def test_missing_required_field_is_400_naming_it(client, missing):
    order = {k: v for k, v in ORDER.items() if k != missing}
    code, body = await client.post_order(order)
    assert_client_error(code, body, field=missing)
    assert body["error"] == f"{missing} is required"


@pytest.mark.gen_test(timeout=15)
@pytest.mark.parametrize("name", ["fromToken", "toToken", "amount"])
async def test_null_required_field_is_400_naming_it(client, name):
    code, body = await client.post_order({**ORDER, name: None})
    assert_client_error(code, body, field=name)
    assert body["error"] == f"{name} is required"


@pytest.mark.gen_test(timeout=15)
@pytest.mark.parametrize(
    ("name", "value", "kind"),
    [
        ("fromToken", 5, "int"),
        ("toToken", 1.5, "float"),
        ("fromToken", ["SOL"], "list"),
        ("toToken", {"symbol": "USDC"}, "dict"),
        ("fromToken", True, "bool"),
        ("orderType", 1, "int"),
    ],
)
async def test_token_or_order_type_that_is_not_a_string_is_400(client, name, value, kind):
    code, body = await client.post_order({**ORDER, name: value})
    assert_client_error(code, body, field=name)
    assert body["error"] == f"{name} must be a string, got {kind}"


@pytest.mark.gen_test(timeout=15)
@pytest.mark.parametrize("value", ["", "   "])
async def test_empty_token_is_400(client, value):
    code, body = await client.post_order({**ORDER, "fromToken": value})
    assert_client_error(code, body, field="fromToken")
    assert "empty" in body["error"]


@pytest.mark.gen_test(timeout=15)
@pytest.mark.parametrize(("value", "kind"), [(True, "bool"), (False, "bool"), ([1], "list"), ({}, "dict")])
async def test_amount_that_is_not_a_number_is_400(client, value, kind):
    """A decimal string is an amount too (tests/test_amount_strings.py); other types are not."""
    code, body = await client.post_order({**ORDER, "amount": value})
    assert_client_error(code, body, field="amount")
    assert body["error"] == f"amount must be a number or a decimal string, got {kind}"


# -- amount values -----------------------------------------------------------------------------------


@pytest.mark.gen_test(timeout=15)
@pytest.mark.parametrize("value", [0, 0.0, -0.0, -1, -1e-9])
async def test_amount_zero_or_negative_is_400(client, value):
    code, body = await client.post_order({**ORDER, "amount": value})
    assert_client_error(code, body, field="amount")
    assert body["error"] == "amount must be greater than 0"


@pytest.mark.gen_test(timeout=15)
@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
async def test_nan_and_infinity_literals_are_400(client, literal):
    raw = b'{"fromToken": "SOL", "toToken": "USDC", "amount": %s}' % literal
    code, body = await client.post_order(raw)
    assert_client_error(code, body)
    assert literal.decode() in body["error"]


@pytest.mark.gen_test(timeout=15)
@pytest.mark.parametrize("literal", [b"1e999", b"-1e999"])
async def test_amount_that_overflows_to_infinity_is_400(client, literal):
    raw = b'{"fromToken": "SOL", "toToken": "USDC", "amount": %s}' % literal
    code, body = await client.post_order(raw)
    assert_client_error(code, body, field="amount")
    assert body["error"] == "amount must be a finite number"


@pytest.mark.gen_test(timeout=15)
async def test_amount_that_is_an_integer_too_large_for_a_float_is_400_not_500(client):
    raw = b'{"fromToken": "SOL", "toToken": "USDC", "amount": 1%s}' % (b"0" * 400)
    code, body = await client.post_order(raw)
    assert_client_error(code, body, field="amount")
    assert body["error"] == "amount must be at most 1000"


@pytest.mark.gen_test(timeout=15)
async def test_integer_with_more_digits_than_python_parses_is_400(client):
    raw = b'{"fromToken": "SOL", "toToken": "USDC", "amount": 1%s}' % (b"0" * 5000)
    code, body = await client.post_order(raw)
    assert_client_error(code, body)
    assert body["error"].startswith("the body is not valid JSON")


@pytest.mark.gen_test(timeout=15)
async def test_amount_over_the_configured_maximum_is_400(client):
    code, body = await client.post_order({**ORDER, "amount": 1000.01})
    assert_client_error(code, body, field="amount")
    assert body["error"] == "amount must be at most 1000"


# -- tokens, pairs and order types -------------------------------------------------------------------


@pytest.mark.gen_test(timeout=15)
@pytest.mark.parametrize("name", ["fromToken", "toToken"])
async def test_unknown_token_is_400_listing_the_known_ones(client, name):
    code, body = await client.post_order({**ORDER, name: "DOGE"})
    assert_client_error(code, body, field=name)
    assert body["error"] == "unknown token 'DOGE'; known tokens: BONK, JUP, SOL, USDC"


@pytest.mark.gen_test(timeout=15)
async def test_long_unknown_token_is_not_echoed_in_full(client):
    code, body = await client.post_order({**ORDER, "fromToken": "X" * 5000})
    assert_client_error(code, body, field="fromToken")
    assert len(body["error"]) < 200


@pytest.mark.gen_test(timeout=15)
async def test_same_from_and_to_token_is_400(client):
    code, body = await client.post_order({**ORDER, "toToken": "SOL"})
    assert_client_error(code, body, field="toToken")
    assert body["error"] == "toToken must differ from fromToken"


@pytest.mark.gen_test(timeout=15)
async def test_pair_no_enabled_venue_trades_is_400(client):
    code, body = await client.post_order({**ORDER, "fromToken": "BONK", "toToken": "JUP"})
    assert_client_error(code, body, field="toToken")
    assert body["error"] == "no enabled venue trades BONK for JUP"


@pytest.mark.gen_test(timeout=15)
async def test_pair_traded_by_one_venue_is_accepted(client):
    code, body = await client.post_order({**ORDER, "fromToken": "BONK", "toToken": "SOL"})
    assert code == 200, body


@pytest.mark.gen_test(timeout=15)
@pytest.mark.parametrize("order_type", ["stop-loss", "MARKET", ""])
async def test_unsupported_order_type_is_400(client, order_type):
    code, body = await client.post_order({**ORDER, "orderType": order_type})
    assert_client_error(code, body, field="orderType")
    assert body["error"] == f"orderType {order_type!r} is not supported; supported: market, limit, sniper"


@pytest.mark.gen_test(timeout=15)
async def test_rejected_orders_leave_no_trace(client, engine):
    for bad in ({**ORDER, "amount": -1}, {**ORDER, "toToken": "SOL"}, {**ORDER, "orderType": "limit"}):
        code, _ = await client.post_order(bad)
        assert code == 400
    assert len(engine.waiting) == 0
    assert await engine.redis.keys(f"{engine.keys.prefix}:{{*") == []


# -- the rest of the HTTP surface --------------------------------------------------------------------


@pytest.mark.gen_test(timeout=15)
@pytest.mark.parametrize("path", ["/api", "/api/order", "/api/orders/execute/extra", "/nope"])
async def test_unknown_endpoint_is_404_json(base_url, http_server, path):
    response = await AsyncHTTPClient().fetch(f"{base_url}{path}", raise_error=False)
    assert response.code == 404
    assert response.headers["Content-Type"].startswith("application/json")
    body = json.loads(response.body)
    assert body == {"error": f"no such endpoint: GET {path}"}


@pytest.mark.gen_test(timeout=15)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/orders/execute"),
        ("PUT", "/api/orders/execute"),
        ("PUT", "/api/orders/abc"),
        ("DELETE", "/api/orders"),
        ("POST", "/health"),
    ],
)
async def test_wrong_method_is_405_json(base_url, http_server, method, path):
    request = HTTPRequest(
        f"{base_url}{path}",
        method=method,
        body=b"{}" if method in ("PUT", "POST") else None,
        headers={"Content-Type": "application/json"},
    )
    response = await AsyncHTTPClient().fetch(request, raise_error=False)
    assert response.code == 405
    assert response.headers["Content-Type"].startswith("application/json")
    assert json.loads(response.body) == {"error": f"{method} is not allowed on {path}"}

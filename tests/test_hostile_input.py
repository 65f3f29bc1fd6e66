"""Property-based tests: whatever a client sends, never a 500, a traceback or a hang."""

from __future__ import annotations

import json
import urllib.parse

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.websocket import websocket_connect

# One engine serves every example: that is the point (it must survive them all).
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
field_values = st.one_of(
    json_values, st.sampled_from(["SOL", "USDC", "USDT", "market", "limit", "", " SOL "])
)
order_like = st.fixed_dictionaries(
    {},
    optional={
        "fromToken": field_values,
        "toToken": field_values,
        "amount": st.one_of(st.floats(), st.integers(), field_values),
        "orderType": field_values,
    },
)


def assert_clean_reply(code: int, body: bytes) -> None:
    assert code < 500, (code, body)
    assert b"Traceback" not in body
    reply = json.loads(body)
    if code == 200:
        assert set(reply) == {"orderId", "status", "wsUrl"}
    else:
        assert 400 <= code < 500 and isinstance(reply["error"], str) and reply["error"]


def post(io_loop, base_url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    async def send():
        request = HTTPRequest(
            f"{base_url}/api/orders/execute",
            method="POST",
            body=body,
            headers=headers,
            request_timeout=10,
        )
        return await AsyncHTTPClient().fetch(request, raise_error=False)

    response = io_loop.run_sync(send, timeout=15)
    assert response.code != 599, f"no answer: {response.error}"  # 599: the connection hung or broke
    return response.code, response.body


@FUZZ
@given(body=order_like)
def test_any_json_order_gets_a_clean_answer(io_loop, http_server, base_url, body):
    code, reply = post(io_loop, base_url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    assert_clean_reply(code, reply)


@FUZZ
@given(body=st.binary(max_size=300))
def test_any_bytes_get_a_clean_answer(io_loop, http_server, base_url, body):
    code, reply = post(io_loop, base_url, body, {"Content-Type": "application/json"})
    assert_clean_reply(code, reply)


header_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=0, max_size=40)


@FUZZ
@given(
    content_type=header_text,
    extra=st.dictionaries(st.from_regex(r"X-[A-Za-z]{1,10}", fullmatch=True), header_text, max_size=3),
)
def test_any_headers_get_a_clean_answer(io_loop, http_server, base_url, content_type, extra):
    body = json.dumps({"fromToken": "SOL", "toToken": "USDC", "amount": 1}).encode()
    code, reply = post(io_loop, base_url, body, {"Content-Type": content_type, **extra})
    assert_clean_reply(code, reply)


@FUZZ
@given(order_id=st.text(max_size=60), last_seq=st.one_of(st.none(), st.text(max_size=12)))
def test_any_websocket_query_gets_an_error_frame_and_a_close(
    io_loop, http_server, base_url, order_id, last_seq
):
    params = {"orderId": order_id} if last_seq is None else {"orderId": order_id, "lastSeq": last_seq}
    url = base_url.replace("http", "ws", 1) + "/ws?" + urllib.parse.urlencode(params)

    async def connect_and_read():
        conn = await websocket_connect(url)
        frames = []
        while (message := await conn.read_message()) is not None:
            frames.append(json.loads(message))
        return frames, conn.close_code

    frames, close_code = io_loop.run_sync(connect_and_read, timeout=10)
    assert frames and frames[-1]["status"] == "error" and "seq" not in frames[-1]
    assert close_code in (4400, 4404)


@pytest.mark.gen_test(timeout=15)
async def test_engine_still_executes_orders_after_hostile_input(client):
    for body in (b"\xff\xfe", b"[" * 10000, b'{"amount": 1e999}', b"null"):
        code, _ = await client.post_order(body)
        assert 400 <= code < 500
    assert (await client.run_order())[-1]["status"] == "confirmed"


@pytest.fixture
def engine_overrides() -> dict:
    return {"orders": {"admin_api": True}}


def fetch(io_loop, base_url: str, path: str, method: str = "GET", body: bytes | None = None, **headers):
    async def send():
        request = HTTPRequest(
            base_url + path,
            method=method,
            body=body,
            headers=headers,
            request_timeout=10,
            allow_nonstandard_methods=True,
        )
        return await AsyncHTTPClient().fetch(request, raise_error=False)

    response = io_loop.run_sync(send, timeout=15)
    assert response.code != 599, f"no answer: {response.error}"
    return response


def assert_json_error(response) -> None:
    assert 400 <= response.code < 500, (response.code, response.body)
    assert response.headers["Content-Type"].startswith("application/json")
    assert isinstance(json.loads(response.body)["error"], str)


percent_bytes = st.binary(min_size=1, max_size=40).map(lambda raw: urllib.parse.quote(raw, safe=""))


@FUZZ
@given(order_id=percent_bytes, last_seq=st.one_of(st.none(), percent_bytes))
def test_any_bytes_in_the_websocket_query_get_an_error_frame_and_a_close(
    io_loop, http_server, base_url, order_id, last_seq
):
    query = f"orderId={order_id}" + ("" if last_seq is None else f"&lastSeq={last_seq}")
    url = base_url.replace("http", "ws", 1) + "/ws?" + query

    async def connect_and_read():
        conn = await websocket_connect(url)
        frames = []
        while (message := await conn.read_message()) is not None:
            frames.append(json.loads(message))
        return frames, conn.close_code

    frames, close_code = io_loop.run_sync(connect_and_read, timeout=10)
    assert frames and frames[-1]["status"] == "error" and "seq" not in frames[-1]
    assert close_code in (4400, 4404)  # never 1006: a dropped connection with no frame


@FUZZ
@given(prefix=st.sampled_from(["/static/", "/api/orders/", "/", "/api/"]), rest=percent_bytes)
def test_any_bytes_in_a_path_get_a_json_error_or_a_file(io_loop, http_server, base_url, prefix, rest):
    response = fetch(io_loop, base_url, prefix + rest)
    if response.code == 200:
        assert prefix == "/static/"  # a real page file, e.g. app.js
    else:
        assert_json_error(response)


ROUTES = [
    "/api/orders/execute",
    "/api/orders/x",
    "/ws",
    "/health",
    "/health/live",
    "/health/ready",
    "/metrics",
]
ROUTES += [
    "/api/openapi.json",
    "/api/venues",
    "/api/activity",
    "/api/admin/pools",
    "/",
    "/static/app.js",
    "/nope",
]


@FUZZ
@given(
    path=st.sampled_from(ROUTES),
    method=st.sampled_from(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
    | st.from_regex(r"[A-Z]{3,10}", fullmatch=True),
)
def test_any_method_on_any_route_gets_a_clean_answer(io_loop, http_server, base_url, path, method):
    body = b"{}" if method in ("POST", "PUT", "PATCH") else None
    response = fetch(io_loop, base_url, path, method, body, **{"Content-Type": "application/json"})
    assert response.code < 500, (method, path, response.code, response.body)
    if response.code == 405:
        assert response.headers["Allow"]
    if response.code >= 400 and method != "HEAD":
        assert_json_error(response)


pool_values = st.one_of(
    st.floats(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.lists(st.floats() | st.integers(), max_size=3),
    json_values,
)


@FUZZ
@given(
    venue=st.sampled_from(["raydium", "meteora", "nope"]),
    pair=st.sampled_from(["SOL/USDT", "SOL/USDC", "USDT/USDC", "SOL/SOL", "SOL"]),
    values=st.dictionaries(
        st.sampled_from(
            ["liquidity_usd", "reserves", "price", "fee", "bin_step_bps", "bins_each_side", "bin_liquidity"]
        ),
        pool_values,
        max_size=4,
    ),
)
def test_any_pool_the_admin_api_is_sent_gets_a_clean_answer(
    io_loop, http_server, base_url, venue, pair, values
):
    body = json.dumps({"venue": venue, "pair": pair, **values}).encode()  # NaN/Infinity included
    response = fetch(
        io_loop, base_url, "/api/admin/pools", "POST", body, **{"Content-Type": "application/json"}
    )
    if response.code != 200:
        assert_json_error(response)

"""``Idempotency-Key`` on ``POST /api/orders/execute``: a retried submit never makes a second order.

The same key and body answer with the first order (200, ``Idempotent-Replayed:
true``), another body under the key is a 422, a header that cannot be a key a
400; concurrent duplicates, on one engine or on two sharing Redis, all get the
order exactly one of them admitted. The answer's ``wsUrl`` is checked here too.
"""

from __future__ import annotations

import asyncio
import json
import socket
import uuid

import pytest
import tornado.testing
from redis.exceptions import ConnectionError as RedisConnectionError
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from tornado_engine.config import load_config
from tornado_engine.engine import Engine
from tornado_engine.storage.idempotency import IdempotencyKeys, body_fingerprint
from tornado_engine.testing import EngineClient
from tornado_engine.web.app import make_app
from tornado_engine.web.server import make_server

ORDER = {"fromToken": "SOL", "toToken": "USDC", "amount": 1.5}
WINDOW = 3600


@pytest.fixture
def engine_overrides() -> dict:
    return {"orders": {"idempotency_window_seconds": WINDOW}}


async def post(base_url: str, body: object, key: str | None, **headers: str) -> tuple[int, dict, dict]:
    payload = body if isinstance(body, (bytes, str)) else json.dumps(body)
    if key is not None:
        headers["Idempotency-Key"] = key
    request = HTTPRequest(
        f"{base_url}/api/orders/execute",
        method="POST",
        body=payload,
        headers={"Content-Type": "application/json", **headers},
    )
    response = await AsyncHTTPClient().fetch(request, raise_error=False)
    return response.code, json.loads(response.body), dict(response.headers)


def new_key() -> str:
    return f"test-{uuid.uuid4()}"  # the session's Redis is shared: every test uses its own keys


@pytest.mark.gen_test(timeout=20)
async def test_the_same_key_and_body_return_the_same_order_and_admit_it_once(engine, http_server, base_url):
    key = new_key()
    before = await engine.desk.waiting_count()
    code, first, headers = await post(base_url, ORDER, key)
    assert code == 200, first
    assert "Idempotent-Replayed" not in headers
    reordered = json.dumps(dict(reversed(list(ORDER.items()))), indent=2)  # same JSON, other bytes
    for body in (ORDER, reordered):
        code, again, headers = await post(base_url, body, key)
        assert code == 200, again
        assert again == first
        assert headers["Idempotent-Replayed"] == "true"
    assert await engine.desk.waiting_count() == before + 1


@pytest.mark.gen_test(timeout=20)
async def test_without_a_key_the_same_body_is_two_orders(engine, http_server, base_url):
    before = await engine.desk.waiting_count()
    first = (await post(base_url, ORDER, None))[1]["orderId"]
    second = (await post(base_url, ORDER, None))[1]["orderId"]
    assert first != second
    assert await engine.desk.waiting_count() == before + 2


@pytest.mark.gen_test(timeout=20)
async def test_a_replayed_order_executes_once(engine, http_server, base_url):
    key = new_key()
    client = EngineClient(base_url)
    order_id = (await post(base_url, ORDER, key))[1]["orderId"]
    frames = await client.frames(order_id)
    assert frames[-1]["status"] == "confirmed"
    code, again, _ = await post(base_url, ORDER, key)  # a retry after the order finished
    assert (code, again["orderId"]) == (200, order_id)
    code, state = await client.get_json(f"/api/orders/{order_id}")
    assert [e["status"] for e in state["events"]].count("confirmed") == 1
    assert [e["status"] for e in state["events"]].count("pending") == 1


@pytest.mark.gen_test(timeout=20)
async def test_the_same_key_with_another_body_is_a_422_naming_the_conflict(engine, http_server, base_url):
    key = new_key()
    before = await engine.desk.waiting_count()
    order_id = (await post(base_url, ORDER, key))[1]["orderId"]
    for other in ({**ORDER, "amount": 2}, {**ORDER, "amount": "1.5"}, {**ORDER, "toToken": "BONK"}):
        code, reply, _ = await post(base_url, other, key)
        assert code == 422, reply
        assert reply["field"] == "Idempotency-Key"
        assert "used with a different body" in reply["error"]
        assert order_id in reply["error"]
    assert await engine.desk.waiting_count() == before + 1


@pytest.mark.gen_test(timeout=20)
async def test_an_invalid_body_stores_no_key(engine, http_server, base_url):
    key = new_key()
    code, reply, _ = await post(base_url, {**ORDER, "amount": "lots"}, key)
    assert (code, reply["field"]) == (400, "amount")
    code, reply, _ = await post(base_url, ORDER, key)  # the key is still free for the corrected body
    assert code == 200, reply
    assert "Idempotent-Replayed" not in _


@pytest.mark.gen_test(timeout=30)
async def test_a_submit_that_could_not_be_admitted_frees_its_key_for_the_retry(
    engine, http_server, base_url, monkeypatch
):
    """The waiting store fails once (our code's fault injection; Redis itself stays real)."""
    admit = engine.desk.admit
    calls = []

    async def fails_once(order, caller=None):
        calls.append(order.order_id)
        if len(calls) == 1:
            raise RedisConnectionError("injected: the waiting store is unreachable")
        return await admit(order, caller)

    monkeypatch.setattr(engine.desk, "admit", fails_once)
    key = new_key()
    before = await engine.desk.waiting_count()
    code, reply, _ = await post(base_url, ORDER, key)
    assert code == 503, reply
    code, reply, headers = await post(base_url, ORDER, key)
    assert code == 200, reply
    assert "Idempotent-Replayed" not in headers
    assert reply["orderId"] == calls[1] != calls[0]
    assert await engine.desk.waiting_count() == before + 1


@pytest.mark.gen_test(timeout=30)
async def test_concurrent_duplicates_all_get_the_one_order(engine, http_server, base_url):
    key = new_key()
    before = await engine.desk.waiting_count()
    replies = await asyncio.gather(*(post(base_url, ORDER, key) for _ in range(12)))
    assert {code for code, _, _ in replies} == {200}
    assert len({reply["orderId"] for _, reply, _ in replies}) == 1
    assert sum("Idempotent-Replayed" not in headers for _, _, headers in replies) == 1
    assert await engine.desk.waiting_count() == before + 1


@pytest.fixture
def second_engine(io_loop, redis_server, config_dir):
    """Another API process on the same Redis (orders wait in Redis: either may take the socket)."""
    engine = Engine(load_config(config_dir), redis_url=redis_server.url, role="api")
    io_loop.run_sync(engine.start, timeout=20)
    sock, port = tornado.testing.bind_unused_port()
    server = make_server(make_app(engine), engine.config.server)
    server.add_socket(sock)
    yield f"http://localhost:{port}", engine
    server.stop()
    io_loop.run_sync(server.close_all_connections, timeout=10)
    io_loop.run_sync(lambda: engine.stop(grace_seconds=0.5), timeout=20)


@pytest.mark.gen_test(timeout=30)
async def test_two_engines_sharing_redis_admit_one_order_per_key(
    engine, http_server, base_url, second_engine
):
    other_url, other = second_engine
    assert engine.waiting_store_kind() == other.waiting_store_kind() == "redis"
    key = new_key()
    before = await engine.desk.waiting_count()
    replies = await asyncio.gather(*(post(url, ORDER, key) for url in [base_url, other_url] * 6))
    assert {code for code, _, _ in replies} == {200}
    order_ids = {reply["orderId"] for _, reply, _ in replies}
    assert len(order_ids) == 1
    assert await engine.desk.waiting_count() == before + 1
    frames = await EngineClient(other_url).frames(order_ids.pop())  # watched from the other process
    assert frames[-1]["status"] == "confirmed"


@pytest.mark.gen_test(timeout=20)
async def test_a_key_names_its_order_for_the_configured_window(engine, http_server, base_url):
    key = new_key()
    await post(base_url, ORDER, key)
    ttl = await engine.redis.ttl(engine.keys.idempotency(key))
    assert WINDOW - 60 < ttl <= WINDOW


def raw_post(port: int, key: bytes) -> tuple[int, dict]:
    """A POST whose Idempotency-Key is these exact bytes (an HTTP client would refuse some)."""
    body = json.dumps(ORDER).encode()
    head = (
        b"POST /api/orders/execute HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        b"Connection: close\r\nIdempotency-Key: " + key + b"\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + body)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    status_line, _, rest = reply.partition(b"\r\n")
    return int(status_line.split()[1]), json.loads(rest.partition(b"\r\n\r\n")[2])


@pytest.mark.parametrize(
    "key, says",
    [
        (b"", "must not be empty"),
        (b"a" * 256, "at most 255 characters, got 256"),
        (b"two words", "printable ASCII without spaces"),
        ("clé".encode(), "printable ASCII without spaces"),
        (b"tab\there", "printable ASCII without spaces"),
    ],
)
@pytest.mark.gen_test(timeout=20)
async def test_a_header_that_cannot_be_a_key_is_a_400_saying_why(
    io_loop, engine, http_server, http_port, key, says
):
    before = await engine.desk.waiting_count()
    code, reply = await io_loop.run_in_executor(None, raw_post, http_port, key)
    assert code == 400
    assert reply["field"] == "Idempotency-Key"
    assert says in reply["error"]
    assert await engine.desk.waiting_count() == before


@pytest.mark.gen_test(timeout=20)
async def test_the_longest_key_is_taken(engine, http_server, base_url):
    code, reply, _ = await post(base_url, ORDER, "k" * 255)
    assert code == 200, reply


@pytest.mark.gen_test(timeout=20)
async def test_a_duplicate_waits_while_the_first_request_admits_its_order(engine):
    """A duplicate answers with an order its client can watch: never one still being admitted."""
    keys = IdempotencyKeys(engine.redis, engine.keys, WINDOW)
    key, fingerprint = new_key(), body_fingerprint(ORDER)
    assert await keys.claim(key, fingerprint, "first")
    assert not await keys.claim(key, fingerprint, "second")
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(keys.replay(key, fingerprint), 0.3)
    waiting = asyncio.ensure_future(keys.replay(key, fingerprint))
    await keys.confirm(key, fingerprint, "first")
    assert await waiting == "first"


@pytest.mark.gen_test(timeout=20)
async def test_a_released_claim_frees_the_key(engine):
    """A request that could not admit its order releases the key: a retry makes the order."""
    keys = IdempotencyKeys(engine.redis, engine.keys, WINDOW)
    key, fingerprint = new_key(), body_fingerprint(ORDER)
    assert await keys.claim(key, fingerprint, "first")
    waiting = asyncio.ensure_future(keys.replay(key, fingerprint))
    await keys.release(key, fingerprint, "first")
    assert await waiting is None
    assert await keys.claim(key, fingerprint, "retry")
    await keys.release(key, fingerprint, "first")  # not its claim any more: leaves the retry's alone
    assert not await keys.claim(key, fingerprint, "third")
    await keys.confirm(key, fingerprint, "retry")
    assert await keys.replay(key, fingerprint) == "retry"


@pytest.mark.parametrize("engine_overrides", [{"server": {"allowed_hosts": ["engine.example"]}}])
@pytest.mark.parametrize(
    "headers, url",
    [
        ({}, "ws://localhost:{port}/ws?orderId={id}"),
        ({"Host": "engine.example"}, "ws://engine.example/ws?orderId={id}"),
        ({"Host": "engine.example", "X-Forwarded-Proto": "https"}, "wss://engine.example/ws?orderId={id}"),
    ],
)
@pytest.mark.gen_test(timeout=20)
async def test_the_answer_names_the_socket_to_watch_the_order_on(
    http_server, base_url, http_port, headers, url
):
    """``wsUrl``: the host and scheme the client reached (``wss`` behind a TLS proxy)."""
    code, reply, _ = await post(base_url, ORDER, None, **headers)
    assert code == 200, reply
    assert reply["wsUrl"] == url.format(port=http_port, id=reply["orderId"])

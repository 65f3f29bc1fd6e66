"""API keys and ownership, in one process: 401 and 403, one key's orders hidden from another, the cache.

With ``auth.required`` every API request names a key; an order is visible
(GET, socket, activity) only to the key that submitted it and to admin keys.
"""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from tornado_engine.auth import Caller, KeyProblem, KeyRing, hash_key
from tornado_engine.auth.keyring import CACHE_SIZE
from tornado_engine.config import AuthConfig
from tornado_engine.web.callers import masked_uri
from tornado_engine.web.openapi import document

ORDER = {"fromToken": "SOL", "toToken": "USDC", "amount": 1}


@pytest.fixture
def engine_overrides() -> dict:
    return {"auth": {"required": True, "cache_seconds": 0}, "orders": {"admin_api": True}}


@pytest.fixture
def add_key(engine):
    """``await add_key(name, "trade,read")`` stores a key in the engine's Redis and returns it."""

    async def add(name: str, scopes: str = "trade,read", rate: float | None = None) -> str:
        return await engine.keyring.add(name, tuple(scopes.split(",")), rate)

    return add


async def call(
    base_url: str, path: str, key: str | None = None, method: str = "GET", body: object = None, **headers
) -> tuple[int, dict, dict]:
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    if body is not None:
        headers["Content-Type"] = "application/json"
    request = HTTPRequest(
        f"{base_url}{path}",
        method=method,
        headers=headers,
        body=json.dumps(body) if body is not None else None,
    )
    response = await AsyncHTTPClient().fetch(request, raise_error=False)
    return response.code, json.loads(response.body), dict(response.headers)


async def submit(base_url: str, key: str) -> str:
    code, reply, _ = await call(base_url, "/api/orders/execute", key, "POST", ORDER)
    assert code == 200, reply
    return reply["orderId"]


async def open_socket(
    base_url: str, order_id: str, key: str | None = None, in_query: bool = False
) -> WebSocketClientConnection:
    url = "ws" + base_url[len("http") :] + f"/ws?orderId={order_id}"
    headers = {}
    if key is not None and in_query:
        url += f"&token={key}"
    elif key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return await websocket_connect(HTTPRequest(url, headers=headers))


async def all_frames(conn: WebSocketClientConnection) -> list[dict]:
    frames = []
    while (message := await conn.read_message()) is not None:
        frames.append(json.loads(message))
    return frames


@pytest.mark.gen_test(timeout=20)
async def test_a_request_without_a_key_is_a_401_with_a_bearer_challenge(http_server, base_url):
    code, reply, headers = await call(base_url, "/api/orders/execute", None, "POST", ORDER)
    assert code == 401
    assert "Authorization: Bearer <key>" in reply["error"]
    assert headers["Www-Authenticate"].startswith("Bearer")
    for path in ("/api/orders/x", "/api/activity", "/api/venues", "/api/admin/pools"):
        code, reply, headers = await call(base_url, path)
        assert (code, headers["Www-Authenticate"].split()[0]) == (401, "Bearer"), (path, reply)


@pytest.mark.gen_test(timeout=20)
@pytest.mark.parametrize(
    "authorization, says",
    [
        ("Bearer te_not-a-key", "not valid"),
        ("Basic dXNlcjpwYXNz", "must be 'Bearer <key>'"),
        ("Bearer", "must be 'Bearer <key>'"),
    ],
)
async def test_a_wrong_key_is_a_401_saying_why(http_server, base_url, engine, authorization, says):
    before = await engine.desk.waiting_count()
    code, reply, headers = await call(
        base_url, "/api/orders/execute", None, "POST", ORDER, Authorization=authorization
    )
    assert code == 401 and says in reply["error"], reply
    assert "Bearer" in headers["Www-Authenticate"]
    assert await engine.desk.waiting_count() == before


@pytest.mark.gen_test(timeout=20)
async def test_a_revoked_key_is_refused(http_server, base_url, engine, add_key):
    key = await add_key("soon-gone")
    assert (await call(base_url, "/api/venues", key))[0] == 200
    await engine.keyring.revoke("soon-gone")
    code, reply, headers = await call(base_url, "/api/venues", key)
    assert code == 401 and 'error="invalid_token"' in headers["Www-Authenticate"], reply


@pytest.mark.gen_test(timeout=20)
async def test_a_key_without_the_scope_is_a_403(http_server, base_url, engine, add_key):
    reader, trader = await add_key("reader", "read"), await add_key("trader", "trade")
    code, reply, _ = await call(base_url, "/api/orders/execute", reader, "POST", ORDER)
    assert code == 403 and "'trade' scope" in reply["error"], reply
    for key in (reader, trader):
        code, reply, _ = await call(base_url, "/api/admin/pools", key)
        assert code == 403 and "'admin' scope" in reply["error"], reply
        code, reply, _ = await call(
            base_url, "/api/admin/pools", key, "POST", {"venue": "raydium", "pair": "SOL/BONK"}
        )
        assert code == 403, reply
    code, reply, _ = await call(base_url, "/api/admin/pools", await add_key("root", "admin"))
    assert code == 200 and "pools" in reply, reply


@pytest.mark.gen_test(timeout=20)
async def test_health_metrics_and_the_api_description_need_no_key(http_server, base_url):
    for path in ("/health", "/health/live", "/api/openapi.json"):
        response = await AsyncHTTPClient().fetch(f"{base_url}{path}", raise_error=False)
        assert response.code == 200, path
    response = await AsyncHTTPClient().fetch(f"{base_url}/metrics", raise_error=False)
    assert response.code == 200


@pytest.mark.gen_test(timeout=20)
async def test_a_keys_orders_are_invisible_to_another_key(http_server, base_url, engine, add_key):
    alice, bob, root = await add_key("alice"), await add_key("bob"), await add_key("root", "admin")
    order_id = await submit(base_url, alice)

    code, reply, _ = await call(base_url, f"/api/orders/{order_id}", bob)
    assert code == 404 and reply["field"] == "orderId", reply  # as for an id that does not exist
    conn = await open_socket(base_url, order_id, bob)
    frames = await all_frames(conn)
    assert conn.close_code == 4404 and frames[0]["status"] == "error", frames
    # Bob's socket did not start Alice's order: it is still waiting for her.
    code, reply, _ = await call(base_url, f"/api/orders/{order_id}", alice)
    assert (code, reply["status"]) == (200, "pending"), reply
    code, reply, _ = await call(base_url, f"/api/orders/{order_id}", root)
    assert code == 200, reply

    frames = await all_frames(await open_socket(base_url, order_id, alice))
    assert frames[-1]["status"] == "confirmed", frames
    code, reply, _ = await call(base_url, f"/api/orders/{order_id}", bob)
    assert code == 404, reply  # also once recorded in the store
    code, reply, _ = await call(base_url, f"/api/orders/{order_id}", alice)
    assert (code, reply["status"]) == (200, "confirmed"), reply
    frames = await all_frames(await open_socket(base_url, order_id, bob))
    assert frames[0]["status"] == "error", frames


@pytest.mark.gen_test(timeout=20)
async def test_the_socket_takes_the_key_as_a_token_parameter(http_server, base_url, add_key):
    alice = await add_key("alice")
    order_id = await submit(base_url, alice)
    frames = await all_frames(await open_socket(base_url, order_id, alice, in_query=True))
    assert frames[-1]["status"] == "confirmed", frames


@pytest.mark.gen_test(timeout=20)
async def test_a_socket_without_a_valid_key_is_refused_before_the_upgrade(http_server, base_url, add_key):
    order_id = await submit(base_url, await add_key("alice"))
    for key, in_query in ((None, False), ("te_wrong", True), ("te_wrong", False)):
        with pytest.raises(Exception) as refused:
            await open_socket(base_url, order_id, key, in_query)
        assert getattr(refused.value, "code", None) == 401, refused.value


@pytest.mark.gen_test(timeout=20)
async def test_activity_shows_a_key_its_own_orders(http_server, base_url, add_key):
    alice, bob, root = await add_key("alice"), await add_key("bob"), await add_key("root", "admin")
    mine = {}
    for name, key in (("alice", alice), ("bob", bob)):
        order_id = await submit(base_url, key)
        assert (await all_frames(await open_socket(base_url, order_id, key)))[-1]["status"] == "confirmed"
        mine[name] = order_id

    async def recent(key: str) -> list[str]:
        deadline = asyncio.get_running_loop().time() + 5
        while True:  # the activity log is fed by pub/sub: wait, with a deadline, for both outcomes
            code, body, _ = await call(base_url, "/api/activity", key)
            assert code == 200, body
            seen = [entry["orderId"] for entry in body["recent"]]
            if key != root or len(seen) >= 2 or asyncio.get_running_loop().time() > deadline:
                return seen
            await asyncio.sleep(0.01)

    assert sorted(await recent(root)) == sorted(mine.values())
    assert await recent(alice) == [mine["alice"]]
    assert await recent(bob) == [mine["bob"]]


@pytest.mark.gen_test(timeout=20)
async def test_idempotency_keys_belong_to_their_api_key(http_server, base_url, add_key):
    alice, bob = await add_key("alice"), await add_key("bob")
    path, header = "/api/orders/execute", {"Idempotency-Key": "same-key"}
    code, first, _ = await call(base_url, path, alice, "POST", ORDER, **header)
    assert code == 200, first
    code, second, _ = await call(base_url, path, bob, "POST", ORDER, **header)
    assert code == 200 and second["orderId"] != first["orderId"], second


@pytest.mark.gen_test(timeout=20)
async def test_redis_holds_a_hash_of_each_key_never_the_key(engine, add_key):
    key = await add_key("alice", "trade,read", rate=5)
    found = []
    async for name in engine.redis.scan_iter(match=f"{engine.keys.prefix}:*"):
        kind = await engine.redis.type(name)
        values = await engine.redis.hgetall(name) if kind == "hash" else {}
        found.append(json.dumps([name, values]))
    dump = "\n".join(found)
    assert hash_key(key) in dump and '"alice"' in dump
    assert key not in dump and key[len("te_") :] not in dump
    assert await engine.keyring.authenticate(key) == Caller("alice", frozenset({"trade", "read"}), 5.0)


@pytest.mark.gen_test(timeout=20)
async def test_a_name_is_one_key_and_scopes_and_names_are_checked(engine, add_key):
    await add_key("alice")
    with pytest.raises(KeyProblem, match="exists"):
        await engine.keyring.add("alice", ("read",))
    with pytest.raises(KeyProblem, match="a key name"):
        await engine.keyring.add("no spaces", ("read",))
    with pytest.raises(KeyProblem, match="no key named"):
        await engine.keyring.revoke("nobody")


@pytest.mark.gen_test(timeout=20)
async def test_a_checked_key_is_remembered_for_cache_seconds_at_most(engine, add_key):
    now = [0.0]
    ring = KeyRing(engine.redis, engine.keys, cache_seconds=5, clock=lambda: now[0])
    key = await add_key("alice")
    assert (await ring.authenticate(key)).name == "alice"
    await engine.keyring.revoke("alice")
    now[0] = 4.9
    assert await ring.authenticate(key) is not None  # remembered: revocation is not yet seen here
    now[0] = 5.0
    assert await ring.authenticate(key) is None  # ... and no longer than cache_seconds


@pytest.mark.gen_test(timeout=20)
async def test_the_cache_holds_a_bounded_number_of_keys(engine):
    ring = KeyRing(engine.redis, engine.keys, cache_seconds=60)
    names = [f"k{i}" for i in range(CACHE_SIZE + 5)]
    keys = await asyncio.gather(*(engine.keyring.add(name, ("read",)) for name in names))
    for key in keys:
        assert await ring.authenticate(key) is not None
    assert len(ring._cache) == CACHE_SIZE


def test_the_access_log_masks_a_token_parameter():
    assert masked_uri("/ws?orderId=abc&token=te_secret") == "/ws?orderId=abc&token=***"
    assert masked_uri("/ws?token=te_secret&token=te_other") == "/ws?token=***&token=***"
    assert masked_uri("/ws?orderId=abc") == "/ws?orderId=abc"


@pytest.mark.gen_test(timeout=20)
async def test_no_log_line_holds_the_key(http_server, base_url, add_key, caplog):
    """The access log (Tornado's, unredacted here: no CLI formatter) and the socket's lines."""
    caplog.set_level(logging.DEBUG)
    alice, bob = await add_key("alice"), await add_key("bob")
    order_id = await submit(base_url, alice)
    await all_frames(await open_socket(base_url, order_id, bob, in_query=True))
    await all_frames(await open_socket(base_url, order_id, alice, in_query=True))
    await call(base_url, "/api/venues", "te_wrong-key-here")
    text = caplog.text
    assert "token=***" in text
    for key in (alice, bob, "te_wrong-key-here"):
        assert key not in text


def test_the_api_description_names_the_scope_each_endpoint_needs(app):
    """The OpenAPI document's security says what the handlers check."""
    described = document()["paths"]
    for rule in app.wildcard_router.rules:
        scope = getattr(rule.target, "scope", None)
        path = rule.matcher.regex.pattern.rstrip("$").replace("([^/]+)", "{orderId}")
        if path not in described:
            continue
        for method, operation in described[path].items():
            if method == "head":
                continue
            handler_scope = getattr(rule.target, "method_scopes", {}).get(method.upper(), scope)
            expected = [{}, {"apiKey": [handler_scope]}] if handler_scope else None
            if expected and path == "/ws":
                expected.append({"tokenParameter": [handler_scope]})
            assert operation.get("security") == expected, (path, method)
            if expected:
                assert {"401", "403"} <= set(operation["responses"]), (path, method)


@pytest.mark.gen_test(timeout=20)
async def test_a_reload_of_engine_yaml_does_not_switch_keys_off(http_server, base_url, engine):
    engine.switch_venues(engine.config.replace(auth=AuthConfig()), engine.venues)  # as SIGHUP does
    code, reply, _ = await call(base_url, "/api/venues")
    assert code == 401, reply


@pytest.mark.gen_test(timeout=20)
async def test_an_admin_key_does_not_let_another_site_use_the_admin_api(http_server, base_url, add_key):
    root = await add_key("root", "admin")
    pool = {"venue": "raydium", "pair": "SOL/BONK"}
    code, reply, _ = await call(
        base_url, "/api/admin/pools", root, "POST", pool, Origin="https://evil.example"
    )
    assert code == 403 and "other sites" in reply["error"], reply


@pytest.mark.gen_test(timeout=20)
async def test_cancelling_needs_the_trade_scope(http_server, base_url, add_key):
    """DELETE /api/orders/{id} (cancel) is trading: a read key gets 403 before any handler method."""
    reader = await add_key("reader", "read")
    code, reply, _ = await call(base_url, "/api/orders/some-id", reader, "DELETE")
    assert code == 403 and "'trade' scope" in reply["error"], reply


@pytest.mark.gen_test(timeout=20)
async def test_another_keys_order_cannot_be_cancelled_and_looks_unknown(http_server, base_url, add_key):
    owner, stranger = await add_key("owner"), await add_key("stranger")
    order_id = await submit(base_url, owner)
    code, body, _ = await call(base_url, f"/api/orders/{order_id}", stranger, "DELETE")
    assert code == 404 and body["field"] == "orderId"
    reader = await add_key("reader", "read")
    assert (await call(base_url, f"/api/orders/{order_id}", reader, "DELETE"))[0] == 403
    code, body, _ = await call(base_url, f"/api/orders/{order_id}", owner, "DELETE")
    assert (code, body) == (200, {"orderId": order_id, "status": "cancelled"})


@pytest.mark.gen_test(timeout=20)
async def test_the_order_list_shows_a_key_its_own_orders_and_an_admin_key_all(http_server, base_url, add_key):
    mine, theirs = await add_key("mine"), await add_key("theirs")
    admin = await add_key("boss", "admin")
    my_order, their_order = await submit(base_url, mine), await submit(base_url, theirs)
    _, listed, _ = await call(base_url, "/api/orders", mine)
    assert [o["orderId"] for o in listed["orders"]] == [my_order]
    _, listed, _ = await call(base_url, "/api/orders", admin)
    assert [o["orderId"] for o in listed["orders"]] == [their_order, my_order]
    assert (await call(base_url, "/api/orders"))[0] == 401

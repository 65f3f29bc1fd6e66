"""HTTP and WebSocket edges: every request gets an answer in the contract's shape, or a clean close.

The server here is the one ``tornado-engine serve`` builds (``make_server``,
see conftest.py); clients are raw sockets and the standard library's
keep-alive ``http.client`` where the exact bytes on the wire matter.
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Callable

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.websocket import websocket_connect

ORDER = json.dumps({"fromToken": "SOL", "toToken": "USDC", "amount": 1}).encode()
JSON = {"Content-Type": "application/json"}


async def in_thread(io_loop, blocking: Callable, *args):
    """Run a blocking client in a thread while the server keeps serving on the test's loop."""
    return await io_loop.run_in_executor(None, blocking, *args)


def exchange(port: int, data: bytes, timeout: float = 10) -> bytes:
    """Send raw bytes, read until the server closes; a reset counts as a close."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            return b""
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
    return b"".join(chunks)


def parse(reply: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = reply.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


async def fetch(base_url: str, path: str, method: str = "GET", body: bytes | None = None, **headers):
    request = HTTPRequest(
        base_url + path, method=method, body=body, headers=headers, allow_nonstandard_methods=True
    )
    return await AsyncHTTPClient().fetch(request, raise_error=False)


# --- A refused body closes the connection, and says so ---------------------------------------


def chunked(body: bytes) -> bytes:
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)


def refused_then_next_request(port: int, head: bytes, body: bytes) -> tuple[int, dict[str, str], bytes, int]:
    """A keep-alive client's request that the server refuses before reading its body; then another.

    The request goes out in one write (as aiohttp sends a small one), so the
    server's early answer cannot race the client's last bytes; ``exchange``
    reads until the server closes. The next request, on a new connection as
    ``Connection: close`` asks, must still be served.
    """
    status, headers, reply = parse(exchange(port, head + b"\r\n" + body))
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/health/live")
    second = conn.getresponse()
    second.read()
    conn.close()
    return status, headers, reply, second.status


POST_ORDER = b"POST /api/orders/execute HTTP/1.1\r\nHost: localhost\r\n"
BIG = b"x" * 70_000


@pytest.mark.parametrize(
    "head, body",
    [
        (POST_ORDER + b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(BIG), BIG),
        (POST_ORDER + b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n", chunked(BIG)),
    ],
    ids=["content-length", "chunked"],
)
@pytest.mark.gen_test(timeout=20)
async def test_a_413_says_connection_close_so_a_keep_alive_client_opens_a_new_one(
    io_loop, http_server, http_port, head, body
):
    status, headers, reply, next_status = await in_thread(
        io_loop, refused_then_next_request, http_port, head, body
    )
    assert status == 413 and "larger than 65536 bytes" in json.loads(reply)["error"]
    assert headers["connection"] == "close"
    assert next_status == 200


@pytest.mark.gen_test(timeout=20)
async def test_a_body_refused_before_it_was_read_closes_the_connection_and_says_so(
    io_loop, http_server, http_port
):
    head = POST_ORDER + b"Transfer-Encoding: chunked\r\n"  # no Content-Type: refused on the head alone
    status, headers, reply, next_status = await in_thread(
        io_loop, refused_then_next_request, http_port, head, chunked(ORDER)
    )
    assert status == 415 and "Content-Type" in json.loads(reply)["error"]
    assert headers["connection"] == "close"
    assert next_status == 200


# --- Request heads: size and time ----------------------------------------------------------


@pytest.mark.gen_test(timeout=20)
async def test_an_oversized_header_gets_431_json_and_a_close(io_loop, http_server, http_port):
    request = b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n"
    status, headers, body = parse(await in_thread(io_loop, exchange, http_port, request))
    assert status == 431
    assert headers["connection"] == "close" and headers["content-type"].startswith("application/json")
    assert "larger than 65536 bytes" in json.loads(body)["error"]


@pytest.mark.gen_test(timeout=20)
async def test_an_oversized_url_gets_431(io_loop, http_server, http_port):
    request = b"GET /ws?orderId=" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n"
    status, _, body = parse(await in_thread(io_loop, exchange, http_port, request))
    assert status == 431 and json.loads(body)["error"]


@pytest.mark.gen_test(timeout=20)
async def test_a_head_beyond_four_times_the_limit_is_closed_not_held(io_loop, http_server, http_port):
    request = b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * 300_000 + b"\r\n\r\n"
    reply = await in_thread(io_loop, exchange, http_port, request)
    assert reply == b""  # Tornado stops reading: there is no request to answer, only a connection to drop


@pytest.mark.gen_test(timeout=20)
async def test_a_declared_body_over_the_limit_gets_413_on_every_endpoint(io_loop, http_server, http_port):
    request = b"POST /api/admin/pools HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
    request += b"Content-Length: 1000000\r\n\r\n{}"
    status, headers, body = parse(await in_thread(io_loop, exchange, http_port, request))
    assert status == 413 and headers["connection"] == "close"
    assert json.loads(body) == {"error": "the body is larger than 65536 bytes"}


@pytest.fixture
def engine_overrides(request) -> dict:
    """Short timeouts and the admin API; a test's indirect parameter adds ``server:`` keys."""
    extra = getattr(request, "param", {})
    return {
        "server": {"header_timeout_seconds": 0.3, "body_timeout_seconds": 0.3, **extra.get("server", {})},
        "orders": {"admin_api": True},
    }


def held_open(port: int, partial: bytes, count: int) -> list[bytes]:
    """Open ``count`` connections that each send ``partial`` and nothing more; what each got back."""
    sockets = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(count)]
    try:
        for sock in sockets:
            sock.sendall(partial)
        return [
            sock.recv(65536) for sock in sockets
        ]  # b"" once the server closes; times out if it never does
    finally:
        for sock in sockets:
            sock.close()


@pytest.mark.gen_test(timeout=30)
async def test_connections_that_never_finish_their_head_are_closed(io_loop, http_server, http_port):
    replies = await in_thread(
        io_loop, held_open, http_port, b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Slow: ", 50
    )
    assert replies == [b""] * 50


@pytest.mark.gen_test(timeout=30)
async def test_a_body_that_never_arrives_is_closed(io_loop, http_server, http_port):
    partial = b"POST /api/orders/execute HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
    partial += b"Content-Length: 100\r\n\r\n{"
    assert await in_thread(io_loop, held_open, http_port, partial, 5) == [b""] * 5


@pytest.mark.gen_test(timeout=30)
async def test_an_idle_keep_alive_connection_is_closed(io_loop, http_server, http_port):
    request = b"GET /health/live HTTP/1.1\r\nHost: localhost\r\n\r\n"

    def idle_after_one_request(port: int) -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(request)
            reply = b""
            while b'"live"' not in reply:
                reply += sock.recv(65536)
            return sock.recv(65536)  # nothing more comes; the server closes the idle connection

    assert await in_thread(io_loop, idle_after_one_request, http_port) == b""


# --- Headers every response carries --------------------------------------------------------


@pytest.mark.parametrize(
    "path, method",
    [
        ("/health/live", "GET"),
        ("/nope", "GET"),
        ("/health", "DELETE"),
        ("/", "GET"),
        ("/static/app.js", "GET"),
        ("/static/nope.js", "GET"),
        ("/metrics", "GET"),
        ("/ws?orderId=x", "GET"),
        ("/api/orders/execute", "POST"),
    ],
)
@pytest.mark.gen_test(timeout=20)
async def test_every_response_says_nosniff_and_does_not_name_the_server(http_server, base_url, path, method):
    response = await fetch(base_url, path, method, b"{}" if method == "POST" else None, **JSON)
    assert response.headers.get("X-Content-Type-Options") == "nosniff"
    assert "Server" not in response.headers


@pytest.mark.gen_test(timeout=20)
async def test_the_websocket_upgrade_does_not_name_the_server_either(http_server, base_url, client):
    conn = await websocket_connect(f"{client.ws_url}/ws?orderId=nope")
    assert "Server" not in conn.headers and conn.headers["X-Content-Type-Options"] == "nosniff"
    conn.close()


@pytest.mark.parametrize(
    "path, method, allow",
    [
        ("/api/orders/execute", "GET", "POST"),
        ("/api/orders/execute", "HEAD", "POST"),
        ("/health", "POST", "GET, HEAD"),
        ("/health/live", "OPTIONS", "GET, HEAD"),
        ("/metrics", "FOO", "GET, HEAD"),
        ("/ws", "POST", "GET"),
        ("/static/app.js", "DELETE", "GET, HEAD"),
        ("/api/admin/pools", "PUT", "GET, HEAD, POST"),
    ],
)
@pytest.mark.gen_test(timeout=20)
async def test_a_405_lists_the_allowed_methods_and_answers_json(http_server, base_url, path, method, allow):
    response = await fetch(base_url, path, method, b"" if method in ("POST", "PUT") else None)
    assert response.code == 405
    assert response.headers["Allow"] == allow
    if method != "HEAD":
        assert json.loads(response.body) == {"error": f"{method} is not allowed on {path}"}


@pytest.mark.parametrize("path", ["/health", "/health/live", "/api/venues", "/metrics", "/api/openapi.json"])
@pytest.mark.gen_test(timeout=20)
async def test_head_answers_like_get_without_a_body(http_server, base_url, path):
    get = await fetch(base_url, path)
    head = await fetch(base_url, path, "HEAD")
    assert head.code == get.code == 200
    assert head.body == b"" and head.headers["Content-Type"] == get.headers["Content-Type"]


# --- Paths and arguments that are not text -------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/static/app.js%00.html", "/static/%00", "/static/a%0Ab.js", "/static/%2e%2e/x"]
)
@pytest.mark.gen_test(timeout=20)
async def test_a_page_file_path_that_cannot_be_a_file_is_a_json_404(http_server, base_url, path):
    response = await fetch(base_url, path)
    assert response.code == 404
    assert json.loads(response.body)["error"].startswith("no such file")


@pytest.mark.gen_test(timeout=20)
async def test_a_missing_page_file_is_a_json_404(http_server, base_url):
    response = await fetch(base_url, "/static/nope.js")
    assert response.code == 404 and json.loads(response.body)["error"]


@pytest.mark.gen_test(timeout=20)
async def test_an_order_id_that_is_not_utf8_is_a_400_saying_so(http_server, base_url):
    response = await fetch(base_url, "/api/orders/%ff%fe")
    assert response.code == 400
    assert json.loads(response.body) == {
        "error": "the URL path is not valid UTF-8 (percent-escapes must encode UTF-8)"
    }


# --- The WebSocket handshake --------------------------------------------------------------


async def ws_frames(url: str) -> tuple[list[dict], int | None]:
    conn = await websocket_connect(url)
    frames = []
    while (message := await conn.read_message()) is not None:
        frames.append(json.loads(message))
    return frames, conn.close_code


@pytest.mark.parametrize("query", ["orderId=%ff%fe", "orderId=abc&lastSeq=%c3%28", "orderId=%80"])
@pytest.mark.gen_test(timeout=20)
async def test_a_websocket_query_that_is_not_utf8_gets_an_error_frame_and_4400(http_server, client, query):
    frames, code = await ws_frames(f"{client.ws_url}/ws?{query}")
    assert code == 4400
    assert frames == [
        {
            "orderId": None,
            "status": "error",
            "error": "orderId and lastSeq must be UTF-8 text",
            "ts": frames[0]["ts"],
        }
    ]


WS_HEADERS = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
}


@pytest.mark.parametrize(
    "change, status, message",
    [
        ({"Upgrade": None}, 400, "/ws speaks WebSocket only"),
        ({"Connection": "keep-alive"}, 400, '"Connection: Upgrade"'),
        ({"Sec-WebSocket-Version": "12"}, 426, "unsupported Sec-WebSocket-Version"),
        ({"Sec-WebSocket-Key": None}, 400, "lacks Sec-WebSocket-Key"),
    ],
)
@pytest.mark.gen_test(timeout=20)
async def test_a_bad_websocket_handshake_gets_a_json_error(http_server, base_url, change, status, message):
    headers = {k: v for k, v in {**WS_HEADERS, **change}.items() if v is not None}
    response = await fetch(base_url, "/ws?orderId=x", **headers)
    assert response.code == status
    assert response.headers["Content-Type"].startswith("application/json")
    assert message in json.loads(response.body)["error"]
    if status == 426:
        assert response.headers["Sec-WebSocket-Version"] == "7, 8, 13"


RESTRICTED = {"server": {"allowed_origins": ["https://desk.example"]}}


@pytest.mark.parametrize("engine_overrides", [RESTRICTED], ids=["restricted"], indirect=True)
@pytest.mark.parametrize(
    "origin", ["http://[::1", "https://evil.example", "null", "https://desk.example.evil.example"]
)
@pytest.mark.gen_test(timeout=20)
async def test_with_allowed_origins_set_another_origin_may_not_open_a_socket(
    engine, http_server, base_url, origin
):
    response = await fetch(base_url, "/ws?orderId=x", **{**WS_HEADERS, "Origin": origin})
    assert response.code == 403
    assert response.headers["Content-Type"].startswith("application/json")
    assert "may not open /ws" in json.loads(response.body)["error"]


@pytest.mark.parametrize("engine_overrides", [RESTRICTED], ids=["restricted"], indirect=True)
@pytest.mark.gen_test(timeout=20)
async def test_with_allowed_origins_set_a_listed_origin_opens_a_socket(engine, http_server, client):
    headers = {"Origin": "https://desk.example", "Sec-Fetch-Site": "cross-site"}
    conn = await websocket_connect(HTTPRequest(f"{client.ws_url}/ws?orderId=nope", headers=headers))
    assert json.loads(await conn.read_message())["status"] == "error"  # upgraded: the unknown order's frame
    conn.close()


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://tool.example"},
        {"Origin": "null"},
        {"Origin": "https://tool.example", "Sec-Fetch-Site": "cross-site"},
    ],
)
@pytest.mark.gen_test(timeout=20)
async def test_by_default_a_browser_tool_on_another_origin_watches_an_order(http_server, client, headers):
    """The original service's clients watch orders from tools served elsewhere; order ids are unguessable."""
    order_id = await client.submit()
    conn = await websocket_connect(HTTPRequest(f"{client.ws_url}/ws?orderId={order_id}", headers=headers))
    frame = json.loads(await conn.read_message())
    assert (frame["orderId"], frame["status"]) == (order_id, "pending")
    conn.close()


# --- /api/admin/pools -------------------------------------------------------------------------


BINS = {"venue": "meteora", "pair": "SOL/USDT", "bin_step_bps": 25, "bins_each_side": 3}


@pytest.mark.parametrize(
    "pool",
    [
        {"venue": "raydium", "pair": "SOL/USDT", "liquidity_usd": 1e300},
        {"venue": "raydium", "pair": "SOL/USDT", "liquidity_usd": 1000, "price": 1e300},
        {**BINS, "bin_liquidity": [1e300, 1]},
        {**BINS, "liquidity_usd": 1000, "price": 1e-300},  # so small the bin maths sees 0: not positive
    ],
)
@pytest.mark.gen_test(timeout=20)
async def test_pool_values_out_of_range_are_a_400_naming_the_venue_and_pair(http_server, base_url, pool):
    response = await fetch(base_url, "/api/admin/pools", "POST", json.dumps(pool).encode(), **JSON)
    assert response.code == 400, response.body
    assert json.loads(response.body)["error"].startswith(f"venue {pool['venue']} cannot open SOL/USDT")


POOL = json.dumps({"venue": "raydium", "pair": "SOL/USDT", "liquidity_usd": 1000}).encode()


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "text/json"])
@pytest.mark.gen_test(timeout=20)
async def test_the_admin_api_takes_only_json(http_server, base_url, content_type):
    response = await fetch(base_url, "/api/admin/pools", "POST", POOL, **{"Content-Type": content_type})
    assert response.code == 415
    assert json.loads(response.body) == {"error": "Content-Type must be application/json"}


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site", "Origin": "https://other.localhost"},
    ],
)
@pytest.mark.gen_test(timeout=20)
async def test_the_admin_api_refuses_other_sites(http_server, base_url, headers):
    before = (await fetch(base_url, "/api/admin/pools")).body
    response = await fetch(base_url, "/api/admin/pools", "POST", POOL, **JSON, **headers)
    assert response.code == 403
    assert "the admin API refuses requests from other" in json.loads(response.body)["error"]
    assert (await fetch(base_url, "/api/admin/pools")).body == before  # nothing was changed


@pytest.mark.parametrize(
    "headers", [{}, {"Sec-Fetch-Site": "same-origin"}, {"Sec-Fetch-Site": "none"}, {"Origin": "same"}]
)
@pytest.mark.gen_test(timeout=20)
async def test_the_admin_api_serves_its_own_page_and_tools(http_server, base_url, http_port, headers):
    if headers.get("Origin") == "same":
        headers = {"Origin": f"http://localhost:{http_port}"}
    response = await fetch(base_url, "/api/admin/pools", "POST", POOL, **JSON, **headers)
    assert response.code == 200, response.body


@pytest.mark.parametrize(
    "headers",
    [{"Origin": "own"}, {"Origin": "own", "Sec-Fetch-Site": "same-origin"}, {"Sec-Fetch-Site": "none"}, {}],
)
@pytest.mark.gen_test(timeout=20)
async def test_the_engines_own_pages_and_non_browsers_open_sockets(http_server, client, http_port, headers):
    headers = {k: (f"http://localhost:{http_port}" if v == "own" else v) for k, v in headers.items()}
    conn = await websocket_connect(HTTPRequest(f"{client.ws_url}/ws?orderId=nope", headers=headers))
    assert json.loads(await conn.read_message())["status"] == "error"  # upgraded: the unknown order's frame
    conn.close()


def upload_then_read(port: int, size: int) -> tuple[bytes, str | None]:
    """Send a request with a ``size``-byte body in one go, then read the answer (or how it failed)."""
    head = "POST /api/orders/execute HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
    head += f"Content-Length: {size}"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            sock.sendall(head.encode() + b"\r\n\r\n" + b"x" * size)
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        except OSError as exc:
            return b"", type(exc).__name__
    return reply, None


@pytest.mark.gen_test(timeout=20)
async def test_a_refused_upload_still_reads_its_answer(io_loop, http_server, http_port):
    """The server drains what the client is still sending before it closes: closing with unread input
    sends a reset, and the client would see "connection reset" instead of the 413."""
    reply, error = await in_thread(io_loop, upload_then_read, http_port, 200_000)
    assert error is None
    assert parse(reply)[0] == 413


def test_tornado_engine_serve_uses_these_limits(make_config, engine_process):
    engine = engine_process(make_config(engine={"server": {"max_header_bytes": 2048}}))
    request = b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * 4000 + b"\r\n\r\n"
    status, headers, _ = parse(exchange(engine.port, request))
    assert status == 431 and "server" not in headers

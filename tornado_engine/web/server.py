"""The HTTP server: time and size limits on every connection, checked before any handler runs.

Tornado's defaults hold a connection that never finishes its request head for
an hour and close one whose head is too large without a word. Here a request
head must arrive within ``server.header_timeout_seconds`` (also how long an
idle keep-alive connection stays open) and a body within
``server.body_timeout_seconds``. A head larger than ``server.max_header_bytes``
gets ``431`` and a declared body larger than ``server.max_body_bytes`` gets
``413``, both as our JSON error, with ``Connection: close``, before any
handler sees the request. So does a ``Host`` this server does not answer to
(``421``; see :mod:`tornado_engine.web.hosts`).

Beyond four times those sizes Tornado itself stops reading: a head that large
is dropped without an answer (it never finishes, so there is no request to
answer), and a chunked body that large, on an endpoint that does not stream
its body, gets Tornado's bare 400.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from typing import Any

import tornado.gen
import tornado.httpserver
import tornado.httputil
import tornado.iostream
import tornado.web

from tornado_engine.config import ServerConfig
from tornado_engine.orders.frames import dumps
from tornado_engine.web.hosts import AllowedHosts

HARD_LIMIT_FACTOR = 4  # Tornado's own limits, well past ours, so ours answer first
LINGER_SECONDS = 2.0  # how long a refused client may go on sending before we close


def make_server(
    app: tornado.web.Application, settings: ServerConfig, ssl_context: ssl.SSLContext | None = None
) -> tornado.httpserver.HTTPServer:
    """An HTTPServer for ``app`` with ``settings``' limits and timeouts; X-Real-Ip is trusted (a proxy's).

    With ``ssl_context`` it speaks HTTPS and WSS only (``serve --certfile --keyfile``).
    """
    return tornado.httpserver.HTTPServer(
        RequestGate(app, settings),
        ssl_options=ssl_context,
        xheaders=True,
        idle_connection_timeout=settings.header_timeout_seconds,
        body_timeout=settings.body_timeout_seconds,
        max_header_size=HARD_LIMIT_FACTOR * settings.max_header_bytes,
        max_body_size=HARD_LIMIT_FACTOR * settings.max_body_bytes,
    )


def head_size(start_line: tornado.httputil.RequestStartLine, headers: tornado.httputil.HTTPHeaders) -> int:
    """Bytes of the request head as sent (Tornado decodes it as latin-1: one character, one byte)."""
    size = len(start_line.method) + len(start_line.path) + len(start_line.version) + 4
    return size + sum(len(name) + len(value) + 4 for name, value in headers.get_all()) + 2


class RequestGate(tornado.httputil.HTTPServerConnectionDelegate):
    """Refuses an oversized request head or declared body; hands every other request to ``app``."""

    def __init__(self, app: tornado.web.Application, settings: ServerConfig) -> None:
        self.app = app
        self.settings = settings
        self.hosts = AllowedHosts(settings.allowed_hosts)
        self._lingering: set[asyncio.Task] = set()

    def start_request(
        self, server_conn: object, request_conn: tornado.httputil.HTTPConnection
    ) -> tornado.httputil.HTTPMessageDelegate:
        return _GatedRequest(self, server_conn, request_conn)

    def on_close(self, server_conn: object) -> None:
        self.app.on_close(server_conn)

    def refusal(
        self, start_line: tornado.httputil.RequestStartLine, headers: tornado.httputil.HTTPHeaders
    ) -> tuple[int, str] | None:
        """(status, sentence) when the request must not reach the application."""
        limit = self.settings.max_header_bytes
        if head_size(start_line, headers) > limit:
            return 431, f"the request head (URL and headers) is larger than {limit} bytes"
        length = headers.get("Content-Length", "").strip()
        if length.isdigit() and int(length) > self.settings.max_body_bytes:
            return 413, f"the body is larger than {self.settings.max_body_bytes} bytes"
        host = headers.get("Host")
        if not self.hosts.allows(host):
            return 421, (
                f"this server does not answer to Host {host!r}: "
                "add the name to server.allowed_hosts in engine.yaml if clients use it"
            )
        return None

    def refuse(self, request_conn: Any, status: int, message: str) -> None:
        """Answer on the raw connection and close it; Tornado reads nothing more of this request."""
        stream = request_conn.detach()
        task = asyncio.get_running_loop().create_task(self._answer_and_close(stream, status, message))
        self._lingering.add(task)
        task.add_done_callback(self._lingering.discard)

    async def _answer_and_close(self, stream: tornado.iostream.IOStream, status: int, message: str) -> None:
        """Send the answer, then read and drop what the client is still sending before closing.

        Closing a socket with unread input makes the kernel send a reset, which can
        destroy the answer before the client has read it (a large upload would then
        see "connection reset" instead of our 413).
        """
        try:
            await stream.write(raw_response(status, message))
            stream.socket.shutdown(socket.SHUT_WR)
            deadline = asyncio.get_running_loop().time() + LINGER_SECONDS
            budget = HARD_LIMIT_FACTOR * self.settings.max_body_bytes
            while budget > 0:
                chunk = await tornado.gen.with_timeout(
                    deadline,
                    stream.read_bytes(65536, partial=True),
                    quiet_exceptions=tornado.iostream.StreamClosedError,
                )
                budget -= len(chunk)
        except (tornado.iostream.StreamClosedError, tornado.gen.TimeoutError, OSError):
            pass
        finally:
            stream.close()


class _GatedRequest(tornado.httputil.HTTPMessageDelegate):
    """One request: checked at its head, then passed through to the application, or refused."""

    def __init__(self, gate: RequestGate, server_conn: object, request_conn: Any) -> None:
        self.gate = gate
        self.server_conn = server_conn
        self.request_conn = request_conn
        self.delegate: tornado.httputil.HTTPMessageDelegate | None = None

    def headers_received(self, start_line: Any, headers: tornado.httputil.HTTPHeaders) -> Any:
        refusal = self.gate.refusal(start_line, headers)
        if refusal is not None:
            self.gate.refuse(self.request_conn, *refusal)
            return None
        self.delegate = self.gate.app.start_request(self.server_conn, self.request_conn)
        return self.delegate.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Any:
        return self.delegate.data_received(chunk) if self.delegate is not None else None

    def finish(self) -> None:
        if self.delegate is not None:
            self.delegate.finish()

    def on_connection_close(self) -> None:
        if self.delegate is not None:
            self.delegate.on_connection_close()


def raw_response(status: int, message: str) -> bytes:
    """A complete HTTP/1.1 response carrying our JSON error, for a connection we are closing."""
    body = dumps({"error": message}).encode()
    reason = tornado.httputil.responses.get(status, "Error")
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Content-Type: application/json; charset=UTF-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Cache-Control: no-store\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body

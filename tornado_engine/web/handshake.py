"""The checks a WebSocket handshake must pass, made before Tornado's so refusals speak our JSON.

Tornado refuses a bad handshake with a bare sentence (``Can "Upgrade" only
to "WebSocket".``) or an empty body, and a malformed ``Origin`` made its
origin check raise (a 500). The same checks, in the same order, run here
first and answer ``{"error": ...}`` with the same status codes.
"""

from __future__ import annotations

from collections.abc import Callable

import tornado.httputil
import tornado.web

from tornado_engine.web.base import ApiError
from tornado_engine.web.origins import cross_site_refusal

SUPPORTED_VERSIONS = ("7", "8", "13")  # what Tornado's WebSocket implementation speaks


def refuse_bad_handshake(
    request: tornado.httputil.HTTPServerRequest, check_origin: Callable[[str], bool]
) -> None:
    """Raise ApiError (400, 403 or 426) for a request that cannot become a WebSocket (405 if not a GET)."""
    if request.method != "GET":
        raise tornado.web.HTTPError(405)
    headers = request.headers
    if headers.get("Upgrade", "").strip().lower() != "websocket":
        raise ApiError(400, "/ws speaks WebSocket only: connect with a WebSocket client (Upgrade: websocket)")
    if "upgrade" not in {token.strip().lower() for token in headers.get("Connection", "").split(",")}:
        raise ApiError(400, 'a WebSocket handshake needs "Connection: Upgrade"')
    refusal = cross_site_refusal(headers, check_origin)
    if refusal is not None:
        raise ApiError(
            403,
            f"this page may not open /ws ({refusal}): only this server's own pages and "
            "server.allowed_origins may",
        )
    if headers.get("Sec-WebSocket-Version") not in SUPPORTED_VERSIONS:
        raise ApiError(
            426,
            "unsupported Sec-WebSocket-Version; this server speaks 13",
            headers={"Sec-WebSocket-Version": ", ".join(SUPPORTED_VERSIONS)},
        )
    if not headers.get("Sec-WebSocket-Key", "").strip():
        raise ApiError(400, "the WebSocket handshake lacks Sec-WebSocket-Key")

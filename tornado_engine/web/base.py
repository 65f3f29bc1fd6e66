"""What every endpoint shares: the error shape, the headers, the 404.

Every error leaves as ``{"error": "...", "field": "..."}`` with a 4xx or 503
status; internals go to the log, never into a response. Every response,
page files and the WebSocket handshake included, says ``nosniff`` and does
not name the server software (:class:`EngineHeaders`).
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import tornado.httputil
import tornado.web

from tornado_engine.auth import Caller
from tornado_engine.engine import Engine
from tornado_engine.orders.frames import dumps
from tornado_engine.web.callers import identify, masked_uri
from tornado_engine.web.errors import ApiError

__all__ = ["ApiError", "EngineHeaders", "JsonErrors", "JsonHandler", "NotFoundHandler"]

JSON_TYPE = "application/json; charset=UTF-8"
_INVALID_UNICODE = re.compile(r"Invalid unicode in (\w+)")
METHODS = ("GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS")


class EngineHeaders(tornado.web.RequestHandler):
    """Headers on every response: no MIME sniffing, and no ``Server: TornadoServer/<version>``."""

    def set_default_headers(self) -> None:
        self.clear_header("Server")
        self.set_header("X-Content-Type-Options", "nosniff")

    def _request_summary(self) -> str:
        """The access log's request: a WebSocket's ``?token=`` (an API key) written ``***``."""
        return f"{self.request.method} {masked_uri(self.request.uri or '')} ({self.request.remote_ip})"


def allowed_methods(handler: tornado.web.RequestHandler) -> list[str]:
    """What ``Allow`` lists: the methods the handler's class implements."""
    base = tornado.web.RequestHandler
    return [
        method
        for method in METHODS
        if method in handler.SUPPORTED_METHODS
        and getattr(type(handler), method.lower()) is not getattr(base, method.lower())
    ]


def error_body(
    handler: tornado.web.RequestHandler, status_code: int, exc: BaseException | None
) -> dict[str, Any]:
    """The JSON error for ``status_code``: the ApiError's sentence, else one for Tornado's own refusals."""
    request = handler.request
    if isinstance(exc, ApiError):
        body: dict[str, Any] = {"error": exc.message}
        if exc.field:
            body["field"] = exc.field
        return body
    if status_code == 404:
        return {"error": f"no such endpoint: {request.method} {request.path}"}
    if status_code == 405:  # the methods that are allowed are in the Allow header
        return {"error": f"{request.method} is not allowed on {request.path}"}
    if status_code == 400 and isinstance(exc, tornado.web.HTTPError) and exc.log_message:
        # Tornado decodes the path and query arguments as UTF-8; its message repeats the raw bytes.
        undecodable = _INVALID_UNICODE.match(exc.log_message)
        if undecodable:
            where = "the URL path" if undecodable.group(1) == "url" else undecodable.group(1)
            return {"error": f"{where} is not valid UTF-8 (percent-escapes must encode UTF-8)"}
        # Tornado's own refusals of the request (a form body it cannot parse...) say what is wrong.
        return {"error": f"bad request: {exc.log_message % exc.args if exc.args else exc.log_message}"}
    if status_code < 500:
        return {"error": tornado.httputil.responses.get(status_code, "bad request")}
    return {"error": "internal error; the server log has the details"}


class JsonErrors(EngineHeaders):
    """Errors in the JSON shape, whatever the handler serves when all goes well.

    A handler that answers before the whole request body has arrived (a
    streamed body it refuses) sets ``body_pending``: its error then says
    ``Connection: close``, because Tornado closes that connection rather than
    read the rest, and a keep-alive client must not send its next request on it.
    """

    body_pending = False

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        self.set_header("Content-Type", JSON_TYPE)
        self.set_header("Cache-Control", "no-store")
        if status_code == 405:
            self.set_header("Allow", ", ".join(allowed_methods(self)))
        if self.body_pending:
            self.set_header("Connection", "close")
        if isinstance(exc, ApiError):
            for name, value in exc.headers.items():
                self.set_header(name, value)
        self.finish(dumps(error_body(self, status_code, exc)))


class JsonHandler(JsonErrors):
    """An endpoint answering JSON; with keys on, only to a key with its ``scope``.

    ``scope`` None leaves the endpoint open (health, metrics, the OpenAPI
    document); ``method_scopes`` overrides it for some methods (a DELETE that
    needs ``trade`` where GET needs ``read``). ``prepare`` (or, where a handler
    has its own, :meth:`authorize`) sets ``caller``; the desk takes it for
    every operation on an order, and the rate limits its ``name`` and ``rate``.
    """

    scope: str | None = None
    method_scopes: ClassVar[dict[str, str]] = {}
    caller: Caller | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "get" in vars(cls) and "head" not in vars(cls):
            cls.head = cls.get  # HEAD: GET's headers, Tornado drops the body

    def initialize(self, engine: Engine) -> None:
        self.engine = engine

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Content-Type", JSON_TYPE)
        self.set_header("Cache-Control", "no-store")

    def required_scope(self) -> str | None:
        """The scope this request needs: ``method_scopes``' for its method, else ``scope``."""
        return self.method_scopes.get(self.request.method or "", self.scope)

    async def prepare(self) -> None:
        await self.authorize()

    async def authorize(self) -> None:
        """Set ``caller`` from the request's key; 401/403 when keys are on and it falls short."""
        scope = self.required_scope()
        if scope is not None:
            self.caller = await identify(self.engine.keyring, self.engine.keys_required, self.request, scope)

    def write_json(self, value: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(dumps(value))


class NotFoundHandler(JsonHandler):
    async def prepare(self) -> None:
        raise tornado.web.HTTPError(404)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        # Tornado answers a method it does not know with 405 before prepare() runs; here there is no
        # endpoint to allow anything on, so it is a 404 like any other method.
        self.set_status(404)
        super().write_error(404, **kwargs)

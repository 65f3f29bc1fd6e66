"""What every JSON endpoint shares: the error shape, the headers, the 404.

Every error leaves as ``{"error": "...", "field": "..."}`` with a 4xx or 503
status; internals go to the log, never into a response.
"""

from __future__ import annotations

from typing import Any

import tornado.web

from tornado_engine.engine import Engine
from tornado_engine.orders.frames import dumps


class ApiError(tornado.web.HTTPError):
    """An error the client caused or must hear about, with a sentence for them."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(status, log_message=message.replace("%", "%%"))
        self.message = message
        self.field = field


class JsonHandler(tornado.web.RequestHandler):
    def initialize(self, engine: Engine) -> None:
        self.engine = engine

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")

    def write_json(self, value: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(dumps(value))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        body: dict[str, Any]
        if isinstance(exc, ApiError):
            body = {"error": exc.message}
            if exc.field:
                body["field"] = exc.field
        elif status_code == 404:
            body = {"error": f"no such endpoint: {self.request.method} {self.request.path}"}
        elif status_code == 405:
            body = {"error": f"{self.request.method} is not allowed on {self.request.path}"}
        elif status_code < 500:
            body = {"error": self._reason or "bad request"}
        else:
            body = {"error": "internal error; the server log has the details"}
        self.finish(dumps(body))


class NotFoundHandler(JsonHandler):
    def prepare(self) -> None:
        raise tornado.web.HTTPError(404)

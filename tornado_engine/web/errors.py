"""The error a handler raises for the client to hear: a status and a sentence (web.base renders it)."""

from __future__ import annotations

import tornado.web


class ApiError(tornado.web.HTTPError):
    """An error the client caused or must hear about, with a sentence for them."""

    def __init__(
        self, status: int, message: str, field: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(status, log_message=message.replace("%", "%%"))
        self.message = message
        self.field = field
        self.headers = headers or {}  # sent with the error (e.g. what a 426 supports)

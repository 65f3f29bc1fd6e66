"""Logging set-up for the command line: plain lines (default) or JSON lines.

JSON lines are for log shippers: one object per line with ``ts``, ``level``,
``logger``, ``message``, ``orderId`` when the line is about an order, and
``exc`` with the traceback when there is one. The engine writes
``orderId=<id>`` into every message about an order, so the field is taken
from there (or from ``extra={"orderId": ...}``).

Both formats keep secrets out (:class:`Redactor`): a URL's password
(``redis://:***@host``) and the value of every secret environment variable
(see :mod:`tornado_engine.config.env`) are written ``***``. Plain lines also
keep clients out of the log's structure: control characters in a message
(a newline in an orderId a client sent) are escaped (``\\n``), and the lines
of a traceback are indented, so every line that starts at column 0 is a
record the engine wrote.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import datetime, timezone

LOG_FORMATS = ("plain", "json")
REDACTED = "***"
PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
PLAIN_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"
TRACEBACK_INDENT = "    "
_ORDER_ID = re.compile(r"orderId=([^\s,;&)]+)")
# scheme://user:PASSWORD@ (userinfo cannot hold "/"; the last "@" before the host ends it)
_URL_PASSWORD = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^:@/\s]*:)[^/\s]*@")
# ?password=... up to the next parameter, space, or ", " (as in "Redis <url>, asyncio event loop")
_QUERY_PASSWORD = re.compile(r"([?&](?:password|passwd|pass|secret|token)=)(?:(?!, )[^&#\s])+", re.IGNORECASE)
# C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape_controls(text: str) -> str:
    """``text`` on one line: every control character written as an escape (``\\n``, ``\\x1b``)."""

    def escape(match: re.Match) -> str:
        char = match.group(0)
        code = ord(char)
        return _ESCAPES.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")

    return _CONTROL.sub(escape, text)


class Redactor:
    """Writes ``***`` for URL passwords and for the given secret values, wherever they appear."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret that contains another is replaced whole.
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        if "://" in text:
            text = _URL_PASSWORD.sub(rf"\g<1>{REDACTED}@", text)
        if "=" in text:
            text = _QUERY_PASSWORD.sub(rf"\g<1>{REDACTED}", text)
        return text


class PlainFormatter(logging.Formatter):
    """``<time> <LEVEL> <logger>: <message>``, one line per record, tracebacks indented below it."""

    def __init__(self, redact: Redactor | None = None) -> None:
        super().__init__(PLAIN_FORMAT, PLAIN_DATE_FORMAT)
        self.redact = redact or Redactor()

    def format(self, record: logging.LogRecord) -> str:
        message = escape_controls(self.redact(record.getMessage()))
        bare = {"msg": message, "args": None, "exc_info": None, "exc_text": None, "stack_info": None}
        line = super().format(logging.makeLogRecord({**record.__dict__, **bare}))
        details = []
        if record.exc_info:
            details.append(self.formatException(record.exc_info))
        elif record.exc_text:
            details.append(record.exc_text)
        if record.stack_info:
            details.append(self.formatStack(record.stack_info))
        for block in details:
            for detail in block.splitlines():
                line += "\n" + TRACEBACK_INDENT + escape_controls(self.redact(detail))
        return line


class JsonFormatter(logging.Formatter):
    def __init__(self, redact: Redactor | None = None) -> None:
        super().__init__()
        self.redact = redact or Redactor()

    def format(self, record: logging.LogRecord) -> str:
        message = self.redact(record.getMessage())
        entry = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": message,
        }
        order_id = getattr(record, "orderId", None)
        if order_id is None:
            match = _ORDER_ID.search(message)
            order_id = match.group(1) if match else None
        if order_id is not None:
            entry["orderId"] = str(order_id)
        if record.exc_info:
            entry["exc"] = self.redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


LIFECYCLE = "tornado_engine.lifecycle"


def configure_logging(level: str, fmt: str = "plain", secrets: Iterable[str] = ()) -> None:
    """Log to stderr in ``fmt``; ``secrets`` (besides URL passwords) are written ``***``."""
    redact = Redactor(secrets)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(redact) if fmt == "json" else PlainFormatter(redact))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Tornado logs every request at INFO; keep access lines, they are useful for ops.
    logging.getLogger("tornado.access").setLevel(level)
    # Start and stop lines (the port we listen on, the event loop) show at every level.
    logging.getLogger(LIFECYCLE).setLevel(min(logging.INFO, logging.getLevelName(level)))

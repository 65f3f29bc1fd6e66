"""Logging set-up for the command line: plain lines (default) or JSON lines.

JSON lines are for log shippers: one object per line with ``ts``, ``level``,
``logger``, ``message``, ``orderId`` when the line is about an order, and
``exc`` with the traceback when there is one. The engine writes
``orderId=<id>`` into every message about an order, so the field is taken
from there (or from ``extra={"orderId": ...}``).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import datetime, timezone

LOG_FORMATS = ("plain", "json")
_ORDER_ID = re.compile(r"orderId=([^\s,;&)]+)")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
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
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


LIFECYCLE = "tornado_engine.lifecycle"


def configure_logging(level: str, fmt: str = "plain") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Tornado logs every request at INFO; keep access lines, they are useful for ops.
    logging.getLogger("tornado.access").setLevel(level)
    # Start and stop lines (the port we listen on, the event loop) show at every level.
    logging.getLogger(LIFECYCLE).setLevel(min(logging.INFO, logging.getLevelName(level)))

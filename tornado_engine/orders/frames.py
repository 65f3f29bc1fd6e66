"""Frames: the JSON objects a client receives, and their encoding."""

from __future__ import annotations

import datetime
import json
from typing import Any

try:  # orjson is optional: ~10x faster on small dicts, same output shape.
    import orjson

    def dumps(value: Any) -> str:
        return orjson.dumps(value).decode()

except ImportError:  # pragma: no cover - depends on the environment

    def dumps(value: Any) -> str:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def utc_now_iso() -> str:
    """ISO 8601 UTC with milliseconds, as JavaScript's ``toISOString`` gives."""
    now = datetime.datetime.now(datetime.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def order_frame(order_id: str, status: str, seq: int, **fields: Any) -> dict[str, Any]:
    """An order event: every frame carries orderId, status, seq and ts."""
    return {"orderId": order_id, "status": str(status), "seq": seq, "ts": utc_now_iso(), **fields}


def error_frame(order_id: str | None, message: str) -> dict[str, Any]:
    """Not an order event (no seq): the socket itself could not be served."""
    return {"orderId": order_id, "status": "error", "error": message, "ts": utc_now_iso()}

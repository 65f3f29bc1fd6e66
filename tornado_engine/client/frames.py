"""One frame of an order's stream, typed: the fields every frame has, and the rest kept as sent."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

TERMINAL_STATUSES = frozenset({"confirmed", "failed", "expired", "cancelled"})


@dataclass(frozen=True)
class Frame:
    """``fields`` holds every field as the engine sent it, known or not (a newer engine adds some)."""

    order_id: str
    status: str
    seq: int | None  # None on an error frame (the socket itself could not be served)
    ts: str
    fields: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def error(self) -> str | None:
        value = self.fields.get("error")
        return str(value) if value is not None else None

    @classmethod
    def from_json(cls, text: str) -> Frame:
        data = json.loads(text)
        return cls(
            str(data.get("orderId")), str(data["status"]), data.get("seq"), str(data.get("ts", "")), data
        )

    def describe(self) -> str:
        """One line for a person: what this frame says happened."""
        f = self.fields
        status = self.status
        if status == "routing":
            detail = f"best {f.get('bestDex')} at {f.get('bestPrice')}; route {f.get('routeType')}"
        elif status in ("building", "submitted"):
            detail = f"on {f.get('dex')} (attempt {f.get('attempt')})"
        elif status == "confirmed":
            detail = f"tx {f.get('txHash')} at {f.get('executionPrice')}, out {f.get('amountOut')}"
        elif status == "waiting":
            detail = f"price {f.get('currentPrice')} (expires {f.get('expiresAt')})"
        elif status == "retrying":
            detail = (
                f"attempt {f.get('attempt')} failed: {f.get('error')}; next in {f.get('nextAttemptInMs')} ms"
            )
        else:
            detail = str(f.get("error") or f.get("message") or "")
        seq = "-" if self.seq is None else str(self.seq)
        return f"{seq:>3} {status:<10} {detail}".rstrip()

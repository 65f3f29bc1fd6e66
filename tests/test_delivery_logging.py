"""Ops must answer "why didn't I get an update?" from the log alone.

Every frame sent is logged with orderId and status; every update no socket
could take is a WARNING naming orderId and status ("undelivered").
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import pytest

from tornado_engine import Quote, QuoteRequest, SwapRequest, SwapResult, Venue, VenueSettings, hookimpl
from tornado_engine.orders.statuses import TERMINAL_VALUES

TOKENS = {"SOL": {"reference_price": 150}, "USDC": {"reference_price": 1}}


class GatedVenue(Venue):
    """Quotes at once; its swap waits until the test opens the gate."""

    def __init__(self, settings: VenueSettings, gate: asyncio.Event) -> None:
        self.name = settings.name
        self.tokens = settings.tokens
        self.gate = gate
        self.swapping = asyncio.Event()

    async def quote(self, request: QuoteRequest) -> Quote:
        return Quote(self.name, 140.0, 0.003, request.amount * 140.0 * 0.997)

    async def build(self, request: SwapRequest) -> None:
        return None

    async def swap(self, request: SwapRequest) -> SwapResult:
        self.swapping.set()
        await self.gate.wait()
        return SwapResult("tx" + request.idempotency_key, request.quote.price, request.quote.amount_out)

    async def status(self, idempotency_key: str) -> SwapResult | None:
        return None


class GatedPlugin:
    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.venues: dict[str, GatedVenue] = {}

    @hookimpl
    def register_venues(self, register: Any) -> None:
        def make(settings: VenueSettings) -> GatedVenue:
            venue = self.venues[settings.name] = GatedVenue(settings, self.gate)
            return venue

        register("test-gated", make)


@pytest.fixture
def plugin() -> GatedPlugin:
    return GatedPlugin()


@pytest.fixture
def extra_plugins(plugin) -> list:
    return [plugin]


@pytest.fixture
def venues_config() -> dict:
    return {"tokens": TOKENS, "venues": {"slow": {"plugin": "test-gated"}}}


@pytest.fixture
def logs(caplog) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="tornado_engine")
    return caplog


async def eventually(condition, what: str, timeout: float = 5.0) -> None:
    """Wait for ``condition()`` to hold, checking often; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def sent(caplog, order_id: str) -> list[tuple[str, int]]:
    """(status, seq) of every frame logged as sent to a socket of ``order_id``."""
    out = []
    for record in caplog.records:
        message = record.getMessage()
        if record.levelno == logging.INFO and message.startswith(f"ws -> orderId={order_id} "):
            fields = dict(part.split("=", 1) for part in message.split()[2:])
            out.append((fields["status"], int(fields["seq"]) if fields["seq"] != "None" else None))
    return out


def undelivered(caplog, order_id: str) -> list[str]:
    """Statuses of the updates logged as undelivered for ``order_id``."""
    out = []
    for record in caplog.records:
        message = record.getMessage()
        if message.startswith(f"undelivered update orderId={order_id} "):
            assert record.levelno == logging.WARNING, message
            out.append(message.split("status=", 1)[1].split()[0])
    return out


async def read_until(conn, status: str) -> list[dict]:
    frames = []
    while True:
        message = await conn.read_message()
        assert message is not None, f"socket closed before {status!r}: {frames}"
        frames.append(json.loads(message))
        if frames[-1]["status"] == status:
            return frames


# -- frames that reach the client ------------------------------------------------------------------


@pytest.mark.gen_test(timeout=15)
async def test_every_outbound_frame_is_logged_with_order_id_and_status(client, plugin, logs):
    plugin.gate.set()
    order_id = await client.submit()
    frames = await client.frames(order_id)
    assert frames[-1]["status"] == "confirmed"
    assert sent(logs, order_id) == [(f["status"], f["seq"]) for f in frames]
    assert undelivered(logs, order_id) == []


@pytest.mark.gen_test(timeout=15)
async def test_replayed_history_is_logged_like_live_frames(client, plugin, logs):
    plugin.gate.set()
    order_id = await client.submit()
    live = await client.frames(order_id)
    logs.clear()
    replay = await client.frames(order_id)
    assert replay == live
    assert sent(logs, order_id) == [(f["status"], f["seq"]) for f in live]


@pytest.mark.gen_test(timeout=15)
async def test_refused_socket_is_logged_with_order_id_and_error_status(client, logs):
    order_id = "00000000-0000-4000-8000-000000000000"
    await client.frames(order_id)
    assert sent(logs, order_id) == [("error", None)]


# -- frames that do not ----------------------------------------------------------------------------


@pytest.mark.gen_test(timeout=15)
async def test_updates_after_the_client_disconnects_are_logged_as_undelivered_warnings(
    client, engine, connections, plugin, logs
):
    order_id = await client.submit()
    conn = await client.connect(f"orderId={order_id}")
    await read_until(conn, "routing")
    await plugin.venues["slow"].swapping.wait()
    conn.close()
    await eventually(lambda: order_id not in connections.sockets, "the server to see the close")
    assert any(
        r.levelno == logging.WARNING and f"client of orderId={order_id} disconnected" in r.getMessage()
        for r in logs.records
    )

    plugin.gate.set()
    await eventually(lambda: "confirmed" in undelivered(logs, order_id), "the undelivered warning")
    assert (await engine.store.state(order_id))["status"] == "confirmed"
    # Each recorded event was either sent to the socket or logged as undelivered.
    history = [(e.status, e.seq) for e in await engine.store.history(order_id)]
    delivered = sent(logs, order_id)
    missed = undelivered(logs, order_id)
    assert [s for s, _ in history] == [s for s, _ in delivered] + missed
    assert delivered == history[: len(delivered)]


@pytest.mark.gen_test(timeout=15)
async def test_order_still_reaches_a_terminal_status_when_its_client_is_gone(
    client, engine, connections, plugin
):
    order_id = await client.submit()
    conn = await client.connect(f"orderId={order_id}")
    await read_until(conn, "pending")
    conn.close()
    await eventually(lambda: order_id not in connections.sockets, "the server to see the close")
    plugin.gate.set()
    deadline = time.monotonic() + 5
    while (state := await engine.store.state(order_id))["status"] not in TERMINAL_VALUES:
        assert time.monotonic() < deadline, state
        await asyncio.sleep(0.01)
    assert state["status"] == "confirmed"


@pytest.mark.gen_test(timeout=15)
async def test_nothing_is_undelivered_while_another_socket_of_the_order_is_open(
    client, engine, connections, plugin, logs
):
    order_id = await client.submit()
    leaving = await client.connect(f"orderId={order_id}")
    staying = await client.connect(f"orderId={order_id}")
    await read_until(leaving, "routing")
    leaving.close()
    await eventually(lambda: len(connections.sockets.get(order_id, ())) == 1, "the server to see one close")
    plugin.gate.set()
    frames = await read_until(staying, "confirmed")
    assert frames[-1]["status"] == "confirmed"
    assert undelivered(logs, order_id) == []


@pytest.mark.gen_test(timeout=15)
async def test_client_that_reconnects_gets_what_it_missed_and_nothing_more_is_undelivered(
    client, engine, connections, plugin, logs
):
    order_id = await client.submit()
    conn = await client.connect(f"orderId={order_id}")
    seen = await read_until(conn, "routing")
    await plugin.venues["slow"].swapping.wait()
    conn.close()
    await eventually(lambda: order_id not in connections.sockets, "the server to see the close")

    back = await client.connect(f"orderId={order_id}&lastSeq={seen[-1]['seq']}")
    plugin.gate.set()
    rest = await read_until(back, "confirmed")
    assert [f["seq"] for f in seen + rest] == list(range(1, len(seen) + len(rest) + 1))
    assert undelivered(logs, order_id) == []

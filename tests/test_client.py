"""The client library (``tornado_engine.client``) and the ``submit`` / ``watch`` commands on it,
against a real engine: every call of the contract, a reconnect that misses nothing, exit statuses."""

from __future__ import annotations

import asyncio
import json
import sys

import pytest

from tornado_engine.client import EngineClient, EngineError, Frame


@pytest.fixture
def engine_client(http_server, base_url) -> EngineClient:
    return EngineClient(base_url)


@pytest.mark.gen_test(timeout=30)
async def test_submit_then_watch_gets_every_frame_to_confirmed(engine_client):
    submitted = await engine_client.submit("SOL", "USDC", "0.5", idempotency_key="client-test-1")
    assert submitted.ws_url.endswith(f"/ws?orderId={submitted.order_id}") and not submitted.replayed
    frames = [frame async for frame in engine_client.watch(submitted.order_id)]
    assert [f.status for f in frames] == ["pending", "routing", "building", "submitted", "confirmed"]
    assert [f.seq for f in frames] == [1, 2, 3, 4, 5] and frames[-1].terminal
    again = await engine_client.submit("SOL", "USDC", "0.5", idempotency_key="client-test-1")
    assert (again.order_id, again.replayed) == (submitted.order_id, True)
    assert (await engine_client.order(submitted.order_id))["status"] == "confirmed"


class CountingClient(EngineClient):
    connects = 0

    async def _connect(self, order_id: str, last_seq: int):
        self.connects += 1
        self.last_seqs_asked = [*getattr(self, "last_seqs_asked", []), last_seq]
        return await super()._connect(order_id, last_seq)


@pytest.mark.parametrize("engine_overrides", [{"simulation": {"latency_scale": 1}}])  # venues take time
@pytest.mark.gen_test(timeout=30)
async def test_a_dropped_socket_is_reopened_with_last_seq_and_nothing_is_missed_or_repeated(
    http_server, base_url, connections
):
    client = CountingClient(base_url)
    order_id = (await client.submit("SOL", "USDC", 1)).order_id
    frames: list[Frame] = []
    async for frame in client.watch(order_id):
        frames.append(frame)
        if len(frames) == 1:  # the server goes away after the first frame, mid-order
            connections.close_all(1001, "going away")
    assert [f.seq for f in frames] == [1, 2, 3, 4, 5]
    assert client.connects >= 2 and client.last_seqs_asked[1] == 1


@pytest.mark.gen_test(timeout=30)
async def test_quote_list_and_cancel_speak_the_contract(engine_client):
    quote = await engine_client.quote("SOL", "USDC", 1, slippage_bps=100)
    assert quote["routePlan"] and int(quote["minAmountOut"]) < int(quote["outAmount"])
    order_id = (await engine_client.submit("SOL", "USDC", 1)).order_id
    orders, cursor = await engine_client.list_orders(status="pending")
    assert [o["orderId"] for o in orders] == [order_id] and cursor is None
    assert await engine_client.cancel(order_id) == "cancelled"
    frames = [frame async for frame in engine_client.watch(order_id)]
    assert [f.status for f in frames] == ["cancelled"]


@pytest.mark.gen_test(timeout=15)
async def test_a_refusal_raises_with_the_engines_message_and_field(engine_client):
    with pytest.raises(EngineError) as refused:
        await engine_client.submit("SOL", "USDC", "lots")
    assert refused.value.status == 400 and refused.value.field == "amount"
    with pytest.raises(EngineError) as unknown:
        [frame async for frame in engine_client.watch("no-such-order")]
    assert unknown.value.status == 404
    with pytest.raises(EngineError) as gone:
        await EngineClient("http://127.0.0.1:9", timeout_s=2).order("x")
    assert gone.value.status == 0 and "did not answer" in gone.value.message


async def run_cli(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tornado_engine.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    return process.returncode or 0, out.decode(), err.decode()


@pytest.mark.gen_test(timeout=60)
async def test_the_submit_command_prints_each_frame_and_exits_0_when_confirmed(http_server, base_url):
    code, out, err = await run_cli("submit", "SOL", "USDC", "1", "--url", base_url)
    assert code == 0, err
    lines = out.splitlines()
    assert [line.split()[1] for line in lines] == ["pending", "routing", "building", "submitted", "confirmed"]
    assert "Starting execution" in lines[0] and " tx " in lines[-1]
    order_id = err.split()[1]
    code, out, _ = await run_cli("watch", order_id, "--url", base_url, "--json", "--last-seq", "3")
    assert code == 0 and [json.loads(line)["seq"] for line in out.splitlines()] == [4, 5]


@pytest.mark.gen_test(timeout=60)
async def test_the_commands_exit_statuses_say_how_the_order_ended(http_server, base_url, engine_client):
    order_id = (await engine_client.submit("SOL", "USDC", 1)).order_id
    await engine_client.cancel(order_id)
    assert (await run_cli("watch", order_id, "--url", base_url))[0] == 4
    code, _, err = await run_cli("submit", "SOL", "USDC", "lots", "--url", base_url)
    assert code == 5 and "HTTP 400" in err and "(amount)" in err
    code, _, err = await run_cli("watch", "x", "--url", "http://127.0.0.1:9")
    assert (code == 5 and "could not reconnect" in err) or "did not answer" in err

"""Plugins that misbehave (an author's mistakes, not malice): the engine names the culprit and carries on.

A venue that blocks the IOLoop, one that swallows its cancellation, two
distributions claiming one plugin name, hooks the engine would never call, a
venue removed by reload mid-order: each is answered, logged, counted, and the
other venues keep filling orders.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from typing import Any

import pytest
import yaml
from tornado.httpclient import AsyncHTTPClient

from tornado_engine import Quote, QuoteRequest, SwapRequest, SwapResult, Venue, VenueSettings, hookimpl
from tornado_engine.config import EngineConfig, WorkerConfig
from tornado_engine.execution.executor import Emitter, OrderExecutor
from tornado_engine.orders.order import Order
from tornado_engine.orders.statuses import Status
from tornado_engine.testing import EngineClient, venue_settings
from tornado_engine.venues.host import PluginHost
from tornado_engine.venues.reload import reload_venues
from tornado_engine.venues.watchdog import LoopWatchdog

from .test_failures import finished, statuses
from .test_venues_report import VENUES, run_cli

TOKENS = {"SOL": {"reference_price": 150}, "USDC": {"reference_price": 1}}
PLUGIN = "faulty-venues"


class StubVenue(Venue):
    """Quotes ``price``, answers after one real loop turn, swaps at the quote, with a ledger."""

    price = 140.0

    def __init__(self, settings: VenueSettings) -> None:
        self.name = settings.name
        self.tokens = settings.tokens
        self.swaps: list[str] = []  # every swap executed: not idempotent, so a double swap shows
        self.release = asyncio.Event()  # ends whatever a misbehaving call is stuck in

    async def quote(self, request: QuoteRequest) -> Quote:
        await asyncio.sleep(0.01)  # in flight while another venue holds the loop
        return Quote(self.name, self.price, 0.003, request.amount * self.price * 0.997)

    async def build(self, request: SwapRequest) -> None:
        return None

    async def swap(self, request: SwapRequest) -> SwapResult:
        self.swaps.append(request.idempotency_key)
        return SwapResult("tx-" + request.idempotency_key, request.quote.price, request.quote.amount_out)

    async def status(self, idempotency_key: str) -> SwapResult | None:
        return None

    async def swallow_cancellation(self) -> None:
        """Wait for ``release``, ignoring every cancellation meanwhile (the plugin bug)."""
        while not self.release.is_set():
            with contextlib.suppress(asyncio.CancelledError):  # the bug under test
                await self.release.wait()


class BlocksTheLoop(StubVenue):
    """The best price, but its quote calls time.sleep in an async method."""

    price = 160.0

    async def quote(self, request: QuoteRequest) -> Quote:
        time.sleep(0.3)  # the fault under test: a blocking call, not a wait
        return Quote(self.name, self.price, 0.003, request.amount * self.price * 0.997)


class SwallowsQuoteCancellation(StubVenue):
    price = 160.0

    async def quote(self, request: QuoteRequest) -> Quote:
        await self.swallow_cancellation()
        return Quote(self.name, self.price, 0.003, request.amount * self.price * 0.997)


class SwallowsSwapCancellation(StubVenue):
    price = 160.0

    def __init__(self, settings: VenueSettings) -> None:
        super().__init__(settings)
        self.swap_started = asyncio.Event()

    async def swap(self, request: SwapRequest) -> SwapResult:
        self.swap_started.set()
        await self.swallow_cancellation()
        return await super().swap(request)


class SlowBuild(StubVenue):
    """The best price; its build waits until the test lets it finish."""

    price = 160.0

    def __init__(self, settings: VenueSettings) -> None:
        super().__init__(settings)
        self.building = asyncio.Event()

    async def build(self, request: SwapRequest) -> None:
        self.building.set()
        await self.release.wait()


KINDS = {
    "test-stub": StubVenue,
    "test-blocks-the-loop": BlocksTheLoop,
    "test-swallows-quote-cancellation": SwallowsQuoteCancellation,
    "test-swallows-swap-cancellation": SwallowsSwapCancellation,
    "test-slow-build": SlowBuild,
}


class FaultyVenues:
    """A plugin registered like any other; remembers the venues it made."""

    __name__ = PLUGIN

    def __init__(self) -> None:
        self.venues: dict[str, StubVenue] = {}

    @hookimpl
    def register_venues(self, register: Any) -> None:
        for kind, cls in KINDS.items():
            register(kind, self._factory(cls))

    def _factory(self, cls: type[StubVenue]):
        def make(settings: VenueSettings) -> StubVenue:
            venue = self.venues[settings.name] = cls(settings)
            return venue

        return make


@pytest.fixture
def plugin() -> FaultyVenues:
    return FaultyVenues()


@pytest.fixture
def extra_plugins(plugin) -> list:
    return [plugin]


@pytest.fixture
def venues_config(request) -> dict | None:
    return getattr(request, "param", None)


@pytest.fixture
def engine_overrides(request) -> dict:
    return getattr(request, "param", {})


@pytest.fixture
def client(engine, http_server, base_url) -> EngineClient:
    return EngineClient(base_url)


@pytest.fixture
def release(plugin):
    """At the end of a test, let every stuck plugin call finish (the loop closes cleanly)."""
    yield
    for venue in plugin.venues.values():
        venue.release.set()


def venues_yaml(**venues: str) -> dict:
    return {"tokens": TOKENS, "venues": {name: {"plugin": kind} for name, kind in venues.items()}}


def with_venues(**venues: str):
    return pytest.mark.parametrize("venues_config", [venues_yaml(**venues)], ids=["venues"], indirect=True)


def with_engine(**worker: Any):
    return pytest.mark.parametrize("engine_overrides", [{"worker": worker}], ids=["worker"], indirect=True)


def sample(engine, name: str, **labels: str) -> float:
    return engine.metrics.registry.get_sample_value(name, labels) or 0.0


# -- a venue that blocks the IOLoop ----------------------------------------------------------------


@pytest.mark.gen_test(timeout=15)
@with_venues(blocker="test-blocks-the-loop", good="test-stub")
@with_engine(quote_timeout_ms=200, loop_stall_threshold_ms=100)
async def test_a_venue_blocking_the_loop_is_named_counted_and_cannot_win(client, engine, caplog):
    frames = await finished(client, await client.submit())
    assert statuses(frames) == ["pending", "routing", "building", "submitted", "confirmed"]
    routing = frames[1]
    assert routing["bestDex"] == "good"
    blocker = next(q for q in routing["quotes"] if q["dex"] == "blocker")
    assert blocker["error"].startswith("held the event loop for ")
    assert blocker["error"].endswith(
        " ms in quote (a blocking call in an async method?); its answer was discarded"
    )
    assert f"venue blocker (plugin {PLUGIN}) held the IOLoop for " in caplog.text
    assert sample(engine, "tornado_engine_loop_stalls_total", venue="blocker", plugin=PLUGIN) >= 1


@pytest.mark.gen_test(timeout=15)
@with_venues(healthy="test-stub", sleeper="test-blocks-the-loop")
@with_engine(quote_timeout_ms=200, loop_stall_threshold_ms=100)
async def test_a_venue_starved_by_a_blocking_one_is_not_blamed(client, engine):
    """``healthy`` is asked first (venues.yaml order); its quote is due after 10 ms, but ``sleeper``
    holds the loop for 300 ms meanwhile, past the 200 ms timeout: the loop was late, not the venue."""
    frames = await finished(client, await client.submit())
    healthy = next(q for q in frames[1]["quotes"] if q["dex"] == "healthy")
    assert "error" not in healthy
    assert frames[-1]["dex"] == "healthy"
    assert sample(engine, "tornado_engine_venue_quote_errors_total", venue="healthy") == 0
    assert sample(engine, "tornado_engine_venue_quote_errors_total", venue="sleeper") == 1
    assert sample(engine, "tornado_engine_loop_stalls_total", venue="healthy", plugin=PLUGIN) == 0


@pytest.mark.gen_test(timeout=15)
async def test_the_watchdog_names_a_stall_outside_any_venue_call(caplog):
    stalled = asyncio.Event()
    seen: list[tuple[str | None, str | None]] = []

    def on_stall(venue: str | None, plugin: str | None, seconds: float) -> None:
        seen.append((venue, plugin))
        stalled.set()

    watchdog = LoopWatchdog(0.05, on_stall=on_stall)
    watchdog.start()
    try:
        await asyncio.sleep(0)  # the heartbeat is armed
        time.sleep(0.2)  # the fault under test: the loop held outside any venue call
        await asyncio.wait_for(stalled.wait(), 5)
    finally:
        await watchdog.stop()
    assert seen == [(None, None)]
    assert "the IOLoop was held for " in caplog.text
    assert "by code outside any venue call" in caplog.text


# -- a venue call that ignores cancellation ----------------------------------------------------------


@pytest.mark.gen_test(timeout=15)
@with_venues(deaf="test-swallows-quote-cancellation", good="test-stub")
@with_engine(quote_timeout_ms=100)
async def test_a_quote_swallowing_cancellation_is_abandoned_and_the_order_fills_elsewhere(
    client, engine, caplog, release
):
    frames = await finished(client, await client.submit())
    assert statuses(frames) == ["pending", "routing", "building", "submitted", "confirmed"]
    assert {"dex": "deaf", "error": "no quote within 100 ms"} in frames[1]["quotes"]
    assert frames[-1]["dex"] == "good"
    assert f"venue deaf (plugin {PLUGIN}) ignored the cancellation of quote" in caplog.text
    assert sample(
        engine, "tornado_engine_venue_calls_abandoned_total", venue="deaf", plugin=PLUGIN, stage="quote"
    )


@pytest.mark.gen_test(timeout=15)
@with_venues(deaf="test-swallows-swap-cancellation")
async def test_shutdown_finishes_although_a_swap_swallows_cancellation(
    client, engine, plugin, caplog, release
):
    order_id = await client.submit()
    socket = await client.connect(f"orderId={order_id}")
    await asyncio.wait_for(plugin.venues["deaf"].swap_started.wait(), 10)
    await asyncio.wait_for(engine.worker.stop(grace_seconds=0.05), 10)  # a hang fails here
    socket.close()
    assert engine.worker.in_flight == 0
    assert f"orderId={order_id}: worker stopping; the order will be taken over" in caplog.text


# -- a venue removed by reload before the swap was sent -----------------------------------------------


@pytest.mark.gen_test(timeout=15)
@with_venues(doomed="test-slow-build", good="test-stub")
async def test_a_venue_removed_while_building_reroutes_the_order_over_the_others(
    client, engine, plugin, config_dir, release
):
    order_id = await client.submit()
    watching = asyncio.ensure_future(client.frames(order_id))
    doomed = plugin.venues["doomed"]
    await asyncio.wait_for(doomed.building.wait(), 10)
    (config_dir / "venues.yaml").write_text(yaml.safe_dump(venues_yaml(good="test-stub")))
    assert reload_venues(engine, config_dir).removed == ("doomed",)
    doomed.release.set()
    frames = await asyncio.wait_for(watching, 10)
    assert statuses(frames) == [
        "pending",
        "routing",
        "building",
        "routing",
        "building",
        "submitted",
        "confirmed",
    ]
    assert frames[1]["bestDex"] == "doomed" and frames[3]["bestDex"] == "good"
    assert frames[-1]["dex"] == "good"
    assert doomed.swaps == [] and len(plugin.venues["good"].swaps) == 1


# -- /health and /metrics show plugin and venue states -----------------------------------------------


class MisspeltHook:
    __name__ = "misspelt-hook"

    @hookimpl
    def register_venue(self, register):
        register("never-registered", StubVenue)


@pytest.mark.gen_test(timeout=15)
@pytest.mark.parametrize(
    "venues_config",
    [{"tokens": TOKENS, "venues": {"good": {"plugin": "test-stub"}, "lost": {"plugin": "never-registered"}}}],
    ids=["venues"],
    indirect=True,
)
@pytest.mark.parametrize("extra_plugins", [[FaultyVenues(), MisspeltHook()]], ids=["plugins"])
async def test_health_and_metrics_show_plugin_and_venue_states_and_the_last_reload(
    client, engine, config_dir, base_url
):
    code, body = await client.get_json("/health")
    assert code == 200
    misspelt = next(p for p in body["plugins"] if p["name"] == "misspelt-hook")
    assert misspelt["state"] == "failed"
    assert "'register_venue', which is not a tornado_engine hook" in misspelt["errors"][0]
    lost = next(v for v in body["venueStates"] if v["name"] == "lost")
    assert (
        lost["state"] == "unavailable" and "no installed plugin provides 'never-registered'" in lost["error"]
    )
    assert {"name": "good", "plugin": PLUGIN, "state": "running", "error": None} in body["venueStates"]
    assert body["lastReload"] is None

    (config_dir / "venues.yaml").write_text("venues: [not, a, mapping]\n")
    assert not reload_venues(engine, config_dir).ok
    code, body = await client.get_json("/health")
    assert body["lastReload"]["ok"] is False and "venues.yaml" in body["lastReload"]["error"]

    metrics = (await AsyncHTTPClient().fetch(f"{base_url}/metrics")).body.decode()
    assert 'tornado_engine_plugin_state{plugin="misspelt-hook",state="failed"} 1.0' in metrics
    assert 'tornado_engine_venue_state{plugin="",state="unavailable",venue="lost"} 1.0' in metrics
    assert f'tornado_engine_venue_state{{plugin="{PLUGIN}",state="running",venue="good"}} 1.0' in metrics
    assert "tornado_engine_last_reload_ok 0.0" in metrics


# -- discovery refuses ambiguity ----------------------------------------------------------------------


def install(site, dist: str, entry_point: str, module: str, body: str) -> None:
    """An installed distribution ``dist`` with the ``tornado_engine`` entry point ``entry_point = module``."""
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[tornado_engine]\n{entry_point} = {module}\n")
    (site / f"{module}.py").write_text(body)


GOOD_PLUGIN = "from tornado_engine import hookimpl\n@hookimpl\ndef register_venues(register):\n    pass\n"


def test_two_distributions_with_one_entry_point_name_are_both_refused(tmp_path, monkeypatch, caplog):
    site = tmp_path / "site"
    install(site, "te-orca-one", "orca", "te_orca_one", GOOD_PLUGIN)
    install(site, "te-orca-two", "orca", "te_orca_two", GOOD_PLUGIN)
    monkeypatch.syspath_prepend(str(site))
    status = PluginHost().plugins["orca"]
    assert status.state == "failed"
    assert status.errors == [
        "entry point 'orca' is installed by te-orca-one 1.0 (te_orca_one) and by te-orca-two 1.0 "
        "(te_orca_two); neither is loaded: uninstall one, or rename one's entry point"
    ]
    assert "te-orca-one 1.0 (te_orca_one) and by te-orca-two 1.0 (te_orca_two)" in caplog.text


def test_check_config_reports_a_refused_plugin(tmp_path):
    site = tmp_path / "site"
    install(site, "te-orca-one", "orca", "te_orca_one", GOOD_PLUGIN)
    install(site, "te-orca-two", "orca", "te_orca_two", GOOD_PLUGIN)
    config = tmp_path / "config"
    config.mkdir()
    (config / "venues.yaml").write_text(
        yaml.safe_dump({**VENUES, "venues": {"r": {"plugin": "mock-raydium"}}})
    )
    result = run_cli(site, "check-config", str(config))
    assert result.returncode == 1
    assert "plugin failed: orca: entry point 'orca' is installed by te-orca-one 1.0" in result.stderr


class UnmarkedHook:
    __name__ = "unmarked-hook"

    def register_venues(self, register):
        register("never-registered", StubVenue)


class UnmarkedMisspeltHook:
    __name__ = "unmarked-misspelt-hook"

    def register_venue(self, register):
        register("never-registered", StubVenue)


@pytest.mark.parametrize(
    ("plugin", "error"),
    [
        (
            MisspeltHook(),
            "implements 'register_venue', which is not a tornado_engine hook; did you mean "
            "'register_venues'? (hooks: register_venues)",
        ),
        (
            UnmarkedHook(),
            "defines register_venues() without @hookimpl, so the engine would never call it: "
            "decorate it with @tornado_engine.hookimpl",
        ),
        (
            UnmarkedMisspeltHook(),
            "defines register_venue() without @hookimpl and implements no hook; "
            "did you mean 'register_venues'?",
        ),
    ],
    ids=["misspelt", "unmarked", "unmarked-misspelt"],
)
def test_a_hook_the_engine_would_never_call_is_refused_with_the_reason(plugin, error, caplog):
    caplog.set_level(logging.ERROR)
    host = PluginHost(extra_plugins=[plugin])
    status = host.plugins[plugin.__name__]
    assert (status.state, status.errors, status.kinds) == ("failed", [error], [])
    assert not host.pm.is_registered(plugin)
    assert (
        f"plugin {plugin.__name__} (registered by the host program) {error}; it is not loaded" in caplog.text
    )


def test_a_sound_plugin_is_loaded_without_complaint(caplog):
    host = PluginHost(extra_plugins=[FaultyVenues()])
    assert host.plugins[PLUGIN].state == "loaded" and host.plugins[PLUGIN].errors == []
    assert "test-stub" in host.kinds


class RecordingEmitter(Emitter):
    """Records the executor's frames in order, without a store; runs ``on_submitted`` at ``submitted``."""

    def __init__(self, on_submitted: Any) -> None:
        super().__init__(store=None, order_id="order-1", last_seq=1)  # type: ignore[arg-type]
        self.frames: list[tuple[str, dict[str, Any]]] = []
        self.on_submitted = on_submitted

    async def emit(self, status: Status, state: dict[str, str] | None = None, **fields: Any) -> None:
        if status == Status.SUBMITTED:
            self.on_submitted()
        self.frames.append((status.value, fields))

    async def fence(self, key: str, deadline: float) -> None:
        """The only worker: it always owns the order."""
        self.frames.append(("fence", {"key": key}))


@pytest.mark.gen_test(timeout=15)
async def test_a_venue_removed_after_submitted_but_before_its_swap_is_retried_not_unknown():
    doomed = SlowBuild(venue_settings("test-slow-build", name="doomed", tokens=["SOL", "USDC"]))
    good = StubVenue(venue_settings("test-stub", name="good", tokens=["SOL", "USDC"]))
    doomed.release.set()  # builds at once
    current = {"doomed": doomed, "good": good}
    executor = OrderExecutor(lambda: current, WorkerConfig(backoff_base_ms=0), settings=EngineConfig())
    emitter = RecordingEmitter(on_submitted=lambda: current.pop("doomed", None))  # the reload
    status = await executor.execute(Order("order-1", "SOL", "USDC", 1.0), emitter)
    assert status == Status.CONFIRMED
    first, second = ["routing", "building", "submitted", "retrying"], ["routing", "building", "submitted"]
    assert [s for s, _ in emitter.frames] == [*first, *second, "fence", "confirmed"]
    retrying = emitter.frames[3][1]
    assert (
        retrying["error"]
        == "venue doomed was removed by a reload before the swap was sent; nothing was traded"
    )
    assert doomed.swaps == [] and len(good.swaps) == 1


DEAF_PLUGIN = """
import asyncio, contextlib, logging
from tornado_engine import Quote, SwapResult, Venue, hookimpl

class DeafVenue(Venue):
    def __init__(self, settings):
        self.name, self.tokens = settings.name, settings.tokens

    async def quote(self, request):
        return Quote(self.name, 140.0, 0.003, request.amount * 140.0 * 0.997)

    async def build(self, request):
        return None

    async def swap(self, request):
        logging.getLogger("te_deaf_venue").warning("deaf swap started")
        while True:  # the plugin bug: every cancellation swallowed
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(3600)

@hookimpl
def register_venues(register):
    register("deaf", DeafVenue)
"""


@pytest.mark.gen_test(timeout=60)
async def test_sigterm_stops_the_engine_although_a_swap_swallows_cancellation(
    make_config, engine_process, tmp_path, monkeypatch
):
    site = tmp_path / "site"
    install(site, "te-deaf-venue", "deaf-venue", "te_deaf_venue", DEAF_PLUGIN)
    monkeypatch.setenv("PYTHONPATH", str(site))  # the engine process sees the installed plugin
    config = make_config(engine={"worker": {"shutdown_grace_seconds": 0.2}}, venues=venues_yaml(deaf="deaf"))
    process = engine_process(config, role="all")
    client = EngineClient(process.base_url)
    order_id = await client.submit()
    socket = await client.connect(f"orderId={order_id}")
    await asyncio.get_running_loop().run_in_executor(None, process.wait_for_log, "deaf swap started")
    process.signal(signal.SIGTERM)
    assert await asyncio.get_running_loop().run_in_executor(None, process.wait) == 0
    process.wait_for_log(r"venue deaf \(plugin deaf-venue\) ignored the cancellation of the swap")
    process.wait_for_log("handed back 1 unfinished orders")
    socket.close()

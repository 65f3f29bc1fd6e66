"""The live page at ``/``, driven in a real headless Chromium against a real engine.

The engine runs as its own process (``python -m tornado_engine serve``) on the
session's Redis, because the browser is a separate process too and must reach
it over real sockets. Debian's ``chromium`` is driven by Playwright; Playwright
never downloads a browser of its own here.

``python tests/test_browser.py`` takes a screenshot of the page from the same set-up, into a
temporary directory; ``--update-docs`` replaces docs/screenshot.png with it.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tornado_engine.testing import DEFAULT_VENUES, RedisServer, write_config

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 15_000
LISTENING = re.compile(r"listening on port (\d+)")
REPO = Path(__file__).resolve().parent.parent


def _browser_missing() -> str | None:
    if not os.access(CHROMIUM, os.X_OK):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium; .ci/run does) or set CHROMIUM"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return 'Playwright for Python is not installed (pip install -e ".[test]")'
    return None


pytestmark = pytest.mark.skipif(_browser_missing() is not None, reason=str(_browser_missing()))


# ------------------------------------------------------------------ the engine process


class EngineProcess:
    """``tornado-engine serve`` in a child process; its log is kept for failure reports."""

    def __init__(self, config_dir: Path, redis_url: str) -> None:
        self.log: list[str] = []
        self._port: int | None = None
        self._ready = threading.Event()
        command = [sys.executable, "-m", "tornado_engine", "serve", "--config", str(config_dir)]
        self.process = subprocess.Popen(
            [*command, "--redis-url", redis_url, "--port", "0", "--host", "127.0.0.1"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        """Read the log to the end, so a chatty engine never blocks on a full pipe."""
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.log.append(line.rstrip())
            match = LISTENING.search(line)
            if match and self._port is None:
                self._port = int(match.group(1))
                self._ready.set()
        self._ready.set()  # exited: wake the waiter

    def wait_listening(self, timeout: float = 20) -> str:
        if not self._ready.wait(timeout) or self._port is None:
            self.stop()
            raise RuntimeError("the engine did not start listening:\n" + "\n".join(self.log[-30:]))
        return f"http://127.0.0.1:{self._port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def slow_venues(failure_rate: float = 0, swap_ms: int = 0) -> dict[str, Any]:
    """The kit's two venues, with a swap that takes ``swap_ms`` and fails at ``failure_rate``."""
    venues = {name: dict(entry) for name, entry in DEFAULT_VENUES["venues"].items()}
    for entry in venues.values():
        entry.update(
            failure_rate=failure_rate,
            quote_latency_ms=[20, 40],
            build_latency_ms=[20, 40],
            swap_latency_ms=[swap_ms, swap_ms],
        )
    return {**DEFAULT_VENUES, "venues": venues}


# Two shallow SOL/USDC pools, as in tests/test_dex_orders.py: 30 SOL moves either
# a lot, so the order is split. No SOL/JUP pool: SOL -> JUP goes through USDC.
SHALLOW_POOLS: dict[str, Any] = {
    "tokens": {
        "SOL": {"reference_price": 150, "decimals": 9},
        "USDC": {"reference_price": 1, "decimals": 6},
        "JUP": {"reference_price": 0.9, "decimals": 6},
    },
    "venues": {
        "raydium": {
            "plugin": "mock-raydium",
            "failure_rate": 0,
            "slippage_variance": 0,
            "pools": {
                "SOL/USDC": {"reserves": [2_000, 300_000]},
                "USDC/JUP": {"reserves": [900_000, 1_000_000]},
            },
        },
        "meteora": {
            "plugin": "mock-meteora",
            "failure_rate": 0,
            "slippage_variance": 0,
            "tokens": ["SOL", "USDC"],
            "pools": {"SOL/USDC": {"bin_step_bps": 25, "bins_each_side": 30, "bin_liquidity": [5, 750]}},
        },
    },
}

# The venues' latencies above count only with a scale of 1.
REAL_LATENCY: dict[str, Any] = {"simulation": {"latency_scale": 1}, "logging": {"level": "INFO"}}


@pytest.fixture
def serve(make_config, redis_server) -> Iterator[Callable[..., str]]:
    """``serve(engine={...}, venues={...})`` starts an engine and returns its base URL."""
    started: list[EngineProcess] = []

    def start(engine: dict[str, Any] | None = None, venues: dict[str, Any] | None = None) -> str:
        process = EngineProcess(make_config(engine=engine, venues=venues), redis_server.url)
        started.append(process)
        return process.wait_listening()

    yield start
    for process in started:
        process.stop()


# ------------------------------------------------------------------ the browser


def launch_chromium(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


def is_script_error(message: Any) -> bool:
    text = message.text
    return message.type == "error" and not (text.startswith("Failed to load resource") or "net::ERR_" in text)


@pytest.fixture
def page(browser) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # Script errors only: the browser's own reports of a refused request (a 4xx the
    # page asked for on purpose, a socket while offline) are not the page's errors.
    page.on("console", lambda msg: errors.append(msg.text) if is_script_error(msg) else None)
    yield page
    context.close()
    assert not errors, f"the page logged errors: {errors}"


def open_page(page: Any, base_url: str) -> None:
    from playwright.sync_api import expect

    page.goto(base_url + "/")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")


def only_order(page: Any) -> Any:
    from playwright.sync_api import expect

    cards = page.locator("article.order")
    expect(cards).to_have_count(1)
    return cards.first


def stages(card: Any) -> list[str]:
    return card.locator(".events .event").evaluate_all("rows => rows.map(r => r.dataset.status)")


# ------------------------------------------------------------------ the tests


def test_the_page_is_served_with_its_own_files_only(page, serve):
    base_url = serve()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    open_page(page, base_url)
    assert page.title().startswith("tornado-engine")
    assert requests and all(url.startswith(base_url) for url in requests), requests
    assert page.locator("#fromToken option").all_text_contents() == ["SOL", "USDC", "USDT"]


def test_an_order_from_the_form_shows_its_timeline_to_confirmed(page, serve):
    from playwright.sync_api import expect

    base_url = serve()
    open_page(page, base_url)
    page.select_option("#fromToken", "SOL")
    page.select_option("#toToken", "USDC")
    page.fill("#amount", "2.5")
    page.click("#submit-one")

    card = only_order(page)
    expect(card).to_have_attribute("data-status", "confirmed")
    assert stages(card) == ["pending", "routing", "building", "submitted", "confirmed"]
    expect(card.locator(".order-pair")).to_have_text("2.5 SOL → USDC")
    # Both venues quoted side by side, the chosen route highlighted.
    expect(card.locator(".quote")).to_have_count(2)
    chosen = card.locator(".quote.chosen")
    expect(chosen).to_have_count(1)
    expect(chosen.locator(".badge")).to_have_text("best route")
    routed_to = chosen.get_attribute("data-dex")
    expect(card.locator(".event[data-status=confirmed] .event-detail")).to_contain_text(f"on {routed_to}")
    # The end: a transaction hash and an execution price; each stage has its time.
    expect(card.locator(".tx-hash")).to_have_text(re.compile(r"^[1-9A-HJ-NP-Za-km-z]{30,}$"))
    # Every price says its unit: toToken per fromToken.
    expect(card.locator(".execution-price")).to_have_text(re.compile(r"^[\d,.]+ USDC per SOL$"))
    expect(card.locator(".quote .quote-price")).to_have_text([re.compile(r"^[\d,.]+ USDC per SOL$")] * 2)
    expect(card.locator(".event[data-status=routing] .event-detail")).to_contain_text(
        re.compile(r"^best \w+ at [\d,.]+ USDC per SOL \(2 quotes\)$")
    )
    expect(card.locator(".event[data-status=confirmed] .event-detail")).to_have_text(
        re.compile(r"^confirmed on \w+ at [\d,.]+ USDC per SOL$")
    )
    expect(card.locator(".order-price")).to_have_text(re.compile(r"^[\d,.]+ USDC per SOL$"))
    expect(card.locator(".result.ok")).not_to_contain_text("null")
    expect(card.locator(".fill")).to_have_count(0)
    expect(card.locator(".route")).to_have_attribute("data-route-type", "direct")
    expect(card.locator(".route .leg")).to_have_count(0)
    durations = card.locator(".event:not([data-status=confirmed]) .event-duration").all_text_contents()
    assert len(durations) == 4 and all(re.fullmatch(r"\d+(\.\d+)? m?s", d) for d in durations), durations
    # The engine panel learns of the outcome from the live updates.
    expect(page.locator("#recent-list li[data-status=confirmed]")).to_have_count(1)
    expect(page.locator(f".venue[data-venue={routed_to}]")).to_contain_text("routed 1 order")


def test_with_keys_on_the_page_opened_with_its_key_submits_and_watches(page, make_config, redis_server):
    """``/#key=<key>``: the key leaves the address bar and goes with the POST, the polls and the socket."""
    from playwright.sync_api import expect

    config = make_config(engine={"auth": {"required": True}})
    added = subprocess.run(
        [
            *(sys.executable, "-m", "tornado_engine", "keys", "add", "page", "--scopes", "trade"),
            *("--config", str(config), "--redis-url", redis_server.url),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    key = added.stdout.strip()
    engine = EngineProcess(config, redis_server.url)
    try:
        base_url = engine.wait_listening()
        page.goto(f"{base_url}/#key={key}")
        expect(page.locator("body")).to_have_attribute("data-ready", "true")
        assert key not in page.url
        page.select_option("#fromToken", "SOL")
        page.select_option("#toToken", "USDC")
        page.fill("#amount", "1")
        page.click("#submit-one")
        expect(only_order(page)).to_have_attribute("data-status", "confirmed")
    finally:
        engine.stop()


def test_a_failing_order_shows_its_retries_and_error(page, serve):
    from playwright.sync_api import expect

    venues = slow_venues(failure_rate=1)
    base_url = serve(engine={"worker": {"max_attempts": 2}}, venues=venues)
    open_page(page, base_url)
    page.click("#submit-one")

    card = only_order(page)
    expect(card).to_have_attribute("data-status", "failed")
    statuses = stages(card)
    assert statuses[0] == "pending" and statuses[-1] == "failed"
    assert statuses.count("retrying") == 1 and statuses.count("routing") == 2, statuses
    expect(card.locator(".event[data-status=retrying] .event-detail")).to_contain_text("attempt 1 failed")
    expect(card.locator(".result.bad")).to_contain_text("not confirmed")
    expect(card.locator(".result.bad")).to_contain_text("after 2 attempts")
    expect(card.locator(".step.failed")).to_have_count(1)
    expect(page.locator("#recent-list li[data-status=failed]")).to_have_count(1)


def engine_order(base_url: str, order_id: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{base_url}/api/orders/{order_id}", timeout=5) as response:
        return json.load(response)


def engine_status(base_url: str, order_id: str) -> str:
    return engine_order(base_url, order_id)["status"]


def market_price(base_url: str, from_token: str, to_token: str, amount: float) -> float:
    """What the engine says a limit order for these would be compared against now."""
    query = f"fromToken={from_token}&toToken={to_token}&amount={amount}"
    with urllib.request.urlopen(f"{base_url}/api/activity?{query}", timeout=5) as response:
        return json.load(response)["marketPrice"]["price"]


def at_market(price: float) -> str:
    """The form's limit "at market": rounded down to 6 significant digits, as the page writes it."""
    scale = 10 ** (5 - math.floor(math.log10(price)))
    return f"{math.floor(price * scale) / scale:.6g}"


def wait_for_engine_status(base_url: str, order_id: str, status: str, timeout: float = 10) -> None:
    """Ask the engine itself (not the page) until the order has ``status``."""
    deadline = time.monotonic() + timeout
    while (seen := engine_status(base_url, order_id)) != status:
        assert time.monotonic() < deadline, f"order {order_id} still {seen!r} after {timeout}s"
        time.sleep(0.02)


def test_a_dropped_socket_reconnects_and_replays_what_it_missed(page, serve):
    from playwright.sync_api import expect

    base_url = serve(engine=REAL_LATENCY, venues=slow_venues(swap_ms=1000))
    open_page(page, base_url)
    page.click("#submit-one")
    card = only_order(page)
    expect(card).to_have_attribute("data-status", "submitted")
    order_id = card.get_attribute("data-order-id")

    # The network goes away while the swap runs; the page keeps trying.
    page.context.set_offline(True)
    card.locator("button.drop").click()
    lost = card.locator(".notice[data-kind=lost]")
    expect(lost).to_contain_text("after event #4")
    expect(lost).to_contain_text("try 2")  # the first reconnection failed: really offline
    wait_for_engine_status(base_url, order_id, "confirmed")
    expect(card).to_have_attribute("data-status", "submitted")  # the page missed it

    page.context.set_offline(False)
    notice = card.locator(".notice[data-kind=reconnected]")
    expect(notice).to_contain_text("replaying every event after #4")
    expect(card).to_have_attribute("data-status", "confirmed")
    expect(card).to_have_attribute("data-reconnects", "1")
    assert stages(card) == ["pending", "routing", "building", "submitted", "confirmed"]
    seqs = card.locator(".events .event").evaluate_all("rows => rows.map(r => Number(r.dataset.seq))")
    assert seqs == [1, 2, 3, 4, 5]
    expect(card.locator(".tx-hash")).not_to_be_empty()


def test_twenty_orders_at_once_each_get_their_own_timeline(page, serve):
    from playwright.sync_api import expect

    base_url = serve()
    open_page(page, base_url)
    page.click("#submit-burst")
    cards = page.locator("article.order")
    expect(cards).to_have_count(20)
    expect(page.locator("article.order[data-status=confirmed]")).to_have_count(20)
    ids = cards.evaluate_all("cards => cards.map(c => c.dataset.orderId)")
    assert len(set(ids)) == 20
    for i in range(20):
        assert stages(cards.nth(i)) == ["pending", "routing", "building", "submitted", "confirmed"]
    expect(page.locator("#stat-confirmed")).to_have_text("20")


def test_a_rejected_order_shows_the_engines_message_on_the_form(page, serve):
    from playwright.sync_api import expect

    base_url = serve()
    open_page(page, base_url)
    page.fill("#amount", "0")
    page.click("#submit-one")
    expect(page.locator("#form-error")).to_have_text("amount must be greater than 0")
    expect(page.locator("#amount")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("article.order")).to_have_count(0)


def test_the_form_shows_and_sends_only_the_fields_of_the_order_type(page, serve):
    from playwright.sync_api import expect

    base_url = serve()
    open_page(page, base_url)
    sent: list[dict[str, Any]] = []
    page.on("request", lambda r: sent.append(r.post_data_json) if r.url.endswith("/execute") else None)
    expect(page.locator("#slippageBps")).to_have_value("50")
    for field in ("#limitPrice", "#minLiquidity", "#expiresInSeconds"):
        expect(page.locator(field)).to_be_hidden()

    page.select_option("#orderType", "limit")
    expect(page.locator("#limitPrice")).to_be_visible()
    # Prefilled with the price the engine's limit check compares (after fees), not the pre-fee 150.
    expect(page.locator("#limitPrice")).to_have_attribute("data-source", "engine")
    expect(page.locator("#limitPrice")).to_have_value(
        str(at_market(market_price(base_url, "SOL", "USDC", 1)))
    )
    expect(page.locator("#limit-unit")).to_have_text("USDC per SOL")
    expect(page.locator("#expiresInSeconds")).to_be_visible()
    expect(page.locator("#minLiquidity")).to_be_hidden()
    page.fill("#limitPrice", "")
    page.click("#submit-one")
    expect(page.locator("#form-error")).to_contain_text("limitPrice is required")
    expect(page.locator("#limitPrice")).to_have_attribute("aria-invalid", "true")

    page.select_option("#orderType", "sniper")
    expect(page.locator("#minLiquidity")).to_be_visible()
    expect(page.locator("#limitPrice")).to_be_hidden()
    page.fill("#minLiquidity", "500")
    page.fill("#slippageBps", "120")
    page.click("#submit-one")
    expect(only_order(page).locator(".order-kind")).to_have_text("sniper · pool ≥ 500 USDC")

    page.select_option("#orderType", "market")
    page.click("#submit-one")
    expect(page.locator("article.order")).to_have_count(2)
    base = {"fromToken": "SOL", "toToken": "USDC", "amount": 1}
    assert sent == [
        {**base, "orderType": "limit", "slippageBps": 50, "expiresInSeconds": 300},
        {**base, "orderType": "sniper", "slippageBps": 120, "minLiquidity": 500, "expiresInSeconds": 300},
        {**base, "orderType": "market", "slippageBps": 120},
    ]


def test_a_limit_order_waits_in_one_row_then_expires(page, serve):
    from playwright.sync_api import expect

    base_url = serve(engine={"orders": {"waiting_interval_ms": 50}})
    open_page(page, base_url)
    page.select_option("#orderType", "limit")
    page.fill("#limitPrice", "500")
    page.fill("#expiresInSeconds", "1")
    page.click("#submit-one")

    card = only_order(page)
    expect(card.locator(".order-kind")).to_have_text("limit ≥ 500 USDC per SOL")
    waiting = card.locator(".event.waiting-row")
    expect(waiting).to_contain_text(
        re.compile(r"price 1[45]\d(\.\d+)? USDC per SOL on \w+ vs limit 500 USDC per SOL")
    )
    expect(waiting).to_contain_text("expires ")
    expect(card).to_have_attribute("data-status", "expired")
    # Every check updated the one row: as many checks as the engine recorded waiting frames.
    assert stages(card) == ["pending", "waiting", "expired"]
    events = engine_order(base_url, card.get_attribute("data-order-id"))["events"]
    checks = sum(event["status"] == "waiting" for event in events)
    assert checks > 3, events
    expect(waiting).to_have_attribute("data-checks", str(checks))
    expect(waiting.locator(".waiting-checks")).to_have_text(f"{checks} checks")
    # The end: the expired state with its error, and where the price stood.
    expect(card.locator(".status-pill")).to_have_text("expired")
    expect(card.locator(".step.failed")).to_have_text(re.compile(r"^waiting · expired"))
    outcome = (
        r"^the limit order expired .*nothing was traded\s*"
        r"Last price [\d.]+ USDC per SOL; the limit was 500 USDC per SOL\.$"
    )
    expect(card.locator(".result.bad")).to_have_text(re.compile(outcome))
    expect(page.locator("#recent-list li[data-status=expired]")).to_have_count(1)
    expect(page.locator("#orders-summary")).to_contain_text("1 expired")


def test_a_limit_prefilled_at_market_fills_instead_of_waiting_out_its_expiry(page, serve):
    from playwright.sync_api import expect

    # The limit is also the least the swap may pay: pools that do not move while it lands.
    venues = {name: {**entry, "slippage_variance": 0} for name, entry in DEFAULT_VENUES["venues"].items()}
    settings = {"orders": {"waiting_interval_ms": 50}}
    base_url = serve(engine=settings, venues={**DEFAULT_VENUES, "venues": venues})
    open_page(page, base_url)
    page.fill("#amount", "2")
    page.select_option("#orderType", "limit")
    limit = page.locator("#limitPrice")
    expect(limit).to_have_attribute("data-source", "engine")
    prefilled = float(limit.input_value())
    assert prefilled < 150, prefilled  # below the pre-fee reference price: fees are taken
    page.fill("#expiresInSeconds", "2")
    page.click("#submit-one")

    card = only_order(page)
    expect(card).to_have_attribute("data-status", "confirmed")  # a pre-fee prefill waits, then expires
    assert "expired" not in stages(card)
    expect(card.locator(".order-kind")).to_have_text(f"limit ≥ {at_market(prefilled)} USDC per SOL")


def test_the_compact_view_keeps_a_burst_short_and_expands_one_order(page, serve):
    from playwright.sync_api import expect

    base_url = serve()
    open_page(page, base_url)
    page.click("#compact-toggle")
    expect(page.locator("#compact-toggle")).to_have_attribute("aria-pressed", "true")
    page.click("#submit-burst")
    expect(page.locator("article.order[data-status=confirmed]")).to_have_count(20)
    # One line per order: pair and amount, venue, price and status, and nothing else shown.
    first = page.locator("article.order").first
    expect(first.locator(".order-pair")).to_have_text("1 SOL → USDC")
    expect(first.locator(".order-dex")).to_have_text(re.compile(r"^on \w+$"))
    expect(first.locator(".order-price")).to_have_text(re.compile(r"^[\d,.]+ USDC per SOL$"))
    expect(first.locator(".status-pill")).to_have_text("confirmed")
    expect(first.locator(".events")).to_be_hidden()
    heights = page.locator("article.order").evaluate_all("cards => cards.map(c => c.offsetHeight)")
    line = page.locator("article.order .order-head").first.evaluate("h => h.offsetHeight")
    assert all(h <= line * 2 for h in heights), (heights, line)
    list_height = page.locator("#order-list").evaluate("list => list.offsetHeight")
    page_height = page.evaluate("document.documentElement.scrollHeight")
    assert list_height <= 1200 and page_height <= 2000, (list_height, page_height)  # was 12,600 px
    # "details" opens one order's timeline; the others stay one line.
    first.locator("button.expand").click()
    expect(first.locator(".events")).to_be_visible()
    expect(first.locator(".stepper")).to_be_visible()
    expect(page.locator("article.order").nth(1).locator(".events")).to_be_hidden()
    page.click("#compact-toggle")  # the full view again
    expect(page.locator("article.order").nth(1).locator(".events")).to_be_visible()


def test_the_status_filter_shows_only_orders_in_that_state(page, serve):
    from playwright.sync_api import expect

    base_url = serve(engine={"orders": {"waiting_interval_ms": 50}})
    open_page(page, base_url)
    page.click("#submit-one")
    expect(page.locator("article.order[data-status=confirmed]")).to_have_count(1)
    page.select_option("#orderType", "limit")
    page.fill("#limitPrice", "500")
    page.fill("#expiresInSeconds", "1")
    page.click("#submit-one")
    expect(page.locator("article.order[data-status=expired]")).to_have_count(1)

    visible = page.locator("article.order:visible")
    for wanted, shown in (("expired", "expired"), ("confirmed", "confirmed"), ("failed", None)):
        page.select_option("#status-filter", wanted)
        expect(visible).to_have_count(0 if shown is None else 1)
        if shown:
            expect(visible).to_have_attribute("data-status", shown)
    page.select_option("#status-filter", "unfinished")
    expect(visible).to_have_count(0)
    page.click("#submit-one")  # a new order shows while unfinished, then leaves the filter
    expect(visible).to_have_count(1)
    expect(visible).to_have_count(0)
    page.select_option("#status-filter", "all")
    expect(visible).to_have_count(3)


# Every number the page shows as "in flight", recorded at each change of the page.
RECORD_IN_FLIGHT = """() => {
  window.inFlightSeen = [];
  const read = () => {
    const said = [...document.body.innerText.matchAll(/(\\d+) in flight/g)].map((m) => m[1]);
    const panel = document.getElementById("stat-inflight").textContent;
    window.inFlightSeen.push({ said, panel });
  };
  new MutationObserver(read).observe(document.body, { subtree: true, childList: true, characterData: true });
}"""


def test_the_header_and_the_engine_panel_show_one_in_flight_figure_during_a_burst(page, serve):
    from playwright.sync_api import expect

    base_url = serve(engine=REAL_LATENCY, venues=slow_venues(swap_ms=1500))
    open_page(page, base_url)
    page.evaluate(RECORD_IN_FLIGHT)
    page.click("#submit-burst")
    # The header saw the burst in flight, and every figure agreed at every moment.
    expect(page.locator("#engine-pill")).to_have_attribute("data-in-flight", re.compile(r"^[1-9]"))
    expect(page.locator("article.order[data-status=confirmed]")).to_have_count(20)
    expect(page.locator("#engine-pill")).to_have_attribute("data-in-flight", "0")
    seen = page.evaluate("window.inFlightSeen")
    disagreements = [s for s in seen if any(n != s["panel"] for n in s["said"])]
    assert not disagreements, disagreements[:5]
    assert any(s["said"] and s["said"][0] != "0" for s in seen), seen[-5:]
    expect(page.locator("#stat-inflight")).to_have_attribute("data-in-flight", "0")


def test_the_stepper_counts_quoting_time_under_routing(page, serve):
    from playwright.sync_api import expect

    base_url = serve(engine=REAL_LATENCY, venues=slow_venues())  # quotes take 20-40 ms
    open_page(page, base_url)
    page.click("#submit-one")
    card = only_order(page)
    expect(card).to_have_attribute("data-status", "confirmed")
    order_id = card.get_attribute("data-order-id")
    # From the pending frame to the building frame: the quotes were asked, then the route chosen.
    routing_ms = page.evaluate(
        """(id) => {
          const frames = window.liveEngine.orders.get(id).frames;
          const at = (status) => Date.parse(frames.find((f) => f.status === status).ts);
          return at("building") - at("pending");
        }""",
        order_id,
    )
    assert routing_ms > 0, routing_ms  # quoting took time (the venues answer in 20-40 ms)
    expect(card.locator(".step[data-stage=routing] .step-time")).to_have_attribute("data-ms", str(routing_ms))
    expect(card.locator(".step[data-stage=pending] .step-time")).not_to_have_attribute(
        "data-ms", re.compile(".")
    )


def test_a_split_route_shows_its_legs_and_highlights_every_venue_in_it(page, serve):
    from playwright.sync_api import expect

    base_url = serve(venues=SHALLOW_POOLS)
    open_page(page, base_url)
    page.fill("#amount", "30")
    page.click("#submit-one")

    card = only_order(page)
    expect(card).to_have_attribute("data-status", "confirmed")
    route = card.locator(".route")
    expect(route).to_have_attribute("data-route-type", "split")
    legs = route.locator(".leg")
    expect(legs).to_have_count(2)
    assert sorted(legs.evaluate_all("legs => legs.map(l => l.dataset.dex)")) == ["meteora", "raydium"]
    shares = [int(text.rstrip("%")) for text in legs.locator(".leg-share").all_text_contents()]
    assert sum(shares) == 100 and all(0 < share < 100 for share in shares), shares
    expect(legs.locator(".leg-path")).to_have_text(["SOL → USDC", "SOL → USDC"])
    # Both venues are in the route, so both quotes are highlighted, each with its share.
    chosen = card.locator(".quote.chosen")
    expect(chosen).to_have_count(2)
    expect(chosen.locator(".badge")).to_have_text([re.compile(r"^split · \d+%$")] * 2)
    expect(route.locator(".route-min")).to_have_text(
        re.compile(r"^at least [\d,.]+ USDC \(slippage 50 bps\)$")
    )
    expect(route.locator(".route-impact")).to_have_text(re.compile(r"^price impact \d+\.\d\d%$"))
    expect(card.locator(".event[data-status=routing] .event-detail")).to_contain_text("split: ")
    # One fill per swap, each with its own transaction.
    fills = card.locator(".result.ok .fill")
    expect(fills).to_have_count(2)
    hashes = fills.locator(".fill-tx").all_text_contents()
    assert len(set(hashes)) == 2 and all(re.fullmatch(r"[1-9A-HJ-NP-Za-km-z]{30,}", h) for h in hashes)
    expect(card.locator(".event[data-status=confirmed] .event-detail")).to_contain_text("in 2 swaps")
    for venue in ("raydium", "meteora"):  # the engine panel counts the order for both venues
        expect(page.locator(f".venue[data-venue={venue}]")).to_contain_text("routed 1 order")


def test_a_multi_hop_route_shows_each_hop(page, serve):
    from playwright.sync_api import expect

    base_url = serve(venues=SHALLOW_POOLS)
    open_page(page, base_url)
    page.select_option("#toToken", "JUP")
    page.click("#submit-one")

    card = only_order(page)
    expect(card).to_have_attribute("data-status", "confirmed")
    expect(card.locator(".no-quotes")).to_have_text("No venue has a SOL/JUP pool; routed through USDC.")
    route = card.locator(".route")
    expect(route).to_have_attribute("data-route-type", "multi-hop")
    expect(route.locator(".leg-path")).to_have_text(["SOL → USDC", "USDC → JUP"])
    expect(card.locator(".result.ok .fill .fill-out")).to_have_text(
        [re.compile(r"^1 SOL → [\d,.]+ USDC$"), re.compile(r"^[\d,.]+ USDC → [\d,.]+ JUP$")]
    )


# ------------------------------------------------------------------ the screenshot


def make_screenshot(path: Path, phone_path: Path | None = None) -> None:
    """A laptop-sized view: a limit order waiting, a split route confirmed, a limit order expired."""
    import tempfile

    from playwright.sync_api import expect, sync_playwright

    redis = RedisServer().start()
    venues = json.loads(json.dumps(SHALLOW_POOLS))
    for entry in venues["venues"].values():
        entry.update(quote_latency_ms=[20, 40], build_latency_ms=[20, 40], swap_latency_ms=[600, 900])
    engine_settings = {
        **REAL_LATENCY,
        "simulation": {"latency_scale": 1, "seed": 11},
        "orders": {"waiting_interval_ms": 400},
    }
    config_dir = write_config(Path(tempfile.mkdtemp()) / "config", engine_settings, venues)
    engine = EngineProcess(config_dir, redis.url)
    try:
        base_url = engine.wait_listening()
        with sync_playwright() as playwright:
            chromium = launch_chromium(playwright)
            page = chromium.new_page(viewport={"width": 1280, "height": 1360}, device_scale_factor=1)
            page.set_default_timeout(TIMEOUT_MS)
            open_page(page, base_url)
            # Oldest at the bottom: a limit order that expires, then a split, then one that waits.
            page.select_option("#orderType", "limit")
            page.fill("#amount", "2")
            page.fill("#limitPrice", "160")
            page.fill("#expiresInSeconds", "2")
            page.click("#submit-one")
            expect(page.locator("article.order[data-status=expired]")).to_have_count(1)
            page.select_option("#orderType", "market")
            page.fill("#amount", "30")
            page.click("#submit-one")
            expect(page.locator("article.order[data-status=confirmed]")).to_have_count(1)
            page.select_option("#orderType", "limit")
            page.fill("#amount", "5")
            page.fill("#limitPrice", "152")
            page.fill("#expiresInSeconds", "120")
            page.click("#submit-one")
            waiting = page.locator("article.order[data-status=waiting] .waiting-row")
            expect(waiting).to_have_attribute("data-checks", re.compile(r"^([4-9]|\d\d+)$"))
            expect(page.locator("#stat-confirmed")).to_have_text("1")
            path.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(path), animations="disabled")
            if phone_path is not None:
                phone = chromium.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2)
                open_page(phone, base_url)
                phone.fill("#amount", "30")
                phone.click("#submit-one")
                phone.wait_for_selector("article.order[data-status=confirmed]")
                phone.screenshot(path=str(phone_path), full_page=True)
            chromium.close()
    finally:
        engine.stop()
        redis.stop()
    print(f"wrote {path}")


if __name__ == "__main__":
    # python tests/test_browser.py [--update-docs] [PHONE_PNG]: a screenshot in a temporary directory
    # (tests never rewrite tracked files); --update-docs replaces docs/screenshot.png on purpose.
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description="Screenshot the live page.")
    parser.add_argument("phone", nargs="?", type=Path, help="also write a phone-sized view here")
    parser.add_argument("--update-docs", action="store_true", help="write docs/screenshot.png")
    args = parser.parse_args()
    out = (
        REPO / "docs" / "screenshot.png" if args.update_docs else Path(tempfile.mkdtemp()) / "screenshot.png"
    )
    make_screenshot(out, args.phone)


def test_a_waiting_limit_order_is_cancelled_from_its_card(page, serve):
    from playwright.sync_api import expect

    base_url = serve(engine={"orders": {"waiting_interval_ms": 50}})
    open_page(page, base_url)
    page.select_option("#orderType", "limit")
    page.fill("#limitPrice", "500")
    page.fill("#expiresInSeconds", "60")
    page.click("#submit-one")

    card = only_order(page)
    expect(card).to_have_attribute("data-status", "waiting")
    card.locator("button.cancel").click()
    expect(card).to_have_attribute("data-status", "cancelled")
    expect(card.locator("button.cancel")).to_be_hidden()
    expect(card.locator(".step.failed")).to_have_text(re.compile(r"^waiting · cancelled"))
    expect(page.locator("#orders-summary")).to_contain_text("1 cancelled")
    assert engine_order(base_url, card.get_attribute("data-order-id"))["status"] == "cancelled"


def test_a_confirmed_order_offers_no_cancel(page, serve):
    from playwright.sync_api import expect

    base_url = serve()
    open_page(page, base_url)
    page.click("#submit-one")
    card = only_order(page)
    expect(card).to_have_attribute("data-status", "confirmed")
    expect(card.locator("button.cancel")).to_be_hidden()


def test_the_form_previews_the_engines_quote_as_it_changes(page, serve):
    from playwright.sync_api import expect

    base_url = serve(venues=SHALLOW_POOLS)
    open_page(page, base_url)
    preview = page.locator("#quote-preview")
    page.fill("#amount", "1")
    expect(preview).to_have_attribute("data-state", "ok")
    direct = r"^Now: about [\d,.]+ USDC via \w+ \(direct\), at least [\d,.]+"
    expect(preview).to_contain_text(re.compile(direct))
    page.fill("#amount", "30")  # too much for one shallow pool: the engine splits it
    expect(preview).to_contain_text(re.compile(r"via (raydium \+ meteora|meteora \+ raydium) \(split\)"))
    page.fill("#amount", "0.0000000001")  # finer than SOL's 9 decimals: the engine's own message
    expect(preview).to_have_attribute("data-state", "error")
    expect(preview).to_contain_text("No quote: ")
    expect(preview).to_contain_text("more decimal places than SOL allows")

// The live page: submit orders, watch each one's frames arrive, see the engine's state.
// Plain browser JavaScript, no build step, nothing loaded from elsewhere.
"use strict";

const STAGES = ["pending", "routing", "building", "submitted", "confirmed"];
const TERMINAL = new Set(["confirmed", "failed", "expired"]);
const RECONNECT_DELAYS_MS = [250, 500, 1000, 2000, 4000, 5000];
const POLL_MS = 2000;

const $ = (selector, root = document) => root.querySelector(selector);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

const numberFormat = new Intl.NumberFormat(undefined, { maximumSignificantDigits: 6 });
const fmtNumber = (n) => (typeof n === "number" && Number.isFinite(n) ? numberFormat.format(n) : "–");
const fmtPercent = (f) => (typeof f === "number" ? `${(f * 100).toFixed(2)}%` : "–");

function fmtDuration(ms) {
  if (!Number.isFinite(ms) || ms < 0) return "";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(2)} s`;
  return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
}

function fmtClock(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
}

const shortId = (id) => (id ? String(id).slice(0, 8) : "");
const tsMs = (frame) => Date.parse(frame.ts);

function wsUrl(path) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}

// Chromium delays a new WebSocket by up to seconds when many are still connecting
// (its per-process throttle); opening a few at a time keeps "Submit 20" quick.
const MAX_CONNECTING = 4;
const connecting = { count: 0, waiting: [] };

function whenCanConnect(open) {
  if (connecting.count < MAX_CONNECTING) {
    connecting.count += 1;
    open();
  } else {
    connecting.waiting.push(open);
  }
}

function connectDone() {
  const next = connecting.waiting.shift();
  if (next) next();
  else connecting.count -= 1;
}

// ---------------------------------------------------------------- one order

class OrderView {
  constructor(orderId, request) {
    this.orderId = orderId;
    this.request = request;
    this.frames = [];
    this.lastSeq = 0;
    this.socket = null;
    this.terminal = false;
    this.reconnects = 0;
    this.outage = null; // {notice, attempt, since} while reconnecting
    this.closedNote = null;
    this.root = $("#order-template").content.firstElementChild.cloneNode(true);
    this.root.dataset.orderId = orderId;
    $(".order-pair", this.root).textContent =
      `${fmtNumber(request.amount)} ${request.fromToken} → ${request.toToken}`;
    const idNode = $(".order-id", this.root);
    idNode.textContent = shortId(orderId);
    idNode.title = `orderId ${orderId}`;
    this.dropButton = el("button", {
      type: "button",
      class: "ghost small drop",
      title: "Close this order's WebSocket to watch the page reconnect and replay",
      text: "Drop connection",
    });
    this.dropButton.addEventListener("click", () => this.dropSocket());
    $(".order-meta", this.root).prepend(this.dropButton);
    this.renderStepper();
    this.setStatus("pending", "connecting");
  }

  // The socket: open, deliver frames once and in order, reconnect with replay.

  connect() {
    whenCanConnect(() => this.openSocket());
  }

  openSocket() {
    const query = `orderId=${encodeURIComponent(this.orderId)}` + (this.lastSeq ? `&lastSeq=${this.lastSeq}` : "");
    const socket = new WebSocket(wsUrl(`/ws?${query}`));
    this.socket = socket;
    let released = false;
    const release = () => {
      if (!released) {
        released = true;
        connectDone();
      }
    };
    socket.addEventListener("open", release);
    socket.addEventListener("close", release);
    socket.addEventListener("open", () => this.onOpen(socket));
    socket.addEventListener("message", (event) => this.onMessage(socket, event));
    socket.addEventListener("close", (event) => this.onClose(socket, event));
  }

  onOpen(socket) {
    if (socket !== this.socket || !this.outage) return;
    this.reconnects += 1;
    this.root.dataset.reconnects = String(this.reconnects);
    const took = fmtDuration(performance.now() - this.outage.since);
    this.outage.notice.classList.replace("lost", "reconnected");
    this.outage.notice.dataset.kind = "reconnected";
    this.outage.notice.querySelector(".notice-text").textContent =
      `Reconnected after ${took}; replaying every event after #${this.outage.fromSeq}`;
    this.outage = null;
    this.setStatus(this.currentStatus());
  }

  onMessage(socket, event) {
    if (socket !== this.socket) return;
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return;
    }
    if (frame.status === "error") {
      this.addNotice("error", `Server: ${frame.error}`);
      return;
    }
    if (typeof frame.seq !== "number" || frame.seq <= this.lastSeq) return; // already shown
    if (frame.seq !== this.lastSeq + 1) {
      socket.close(4000, "gap"); // the replay on reconnect fills it
      return;
    }
    this.lastSeq = frame.seq;
    this.frames.push(frame);
    this.addEvent(frame);
    if (TERMINAL.has(frame.status)) {
      this.terminal = true;
      pollSoon(); // the engine panel shows the outcome without waiting for the next poll
    }
    this.render();
  }

  onClose(socket, event) {
    if (socket !== this.socket) return;
    this.socket = null;
    if (this.terminal) {
      this.dropButton.hidden = true;
      return;
    }
    if (event.code === 4400 || event.code === 4404) {
      this.terminal = true;
      this.dropButton.hidden = true;
      this.setStatus("failed", "unknown to the engine");
      this.showError(event.reason || "the engine refused this order's socket");
      return;
    }
    if (!this.outage) {
      const notice = this.addNotice("lost", "");
      notice.dataset.kind = "lost";
      this.outage = { notice, attempt: 0, since: performance.now(), fromSeq: this.lastSeq };
    }
    const delay = RECONNECT_DELAYS_MS[Math.min(this.outage.attempt, RECONNECT_DELAYS_MS.length - 1)];
    this.outage.attempt += 1;
    this.outage.fromSeq = this.lastSeq;
    const why = event.code === 1006 ? "connection lost" : `socket closed (code ${event.code})`;
    this.outage.notice.querySelector(".notice-text").textContent =
      `${why[0].toUpperCase()}${why.slice(1)} after event #${this.lastSeq}; ` +
      `reconnecting in ${fmtDuration(delay)} (try ${this.outage.attempt})`;
    this.setStatus(this.currentStatus(), "reconnecting");
    setTimeout(() => this.connect(), delay);
  }

  dropSocket() {
    if (this.socket && this.socket.readyState <= WebSocket.OPEN) this.socket.close(4000, "dropped on purpose");
  }

  // Rendering.

  currentStatus() {
    return this.frames.length ? this.frames[this.frames.length - 1].status : "pending";
  }

  setStatus(status, note) {
    this.root.dataset.status = status;
    const pill = $(".status-pill", this.root);
    pill.textContent = note ? `${status} · ${note}` : status;
    pill.dataset.status = status;
  }

  addNotice(kind, text) {
    const notice = el(
      "li",
      { class: `notice ${kind}`, "data-kind": kind },
      el("span", { class: "notice-time", text: fmtClock(new Date().toISOString()) }),
      el("span", { class: "notice-text", text }),
    );
    $(".events", this.root).append(notice);
    return notice;
  }

  addEvent(frame) {
    const row = el(
      "li",
      { class: "event", "data-status": frame.status, "data-seq": frame.seq },
      el("span", { class: "event-time", text: fmtClock(frame.ts) }),
      el("span", { class: "event-status", "data-status": frame.status, text: frame.status }),
      el("span", { class: "event-detail", text: describe(frame) }),
      el("span", { class: "event-duration muted" }),
    );
    $(".events", this.root).append(row);
  }

  render() {
    const status = this.currentStatus();
    this.setStatus(status, this.outage ? "reconnecting" : "");
    this.renderStepper();
    this.renderQuotes();
    this.renderResult();
    this.tick();
  }

  renderStepper() {
    const stepper = $(".stepper", this.root);
    stepper.replaceChildren();
    const spent = this.timeInStatus();
    const status = this.currentStatus();
    const lastRetry = this.frames.map((f) => f.status).lastIndexOf("retrying");
    const reached = new Set(this.frames.slice(lastRetry + 1).map((f) => f.status));
    reached.add("pending");
    const attempt = this.frames.filter((f) => f.status === "retrying").length + 1;
    let failedMarked = false;
    for (const stage of STAGES) {
      let state = reached.has(stage) ? "done" : "todo";
      if (stage === status) state = TERMINAL.has(stage) ? "done" : "current";
      if (status === "retrying" && stage === "routing") state = "current";
      if ((status === "failed" || status === "expired") && state === "todo" && !failedMarked) {
        state = "failed";
        failedMarked = true;
      }
      const label = stage === "routing" && attempt > 1 ? `routing · try ${attempt}` : stage;
      stepper.append(
        el(
          "li",
          { class: `step ${state}`, "data-stage": stage },
          el("span", { class: "step-name", text: label }),
          el("span", { class: "step-time", text: spent.has(stage) ? fmtDuration(spent.get(stage)) : "" }),
        ),
      );
    }
  }

  // Time spent in each status: from its frame to the next one (summed over attempts).
  timeInStatus(nowMs = Date.now()) {
    const spent = new Map();
    this.frames.forEach((frame, i) => {
      if (TERMINAL.has(frame.status)) return;
      const end = i + 1 < this.frames.length ? tsMs(this.frames[i + 1]) : nowMs;
      spent.set(frame.status, (spent.get(frame.status) || 0) + Math.max(0, end - tsMs(frame)));
    });
    return spent;
  }

  renderQuotes() {
    const withQuotes = [...this.frames].reverse().find((f) => Array.isArray(f.quotes));
    const box = $(".quotes", this.root);
    if (!withQuotes) {
      box.hidden = true;
      return;
    }
    box.hidden = false;
    const title = withQuotes.attempt > 1 ? `Quotes · attempt ${withQuotes.attempt}` : "Quotes";
    const cards = withQuotes.quotes.map((quote) => {
      const chosen = quote.dex === withQuotes.bestDex;
      if (quote.error) {
        return el(
          "div",
          { class: "quote errored", "data-dex": quote.dex },
          el("div", { class: "quote-dex", text: quote.dex }),
          el("div", { class: "quote-error", text: quote.error }),
        );
      }
      return el(
        "div",
        { class: `quote${chosen ? " chosen" : ""}`, "data-dex": quote.dex, "data-chosen": chosen },
        el(
          "div",
          { class: "quote-dex" },
          quote.dex,
          chosen ? el("span", { class: "badge", text: "best route" }) : null,
        ),
        el(
          "dl",
          {},
          el("div", {}, el("dt", { text: "price" }), el("dd", { text: fmtNumber(quote.price) })),
          el("div", {}, el("dt", { text: "fee" }), el("dd", { text: fmtPercent(quote.fee) })),
          el(
            "div",
            {},
            el("dt", { text: "out" }),
            el("dd", { text: `${fmtNumber(quote.amountOut)} ${this.request.toToken}` }),
          ),
        ),
      );
    });
    box.replaceChildren(el("h4", { text: title }), el("div", { class: "quote-grid" }, ...cards));
  }

  renderResult() {
    const last = this.frames[this.frames.length - 1];
    const box = $(".result", this.root);
    if (!last || !TERMINAL.has(last.status)) {
      box.hidden = true;
      return;
    }
    box.hidden = false;
    if (last.status === "confirmed") {
      box.className = "result ok";
      box.replaceChildren(
        el(
          "dl",
          {},
          el("div", { class: "wide" }, el("dt", { text: "Transaction" }), el("dd", {}, el("code", { class: "tx-hash", text: last.txHash }))),
          el("div", {}, el("dt", { text: "Execution price" }), el("dd", { class: "execution-price", text: fmtNumber(last.executionPrice) })),
          el("div", {}, el("dt", { text: "Received" }), el("dd", { text: `${fmtNumber(last.amountOut)} ${this.request.toToken}` })),
          el("div", {}, el("dt", { text: "Venue" }), el("dd", { text: last.dex || "–" })),
        ),
      );
    } else {
      this.showError(last.error || `the order ended ${last.status}`);
    }
  }

  showError(message) {
    const box = $(".result", this.root);
    box.hidden = false;
    box.className = "result bad";
    box.replaceChildren(el("p", { class: "error-text", text: message }));
  }

  // Live durations: the current stage's time keeps counting until the next frame.
  tick(nowMs = Date.now()) {
    const rows = this.root.querySelectorAll(".event");
    rows.forEach((row, i) => {
      const frame = this.frames[i];
      if (!frame || TERMINAL.has(frame.status)) return;
      const next = this.frames[i + 1];
      const end = next ? tsMs(next) : this.terminal ? null : nowMs;
      if (end === null) return;
      $(".event-duration", row).textContent = fmtDuration(end - tsMs(frame));
      row.classList.toggle("live", !next);
    });
    if (!this.frames.length) return;
    const first = tsMs(this.frames[0]);
    const end = this.terminal ? tsMs(this.frames[this.frames.length - 1]) : nowMs;
    $(".order-elapsed", this.root).textContent = fmtDuration(end - first);
    if (!this.terminal) {
      const spent = this.timeInStatus(nowMs);
      const current = $(`.step.current .step-time`, this.root);
      const status = this.currentStatus();
      if (current && spent.has(status)) current.textContent = fmtDuration(spent.get(status));
    }
  }
}

function describe(frame) {
  switch (frame.status) {
    case "pending":
      return frame.message || "waiting for the engine";
    case "routing": {
      const count = (frame.quotes || []).filter((q) => !q.error).length;
      return `best ${frame.bestDex} at ${fmtNumber(frame.bestPrice)} (${count} quote${count === 1 ? "" : "s"})`;
    }
    case "building":
      return `building the transaction on ${frame.dex}`;
    case "submitted":
      return `submitted to ${frame.dex}`;
    case "retrying":
      return `attempt ${frame.attempt} failed: ${frame.error}; next attempt in ${fmtDuration(frame.nextAttemptInMs)}`;
    case "confirmed":
      return `confirmed on ${frame.dex} at ${fmtNumber(frame.executionPrice)}`;
    case "failed":
    case "expired":
      return frame.error || frame.status;
    default:
      return "";
  }
}

// ---------------------------------------------------------------- the page

const page = {
  config: null,
  orders: new Map(),
};

function orderRequest() {
  const raw = $("#amount").value.trim();
  return {
    fromToken: $("#fromToken").value,
    toToken: $("#toToken").value,
    amount: raw === "" ? null : Number(raw),
    orderType: $("#orderType").value || "market",
  };
}

function showFormError(message, field) {
  const box = $("#form-error");
  for (const input of document.querySelectorAll("#order-form [aria-invalid]")) input.removeAttribute("aria-invalid");
  if (!message) {
    box.hidden = true;
    return;
  }
  box.hidden = false;
  box.textContent = message;
  const input = field && document.getElementById(field);
  if (input) input.setAttribute("aria-invalid", "true");
}

async function submitOrder(request) {
  let response;
  try {
    response = await fetch("/api/orders/execute", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(request),
    });
  } catch {
    return { error: "the engine did not answer; is it running?" };
  }
  let body = {};
  try {
    body = await response.json();
  } catch {
    // a proxy's HTML error page, say
  }
  if (!response.ok) return { error: body.error || `HTTP ${response.status}`, field: body.field };
  return { orderId: body.orderId };
}

async function submit(count) {
  const request = orderRequest();
  showFormError(null);
  const buttons = document.querySelectorAll("#order-form button");
  buttons.forEach((b) => (b.disabled = true));
  try {
    const results = await Promise.all(Array.from({ length: count }, () => submitOrder(request)));
    const failure = results.find((r) => r.error);
    if (failure) showFormError(failure.error, failure.field);
    for (const result of results) {
      if (!result.orderId) continue;
      const view = new OrderView(result.orderId, request);
      page.orders.set(result.orderId, view);
      $("#order-list").prepend(view.root);
      view.connect();
    }
    summarize();
    pollSoon();
  } finally {
    buttons.forEach((b) => (b.disabled = false));
  }
}

function summarize() {
  const views = [...page.orders.values()];
  const counts = { active: 0, confirmed: 0, failed: 0 };
  for (const view of views) {
    const status = view.currentStatus();
    if (!view.terminal) counts.active += 1;
    else if (status === "confirmed") counts.confirmed += 1;
    else counts.failed += 1;
  }
  $("#orders-summary").textContent = views.length
    ? `${views.length} on this page · ${counts.active} in flight · ${counts.confirmed} confirmed · ${counts.failed} failed`
    : "Submit an order to watch it execute.";
  $("#clear-finished").hidden = counts.confirmed + counts.failed === 0;
}

function fillTokens(config) {
  const from = $("#fromToken");
  const tradable = [...new Set(config.pairs.map(([a]) => a))];
  from.replaceChildren(...tradable.map((t) => el("option", { value: t, text: t })));
  if (tradable.includes("SOL")) from.value = "SOL";
  fillTargets(config, "USDC");
  $("#orderType").replaceChildren(...config.orderTypes.map((t) => el("option", { value: t, text: t })));
  $("#amount").max = String(config.maxAmount);
}

function fillTargets(config, preferred) {
  const from = $("#fromToken").value;
  const to = $("#toToken");
  const keep = preferred || to.value;
  const targets = config.pairs.filter(([a]) => a === from).map(([, b]) => b);
  to.replaceChildren(...targets.map((t) => el("option", { value: t, text: t })));
  if (targets.includes(keep)) to.value = keep;
}

// ---------------------------------------------------------------- engine panel

async function getJson(url) {
  const response = await fetch(url, { cache: "no-store" });
  const body = await response.json();
  return { ok: response.ok, body };
}

let pollTimer = null;

function pollSoon() {
  if (pollTimer === null) {
    pollTimer = setTimeout(() => {
      pollTimer = null;
      pollEngine();
    }, 150);
  }
}

async function pollEngine() {
  if (document.hidden) return;
  const pill = $("#engine-pill");
  try {
    const [health, activity] = await Promise.all([getJson("/health"), getJson("/api/activity")]);
    renderEngine(health.body, activity.body);
    pill.dataset.state = health.ok ? "ok" : "degraded";
    const inFlight = health.body.ordersInFlight ?? "?";
    $("#engine-pill-text").textContent = health.ok
      ? `engine ok · ${inFlight} in flight`
      : `engine degraded · Redis ${health.body.redis}`;
  } catch {
    pill.dataset.state = "down";
    $("#engine-pill-text").textContent = "engine unreachable";
  }
}

function renderEngine(health, activity) {
  $("#stat-redis").textContent = health.redis === "ok" ? "ok" : "unreachable";
  $("#stat-redis").dataset.state = health.redis === "ok" ? "ok" : "bad";
  $("#stat-role").textContent = health.role ?? "–";
  $("#stat-waiting").textContent = health.waitingOrders ?? "–";
  $("#stat-inflight").textContent = health.ordersInFlight ?? "– (no worker here)";
  $("#stat-confirmed").textContent = activity.totals?.confirmed ?? 0;
  $("#stat-failed").textContent = (activity.totals?.failed ?? 0) + (activity.totals?.expired ?? 0);
  renderVenues(activity.venues || {});
  renderRecent(activity.recent || []);
  $("#engine-updated").textContent = `updated ${fmtClock(new Date().toISOString()).slice(0, 8)}`;
}

function renderVenues(stats) {
  const list = $("#venue-list");
  if (!page.config) return;
  list.replaceChildren(
    ...page.config.venues.map((venue) => {
      const s = stats[venue.name] || { quotes: 0, quoteErrors: 0, routesWon: 0 };
      const asked = s.quotes + s.quoteErrors;
      let health = "idle";
      if (!venue.enabled) health = "off";
      else if (asked && s.quoteErrors / asked > 0.5) health = "bad";
      else if (s.quoteErrors) health = "warn";
      else if (asked) health = "ok";
      const line = venue.enabled
        ? asked
          ? `${s.quotes}/${asked} quotes · routed ${s.routesWon} order${s.routesWon === 1 ? "" : "s"}`
          : "no quotes asked yet"
        : "disabled in venues.yaml";
      return el(
        "li",
        { class: "venue", "data-venue": venue.name, "data-health": health, title: s.lastError || "" },
        el("span", { class: "dot", "aria-hidden": "true" }),
        el(
          "div",
          {},
          el("div", {}, el("strong", { text: venue.name }), el("span", { class: "muted", text: ` · ${venue.plugin}` })),
          el("div", { class: "muted small", text: `${venue.tokens.join(" ")} · ${line}` }),
        ),
      );
    }),
  );
}

function renderRecent(recent) {
  const list = $("#recent-list");
  if (!recent.length) {
    list.replaceChildren(el("li", { class: "muted", text: "nothing yet" }));
    return;
  }
  list.replaceChildren(
    ...recent.slice(0, 10).map((entry) =>
      el(
        "li",
        { "data-status": entry.status, title: entry.error || "" },
        el("span", { class: "dot", "aria-hidden": "true" }),
        el("code", { text: shortId(entry.orderId) }),
        el("span", { class: "recent-what", text: entry.status === "confirmed" ? `${entry.status} on ${entry.dex}` : entry.status }),
        el("span", { class: "muted", text: fmtClock(entry.ts).slice(0, 8) }),
      ),
    ),
  );
}

// ---------------------------------------------------------------- start

async function start() {
  const form = $("#order-form");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit(1);
  });
  $("#submit-burst").addEventListener("click", () => submit(20));
  $("#fromToken").addEventListener("change", () => page.config && fillTargets(page.config));
  $("#swap-tokens").addEventListener("click", () => {
    const from = $("#fromToken").value;
    const to = $("#toToken").value;
    $("#fromToken").value = to;
    if (page.config) fillTargets(page.config, from);
  });
  $("#clear-finished").addEventListener("click", () => {
    for (const [id, view] of page.orders) {
      if (view.terminal) {
        view.root.remove();
        page.orders.delete(id);
      }
    }
    summarize();
  });
  try {
    const { body } = await getJson("/api/venues");
    page.config = body;
    fillTokens(body);
    document.body.dataset.ready = "true";
  } catch {
    showFormError("could not load the venues from the engine; reload the page to try again");
  }
  pollEngine();
  setInterval(pollEngine, POLL_MS);
  setInterval(() => {
    for (const view of page.orders.values()) if (!view.terminal) view.tick();
    summarize();
  }, 200);
}

// For tests and demos: the page's orders, and a way to drop one's socket.
window.liveEngine = {
  orders: page.orders,
  dropSocket: (orderId) => page.orders.get(orderId)?.dropSocket(),
};

start();

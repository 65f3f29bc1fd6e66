// The live page: submit orders, watch each one's frames arrive, see the engine's state.
// Plain browser JavaScript, no build step, nothing loaded from elsewhere.
"use strict";

const STAGES = ["pending", "routing", "building", "submitted", "confirmed"];
const WAITING_TYPES = new Set(["limit", "sniper"]);
const stagesFor = (orderType) => (WAITING_TYPES.has(orderType) ? ["pending", "waiting", ...STAGES.slice(1)] : STAGES);
const TERMINAL = new Set(["confirmed", "failed", "expired", "cancelled"]);
const CANCELLABLE = new Set(["pending", "waiting"]); // DELETE /api/orders/{id} answers 409 past these
const QUOTE_DEBOUNCE_MS = 250;
const RECONNECT_DELAYS_MS = [250, 500, 1000, 2000, 4000, 5000];
const POLL_MS = 2000;

const $ = (selector, root = document) => root.querySelector(selector);

// With API keys on, open the page as /#key=<key>: the key moves to this tab's sessionStorage
// (out of the address bar and history) and goes with every request (a Bearer header; on the
// socket, which cannot send headers, the token parameter).
const API_KEY = (() => {
  const match = /^#key=(.+)$/.exec(location.hash);
  if (match) {
    sessionStorage.setItem("apiKey", decodeURIComponent(match[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem("apiKey");
})();
const withKey = (headers = {}) => (API_KEY ? { ...headers, Authorization: `Bearer ${API_KEY}` } : headers);
const tokenParameter = () => (API_KEY ? `&token=${encodeURIComponent(API_KEY)}` : "");

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
// priceImpactPct is already a percentage (0.5 means half a percent).
function fmtImpact(pct) {
  if (typeof pct !== "number" || !Number.isFinite(pct)) return "–";
  return pct > 0 && pct < 0.01 ? "<0.01%" : `${pct.toFixed(2)}%`;
}
// A price is always toToken per fromToken: "149.5 USDC per SOL".
const fmtPrice = (price, from, to) => `${fmtNumber(price)} ${to} per ${from}`;
const priceUnit = (from, to) => (from && to ? `${to} per ${from}` : "");
const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

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

// replaceChildren would show a null as the text "null"; el() skips them, this does too.
const present = (...nodes) => nodes.filter((node) => node !== null && node !== undefined);

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
    this.rows = []; // timeline rows: {node, status, first (index into frames), checks}
    this.stages = stagesFor(request.orderType);
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
    const kind = describeKind(request);
    if (kind) {
      const kindNode = $(".order-kind", this.root);
      kindNode.hidden = false;
      kindNode.textContent = kind;
      kindNode.dataset.type = request.orderType;
    }
    this.dropButton = el("button", {
      type: "button",
      class: "ghost small drop",
      title: "Close this order's WebSocket to watch the page reconnect and replay",
      text: "Drop connection",
    });
    this.dropButton.addEventListener("click", () => this.dropSocket());
    $(".order-meta", this.root).prepend(this.dropButton);
    this.cancelButton = el("button", {
      type: "button",
      class: "ghost small cancel",
      title: "Cancel this order: possible until it begins to execute",
      text: "Cancel",
    });
    this.cancelButton.addEventListener("click", () => this.cancel());
    $(".order-meta", this.root).prepend(this.cancelButton);
    const expand = $(".expand", this.root);
    expand.addEventListener("click", () => {
      const open = this.root.classList.toggle("expanded");
      expand.setAttribute("aria-expanded", String(open));
      expand.textContent = open ? "less" : "details";
    });
    this.renderStepper();
    this.setStatus("pending", "connecting");
  }

  // The socket: open, deliver frames once and in order, reconnect with replay.

  connect() {
    whenCanConnect(() => this.openSocket());
  }

  openSocket() {
    const query =
      `orderId=${encodeURIComponent(this.orderId)}` + (this.lastSeq ? `&lastSeq=${this.lastSeq}` : "") + tokenParameter();
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
    this.cancelButton.hidden = !CANCELLABLE.has(status);
    const pill = $(".status-pill", this.root);
    pill.textContent = note ? `${status} · ${note}` : status;
    pill.dataset.status = status;
    applyFilter(this);
  }

  // Cancel: the engine answers 200 (the cancelled frame then arrives on the socket) or 409 once executing.
  async cancel() {
    this.cancelButton.disabled = true;
    let response = null;
    let body = {};
    try {
      response = await fetch(`/api/orders/${encodeURIComponent(this.orderId)}`, { method: "DELETE", headers: withKey() });
      body = await response.json();
    } catch {
      body = { error: "the engine did not answer" };
    }
    if (!response || !response.ok) {
      this.addNotice("error", `not cancelled: ${body.error || `HTTP ${response && response.status}`}`);
    }
    this.cancelButton.disabled = false;
  }

  // The one-line summary the compact view keeps: the venue and price, once known.
  renderHeadline() {
    const last = [...this.frames].reverse().find((f) => f.dex || f.bestDex);
    const priced = [...this.frames].reverse().find((f) => typeof (f.executionPrice ?? f.bestPrice ?? f.currentPrice) === "number");
    const dexNode = $(".order-dex", this.root);
    const dex = last ? last.dex || last.bestDex : null;
    dexNode.hidden = !dex;
    dexNode.textContent = dex ? `on ${dex}` : "";
    const priceNode = $(".order-price", this.root);
    const price = priced ? priced.executionPrice ?? priced.bestPrice ?? priced.currentPrice : null;
    priceNode.hidden = price === null;
    priceNode.textContent = price === null ? "" : fmtPrice(price, this.request.fromToken, this.request.toToken);
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

  // One row per frame, except that a run of waiting frames shares one row updated in place.
  addEvent(frame) {
    const last = this.rows[this.rows.length - 1];
    if (frame.status === "waiting" && last && last.status === "waiting") {
      last.checks += 1;
      this.fillWaitingRow(last, frame);
      return;
    }
    const node = el(
      "li",
      { class: "event", "data-status": frame.status, "data-seq": frame.seq },
      el("span", { class: "event-time", text: fmtClock(frame.ts) }),
      el("span", { class: "event-status", "data-status": frame.status, text: frame.status }),
      el("span", { class: "event-detail", text: describe(frame, this.request) }),
      el("span", { class: "event-duration muted" }),
    );
    const row = { node, status: frame.status, first: this.frames.length - 1, checks: 1 };
    this.rows.push(row);
    if (frame.status === "waiting") {
      node.classList.add("waiting-row");
      $(".event-detail", node).replaceChildren(
        el("span", { class: "waiting-what" }),
        el("span", { class: "waiting-expiry muted" }),
        el("span", { class: "waiting-checks muted" }),
      );
      this.fillWaitingRow(row, frame);
    }
    $(".events", this.root).append(node);
  }

  fillWaitingRow(row, frame) {
    row.node.dataset.seq = frame.seq;
    row.node.dataset.checks = String(row.checks);
    row.expiresAt = Date.parse(frame.expiresAt);
    $(".waiting-what", row.node).textContent = describeWaiting(frame, this.request);
    $(".waiting-checks", row.node).textContent = plural(row.checks, "check");
    this.renderExpiry(row, null);
  }

  renderExpiry(row, nowMs) {
    if (!Number.isFinite(row.expiresAt)) return;
    const at = fmtClock(new Date(row.expiresAt).toISOString()).slice(0, 8);
    const left = nowMs === null ? "" : ` (in ${fmtDuration(Math.max(0, row.expiresAt - nowMs))})`;
    $(".waiting-expiry", row.node).textContent = `expires ${at}${left}`;
  }

  render() {
    const status = this.currentStatus();
    this.setStatus(status, this.outage ? "reconnecting" : "");
    this.renderStepper();
    this.renderHeadline();
    this.renderQuotes();
    this.renderRoute();
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
    if (this.frames.some((f) => f.status === "waiting")) reached.add("waiting");
    const attempt = this.frames.filter((f) => f.status === "retrying").length + 1;
    // An expired order stopped in the stage it was in (waiting, or pending if its client came late).
    const before = this.frames.length > 1 ? this.frames[this.frames.length - 2].status : "pending";
    const stopped = status === "expired" || status === "cancelled";
    const expiredIn = stopped ? (this.stages.includes(before) ? before : "pending") : null;
    let failedMarked = false;
    for (const stage of this.stages) {
      let state = reached.has(stage) ? "done" : "todo";
      if (stage === status) state = TERMINAL.has(stage) ? "done" : "current";
      if (status === "retrying" && stage === "routing") state = "current";
      if (status === "failed" && state === "todo" && !failedMarked) {
        state = "failed";
        failedMarked = true;
      }
      let label = stage === "routing" && attempt > 1 ? `routing · try ${attempt}` : stage;
      if (stage === expiredIn) {
        state = "failed";
        label = `${stage} · ${status}`;
      }
      stepper.append(
        el(
          "li",
          { class: `step ${state}`, "data-stage": stage },
          el("span", { class: "step-name", text: label }),
          el("span", {
            class: "step-time",
            "data-ms": spent.has(stage) ? Math.round(spent.get(stage)) : null,
            text: spent.has(stage) ? fmtDuration(spent.get(stage)) : "",
          }),
        ),
      );
    }
  }

  // Time spent in each stage: from its frame to the next one (summed over attempts), except that
  // the engine stamps the routing frame when quoting ends: the time from pending to it was quoting,
  // so it is routing's (the routing stage starts when the order leaves pending to be quoted).
  timeInStatus(nowMs = Date.now()) {
    const spent = new Map();
    this.frames.forEach((frame, i) => {
      if (TERMINAL.has(frame.status)) return;
      const next = this.frames[i + 1];
      const end = next ? tsMs(next) : nowMs;
      const stage = frame.status === "pending" && next && next.status === "routing" ? "routing" : frame.status;
      spent.set(stage, (spent.get(stage) || 0) + Math.max(0, end - tsMs(frame)));
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
    const shares = planShares(withQuotes, this.request);
    const split = withQuotes.routeType === "split";
    const cards = withQuotes.quotes.map((quote) => {
      const chosen = shares.has(quote.dex);
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
          chosen ? el("span", { class: "badge", text: split ? `split · ${shares.get(quote.dex)}%` : "best route" }) : null,
        ),
        el(
          "dl",
          {},
          el("div", {}, el("dt", { text: "price" }), el("dd", { class: "quote-price", text: fmtPrice(quote.price, this.request.fromToken, this.request.toToken) })),
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
    const grid = cards.length
      ? el("div", { class: "quote-grid" }, ...cards)
      : el("p", { class: "muted small no-quotes", text: noDirectQuote(withQuotes, this.request) });
    box.replaceChildren(el("h4", { text: title }), grid);
  }

  // The chosen route: what it should pay, the least it may pay, and its legs when there are several.
  renderRoute() {
    const withQuotes = [...this.frames].reverse().find((f) => Array.isArray(f.quotes));
    const routing = withQuotes && withQuotes.status === "routing" ? withQuotes : null;
    const box = $(".route", this.root);
    if (!routing || !routing.routeType) {
      box.hidden = true;
      return;
    }
    box.hidden = false;
    box.dataset.routeType = routing.routeType;
    const plan = Array.isArray(routing.routePlan) ? routing.routePlan : [];
    const to = this.request.toToken;
    const facts = [el("span", { class: "route-out" }, "expect ", el("strong", { text: `${fmtNumber(routing.amountOut)} ${to}` }))];
    const least = minAmountOut(routing);
    if (least !== null) {
      facts.push(el("span", { class: "route-min", text: `at least ${fmtNumber(least)} ${to} (slippage ${routing.slippageBps} bps)` }));
    }
    if (typeof routing.priceImpactPct === "number") {
      facts.push(el("span", { class: "route-impact", text: `price impact ${fmtImpact(routing.priceImpactPct)}` }));
    }
    if (routing.requote) facts.push(el("span", { class: "route-requote", text: `re-quoted ${plural(routing.requote, "time")}` }));
    const via = routing.routeType === "direct" && plan.length ? ` via ${plan[0].dex}` : "";
    const parts = [
      el("h4", {}, "Route ", el("span", { class: "route-type", text: `${routing.routeType}${via}` })),
      el("p", { class: "route-facts" }, ...facts),
    ];
    if (routing.routeType !== "direct" && plan.length) {
      parts.push(
        el(
          "ol",
          { class: "legs" },
          ...plan.map((leg) =>
            el(
              "li",
              { class: "leg", "data-dex": leg.dex },
              el("span", { class: "leg-dex", text: leg.dex }),
              el("span", { class: "leg-share", text: `${leg.percent}%` }),
              el("span", { class: "leg-path", text: `${leg.fromToken} → ${leg.toToken}` }),
              el("span", { class: "leg-out", text: `${fmtNumber(leg.amountIn)} → ${fmtNumber(leg.amountOut)} ${leg.toToken}` }),
            ),
          ),
        ),
      );
    }
    box.replaceChildren(...parts);
  }

  renderResult() {
    const last = this.frames[this.frames.length - 1];
    const box = $(".result", this.root);
    if (!last || !TERMINAL.has(last.status)) {
      box.hidden = true;
      return;
    }
    box.hidden = false;
    const fills = Array.isArray(last.fills) ? last.fills : [];
    if (last.status === "confirmed") {
      box.className = "result ok";
      const venues = fills.length ? [...new Set(fills.map((f) => f.dex))].join(" + ") : last.dex;
      // Several swaps: each fill lists its own transaction instead of one hash for the order.
      const hash = fills.length
        ? null
        : el("div", { class: "wide" }, el("dt", { text: "Transaction" }), el("dd", {}, el("code", { class: "tx-hash", text: last.txHash })));
      box.replaceChildren(
        ...present(
          el(
            "dl",
            {},
            hash,
          el("div", {}, el("dt", { text: "Execution price" }), el("dd", { class: "execution-price", text: fmtPrice(last.executionPrice, this.request.fromToken, this.request.toToken) })),
          el("div", {}, el("dt", { text: "Received" }), el("dd", { text: `${fmtNumber(last.amountOut)} ${this.request.toToken}` })),
            el("div", {}, el("dt", { text: fills.length > 1 ? "Venues" : "Venue" }), el("dd", { text: venues || "–" })),
          ),
          fillList(fills),
        ),
      );
    } else {
      this.showError(last.error || `the order ended ${last.status}`, fills, expiredNote(last, this.request));
    }
  }

  showError(message, fills = [], note = null) {
    const box = $(".result", this.root);
    box.hidden = false;
    box.className = "result bad";
    box.replaceChildren(
      ...present(
        el("p", { class: "error-text", text: message }),
        note ? el("p", { class: "result-note", text: note }) : null,
        fillList(fills, "Executed before the failure"),
      ),
    );
  }

  // Live durations: the current stage's time keeps counting until the next frame.
  tick(nowMs = Date.now()) {
    this.rows.forEach((row, i) => {
      const frame = this.frames[row.first];
      if (TERMINAL.has(frame.status)) return;
      const next = this.rows[i + 1];
      const end = next ? tsMs(this.frames[next.first]) : this.terminal ? null : nowMs;
      if (end === null) return;
      $(".event-duration", row.node).textContent = fmtDuration(end - tsMs(frame));
      row.node.classList.toggle("live", !next);
      if (row.status === "waiting") this.renderExpiry(row, next ? null : nowMs);
    });
    if (!this.frames.length) return;
    const first = tsMs(this.frames[0]);
    const end = this.terminal ? tsMs(this.frames[this.frames.length - 1]) : nowMs;
    $(".order-elapsed", this.root).textContent = fmtDuration(end - first);
    if (!this.terminal) {
      const spent = this.timeInStatus(nowMs);
      const current = $(`.step.current .step-time`, this.root);
      const status = this.currentStatus();
      if (current && spent.has(status)) {
        current.textContent = fmtDuration(spent.get(status));
        current.dataset.ms = String(Math.round(spent.get(status)));
      }
    }
  }
}

function describe(frame, request) {
  const price = (value) => fmtPrice(value, request.fromToken, request.toToken);
  switch (frame.status) {
    case "pending":
      return frame.message || "waiting for the engine";
    case "waiting":
      return describeWaiting(frame, request);
    case "routing": {
      const plan = Array.isArray(frame.routePlan) ? frame.routePlan : [];
      if (frame.routeType === "split") {
        const legs = plan.map((leg) => `${leg.dex} ${leg.percent}%`).join(" + ");
        return `split: ${legs}, expecting ${fmtNumber(frame.amountOut)}`;
      }
      if (frame.routeType === "multi-hop") {
        const hops = plan.map((leg) => `${leg.fromToken} → ${leg.toToken} on ${leg.dex}`).join(", then ");
        return `multi-hop: ${hops}`;
      }
      const count = (frame.quotes || []).filter((q) => !q.error).length;
      return `best ${frame.bestDex} at ${price(frame.bestPrice)} (${plural(count, "quote")})`;
    }
    case "building":
      return `building the transaction on ${frame.dex}`;
    case "submitted":
      return `submitted to ${frame.dex}`;
    case "retrying":
      return `attempt ${frame.attempt} failed: ${frame.error}; next attempt in ${fmtDuration(frame.nextAttemptInMs)}`;
    case "confirmed": {
      const fills = Array.isArray(frame.fills) ? frame.fills : [];
      const where = fills.length ? `${[...new Set(fills.map((f) => f.dex))].join(" + ")} in ${plural(fills.length, "swap")}` : frame.dex;
      return `confirmed on ${where} at ${price(frame.executionPrice)}`;
    }
    case "failed":
    case "expired":
      return frame.error || frame.status;
    case "cancelled":
      return frame.message || "cancelled before it began to execute; nothing was traded";
    default:
      return "";
  }
}

// What a limit or sniper order waits for, as its card's title says it.
function describeKind(request) {
  if (request.orderType === "limit") {
    return `limit ≥ ${fmtPrice(request.limitPrice, request.fromToken, request.toToken)}`;
  }
  if (request.orderType === "sniper") {
    return request.minLiquidity ? `sniper · pool ≥ ${fmtNumber(request.minLiquidity)} ${request.toToken}` : "sniper · any pool";
  }
  return null;
}

function describeWaiting(frame, request) {
  const to = request.toToken || "";
  const from = request.fromToken || "";
  const where = frame.bestDex ? ` on ${frame.bestDex}` : "";
  if (frame.orderType === "sniper") {
    if (!frame.poolFound) return `no pool${from && to ? ` for ${from}/${to}` : ""} yet`;
    const needs = frame.minLiquidity ? `, needs ${fmtNumber(frame.minLiquidity)}` : "";
    return `pool${where}: ${fmtNumber(frame.liquidity)} ${to} liquidity${needs}`;
  }
  const price = frame.currentPrice === null || frame.currentPrice === undefined ? "no route yet" : `price ${fmtPrice(frame.currentPrice, from, to)}`;
  return `${price}${where} vs limit ${fmtPrice(frame.limitPrice, from, to)}`;
}

// Percent of the order each venue takes in the chosen route (direct: the best venue, all of it).
function planShares(frame, request) {
  const shares = new Map();
  if (frame.status !== "routing") return shares;
  const plan = Array.isArray(frame.routePlan) ? frame.routePlan : [];
  for (const leg of plan) {
    if (leg.fromToken === request.fromToken && leg.toToken === request.toToken) {
      shares.set(leg.dex, (shares.get(leg.dex) || 0) + leg.percent);
    }
  }
  if (!plan.length && frame.bestDex) shares.set(frame.bestDex, 100); // an engine without routePlan
  return shares;
}

function noDirectQuote(frame, request) {
  const plan = Array.isArray(frame.routePlan) ? frame.routePlan : [];
  const through = frame.routeType === "multi-hop" && plan.length > 1 ? `; routed through ${plan[0].toToken}` : "";
  return `No venue has a ${request.fromToken}/${request.toToken} pool${through}.`;
}

// minAmountOut is exact base units; scale it by the route's own units-to-tokens ratio.
function minAmountOut(frame) {
  const least = Number(frame.minAmountOut);
  const units = Number(frame.outAmount);
  if (!Number.isFinite(least) || !units || typeof frame.amountOut !== "number") return null;
  return (frame.amountOut * least) / units;
}

function fillList(fills, title = null) {
  if (!fills.length) return null;
  return el(
    "div",
    { class: "fills" },
    title ? el("h4", { text: title }) : null,
    el(
      "ol",
      {},
      ...fills.map((fill) =>
        el(
          "li",
          { class: "fill", "data-dex": fill.dex },
          el("span", { class: "fill-dex", text: fill.dex }),
          el("code", { class: "fill-tx", title: fill.txHash, text: fill.txHash }),
          el("span", { class: "fill-out", text: `${fmtNumber(fill.amountIn)} ${fill.fromToken} → ${fmtNumber(fill.amountOut)} ${fill.toToken}` }),
        ),
      ),
    ),
  );
}

function expiredNote(frame, request) {
  if (frame.status !== "expired" || typeof frame.currentPrice !== "number") return null;
  const price = (value) => fmtPrice(value, request.fromToken, request.toToken);
  const limit = typeof frame.limitPrice === "number" ? `; the limit was ${price(frame.limitPrice)}` : "";
  return `Last price ${price(frame.currentPrice)}${limit}.`;
}

// ---------------------------------------------------------------- the page

const page = {
  config: null,
  orders: new Map(),
  marketPrice: null, // the latest marketPrice from /api/activity, for the limit prefill
};

const TYPE_HINTS = {
  market: "Executes at once.",
  limit: "Waits until the best route pays at least the limit price.",
  sniper: "Waits for a pool for the pair, then executes.",
};

const fieldNumber = (id) => {
  const raw = $(id).value.trim();
  return raw === "" ? undefined : Number(raw);
};

// Only the fields the order type takes: the engine rejects the others.
function orderRequest() {
  const raw = $("#amount").value.trim();
  const orderType = $("#orderType").value || "market";
  const request = {
    fromToken: $("#fromToken").value,
    toToken: $("#toToken").value,
    amount: raw === "" ? null : Number(raw),
    orderType,
  };
  const slippage = fieldNumber("#slippageBps");
  if (slippage !== undefined) request.slippageBps = slippage;
  if (orderType === "limit") request.limitPrice = fieldNumber("#limitPrice");
  if (orderType === "sniper") request.minLiquidity = fieldNumber("#minLiquidity");
  if (WAITING_TYPES.has(orderType)) request.expiresInSeconds = fieldNumber("#expiresInSeconds");
  for (const key of Object.keys(request)) if (request[key] === undefined) delete request[key];
  return request;
}

// What the engine is asked for the limit prefill: the form's pair and amount, while the type is limit.
function marketPriceQuestion() {
  if ($("#orderType").value !== "limit") return null;
  const from = $("#fromToken").value;
  const to = $("#toToken").value;
  const amount = Number($("#amount").value.trim());
  if (!from || !to || !Number.isFinite(amount) || amount <= 0) return null;
  return { fromToken: from, toToken: to, amount };
}

// Rounded down to 6 significant digits: a limit prefilled "at market" must not ask for more than the market.
function floorPrice(price) {
  const scale = 10 ** (5 - Math.floor(Math.log10(price)));
  return Number((Math.floor(price * scale) / scale).toPrecision(6));
}

// The limit "at market" is the price the engine's limit check compares: the best route's output per
// unit of input after venue fees, for this amount (marketPrice in /api/activity), not a pre-fee quote.
function prefillLimit() {
  const limit = $("#limitPrice");
  if ($("#orderType").value !== "limit" || limit.dataset.edited === "true") return;
  const asked = marketPriceQuestion();
  const known = page.marketPrice;
  const fits =
    asked && known && known.fromToken === asked.fromToken && known.toToken === asked.toToken && known.amount === asked.amount;
  if (fits && typeof known.price === "number" && known.price > 0) {
    limit.value = String(floorPrice(known.price));
    limit.dataset.source = "engine";
    limit.placeholder = "";
  } else {
    limit.value = "";
    delete limit.dataset.source;
    limit.placeholder = fits ? "no route now" : "asking the engine…";
  }
}

function updateTypeFields({ repriced = false } = {}) {
  const type = $("#orderType").value || "market";
  $("#wait-fields").hidden = !WAITING_TYPES.has(type);
  for (const label of document.querySelectorAll("#wait-fields [data-types]")) {
    label.hidden = !label.dataset.types.split(" ").includes(type);
  }
  $("#type-hint").textContent = TYPE_HINTS[type] || "";
  const from = $("#fromToken").value;
  const to = $("#toToken").value;
  $("#limit-unit").textContent = priceUnit(from, to);
  $("#liquidity-unit").textContent = to;
  if (repriced) delete $("#limitPrice").dataset.edited;
  prefillLimit();
  if (type === "limit") pollSoon(); // the engine's market price for this pair and amount
}

// The quote preview: what the engine would do with the form's order now (GET /api/quote), asked
// once the form rests for QUOTE_DEBOUNCE_MS; an answer to an older question is dropped.
let quoteTimer = null;
let quoteAsked = 0;

function previewQuoteSoon() {
  clearTimeout(quoteTimer);
  quoteTimer = setTimeout(previewQuote, QUOTE_DEBOUNCE_MS);
}

async function previewQuote() {
  const box = $("#quote-preview");
  const from = $("#fromToken").value;
  const to = $("#toToken").value;
  const amount = $("#amount").value.trim();
  const asked = ++quoteAsked;
  if (!from || !to || amount === "") {
    box.hidden = true;
    return;
  }
  const params = new URLSearchParams({ fromToken: from, toToken: to, amount });
  const slippage = $("#slippageBps").value.trim();
  if (slippage !== "") params.set("slippageBps", slippage);
  let result;
  try {
    result = await getJson(`/api/quote?${params}`);
  } catch {
    result = { ok: false, body: { error: "the engine did not answer" } };
  }
  if (asked !== quoteAsked) return;
  box.hidden = false;
  if (!result.ok) {
    box.dataset.state = "error";
    box.textContent = `No quote: ${result.body.error || "the engine refused the question"}`;
    return;
  }
  const quote = result.body;
  const venues = [...new Set((quote.routePlan || []).map((leg) => leg.dex))].join(" + ") || quote.bestDex;
  const least = minAmountOut(quote);
  const impact = typeof quote.priceImpactPct === "number" ? ` · impact ${fmtImpact(quote.priceImpactPct)}` : "";
  box.dataset.state = "ok";
  box.textContent =
    `Now: about ${fmtNumber(quote.amountOut)} ${to} via ${venues} (${quote.routeType})` +
    (least === null ? "" : `, at least ${fmtNumber(least)} after slippage`) +
    impact;
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
      headers: withKey({ "Content-Type": "application/json" }),
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
  const counts = { active: 0, confirmed: 0, failed: 0, expired: 0, cancelled: 0 };
  for (const view of views) {
    const status = view.currentStatus();
    if (!view.terminal) counts.active += 1;
    else if (status === "confirmed") counts.confirmed += 1;
    else if (status === "expired") counts.expired += 1;
    else if (status === "cancelled") counts.cancelled += 1;
    else counts.failed += 1;
  }
  const expired =
    (counts.expired ? ` · ${counts.expired} expired` : "") + (counts.cancelled ? ` · ${counts.cancelled} cancelled` : "");
  $("#orders-summary").textContent = views.length
    ? `${views.length} on this page · ${counts.active} unfinished · ${counts.confirmed} confirmed · ${counts.failed} failed${expired}`
    : "Submit an order to watch it execute.";
  $("#clear-finished").hidden = counts.confirmed + counts.failed + counts.expired + counts.cancelled === 0;
}

// The status filter: "unfinished" is every order not yet confirmed, failed or expired.
function applyFilter(view) {
  const wanted = $("#status-filter").value;
  const status = view.currentStatus();
  const shown = wanted === "all" || (wanted === "unfinished" ? !TERMINAL.has(status) : status === wanted);
  view.root.hidden = !shown;
}

function fillTokens(config) {
  const from = $("#fromToken");
  const tradable = [...new Set(config.pairs.map(([a]) => a))];
  from.replaceChildren(...tradable.map((t) => el("option", { value: t, text: t })));
  if (tradable.includes("SOL")) from.value = "SOL";
  fillTargets(config, "USDC");
  $("#orderType").replaceChildren(...config.orderTypes.map((t) => el("option", { value: t, text: t })));
  $("#amount").max = String(config.maxAmount);
  if (config.defaultSlippageBps !== undefined) $("#slippageBps").value = String(config.defaultSlippageBps);
  if (config.maxSlippageBps !== undefined) $("#slippageBps").max = String(config.maxSlippageBps);
  updateTypeFields({ repriced: true });
}

function fillTargets(config, preferred) {
  const from = $("#fromToken").value;
  const to = $("#toToken");
  const keep = preferred || to.value;
  const targets = config.pairs.filter(([a]) => a === from).map(([, b]) => b);
  to.replaceChildren(...targets.map((t) => el("option", { value: t, text: t })));
  if (targets.includes(keep)) to.value = keep;
  updateTypeFields({ repriced: true });
  previewQuoteSoon();
}

// ---------------------------------------------------------------- engine panel

async function getJson(url) {
  const response = await fetch(url, { cache: "no-store", headers: withKey() });
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
    const asked = marketPriceQuestion();
    const query = asked ? `?${new URLSearchParams(asked)}` : "";
    const [health, activity] = await Promise.all([getJson("/health"), getJson(`/api/activity${query}`)]);
    renderEngine(health.body, activity.body);
    renderInFlight(health.body, health.ok);
    if (activity.ok && activity.body.marketPrice) {
      page.marketPrice = activity.body.marketPrice;
      prefillLimit();
    }
    pill.dataset.state = health.ok ? "ok" : "degraded";
    if (!health.ok) $("#engine-pill-text").textContent = `engine degraded · Redis ${health.body.redis}`;
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
  $("#stat-confirmed").textContent = activity.totals?.confirmed ?? 0;
  const expired = activity.totals?.expired ?? 0;
  $("#stat-failed").replaceChildren(
    String(activity.totals?.failed ?? 0),
    expired ? el("span", { class: "muted", text: ` + ${expired} expired` }) : "",
  );
  renderVenues(activity.venues || {});
  renderRecent(activity.recent || []);
  $("#engine-updated").textContent = `updated ${fmtClock(new Date().toISOString()).slice(0, 8)}`;
}

// "In flight" has one source, /health's ordersInFlight (orders this process's worker is executing),
// written to the header and the engine panel in the same step so they never disagree.
function renderInFlight(health, ok) {
  const known = typeof health.ordersInFlight === "number";
  for (const node of document.querySelectorAll("[data-in-flight]")) node.dataset.inFlight = known ? String(health.ordersInFlight) : "";
  $("#stat-inflight").textContent = known ? String(health.ordersInFlight) : "– (no worker here)";
  if (ok) {
    $("#engine-pill-text").textContent = known ? `engine ok · ${health.ordersInFlight} in flight` : "engine ok · no worker here";
  }
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
  $("#toToken").addEventListener("change", () => updateTypeFields({ repriced: true }));
  $("#orderType").addEventListener("change", () => updateTypeFields());
  $("#amount").addEventListener("input", () => updateTypeFields());
  for (const id of ["#fromToken", "#toToken", "#amount", "#slippageBps"]) {
    $(id).addEventListener("input", previewQuoteSoon);
    $(id).addEventListener("change", previewQuoteSoon);
  }
  $("#limitPrice").addEventListener("input", (event) => (event.target.dataset.edited = "true"));
  $("#swap-tokens").addEventListener("click", () => {
    const from = $("#fromToken").value;
    const to = $("#toToken").value;
    $("#fromToken").value = to;
    if (page.config) fillTargets(page.config, from);
  });
  $("#status-filter").addEventListener("change", () => page.orders.forEach(applyFilter));
  $("#compact-toggle").addEventListener("click", (event) => {
    const compact = $("#order-list").classList.toggle("compact");
    event.currentTarget.setAttribute("aria-pressed", String(compact));
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

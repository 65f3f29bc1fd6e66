"""The OpenAPI 3.1 document of the HTTP API, served at ``/api/openapi.json``.

Written by hand as data, next to the handlers it describes; a test checks
real responses of every endpoint against it, and that every route of the URL
table is in it, so it cannot drift from the code.
"""

from __future__ import annotations

from typing import Any

from tornado_engine import __version__
from tornado_engine.orders.statuses import Status
from tornado_engine.web.base import JsonHandler


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {"type": "string", "description": "A sentence for a person."},
            "field": {"type": "string", "description": "The request field at fault, when one is."},
        },
    },
    "OrderRequest": {
        "type": "object",
        "required": ["fromToken", "toToken", "amount"],
        "properties": {
            "fromToken": {"type": "string", "description": "A token some enabled venue trades."},
            "toToken": {"type": "string", "description": "Different from fromToken."},
            "amount": {
                "oneOf": [
                    {"type": "number", "exclusiveMinimum": 0},
                    {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?$", "maxLength": 64},
                ],
                "description": 'A JSON number or a decimal string ("1", "0.25"; counted exactly, never '
                "through a float); > 0, at most orders.max_amount, no more decimal places than "
                "fromToken has.",
            },
            "orderType": {"type": "string", "default": "market"},
        },
    },
    "OrderAccepted": {
        "type": "object",
        "required": ["orderId", "status", "wsUrl"],
        "properties": {
            "orderId": {"type": "string", "format": "uuid"},
            "status": {"const": "pending"},
            "wsUrl": {
                "type": "string",
                "description": "The WebSocket to open: ws(s)://<the request's Host>/ws?orderId=<orderId>; "
                "wss when the request came over https (X-Forwarded-Proto: https from a TLS proxy).",
            },
        },
    },
    "Frame": {
        "type": "object",
        "description": "One order event, as recorded in Redis and sent over /ws.",
        "required": ["orderId", "status", "seq", "ts"],
        "properties": {
            "orderId": {"type": "string"},
            "status": {"enum": [s.value for s in Status]},
            "seq": {"type": "integer", "minimum": 1, "description": "1, 2, 3 ... per order, no gaps."},
            "ts": {"type": "string", "format": "date-time"},
            "message": {"type": "string"},
            "bestDex": {"type": "string"},
            "bestPrice": {"type": "number"},
            "quotes": {"type": "array", "items": {"type": "object", "required": ["dex"]}},
            "dex": {"type": "string"},
            "txHash": {"type": "string"},
            "executionPrice": {"type": "number"},
            "attempt": {"type": "integer", "minimum": 1},
            "nextAttemptInMs": {"type": "integer", "minimum": 0},
            "error": {"type": "string"},
        },
    },
    "OrderState": {
        "type": "object",
        "required": ["orderId", "status", "order", "events"],
        "properties": {
            "orderId": {"type": "string"},
            "status": {"enum": [s.value for s in Status]},
            "order": {
                "type": "object",
                "required": ["fromToken", "toToken", "amount", "orderType"],
                "properties": {
                    "fromToken": {"type": "string"},
                    "toToken": {"type": "string"},
                    "amount": {"type": "number"},
                    "orderType": {"type": "string"},
                },
            },
            "events": {"type": "array", "items": _ref("Frame")},
        },
    },
    "Health": {
        "type": "object",
        "required": ["status", "redis", "role", "venues"],
        "properties": {
            "status": {"enum": ["ok", "degraded"]},
            "redis": {"type": "string"},
            "role": {"enum": ["all", "api", "worker"]},
            "venues": {"type": "array", "items": {"type": "string"}},
            "waitingOrders": {"type": ["integer", "null"]},
            "ordersInFlight": {"type": "integer"},
            "redisData": {
                "type": "object",
                "description": "intact, or lost: the last time this process found Redis had lost its data",
                "required": ["state"],
                "properties": {
                    "state": {"enum": ["intact", "lost"]},
                    "losses": {"type": "integer"},
                    "last": {
                        "type": "object",
                        "properties": {
                            "detectedAt": {"type": "string"},
                            "reason": {"type": "string"},
                            "oldEpoch": {"type": "string"},
                            "newEpoch": {"type": "string"},
                        },
                    },
                },
            },
            "plugins": {
                "type": "array",
                "description": "Each installed plugin: loaded, failed (errors say why) or disabled.",
                "items": {"type": "object"},
            },
            "venueStates": {
                "type": "array",
                "description": "Each configured venue: running, unavailable (error says why) or disabled.",
                "items": {"type": "object"},
            },
            "lastReload": {
                "type": ["object", "null"],
                "description": "The last reload of venues.yaml (ok, error, added, removed ...).",
            },
        },
    },
    "Live": {
        "type": "object",
        "required": ["status", "role"],
        "properties": {"status": {"const": "live"}, "role": {"enum": ["all", "api", "worker"]}},
    },
    "Ready": {
        "type": "object",
        "required": ["status", "redis"],
        "properties": {
            "status": {"enum": ["ready", "not ready"]},
            "redis": {"type": "string", "description": '"ok", or why not'},
            "worker": {"enum": ["running", "stopped"], "description": "In processes that run the worker."},
        },
    },
    "PluginState": {
        "type": "object",
        "required": ["name", "source", "state", "kinds", "errors"],
        "properties": {
            "name": {"type": "string"},
            "source": {"type": "string"},
            "state": {"enum": ["loaded", "failed", "disabled"]},
            "kinds": {"type": "array", "items": {"type": "string"}},
            "errors": {"type": "array", "items": {"type": "string"}},
        },
    },
    "VenueState": {
        "type": "object",
        "required": ["name", "kind", "plugin", "state", "tokens", "error"],
        "properties": {
            "name": {"type": "string"},
            "kind": {"type": "string"},
            "plugin": {"type": ["string", "null"]},
            "state": {"enum": ["running", "disabled", "unavailable"]},
            "tokens": {"type": "array", "items": {"type": "string"}},
            "error": {"type": ["string", "null"]},
        },
    },
    "Venues": {
        "type": "object",
        "required": ["venues", "tokens", "pairs", "plugins", "venueStates"],
        "properties": {
            "venues": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "plugin", "enabled", "tokens"],
                    "properties": {
                        "name": {"type": "string"},
                        "plugin": {"type": "string"},
                        "enabled": {"type": "boolean"},
                        "tokens": {"type": "array", "items": {"type": "string"}},
                    },
                },
            },
            "tokens": {"type": "array", "items": {"type": "string"}},
            "pairs": {"type": "array", "items": {"type": "array", "items": {"type": "string"}}},
            "referencePrices": {"type": "object", "additionalProperties": {"type": "number"}},
            "maxAmount": {"type": "number"},
            "orderTypes": {"type": "array", "items": {"type": "string"}},
            "defaultSlippageBps": {"type": "integer"},
            "maxSlippageBps": {"type": "integer"},
            "plugins": {"type": "array", "items": _ref("PluginState")},
            "venueStates": {"type": "array", "items": _ref("VenueState")},
        },
    },
    "Activity": {
        "type": "object",
        "required": ["recent", "totals", "venues"],
        "properties": {
            "recent": {"type": "array", "items": {"type": "object", "required": ["orderId", "status"]}},
            "totals": {"type": "object", "additionalProperties": {"type": "integer"}},
            "venues": {"type": "object"},
            "marketPrice": _ref("MarketPrice"),
        },
    },
    "MarketPrice": {
        "type": "object",
        "description": "Only when asked with fromToken, toToken and amount: the price a limit order for them "
        "would be compared against now (the best route's output per unit of input, after venue fees).",
        "required": ["fromToken", "toToken", "amount", "price", "dex"],
        "properties": {
            "fromToken": {"type": "string"},
            "toToken": {"type": "string"},
            "amount": {"type": "number"},
            "price": {"type": ["number", "null"], "description": "toToken per fromToken; null: no route now"},
            "dex": {"type": ["string", "null"], "description": "the venue carrying most of the route"},
        },
    },
}

PATHS: dict[str, Any] = {
    "/api/orders/execute": {
        "post": {
            "summary": "Submit an order; it waits until its client opens /ws.",
            "parameters": [
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "description": "Makes a retry safe: the same key with the same body answers with the "
                    "first request's order (nothing executes twice), within "
                    "orders.idempotency_window_seconds (default 24 h), from any API process. "
                    "1 to 255 printable ASCII characters without spaces, such as a UUID.",
                    "schema": {"type": "string", "pattern": "^[!-~]{1,255}$"},
                }
            ],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("OrderRequest")}},
            },
            "responses": {
                "200": {
                    **_json(_ref("OrderAccepted"), "Accepted: open wsUrl (/ws?orderId=...) to start it."),
                    "headers": {
                        "Idempotent-Replayed": {
                            "description": "true when this answers a repeated Idempotency-Key: the order "
                            "is the first request's, nothing new was submitted.",
                            "schema": {"type": "string", "enum": ["true"]},
                        }
                    },
                },
                "400": _error(
                    "The body is not a valid order, or Idempotency-Key cannot be a key; "
                    "`field` names the culprit."
                ),
                "413": _error("The body is larger than server.max_body_bytes."),
                "415": _error("Content-Type is not application/json."),
                "429": _error(
                    "A per-client limit (orders per second, in flight, or waiting for their socket); "
                    "the Retry-After header gives the seconds to wait. Only with keys on or "
                    "limits.per_address."
                ),
                "422": _error(
                    "This Idempotency-Key was used with a different body (field: Idempotency-Key); "
                    "the error names the key's order."
                ),
                "503": _error("Redis is unreachable; try again shortly."),
            },
        }
    },
    "/api/orders": {
        "get": {
            "summary": "Orders newest first, a page at a time (within orders.retention_seconds).",
            "description": "With keys on, a key's own orders (an admin key: all). Each entry is the order's "
            "id, current status and summary; GET /api/orders/{orderId} has its events.",
            "parameters": [
                {"name": "status", "in": "query", "required": False, "schema": {"type": "string"}},
                {
                    "name": "limit",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
                },
                {"name": "cursor", "in": "query", "required": False, "schema": {"type": "string"}},
            ],
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "required": ["orders", "nextCursor"],
                        "properties": {
                            "orders": {"type": "array", "items": {"type": "object"}},
                            "nextCursor": {"type": ["string", "null"]},
                        },
                    },
                    "A page; nextCursor fetches the next one (null at the end).",
                ),
                "400": _error("status, limit or cursor is wrong; `field` names it."),
                "503": _error("Redis is unreachable; try again shortly."),
            },
        }
    },
    "/api/quote": {
        "get": {
            "summary": "The route the engine would take now for an order, without executing anything.",
            "description": "The fields of the routing frame (components/schemas/Frame): every venue's "
            "quote, bestDex, routeType and routePlan (the legs), amountOut and outAmount (expected output), "
            "minAmountOut (after slippageBps), priceImpactPct and quoteExpiresAt.",
            "parameters": [
                {"name": "fromToken", "in": "query", "required": True, "schema": {"type": "string"}},
                {"name": "toToken", "in": "query", "required": True, "schema": {"type": "string"}},
                {"name": "amount", "in": "query", "required": True, "schema": {"type": "string"}},
                {"name": "slippageBps", "in": "query", "required": False, "schema": {"type": "integer"}},
            ],
            "responses": {
                "200": _json({"type": "object"}, "fromToken, toToken, amount, the routing frame's fields."),
                "400": _error("A parameter is missing or wrong, as for an order body; `field` names it."),
                "503": _error("No venue can quote the pair now (the error says what each answered)."),
            },
        }
    },
    "/api/orders/{orderId}": {
        "delete": {
            "summary": "Cancel an order that has not begun to execute (pending or waiting).",
            "description": "It ends with the terminal status cancelled, sent to every socket watching it. "
            "Exactly one of cancelled or executed, even racing a worker.",
            "parameters": [{"name": "orderId", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "required": ["orderId", "status"],
                        "properties": {"orderId": {"type": "string"}, "status": {"const": "cancelled"}},
                    },
                    "Cancelled now, or already.",
                ),
                "404": _error("No such order (or it is older than orders.retention_seconds)."),
                "409": _json(
                    {
                        "type": "object",
                        "required": ["error", "orderId", "status"],
                        "properties": {
                            "error": {"type": "string"},
                            "orderId": {"type": "string"},
                            "status": {"type": "string"},
                        },
                    },
                    "The order is executing or finished; status says where it is.",
                ),
                "503": _error("Redis is unreachable; try again shortly."),
            },
        },
        "get": {
            "summary": "An order's current status and every event so far.",
            "parameters": [{"name": "orderId", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {
                "200": _json(_ref("OrderState"), "The order."),
                "404": _error("No such order (or it is older than orders.retention_seconds)."),
                "503": _error(
                    "Redis is unreachable, or the order's record is incomplete (Redis lost data); "
                    "try again shortly."
                ),
            },
        },
    },
    "/ws": {
        "get": {
            "summary": "WebSocket: every Frame of the order, in order, then a normal close.",
            "description": "Each message is one Frame (components/schemas/Frame). With lastSeq, only "
            "later frames are sent. A socket that cannot be served gets one frame with status "
            '"error" and no seq, then a close.',
            "parameters": [
                {"name": "orderId", "in": "query", "required": True, "schema": {"type": "string"}},
                {"name": "lastSeq", "in": "query", "required": False, "schema": {"type": "integer"}},
            ],
            "responses": {
                "101": {"description": "Switching to the WebSocket protocol."},
                "400": _error("Not a WebSocket handshake (no Upgrade: websocket, or a header missing)."),
                "403": _error(
                    "A browser page from another origin while server.allowed_origins is restricted "
                    '(the default, ["*"], lets any origin watch an order).'
                ),
                "426": _error("A WebSocket version other than 13 (7 and 8 are accepted too)."),
            },
        }
    },
    "/health": {
        "get": {
            "summary": "Redis reachability and what this process runs.",
            "responses": {
                "200": _json(_ref("Health"), "Redis answers."),
                "503": _json(_ref("Health"), "Redis does not answer."),
            },
        }
    },
    "/health/live": {
        "get": {
            "summary": "Liveness: the process answers. Restart it when this fails.",
            "responses": {"200": _json(_ref("Live"), "Alive.")},
        }
    },
    "/health/ready": {
        "get": {
            "summary": "Readiness: Redis answers and the worker loop runs. Route no traffic while 503.",
            "responses": {
                "200": _json(_ref("Ready"), "Ready."),
                "503": _json(_ref("Ready"), "Not ready; the body says what is wrong."),
            },
        }
    },
    "/api/venues": {
        "get": {
            "summary": "Configured venues, what may be ordered, installed plugins and venue states.",
            "responses": {"200": _json(_ref("Venues"), "The report.")},
        }
    },
    "/api/activity": {
        "get": {
            "summary": "Recent terminal outcomes and per-venue quoting, as this API process saw them.",
            "parameters": [
                {"name": name, "in": "query", "required": False, "schema": schema, "description": text}
                for name, schema, text in (
                    ("fromToken", {"type": "string"}, "with toToken and amount: adds marketPrice"),
                    ("toToken", {"type": "string"}, "with fromToken and amount: adds marketPrice"),
                    ("amount", {"type": "number"}, "with fromToken and toToken: adds marketPrice"),
                )
            ],
            "responses": {
                "200": _json(_ref("Activity"), "The activity log."),
                "400": _error("A marketPrice question is incomplete or invalid; `field` names the culprit."),
            },
        }
    },
    "/metrics": {
        "get": {
            "summary": "Prometheus metrics of this process.",
            "responses": {
                "200": {
                    "description": "Prometheus text exposition format.",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            },
        }
    },
    "/api/admin/pools": {
        "get": {
            "summary": "The simulated venues' pools (only with orders.admin_api: true; else 404).",
            "responses": {
                "200": _json({"type": "object"}, "Pools by venue."),
                "404": _error("Admin API off."),
            },
        },
        "post": {
            "summary": "Open (or replace) a pool on a simulated venue: {venue, pair: 'A/B', ...pool keys}.",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["venue", "pair"],
                            "properties": {
                                "venue": {"type": "string"},
                                "pair": {"type": "string", "description": "BASE/QUOTE, e.g. SOL/USDC"},
                            },
                        }
                    }
                },
            },
            "responses": {
                "200": _json({"type": "object"}, "The venue's pools after the change."),
                "400": _error("A bad venue, pair or pool key (field names it), or values out of range."),
                "403": _error("Sent from another site (Origin or Sec-Fetch-Site say so)."),
                "404": _error("Admin API off."),
                "415": _error("Content-Type is not application/json."),
            },
        },
    },
    "/api/openapi.json": {
        "get": {
            "summary": "This document.",
            "responses": {"200": _json({"type": "object"}, "The OpenAPI document.")},
        }
    },
}


# Any request can meet these: the server answers them before any endpoint sees the request.
EVERY_OPERATION = {
    "413": _error("A declared body larger than server.max_body_bytes."),
    "431": _error("A request head (URL and headers) larger than server.max_header_bytes."),
    "421": _error("A Host header this server does not answer to (server.allowed_hosts; DNS rebinding)."),
}


# With keys on (auth.required / serve --require-keys), the scope each operation needs; the rest are open.
SCOPES: dict[tuple[str, str], str] = {
    ("/api/orders/execute", "post"): "trade",
    ("/api/orders/{orderId}", "get"): "read",
    ("/api/quote", "get"): "read",
    ("/api/orders", "get"): "read",
    ("/api/orders/{orderId}", "delete"): "trade",
    ("/ws", "get"): "read",
    ("/api/venues", "get"): "read",
    ("/api/activity", "get"): "read",
    ("/api/admin/pools", "get"): "admin",
    ("/api/admin/pools", "post"): "admin",
}
SECURITY_SCHEMES = {
    "apiKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "Authorization: Bearer <key>, a key from `tornado-engine keys add`. Only when the "
        "server runs with auth.required (serve --require-keys); off by default. Scopes nest: read (the "
        "key's own orders, venues, activity), trade (also submit), admin (everything, every order).",
    },
    "tokenParameter": {
        "type": "apiKey",
        "in": "query",
        "name": "token",
        "description": "The same key as ?token=<key>, for /ws only (browsers cannot set headers there).",
    },
}
KEYED_RESPONSES = {
    "401": _error(
        "Keys are on and the request has no valid key (missing, malformed, unknown or revoked); "
        "WWW-Authenticate: Bearer says so."
    ),
    "403": _error("The key lacks the scope this needs (or, for the admin API, the request is cross-site)."),
}


def _with_common_responses(paths: dict[str, Any]) -> dict[str, Any]:
    for path, operations in paths.items():
        for method, operation in operations.items():
            for code, response in EVERY_OPERATION.items():
                operation["responses"].setdefault(code, response)
            scope = SCOPES.get((path, method))
            if scope is not None:
                schemes = [{"apiKey": [scope]}] + ([{"tokenParameter": [scope]}] if path == "/ws" else [])
                operation["security"] = [{}, *schemes]  # {}: no key while keys are off (the default)
                for code, response in KEYED_RESPONSES.items():
                    operation["responses"].setdefault(code, response)
    return paths


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "tornado-engine",
            "version": __version__,
            "description": "Order execution for crypto swaps: submit over HTTP, watch over a WebSocket.",
        },
        "paths": _with_common_responses(PATHS),
        "components": {"schemas": SCHEMAS, "securitySchemes": SECURITY_SCHEMES},
    }


class OpenApiHandler(JsonHandler):
    """``GET /api/openapi.json``."""

    def get(self) -> None:
        self.write_json(document())

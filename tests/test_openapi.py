"""/api/openapi.json describes the real API: every route is in it, and real responses match it."""

from __future__ import annotations

import json
import uuid

import pytest
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate as validate_spec
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from tornado_engine.web.openapi import document

# URL-table patterns and the OpenAPI paths they serve; page files are not API.
PATTERN_PATHS = {r"/api/orders/([^/]+)$": "/api/orders/{orderId}"}
NOT_API = {r"/()$", r"/static/(.+)$"}


@pytest.fixture(scope="module")
def doc() -> dict:
    return document()


def check(doc: dict, path: str, method: str, code: int, body: bytes, content_type: str) -> None:
    """Validate one real response against the document; fail naming what differs."""
    responses = doc["paths"][path][method]["responses"]
    assert str(code) in responses, f"{method.upper()} {path} answered {code}, which is not documented"
    content = responses[str(code)].get("content", {})
    media = content_type.split(";", 1)[0].strip()
    assert media in content, f"{method.upper()} {path} {code} answered {media}, documented: {list(content)}"
    if media == "application/json":
        schema = {**content[media]["schema"], "components": doc["components"]}
        errors = sorted(OAS31Validator(schema).iter_errors(json.loads(body)), key=str)
        assert not errors, f"{method.upper()} {path} {code}: " + "; ".join(e.message for e in errors)


async def call(
    base_url: str, path: str, method: str = "GET", body: str | None = None, content_type: str = ""
):
    headers = {"Content-Type": content_type} if content_type else {}
    request = HTTPRequest(base_url + path, method=method, body=body, headers=headers)
    return await AsyncHTTPClient().fetch(request, raise_error=False)


def test_the_document_is_valid_openapi_3_1(doc):
    validate_spec(doc)


def test_every_route_of_the_url_table_is_documented(app, doc):
    patterns = [rule.matcher.regex.pattern for rule in app.wildcard_router.rules]
    for pattern in patterns:
        if pattern in NOT_API:
            continue
        path = PATTERN_PATHS.get(pattern, pattern.rstrip("$"))
        assert path in doc["paths"], f"route {pattern} is not in the OpenAPI document"


@pytest.mark.gen_test(timeout=20)
async def test_real_responses_match_the_document(client, base_url, doc):
    order_json = json.dumps({"fromToken": "SOL", "toToken": "USDC", "amount": 1})
    cases = [
        ("/api/orders/execute", "POST", order_json, "application/json"),
        ("/api/orders/execute", "POST", "{not json", "application/json"),
        ("/api/orders/execute", "POST", json.dumps({"fromToken": "SOL"}), "application/json"),
        ("/api/orders/execute", "POST", order_json, "text/plain"),
        ("/api/orders/execute", "POST", "x" * 70_000, "application/json"),
        ("/api/orders/no-such-order", "GET", None, ""),
        ("/health", "GET", None, ""),
        ("/health/live", "GET", None, ""),
        ("/health/ready", "GET", None, ""),
        ("/api/venues", "GET", None, ""),
        ("/api/activity", "GET", None, ""),
        ("/metrics", "GET", None, ""),
        ("/api/openapi.json", "GET", None, ""),
    ]
    seen = set()
    for path, method, body, content_type in cases:
        response = await call(base_url, path, method, body, content_type)
        documented = "/api/orders/{orderId}" if path == "/api/orders/no-such-order" else path
        check(doc, documented, method.lower(), response.code, response.body, response.headers["Content-Type"])
        seen.add((documented, response.code))
    assert {("/api/orders/execute", code) for code in (200, 400, 413, 415)} <= seen


@pytest.mark.gen_test(timeout=20)
async def test_an_order_its_frames_and_its_state_match_the_document(client, base_url, doc):
    order_id = await client.submit()
    pending = await call(base_url, f"/api/orders/{order_id}")
    check(doc, "/api/orders/{orderId}", "get", pending.code, pending.body, pending.headers["Content-Type"])
    frames = await client.frames(order_id)
    frame_schema = {"$ref": "#/components/schemas/Frame", "components": doc["components"]}
    for frame in frames:
        OAS31Validator(frame_schema).validate(frame)
    done = await call(base_url, f"/api/orders/{order_id}")
    check(doc, "/api/orders/{orderId}", "get", done.code, done.body, done.headers["Content-Type"])
    assert json.loads(done.body)["status"] == "confirmed"


@pytest.mark.gen_test(timeout=20)
async def test_idempotent_submit_answers_match_the_document(client, base_url, doc):
    order = {"fromToken": "SOL", "toToken": "USDC", "amount": "0.5"}
    key = f"openapi-{uuid.uuid4().hex}"
    seen = set()
    for body, headers in [
        (order, {"Idempotency-Key": key}),
        (order, {"Idempotency-Key": key}),
        ({**order, "amount": "0.6"}, {"Idempotency-Key": key}),
        (order, {"Idempotency-Key": "no spaces allowed"}),
    ]:
        request = HTTPRequest(
            base_url + "/api/orders/execute",
            method="POST",
            body=json.dumps(body),
            headers={"Content-Type": "application/json", **headers},
        )
        response = await AsyncHTTPClient().fetch(request, raise_error=False)
        check(
            doc, "/api/orders/execute", "post", response.code, response.body, response.headers["Content-Type"]
        )
        seen.add(response.code)
    assert seen == {200, 422, 400}


def test_the_check_catches_a_response_that_breaks_the_document(doc):
    with pytest.raises(AssertionError, match="5 is not of type 'string'"):
        check(
            doc,
            "/api/orders/execute",
            "post",
            200,
            b'{"orderId": 5, "status": "pending"}',
            "application/json",
        )
    with pytest.raises(AssertionError, match="answered 418, which is not documented"):
        check(doc, "/health/live", "get", 418, b"{}", "application/json")

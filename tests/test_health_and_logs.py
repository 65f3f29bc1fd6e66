"""/health/live and /health/ready for orchestrators; plain or JSON log lines carrying the orderId."""

from __future__ import annotations

import io
import json
import logging

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClient, HTTPRequest

from tornado_engine.config import ConfigError, load_config
from tornado_engine.observability.logs import JsonFormatter
from tornado_engine.storage.connection import connect


async def get(base_url: str, path: str) -> tuple[int, dict]:
    response = await AsyncHTTPClient().fetch(base_url + path, raise_error=False)
    return response.code, json.loads(response.body)


@pytest.mark.gen_test(timeout=15)
async def test_live_answers_while_the_process_runs(http_server, base_url):
    assert await get(base_url, "/health/live") == (200, {"status": "live", "role": "all"})


@pytest.mark.gen_test(timeout=15)
async def test_ready_when_redis_answers_and_the_worker_runs(http_server, base_url):
    assert await get(base_url, "/health/ready") == (
        200,
        {"status": "ready", "redis": "ok", "worker": "running"},
    )


@pytest.mark.gen_test(timeout=15)
async def test_not_ready_when_the_worker_loop_stopped(engine, http_server, base_url):
    await engine.worker.stop(0.1)
    code, body = await get(base_url, "/health/ready")
    assert (code, body) == (503, {"status": "not ready", "redis": "ok", "worker": "stopped"})
    assert (await get(base_url, "/health/live"))[0] == 200


@pytest.mark.gen_test(timeout=15)
async def test_not_ready_when_redis_is_unreachable(engine, http_server, base_url, tmp_path):
    working = engine.redis
    engine.redis = connect(f"unix://{tmp_path / 'no-redis-here.sock'}")
    try:
        code, body = await get(base_url, "/health/ready")
    finally:
        await engine.redis.aclose()
        engine.redis = working
    assert code == 503
    assert body["status"] == "not ready"
    assert body["redis"].startswith("unreachable: ")


@pytest.mark.gen_test(timeout=15)
async def test_health_keeps_its_shape(http_server, base_url):
    code, body = await get(base_url, "/health")
    assert code == 200 and body["status"] == "ok" and body["redis"] == "ok"


def log_line(formatter: logging.Formatter, message: str, *args, exc_info=None, **extra) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger(f"te-test-{id(stream)}")
    logger.propagate = False
    logger.addHandler(handler)
    logger.warning(message, *args, exc_info=exc_info, extra=extra or None)
    return stream.getvalue()


def test_a_json_line_about_an_order_carries_its_order_id():
    line = log_line(JsonFormatter(), "attempt %s of orderId=%s failed: %s", 1, "b7e8-11c2", "timeout")
    entry = json.loads(line)
    assert entry["orderId"] == "b7e8-11c2"
    assert entry["message"] == "attempt 1 of orderId=b7e8-11c2 failed: timeout"
    assert (entry["level"], entry["logger"].startswith("te-test-")) == ("WARNING", True)
    assert entry["ts"].endswith("+00:00")


def test_a_json_line_takes_the_order_id_from_extra_and_keeps_the_traceback():
    try:
        raise RuntimeError("venue exploded")
    except RuntimeError:
        line = log_line(JsonFormatter(), "venue raised", exc_info=True, orderId="abc")
    entry = json.loads(line)
    assert entry["orderId"] == "abc"
    assert "RuntimeError: venue exploded" in entry["exc"]
    assert line.count("\n") == 1  # one line, whatever the traceback


def test_a_json_line_about_no_order_has_no_order_id():
    assert "orderId" not in json.loads(log_line(JsonFormatter(), "worker ready"))


def test_logging_format_accepts_plain_and_json_only(make_config):
    assert load_config(make_config(engine={"logging": {"format": "json"}})).logging.format == "json"
    assert load_config(make_config()).logging.format == "plain"
    directory = make_config(engine={"logging": {"format": "jsn"}})
    with pytest.raises(ConfigError) as info:
        load_config(directory)
    assert info.value.key == "logging.format"
    assert info.value.message == "expected one of plain, json, got 'jsn'; did you mean 'json'?"


def test_a_json_logging_engine_writes_only_json_lines(make_config, engine_process):
    process = engine_process(make_config(engine={"logging": {"format": "json", "level": "INFO"}}))
    body = json.dumps({"fromToken": "SOL", "toToken": "USDC", "amount": 1})
    reply = HTTPClient().fetch(
        HTTPRequest(
            f"{process.base_url}/api/orders/execute",
            method="POST",
            body=body,
            headers={"Content-Type": "application/json"},
        )
    )
    order_id = json.loads(reply.body)["orderId"]
    process.wait_for_log(order_id)
    entries = [json.loads(line) for line in process.lines]  # every line is one JSON object
    assert any(e.get("orderId") == order_id for e in entries)
    assert any(e["message"].startswith("listening on port") for e in entries)

"""Logs a client cannot forge lines into, and that never show a secret."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import urllib.parse

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st
from tornado.websocket import websocket_connect

from tornado_engine.config.env import is_secret_name, secret_values
from tornado_engine.observability.logs import JsonFormatter, PlainFormatter, Redactor, escape_controls
from tornado_engine.testing import EngineProcess


def record(message: str, *args: object, exc_info=None) -> logging.LogRecord:
    return logging.LogRecord("tornado_engine.web.socket", logging.INFO, __file__, 1, message, args, exc_info)


def test_a_newline_a_client_sent_is_escaped_in_a_plain_line():
    line = PlainFormatter().format(
        record("ws -> orderId=%s status=error", "x\n2026-01-01T00:00:00 INFO forged")
    )
    assert line.endswith("ws -> orderId=x\\n2026-01-01T00:00:00 INFO forged status=error")
    assert "\n" not in line


@given(st.text())
def test_any_message_is_one_plain_line(text):
    line = PlainFormatter().format(record("orderId=%s", text))
    assert len(line.splitlines()) == 1 and line == line.strip("\r\n")


@given(st.text().filter(lambda text: "://" not in text and "=" not in text))
def test_a_json_line_keeps_the_message_exactly(text):
    assert json.loads(JsonFormatter().format(record("%s", text)))["message"] == text


def test_a_traceback_is_indented_so_its_text_cannot_pose_as_a_record():
    try:
        raise ValueError("bad\n2026-01-01T00:00:00 INFO forged: from an exception message")
    except ValueError:
        lines = PlainFormatter().format(record("venue raised", exc_info=sys.exc_info())).splitlines()
    assert lines[0].endswith("venue raised")
    assert all(line.startswith("    ") for line in lines[1:])
    assert any("forged" in line for line in lines[1:])


@pytest.mark.parametrize(
    "char, escaped", [("\r", "\\r"), ("\x1b", "\\x1b"), ("\u2028", "\\u2028"), ("\x85", "\\x85")]
)
def test_control_characters_are_written_as_escapes(char, escaped):
    assert escape_controls(f"a{char}b") == f"a{escaped}b"


@pytest.mark.parametrize(
    "url, shown",
    [
        ("redis://:hunter2pw@cache:6379/0", "redis://:***@cache:6379/0"),
        ("rediss://default:p%40ss@host.example:6380", "rediss://default:***@host.example:6380"),
        ("rediss://default:p@ss@host.example:6380/1", "rediss://default:***@host.example:6380/1"),
        ("unix://tester:pw1234@/run/redis.sock", "unix://tester:***@/run/redis.sock"),
        ("unix:///run/redis.sock?db=0&password=pw1234", "unix:///run/redis.sock?db=0&password=***"),
        ("redis://cache:6379/0", "redis://cache:6379/0"),
        ("redis://user@cache:6379/0", "redis://user@cache:6379/0"),
    ],
)
def test_a_url_password_is_redacted(url, shown):
    assert Redactor()(f"listening (Redis {url}, asyncio)") == f"listening (Redis {shown}, asyncio)"


def test_secret_values_are_redacted_in_both_formats():
    redact = Redactor(["sk-live-123456"])
    message = record("venue said: key %s rejected", "sk-live-123456")
    assert "sk-live-123456" not in PlainFormatter(redact).format(message)
    assert json.loads(JsonFormatter(redact).format(message))["message"] == "venue said: key *** rejected"


@pytest.mark.parametrize(
    "name, secret",
    [
        ("REDIS_PASSWORD", True),
        ("VENUE_API_KEY", True),
        ("JUPITER_TOKEN", True),
        ("SECRET", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("GOOGLE_APPLICATION_CREDENTIALS", True),
        ("PORT", False),
        ("REDIS_URL", False),
        ("TOKENIZERS_PARALLELISM", False),
        ("KEYBOARD", False),
    ],
)
def test_which_variables_are_secret(name, secret):
    assert is_secret_name(name) is secret


def test_short_secret_values_are_not_redacted_everywhere():
    assert secret_values({"A_TOKEN": "1", "B_PASSWORD": "long-enough", "PORT": "3000"}) == ["long-enough"]


# --- The real thing: a served engine's stderr -------------------------------------------------


@pytest.fixture
def redis_user_url(redis_server) -> str:
    """A URL with a password for the test Redis: an ACL user, so nothing else is affected."""
    admin = redis.Redis.from_url(redis_server.url)
    admin.execute_command("ACL", "SETUSER", "tester", "on", ">s3cret-pw-4711", "~*", "&*", "+@all")
    admin.close()
    return f"unix://tester:s3cret-pw-4711@{redis_server.socket_path}"


async def read_until_closed(url: str) -> None:
    conn = await websocket_connect(url)
    while await conn.read_message() is not None:
        pass


def test_a_served_engine_logs_no_secret_and_no_forged_line(make_config, redis_user_url, monkeypatch):
    monkeypatch.setenv("VENUE_API_KEY", "sk-live-0042")  # the engine process inherits it
    engine = EngineProcess(make_config(), redis_user_url).start()
    try:
        assert "Redis unix://tester:***@" in engine.wait_for_log(r"listening on port").string
        ws_base = engine.base_url.replace("http", "ws", 1)
        forged = "x\n2026-01-01T00:00:00 ERROR tornado_engine: forged"
        for order_id in (forged, "sk-live-0042"):  # unknown orders: the error frame sent is logged
            asyncio.run(read_until_closed(f"{ws_base}/ws?" + urllib.parse.urlencode({"orderId": order_id})))
        engine.wait_for_log(r"ws -> orderId=\*\*\* status=error")
        engine.wait_for_log(
            r"ws -> orderId=x\\n2026-01-01T00:00:00 ERROR tornado_engine: forged status=error"
        )
    finally:
        engine.stop()
    assert not [line for line in engine.lines if "s3cret-pw-4711" in line or "sk-live-0042" in line]
    assert not [line for line in engine.lines if line.startswith("2026-01-01")]

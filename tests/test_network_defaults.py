"""Network defaults: serve listens on 127.0.0.1 unless told, warns when exposed without keys,
and answers only Host names it knows (DNS rebinding)."""

from __future__ import annotations

import json
import socket

import pytest

from tornado_engine.cli import _parser, is_loopback
from tornado_engine.testing import EngineProcess
from tornado_engine.web.hosts import AllowedHosts, host_name


def raw_get(port: int, host: str | None, path: str = "/api/venues", extra: str = "") -> tuple[int, dict]:
    head = f"GET {path} HTTP/1.1\r\n" + (f"Host: {host}\r\n" if host is not None else "") + extra
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall((head + "Connection: close\r\n\r\n").encode("latin-1"))
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, json.loads(data.split(b"\r\n\r\n", 1)[1] or b"{}")


@pytest.mark.parametrize(
    "host",
    ["localhost", "LOCALHOST:3000", "127.0.0.1:3000", "[::1]:3000", "app.localhost", "192.168.1.20", None],
)
def test_loopback_names_and_ip_addresses_are_always_answered(host):
    assert AllowedHosts().allows(host)


@pytest.mark.parametrize(
    "host", ["attacker.example", "attacker.example:3000", "localhost.attacker.example", ""]
)
def test_other_names_are_refused_unless_allowed(host):
    assert not AllowedHosts().allows(host)


def test_allowed_hosts_names_exact_names_domains_or_anything():
    allowed = AllowedHosts(["engine.example.com", ".corp.example"])
    assert allowed.allows("engine.example.com:443") and allowed.allows("Engine.Example.Com.")
    assert allowed.allows("corp.example") and allowed.allows("desk.corp.example")
    assert not allowed.allows("evilcorp.example") and not allowed.allows("example.com")
    assert AllowedHosts(["*"]).allows("anything.example")


def test_host_name_drops_the_port():
    assert host_name("[::1]:3000") == "::1"
    assert host_name("::1") == "::1"
    assert host_name("Example.COM.:80") == "example.com"


@pytest.mark.gen_test(timeout=20)
async def test_an_unexpected_host_is_a_421_before_any_handler(io_loop, http_server, http_port):
    code, body = await io_loop.run_in_executor(None, raw_get, http_port, "rebound.attacker.example")
    assert code == 421 and "server.allowed_hosts" in body["error"], body
    for path in ("/", "/health", "/ws?orderId=x"):
        code, body = await io_loop.run_in_executor(None, raw_get, http_port, "rebound.attacker.example", path)
        assert code == 421, (path, body)
    code, body = await io_loop.run_in_executor(None, raw_get, http_port, f"localhost:{http_port}")
    assert code == 200 and "venues" in body


@pytest.mark.parametrize("engine_overrides", [{"server": {"allowed_hosts": ["engine.example"]}}])
@pytest.mark.gen_test(timeout=20)
async def test_a_name_in_allowed_hosts_is_answered(io_loop, http_server, http_port):
    code, body = await io_loop.run_in_executor(None, raw_get, http_port, "engine.example")
    assert code == 200, body
    code, body = await io_loop.run_in_executor(None, raw_get, http_port, "other.example")
    assert code == 421, body


def test_serve_listens_on_loopback_unless_told():
    assert _parser().parse_args(["serve"]).host == "127.0.0.1"
    assert _parser().parse_args(["serve", "--host", "0.0.0.0"]).host == "0.0.0.0"
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("") and not is_loopback("10.1.2.3")


@pytest.mark.parametrize(
    "keys_in_config, flags, warned",
    [(False, (), True), (True, (), False), (False, ("--require-keys",), False)],
)
def test_serving_every_interface_without_keys_logs_a_warning(
    make_config, redis_server, keys_in_config, flags, warned
):
    config = make_config(engine={"auth": {"required": keys_in_config}})
    process = EngineProcess(config, redis_server.url, extra_args=("--host", "0.0.0.0", *flags)).start()
    try:
        process.wait_for_log(r"listening on port")
        warnings = [line for line in process.lines if "with API keys off" in line]
        assert bool(warnings) == warned, process.lines
        if warned:
            assert "WARNING" in warnings[0] and "--require-keys" in warnings[0]
        status, body = raw_get(process.port, "localhost")
        assert status == (200 if warned else 401), body  # keys on, from the file or the flag
    finally:
        process.stop()

"""Keys across real processes: the keys command, two API processes sharing one key set, TLS end to end.

Every process here shares only a private Redis with the test; ``keys`` is
the command an operator runs.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import subprocess
import sys

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.iostream import StreamClosedError
from tornado.websocket import websocket_connect

from tornado_engine.testing import EngineProcess

ORDER = {"fromToken": "SOL", "toToken": "USDC", "amount": 1}


def keys_command(config_dir, redis_url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "tornado_engine",
            "keys",
            *args,
            "--redis-url",
            redis_url,
            "--config",
            str(config_dir),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )


async def call(
    url: str, key: str | None, method: str = "GET", body: object = None, **options
) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    request = HTTPRequest(
        url, method=method, headers=headers, body=json.dumps(body) if body is not None else None, **options
    )
    response = await AsyncHTTPClient().fetch(request, raise_error=False)
    return response.code, json.loads(response.body)


@pytest.fixture
def keyed_config(make_config):
    return make_config(engine={"auth": {"required": True, "cache_seconds": 0}})


def test_keys_add_prints_the_key_and_nothing_else_and_list_never_prints_it(keyed_config, redis_server):
    added = keys_command(
        keyed_config, redis_server.url, "add", "alice", "--scopes", "trade,read", "--rate", "5"
    )
    assert added.returncode == 0, added.stderr
    key = added.stdout.strip()
    assert added.stdout == key + "\n" and key.startswith("te_") and len(key) > 40
    listed = keys_command(keyed_config, redis_server.url, "list")
    assert listed.returncode == 0, listed.stderr
    assert "alice\ttrade,read\trate=5/s" in listed.stdout
    assert key not in listed.stdout + listed.stderr and key[3:] not in listed.stdout
    again = keys_command(keyed_config, redis_server.url, "add", "alice", "--scopes", "read")
    assert (again.returncode, again.stdout) == (2, "") and "exists" in again.stderr
    revoked = keys_command(keyed_config, redis_server.url, "revoke", "alice")
    assert revoked.returncode == 0 and revoked.stdout == "", revoked.stderr
    assert "alice" not in keys_command(keyed_config, redis_server.url, "list").stdout
    missing = keys_command(keyed_config, redis_server.url, "revoke", "alice")
    assert missing.returncode == 2 and "no key named 'alice'" in missing.stderr


@pytest.mark.parametrize(
    "args, says",
    [
        (("add", "x", "--scopes", "trade,write"), "unknown scope 'write'"),
        (("add", "x", "--scopes", "read", "--rate", "0"), "--rate is orders per second"),
        (("add", "bad name", "--scopes", "read"), "a key name is"),
    ],
)
def test_keys_add_names_what_is_wrong(keyed_config, redis_server, args, says):
    result = keys_command(keyed_config, redis_server.url, *args)
    assert (result.returncode, result.stdout) == (2, "") and says in result.stderr, result.stderr


def test_keys_needs_the_shared_redis(keyed_config, monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    result = subprocess.run(
        [sys.executable, "-m", "tornado_engine", "keys", "list", "--config", str(keyed_config)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "--redis-url" in result.stderr


@pytest.mark.gen_test(timeout=60)
async def test_two_api_processes_share_the_keys_and_a_revocation(make_config, redis_server, engine_process):
    config = make_config(engine={"auth": {"required": True, "cache_seconds": 1}})
    first = engine_process(config, role="api")
    second = engine_process(config, role="api")
    engine_process(config, role="worker")
    keyed_config = config
    added = keys_command(keyed_config, redis_server.url, "add", "alice", "--scopes", "trade,read")
    key = added.stdout.strip()
    bob = keys_command(keyed_config, redis_server.url, "add", "bob", "--scopes", "trade,read").stdout.strip()

    code, reply = await call(f"{first.base_url}/api/orders/execute", key, "POST", ORDER)
    assert code == 200, reply
    order_id = reply["orderId"]
    code, reply = await call(f"{second.base_url}/api/orders/{order_id}", key)
    assert code == 200, reply  # the other process knows the key and the order's owner
    code, reply = await call(f"{second.base_url}/api/orders/{order_id}", bob)
    assert code == 404, reply

    code, reply = await call(f"{first.base_url}/api/orders/{order_id}", key)
    assert code == 200, reply  # both processes now remember the key (for auth.cache_seconds: 1)
    loop = asyncio.get_running_loop()
    revoked_at = loop.time()
    assert keys_command(keyed_config, redis_server.url, "revoke", "alice").returncode == 0
    for process in (first, second):  # refused by each within auth.cache_seconds (and a margin)
        while (code := (await call(f"{process.base_url}/api/orders/{order_id}", key))[0]) == 200:
            assert loop.time() - revoked_at < 1 + 2, "a revoked key still works after auth.cache_seconds"
            await asyncio.sleep(0.05)
        assert code == 401
    # The socket's token parameter, refused or not, is never in a log line.
    with pytest.raises(HTTPClientError) as refused:
        await websocket_connect(f"ws://127.0.0.1:{second.port}/ws?orderId={order_id}&token={key}")
    assert refused.value.code == 401
    second.wait_for_log(r"GET /ws\?orderId=\S+&token=\*\*\*")
    for process in (first, second):
        assert not [line for line in process.lines if key in line or bob in line]


def make_certificate(tmp_path) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 and localhost, made with the openssl command."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command here to make a test certificate (and no cryptography package)")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return str(cert), str(key)


@pytest.mark.gen_test(timeout=60)
async def test_tls_end_to_end_https_and_wss(tmp_path, keyed_config, redis_server):
    cert, private_key = make_certificate(tmp_path)
    process = EngineProcess(
        keyed_config, redis_server.url, extra_args=("--certfile", cert, "--keyfile", private_key)
    ).start()
    try:
        process.wait_for_log(r"open https://127\.0\.0\.1:")
        key = keys_command(keyed_config, redis_server.url, "add", "alice", "--scopes", "trade").stdout.strip()
        trusted = ssl.create_default_context(cafile=cert)
        base = f"https://127.0.0.1:{process.port}"
        code, reply = await call(f"{base}/api/orders/execute", key, "POST", ORDER, ssl_options=trusted)
        assert code == 200, reply
        assert reply["wsUrl"].startswith("wss://127.0.0.1:")
        conn = await websocket_connect(
            HTTPRequest(reply["wsUrl"], headers={"Authorization": f"Bearer {key}"}, ssl_options=trusted)
        )
        frames = []
        while (message := await conn.read_message()) is not None:
            frames.append(json.loads(message))
        assert [f["status"] for f in frames][-1] == "confirmed", frames
        # Plain HTTP on the TLS port gets no answer, and a client that does not trust the certificate fails.
        with pytest.raises((HTTPClientError, OSError, StreamClosedError)):
            await AsyncHTTPClient().fetch(f"http://127.0.0.1:{process.port}/health", request_timeout=5)
        with pytest.raises(ssl.SSLError):
            await AsyncHTTPClient().fetch(f"{base}/health", ssl_options=ssl.create_default_context())
    finally:
        process.stop()


def test_a_certificate_that_cannot_be_used_is_an_error_naming_it(tmp_path, keyed_config, redis_server):
    (tmp_path / "cert.pem").write_text("not a certificate")
    for args, says in (
        (("--certfile", str(tmp_path / "missing.pem")), "missing.pem: no such file"),
        (("--certfile", str(tmp_path / "cert.pem")), "cannot use the certificate"),
        (("--keyfile", str(tmp_path / "cert.pem")), "--keyfile needs --certfile"),
    ):
        result = subprocess.run(
            [sys.executable, "-m", "tornado_engine", "serve", "--config", str(keyed_config), *args],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 2 and says in result.stderr, result.stderr

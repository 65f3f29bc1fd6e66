"""The embedded Redis never outlives the engine: real engine processes, real signals.

Each engine runs with its own ``TMPDIR``, so every redis-server it ever
started carries that directory in its command line: a server found there
after the engine exited is a leak, whoever its parent is by then.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tornado_engine.testing import EngineProcess

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def processes_mentioning(text: str) -> list[int]:
    """Live (not zombie) processes whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if text in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def wait_until_gone(text: str, timeout: float = 15.0) -> list[int]:
    """Poll /proc until no live process mentions ``text`` (bounded); the survivors, if any."""
    deadline = time.monotonic() + timeout
    while (survivors := processes_mentioning(text)) and time.monotonic() < deadline:
        time.sleep(0.02)
    return survivors


class EmbeddedEngine(EngineProcess):
    """``tornado-engine serve`` with no Redis URL: it starts its own embedded Redis."""

    def __init__(self, config_dir: Path, *extra_args: str) -> None:
        super().__init__(config_dir, redis_url="", extra_args=extra_args)
        at = self.command.index("--redis-url")
        del self.command[at : at + 2]


@pytest.fixture
def private_tmpdir(monkeypatch) -> Iterator[str]:
    """A short TMPDIR for the engine (unix socket paths are short), removed afterwards."""
    directory = tempfile.mkdtemp(prefix="te-emb-", dir="/tmp")
    monkeypatch.setenv("TMPDIR", directory)
    yield directory
    for pid in processes_mentioning(directory):  # a failed test must not leak either
        os.kill(pid, signal.SIGKILL)
    shutil.rmtree(directory)


@pytest.fixture
def embedded_engine(make_config, private_tmpdir) -> Iterator[EmbeddedEngine]:
    engine = EmbeddedEngine(make_config())
    yield engine
    engine.stop()


def redis_of(private_tmpdir: str) -> int:
    (pid,) = processes_mentioning(private_tmpdir)
    return pid


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_stopped_engine_stops_its_embedded_redis_cleanly(embedded_engine, private_tmpdir, signum):
    embedded_engine.start()
    redis_pid = redis_of(private_tmpdir)
    embedded_engine.signal(signum)
    assert embedded_engine.wait() == 0
    assert wait_until_gone(private_tmpdir) == [], f"redis-server {redis_pid} outlived the engine"
    embedded_engine.wait_for_log("stopped")
    assert not [line for line in embedded_engine.lines if "WARNING" in line or "ERROR" in line]
    assert not [line for line in embedded_engine.lines if "shutdown failed" in line]
    assert list(Path(private_tmpdir).iterdir()) == [], "the embedded Redis's directory is left behind"


def test_an_engine_killed_with_sigkill_takes_its_embedded_redis_along(embedded_engine, private_tmpdir):
    embedded_engine.start()
    redis_pid = redis_of(private_tmpdir)
    embedded_engine.signal(signal.SIGKILL)
    embedded_engine.wait()
    assert wait_until_gone(private_tmpdir) == [], f"redis-server {redis_pid} outlived a killed engine"


def test_the_embedded_redis_is_out_of_reach_of_the_terminals_ctrl_c(embedded_engine, private_tmpdir):
    """A terminal's Ctrl-C signals its whole foreground group; the engine, not the terminal, stops Redis
    (after the in-flight orders' grace period), so the server runs in a session of its own."""
    embedded_engine.start()
    assert os.getsid(redis_of(private_tmpdir)) != os.getsid(embedded_engine.pid)


def test_the_start_up_line_gives_the_pages_url(embedded_engine):
    embedded_engine.start()
    line = embedded_engine.wait_for_log(r"listening on port \d+: open (\S+)")
    assert line.group(1) == f"http://127.0.0.1:{embedded_engine.port}/"


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


def test_a_busy_port_is_one_line_naming_it_and_starts_nothing(make_config, private_tmpdir, busy_port):
    config = make_config()
    engine = EmbeddedEngine(config)
    engine.command[engine.command.index("--port") + 1] = str(busy_port)
    with pytest.raises(AssertionError, match="exited"):
        engine.start()
    assert engine.wait() == 1
    *start_up, error = engine.lines
    assert error == (
        f"error: 127.0.0.1:{busy_port} is already in use (another tornado-engine still running?); "
        "stop it, or choose another port with --port or PORT"
    )
    assert [line.split(" ", 2)[2] for line in start_up] == [f"tornado_engine.lifecycle: config from {config}"]
    assert wait_until_gone(private_tmpdir) == []


def test_an_embedded_redis_that_cannot_start_is_one_line_and_leaves_nothing(make_config, monkeypatch):
    long_tmpdir = tempfile.mkdtemp(prefix="te-emb-" + "x" * 100, dir="/tmp")
    monkeypatch.setenv("TMPDIR", long_tmpdir)
    engine = EmbeddedEngine(make_config())
    try:
        with pytest.raises(AssertionError, match="exited"):
            engine.start()
        assert engine.wait() == 1
        (line,) = [line for line in engine.lines if "error" in line]
        assert line.startswith("error: could not start: the embedded Redis's socket path")
        assert "set TMPDIR to a shorter directory, or pass --redis-url" in line
        assert os.listdir(long_tmpdir) == []
    finally:
        for pid in processes_mentioning(long_tmpdir):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(long_tmpdir)

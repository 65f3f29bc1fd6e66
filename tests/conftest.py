"""Fixtures: a running engine (API and worker on the test's IOLoop) on a real Redis;
the engine as a user installs it (wheels in a fresh virtual environment)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import tornado.testing

from tornado_engine.config import load_config
from tornado_engine.engine import Engine
from tornado_engine.testing import EngineClient
from tornado_engine.web.app import make_app
from tornado_engine.web.connections import Connections
from tornado_engine.web.server import make_server


@pytest.fixture
def engine_overrides() -> dict:
    """engine.yaml keys for this test, merged over the fast, seeded defaults."""
    return {}


@pytest.fixture
def venues_config() -> dict | None:
    """venues.yaml for this test; None keeps the kit's two mock venues."""
    return None


@pytest.fixture
def extra_plugins() -> list:
    """Plugin objects registered besides the installed ones (misbehaving venues)."""
    return []


@pytest.fixture
def config_dir(make_config, engine_overrides, venues_config):
    return make_config(engine=engine_overrides, venues=venues_config)


@pytest.fixture
def engine(io_loop, redis_server, config_dir, extra_plugins):
    engine = Engine(load_config(config_dir), redis_url=redis_server.url, plugins=extra_plugins)
    io_loop.run_sync(engine.start, timeout=20)
    yield engine
    io_loop.run_sync(lambda: engine.stop(grace_seconds=0.5), timeout=20)


@pytest.fixture
def connections(engine) -> Connections:
    """The order sockets the app below holds open, and the updates none of them took."""
    return Connections(engine.desk.updates)


@pytest.fixture
def app(engine, connections):
    return make_app(engine, connections)


@pytest.fixture
def client(http_server, base_url) -> EngineClient:
    return EngineClient(base_url)


REPO = Path(__file__).resolve().parent.parent
# What README's run command installs (``pip install . ./plugins/...``), read from it as .ci/run does.
RUN_COMMAND = re.search(
    r"^    python3 -m venv .* && pip install (.+) && tornado-engine serve$",
    (REPO / "README.rst").read_text(encoding="utf-8"),
    re.MULTILINE,
)
USER_DISTRIBUTIONS = [REPO / path for path in RUN_COMMAND[1].split()] if RUN_COMMAND else [REPO]
# pip's words when it cannot reach a package index (or the index lacks a build requirement).
OFFLINE_SIGNS = (
    "NewConnectionError",
    "Network is unreachable",
    "name resolution",
    "No matching distribution",
)


@dataclass(frozen=True)
class FreshInstall:
    """A new virtual environment holding the wheels built from this tree, nothing else of it."""

    dist: Path  # the sdists and the wheels built from them
    venv: Path
    python: Path
    workdir: Path  # outside the source tree, empty: no config/, no sources

    def pip_install(self, *requirements: str) -> None:
        _pip(self.python, "install", "-q", *requirements)


def _pip(python: Path, *args: str) -> None:
    """Run pip; skip the test (outside CI) when no package index can be reached."""
    result = subprocess.run([str(python), "-m", "pip", *args], capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        output = result.stdout + result.stderr
        if not os.environ.get("CI") and any(sign in output for sign in OFFLINE_SIGNS):
            pytest.skip(f"pip cannot reach a package index: {output.strip().splitlines()[-1]}")
        raise AssertionError(f"pip {' '.join(args)} failed:\n{output}")


@pytest.fixture(scope="session")
def fresh_install(tmp_path_factory) -> FreshInstall:
    """The engine's wheels, installed into a new virtual environment outside the source tree.

    ``python -m build`` makes each sdist and then the wheel from that sdist, so
    the wheel proves the sdist holds what a build needs. Shared by the session:
    the builds and the install take a while (pip's cache keeps it to seconds).
    """
    root = tmp_path_factory.mktemp("fresh-install")
    dist = root / "dist"
    # (A distribution not yet in this tree is left out; the order then shows whether it was needed.)
    sources = [
        path
        for path in USER_DISTRIBUTIONS
        if (path / "setup.py").exists() or (path / "pyproject.toml").exists()
    ]
    builds = [
        subprocess.Popen(
            [sys.executable, "-m", "build", "--outdir", str(dist), str(source)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for source in sources
    ]
    for source, build in zip(sources, builds, strict=True):
        output = build.communicate(timeout=600)[0]
        if build.returncode != 0:
            if not os.environ.get("CI") and any(sign in output for sign in OFFLINE_SIGNS):
                pytest.skip(f"cannot build without a package index: {output.strip().splitlines()[-1]}")
            raise AssertionError(f"python -m build {source} failed:\n{output}")
    venv = root / "venv"
    # From a virtualenv, ``-m venv`` builds on the base interpreter: nothing installed here leaks in.
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    install = FreshInstall(dist, venv, venv / "bin" / "python", root / "user")
    install.pip_install(*(str(wheel) for wheel in sorted(dist.glob("*.whl"))))
    install.workdir.mkdir()  # no config/ here: the wheel must start on its built-in config
    return install


@pytest.fixture
def listening_socket():
    """A socket bound to a free port, for the server below."""
    return tornado.testing.bind_unused_port()


@pytest.fixture
def http_port(listening_socket) -> int:
    return listening_socket[1]


@pytest.fixture
def http_server(io_loop, app, engine, listening_socket):
    """The server as ``tornado-engine serve`` builds it (limits, timeouts, the request gate),
    in place of pytest-tornado's bare HTTPServer."""
    server = make_server(app, engine.config.server)
    server.add_socket(listening_socket[0])
    yield server
    server.stop()
    io_loop.run_sync(server.close_all_connections, timeout=10)

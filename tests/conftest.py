"""Fixtures: a running engine (API and worker on the test's IOLoop) on a real Redis."""

from __future__ import annotations

import pytest

from tornado_engine.config import load_config
from tornado_engine.engine import Engine
from tornado_engine.testing import EngineClient
from tornado_engine.web.app import make_app
from tornado_engine.web.connections import Connections


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

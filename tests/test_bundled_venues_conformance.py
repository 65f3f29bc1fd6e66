"""The bundled venues pass the conformance suite plugin authors run, found as the engine finds them."""

from __future__ import annotations

import pytest

from tornado_engine.testing import VenueConformance, venue_settings
from tornado_engine.venues.host import PluginHost


def make(kind: str, latency_scale: float = 0.0, **options):
    factory = PluginHost().kinds[kind].factory
    return factory(venue_settings(kind, {"failure_rate": 0, **options}, latency_scale=latency_scale))


class BundledVenue(VenueConformance):
    kind = ""

    @pytest.fixture
    def venue(self):
        return make(self.kind)

    @pytest.fixture
    def slow_venue(self):
        return make(self.kind, latency_scale=0.2)

    @pytest.fixture
    def failing_venue(self):
        return make(self.kind, failure_rate=1, quote_failure_rate=1)


class TestMockRaydium(BundledVenue):
    kind = "mock-raydium"


class TestMockMeteora(BundledVenue):
    kind = "mock-meteora"

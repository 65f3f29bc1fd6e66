"""The conformance kit catches each way a venue can break the contract."""

from __future__ import annotations

import subprocess
import sys
from xml.etree import ElementTree

import pytest

BROKEN_VENUES = """
import asyncio, itertools, time, uuid
import pytest
from tornado_engine import SwapResult
from tornado_engine.testing import VenueConformance, venue_settings
from tornado_engine_simulation import SimulatedVenue

counter = itertools.count()

class Base(SimulatedVenue):
    pass

class ReturnsDict(Base):
    async def quote(self, request):
        return {"price": 1}

class NotIdempotent(Base):
    async def swap(self, request):
        return SwapResult(f"tx{next(counter)}", 150.0, 149.0)

class SwallowsCancel(Base):
    async def quote(self, request):
        try:
            await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            pass
        return await super().quote(request)

class UnclassifiedError(Base):
    async def quote(self, request):
        if not self.supports(request.from_token, request.to_token):
            raise KeyError(request.to_token)
        return await super().quote(request)

class BlocksLoop(Base):
    blocked = False

    async def quote(self, request):
        if not self.blocked:  # once per venue, to keep the run short
            self.blocked = True
            time.sleep(0.3)  # a plugin author's mistake: a blocking call in an async method
        return await super().quote(request)

def fixture_for(cls):
    @pytest.fixture
    def venue(self):
        return cls(venue_settings("broken", {"failure_rate": 0}))
    return venue

class TestReturnsDict(VenueConformance):
    venue = fixture_for(ReturnsDict)

class TestNotIdempotent(VenueConformance):
    venue = fixture_for(NotIdempotent)

class TestSwallowsCancel(VenueConformance):
    venue = fixture_for(SwallowsCancel)

class TestUnclassifiedError(VenueConformance):
    venue = fixture_for(UnclassifiedError)

class TestBlocksLoop(VenueConformance):
    venue = fixture_for(BlocksLoop)
"""


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, str]:
    """Run the kit on the broken venues once, in a pytest of its own; test id -> outcome."""
    directory = tmp_path_factory.mktemp("kit")
    (directory / "test_broken.py").write_text(BROKEN_VENUES, encoding="utf-8")
    report = directory / "report.xml"
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}", "."],
        cwd=directory,
        capture_output=True,
        timeout=120,
    )
    status: dict[str, str] = {}
    for case in ElementTree.parse(report).iter("testcase"):
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[child.tag]
        status[f"{case.get('classname').rsplit('.', 1)[1]}::{case.get('name')}"] = outcome
    return status


def test_a_quote_of_the_wrong_type_fails_the_shape_check(outcomes):
    assert outcomes["TestReturnsDict::test_quote_has_the_contract_shape"] == "failed"


def test_a_swap_that_trades_twice_fails_idempotency(outcomes):
    assert outcomes["TestNotIdempotent::test_swap_is_idempotent_by_key"] == "failed"
    assert outcomes["TestNotIdempotent::test_status_finds_a_swap_by_key"] == "failed"


def test_swallowing_cancellation_fails_the_cancellation_check(outcomes):
    assert outcomes["TestSwallowsCancel::test_cancelled_quote_leaves_the_venue_usable"] == "failed"


def test_an_unclassified_error_fails_the_classification_check(outcomes):
    assert outcomes["TestUnclassifiedError::test_unsupported_pair_is_a_final_error"] == "failed"


def test_a_quote_that_blocks_the_loop_fails_the_kit(outcomes):
    assert outcomes["TestBlocksLoop::test_quote_has_the_contract_shape"] == "failed"
    assert outcomes["TestBlocksLoop::test_quote_answers_within_the_deadline"] == "failed"
    assert outcomes["TestBlocksLoop::test_status_of_an_unknown_key_is_none"] == "passed"


def test_a_sound_venue_passes_the_checks_the_broken_ones_fail(outcomes):
    assert outcomes["TestUnclassifiedError::test_swap_is_idempotent_by_key"] == "passed"
    assert outcomes["TestNotIdempotent::test_quote_has_the_contract_shape"] == "passed"

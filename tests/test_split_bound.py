"""The split search is skipped only when no split could pay: same routes with and without the shortcut."""

from __future__ import annotations

import uuid

import pytest

from tornado_engine.config import load_config
from tornado_engine.engine import Engine
from tornado_engine.execution.routing import RoutePlanner

from .test_dex_orders import VENUES


class ExhaustivePlanner(RoutePlanner):
    """Always searches for a split, as the planner did before the bound."""

    def split_could_pay(self, request, outcomes, best) -> bool:
        return True


@pytest.mark.parametrize("amount", [0.001, 0.1, 1, 5, 10, 20, 30, 60, 100, 500])
@pytest.mark.gen_test(timeout=15)
async def test_the_split_bound_never_changes_the_chosen_route(make_config, amount):
    engine = Engine(load_config(make_config(venues=VENUES)))
    planner = engine.executor.planner
    exhaustive = ExhaustivePlanner(planner.routing, planner.decimals, planner.timeout_s)
    order_id = str(uuid.uuid4())
    units = planner.units("SOL", amount)
    venues = list(engine.venues.values())
    fast = await planner.plan(venues, order_id, "SOL", "USDC", amount, units)
    full = await exhaustive.plan(venues, order_id, "SOL", "USDC", amount, units)
    assert (fast.kind, fast.amount_out) == (full.kind, full.amount_out)
    assert [(leg.venue, leg.percent) for leg in fast.legs] == [(leg.venue, leg.percent) for leg in full.legs]


@pytest.mark.gen_test(timeout=15)
async def test_large_orders_still_get_split(make_config):
    engine = Engine(load_config(make_config(venues=VENUES)))
    planner = engine.executor.planner
    route = await planner.plan(
        list(engine.venues.values()), str(uuid.uuid4()), "SOL", "USDC", 30, planner.units("SOL", 30)
    )
    assert route.kind == "split"

"""Pool math properties, checked by hypothesis over integer base units."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from tornado_engine_simulation.amm import InsufficientLiquidity
from tornado_engine_simulation.amm.bins import ONE, BinPool, FeeSchedule, make_pool
from tornado_engine_simulation.amm.constant_product import ConstantProductPool

from tornado_engine.orders.amounts import AmountPrecisionError, from_units, to_units, units_str

reserves = st.integers(min_value=10**3, max_value=10**18)
fees = st.integers(min_value=0, max_value=50_000)
amounts = st.integers(min_value=1, max_value=10**16)
directions = st.booleans()


@st.composite
def cp_pools(draw) -> ConstantProductPool:
    return ConstantProductPool(draw(reserves), draw(reserves), draw(fees))


@st.composite
def bin_pools(draw) -> BinPool:
    schedule = FeeSchedule(
        base_ppm=draw(st.integers(0, 10_000)),
        control=draw(st.floats(0, 50)),
    )
    pool = make_pool(
        price=draw(st.floats(1e-6, 1e4)),
        bin_step_bps=draw(st.integers(1, 200)),
        bins_each_side=draw(st.integers(1, 12)),
        per_bin_a=draw(st.integers(10**3, 10**15)),
        per_bin_b=draw(st.integers(10**3, 10**15)),
        fees=schedule,
    )
    return pool


def cp_out(pool, amount, a_to_b):
    try:
        return pool.quote(amount, a_to_b).amount_out
    except InsufficientLiquidity:
        return 0


# -- constant product ---------------------------------------------------------------------------------


@given(cp_pools(), amounts, directions)
def test_constant_product_k_never_decreases(pool, amount, a_to_b):
    try:
        after, _ = pool.swap(amount, a_to_b)
    except InsufficientLiquidity:
        return
    assert after.reserve_a * after.reserve_b >= pool.reserve_a * pool.reserve_b


@given(cp_pools(), amounts, amounts, directions)
def test_constant_product_output_is_monotonic_in_input(pool, a, b, a_to_b):
    small, large = sorted((a, b))
    assert cp_out(pool, small, a_to_b) <= cp_out(pool, large, a_to_b)


@given(cp_pools(), amounts, amounts, directions)
def test_constant_product_price_impact_grows_with_size(pool, a, b, a_to_b):
    small, large = sorted((a, b))
    try:
        lo, hi = pool.quote(small, a_to_b), pool.quote(large, a_to_b)
    except InsufficientLiquidity:
        return
    # Each output is rounded down by under one unit: allow that much slack on the smaller trade.
    slack = 1 / lo.amount_out
    assert hi.price_impact >= lo.price_impact - slack - 1e-12


@given(cp_pools(), amounts, directions)
def test_constant_product_fee_is_taken_from_the_input_exactly(pool, amount, a_to_b):
    try:
        after, outcome = pool.swap(amount, a_to_b)
    except InsufficientLiquidity:
        return
    assert outcome.fee + outcome.net_in == amount
    assert outcome.fee == -(-amount * pool.fee_ppm // 1_000_000)
    x_before, y_before = pool.reserves(a_to_b)
    x_after, y_after = after.reserves(a_to_b)
    assert x_after - x_before == amount  # the fee stays in the pool
    assert y_before - y_after == outcome.amount_out


@given(cp_pools(), amounts, directions)
def test_constant_product_never_pays_out_the_whole_reserve(pool, amount, a_to_b):
    _, y = pool.reserves(a_to_b)
    assert cp_out(pool, amount, a_to_b) < y


# -- bins -----------------------------------------------------------------------------------------------


def bin_value(pool: BinPool) -> list[int]:
    """Each bin's value in b at its own price (Q64-scaled)."""
    return [a * pool.price_q(i) + b * ONE for i, (a, b) in sorted(pool.bins.items())]


def bin_out(pool, amount, a_to_b):
    try:
        return pool.quote(amount, a_to_b).amount_out
    except InsufficientLiquidity:
        return None


@settings(max_examples=200)
@given(bin_pools(), amounts, directions)
def test_bins_never_give_more_than_their_liquidity(pool, amount, a_to_b):
    try:
        after, outcome = pool.swap(amount, a_to_b)
    except InsufficientLiquidity:
        assert amount > 0
        return
    assert outcome.amount_out <= pool.liquidity(a_to_b)
    for bin_id, (a, b) in after.bins.items():
        assert a >= 0 and b >= 0, f"bin {bin_id} went negative"
    # Every bin is worth at least as much at its own price as before: it sold at its price plus a fee.
    assert all(new >= old for new, old in zip(bin_value(after), bin_value(pool), strict=True))


@settings(max_examples=200)
@given(bin_pools(), amounts, amounts, directions)
def test_bins_output_is_monotonic_in_input(pool, a, b, a_to_b):
    small, large = sorted((a, b))
    small_out, large_out = bin_out(pool, small, a_to_b), bin_out(pool, large, a_to_b)
    assume(large_out is not None)
    assert (small_out or 0) <= large_out


@settings(max_examples=200)
@given(bin_pools(), amounts, amounts, directions)
def test_bins_price_impact_grows_with_size(pool, a, b, a_to_b):
    small, large = sorted((a, b))
    try:
        lo, hi = pool.quote(small, a_to_b), pool.quote(large, a_to_b)
    except InsufficientLiquidity:
        return
    # Whole base units on both sides: the smaller trade's impact is only known to within their rounding.
    slack = 1 / lo.amount_out + 1 / lo.net_in + 1e-9
    assert hi.price_impact >= lo.price_impact - slack


@settings(max_examples=200)
@given(bin_pools(), amounts, directions)
def test_bins_account_fees_exactly(pool, amount, a_to_b):
    try:
        after, outcome = pool.swap(amount, a_to_b)
    except InsufficientLiquidity:
        return
    assert outcome.fee + outcome.net_in == amount
    side = 0 if a_to_b else 1
    taken = 1 - side
    gained = sum(after.bins[i][side] - pool.bins[i][side] for i in pool.bins)
    paid = sum(pool.bins[i][taken] - after.bins[i][taken] for i in pool.bins)
    assert gained == amount  # every base unit of input (fee included) landed in a bin
    assert paid == outcome.amount_out


def test_bins_variable_fee_rises_with_volatility():
    schedule = FeeSchedule(base_ppm=2_000, control=1.0)
    assert schedule.rate_ppm(0, 25) == 2_000
    assert schedule.rate_ppm(4, 25) > schedule.rate_ppm(2, 25) > 2_000
    pool = make_pool(0.15, 25, 10, 10**9, 150 * 10**6, schedule)
    _, calm = pool.swap(10**9, True)
    _, jumpy = BinPool(pool.bins, 0, 25, pool.base_price_q, schedule, volatility=6).swap(10**9, True)
    assert jumpy.fee > calm.fee


def test_bins_large_swap_crosses_bins_and_moves_the_price():
    pool = make_pool(0.15, 25, 10, 10**9, 150 * 10**6, FeeSchedule(2_000))
    after, outcome = pool.swap(3 * 10**9, True)
    assert after.active_id < 0 and after.volatility == after.bins_crossed > 0
    assert after.spot_price(True) < pool.spot_price(True)
    assert outcome.price_impact > 0


def test_bins_too_large_a_swap_is_insufficient_liquidity():
    pool = make_pool(0.15, 25, 2, 10**9, 150 * 10**6, FeeSchedule(2_000))
    with pytest.raises(InsufficientLiquidity):
        pool.swap(10**12, True)


# -- amounts --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "decimals", "units"),
    [(1, 9, 10**9), (0.1, 9, 10**8), (1.000001, 6, 1_000_001), (0.3, 6, 300_000), ("2.5", 5, 250_000)],
)
def test_amounts_convert_through_their_decimal_text(value, decimals, units):
    assert to_units(value, decimals) == units


def test_amounts_finer_than_the_token_are_rejected():
    with pytest.raises(AmountPrecisionError):
        to_units(0.0000001, 6)


@given(st.integers(0, 10**24), st.integers(0, 18))
def test_amounts_round_trip_through_strings(units, decimals):
    assert to_units(units_str(units, decimals), decimals) == units
    assert from_units(units, decimals) == pytest.approx(units / 10**decimals)

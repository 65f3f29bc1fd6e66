"""``amount`` as a decimal string (``"1"``, ``"0.25"``), as the original service and exchange APIs take it.

The string path never goes through a float: the properties below check that
any string the engine accepts counts the base units its exact decimal value
has, and that anything finer than the token, signed, exponent-written or
padded is a 400 naming ``amount``.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tornado_engine.orders.amounts import to_units
from tornado_engine.orders.order import OrderRules, OrderValidationError, validate_order

RULES = OrderRules(
    max_amount=1_000_000.0,
    tokens=frozenset({"SOL", "USDC", "WETH"}),
    pairs=frozenset({("SOL", "USDC"), ("USDC", "SOL"), ("WETH", "USDC")}),
    decimals={"SOL": 9, "USDC": 6, "WETH": 18},  # 18 decimals: more digits than a float holds
)


def order(amount: object, token: str = "SOL"):
    other = "SOL" if token == "USDC" else "USDC"
    return validate_order({"fromToken": token, "toToken": other, "amount": amount}, RULES)


def exact_units(text: str, decimals: int) -> int:
    """The base units of a decimal string, by rational arithmetic (no Decimal context, no float)."""
    value = Fraction(text) * 10**decimals
    assert value.denominator == 1
    return value.numerator


decimal_strings = st.builds(
    lambda whole, fraction: whole + (f".{fraction}" if fraction else ""),
    st.from_regex(r"[0-9]{1,7}", fullmatch=True),
    st.one_of(st.just(""), st.from_regex(r"[0-9]{1,20}", fullmatch=True)),
)


@given(text=decimal_strings, token=st.sampled_from(["SOL", "USDC", "WETH"]))
@example(text="1.000000000000000001", token="WETH")  # a float would make it exactly 1
def test_an_accepted_string_counts_exactly_the_base_units_of_its_decimal(text, token):
    decimals = RULES.decimals[token]
    try:
        accepted = order(text, token)
    except OrderValidationError as exc:
        assert exc.field == "amount"
        value = Fraction(text)
        finer = (value * 10**decimals).denominator != 1
        assert value == 0 or value > 1_000_000 or finer, str(exc)
        return
    assert accepted.amount_units == exact_units(text, decimals)
    assert accepted.amount_units == to_units(Decimal(text), decimals)
    assert accepted.amount == float(Decimal(text))


@given(
    whole=st.integers(min_value=0, max_value=999_999),
    fraction=st.from_regex(r"[0-9]{0,20}[1-9]", fullmatch=True),
)
def test_a_string_finer_than_the_token_is_refused_never_rounded(whole, fraction):
    text = f"{whole}.{fraction}"
    if len(fraction) <= 9:
        assert order(text).amount_units == exact_units(text, 9)
        return
    with pytest.raises(OrderValidationError, match="more decimal places than SOL allows") as info:
        order(text)
    assert info.value.field == "amount"


def test_a_long_amount_is_not_rounded_into_an_acceptable_one():
    """A Decimal context of 28 digits would round this to exactly 1 SOL."""
    with pytest.raises(OrderValidationError, match="more decimal places"):
        order("1.000000000000000000000000000000000000001")


@pytest.mark.parametrize(
    "text, units", [("1", 1_000_000_000), ("0.25", 250_000_000), ("0.000000001", 1), ("1000000", 10**15)]
)
def test_decimal_strings_are_amounts(text, units):
    assert order(text).amount_units == units


@pytest.mark.parametrize(
    "text, says",
    [
        ("lots", "decimal string"),
        ("1e400", "decimal string"),
        ("1e3", "decimal string"),
        ("-1", "greater than 0"),
        ("0", "greater than 0"),
        ("0.000", "greater than 0"),
        ("", "decimal string"),
        (" 1", "decimal string"),
        ("1 ", "decimal string"),
        ("+1", "decimal string"),
        ("1.", "decimal string"),
        (".5", "decimal string"),
        ("1,5", "decimal string"),
        ("NaN", "decimal string"),
        ("Infinity", "decimal string"),
        ("0x10", "decimal string"),
        ("1_000", "decimal string"),
        ("\u0661", "decimal string"),  # an Arabic-Indic digit: Decimal would take it
        ("0.0000000001", "more decimal places than SOL allows (9)"),
        ("1000000.5", "at most 1e+06"),
        ("9" * 65, "at most 64 characters"),
    ],
)
def test_a_bad_decimal_string_is_refused_naming_amount(text, says):
    with pytest.raises(OrderValidationError) as info:
        order(text)
    assert info.value.field == "amount"
    assert says in str(info.value)


@pytest.mark.gen_test(timeout=15)
@pytest.mark.parametrize("text", ["1", "0.25"])
async def test_the_api_takes_a_decimal_string_amount(client, text):
    code, reply = await client.post_order({"fromToken": "SOL", "toToken": "USDC", "amount": text})
    assert code == 200, reply
    code, state = await client.get_json(f"/api/orders/{reply['orderId']}")
    assert state["order"]["amount"] == float(text)


@pytest.mark.gen_test(timeout=15)
@pytest.mark.parametrize("text", ["lots", "1e400", "-1", "", " 1", "NaN", "Infinity", "0.0000000001"])
async def test_the_api_refuses_a_bad_decimal_string_with_a_400_naming_amount(client, text):
    code, reply = await client.post_order({"fromToken": "SOL", "toToken": "USDC", "amount": text})
    assert code == 400
    assert reply["field"] == "amount"
    assert reply["error"].startswith("amount ")

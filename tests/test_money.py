"""Money is exact: minor units become major units by each currency's ISO 4217 exponent and back without
rounding, at any size, and no float ever touches an amount on its way in or out."""

from __future__ import annotations

from decimal import Decimal

import pytest
import strawberry
from strawberry import Schema

from connectors.kit.models import (
    ISO_4217_CURRENCIES,
    MAX_AMOUNT_DIGITS,
    Money,
    currency_exponent,
    currency_problem,
    decimal_places,
    minor_to_common,
)
from schema.scalars import SCALARS


@pytest.mark.parametrize(
    ("minor", "currency", "major"),
    [
        (1050, "USD", "10.50"),
        (5, "USD", "0.05"),
        (0, "USD", "0.00"),
        (-1050, "EUR", "-10.50"),
        (1050, "JPY", "1050"),
        (0, "JPY", "0"),
        (1050, "KWD", "1.050"),
        (1, "KWD", "0.001"),
        (12345, "CLF", "1.2345"),
        (1050, "usd", "10.50"),  # providers send lower case (Stripe); Money is upper-case
    ],
    ids=["usd", "usd-cents", "usd-zero", "eur-negative", "jpy", "jpy-zero", "kwd", "kwd-fils", "clf", "lower-case"],
)
def test_minor_units_become_major_units_by_the_currency_exponent(minor: int, currency: str, major: str) -> None:
    money = Money.from_minor(minor, currency)
    assert money.to_common() == {"amount": major, "currency": currency.upper()}
    assert money.to_minor() == minor  # and back, exactly


def test_exponents_follow_iso_4217() -> None:
    assert [currency_exponent(c) for c in ("USD", "EUR", "JPY", "KRW", "KWD", "BHD", "CLF")] == [2, 2, 0, 0, 3, 3, 4]
    assert currency_exponent("jpy") == 0


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [("10.5", "USD", 1050), ("10.00", "JPY", 10), ("1E+3", "USD", 100000), ("-1.050", "KWD", -1050), ("0", "KWD", 0)],
)
def test_major_units_written_with_fewer_decimals_or_trailing_zeros_convert(
    amount: str, currency: str, minor: int
) -> None:
    money = Money(Decimal(amount), currency)
    assert money.is_precise_enough
    assert money.to_minor() == minor


@pytest.mark.parametrize(
    ("amount", "currency"),
    [("10.5", "JPY"), ("0.001", "USD"), ("1.0005", "KWD"), ("0.00001", "CLF"), ("-0.005", "EUR")],
)
def test_an_amount_more_precise_than_its_currency_is_refused_never_rounded(amount: str, currency: str) -> None:
    money = Money(Decimal(amount), currency)
    assert not money.is_precise_enough
    with pytest.raises(ValueError, match=f"more decimals than {currency} allows"):
        money.to_minor()


def test_amounts_past_28_digits_convert_exactly() -> None:
    # Python's default decimal context keeps 28 digits: nothing here may go through it.
    minor = 12345678901234567890123456789012
    money = Money.from_minor(minor, "USD")
    assert money.to_common()["amount"] == "123456789012345678901234567890.12"
    assert money.to_minor() == minor
    assert money.is_precise_enough
    nineteen = Money.from_minor(9223372036854775807, "JPY")  # the largest 64-bit integer, as a 19-digit amount
    assert nineteen.to_common()["amount"] == "9223372036854775807"
    assert Money.from_common(nineteen.to_common()) == nineteen
    assert not Money(Decimal("1234567890123456789012345678901.234"), "USD").is_precise_enough


def test_decimals_are_counted_without_a_context() -> None:
    assert [decimal_places(Decimal(a)) for a in ("10.50", "10.00", "1E+3", "0.005", "0", "0.000")] == [1, 0, 0, 3, 0, 0]


def test_a_huge_exponent_is_refused_before_it_is_expanded() -> None:
    with pytest.raises(ValueError, match=f"at most {MAX_AMOUNT_DIGITS} digits"):
        Money(Decimal("1E+999999999"), "USD")
    with pytest.raises(ValueError, match=f"at most {MAX_AMOUNT_DIGITS} digits"):
        Money(Decimal("1E-41"), "USD")
    assert Money(Decimal("9" * MAX_AMOUNT_DIGITS), "JPY").to_minor() == int("9" * MAX_AMOUNT_DIGITS)


def test_stored_money_round_trips_as_text() -> None:
    stored = {"amount": "0.10", "currency": "EUR"}
    money = Money.from_common(stored)
    assert money.to_common() == stored  # the trailing zero is kept: "0.10", not "0.1"
    total = (
        Money.from_common({"amount": "0.10", "currency": "EUR"}).amount
        + Money.from_common({"amount": "0.20", "currency": "EUR"}).amount
    )
    assert total == Decimal("0.30") and format(total, "f") == "0.30"  # 0.1 + 0.2 in floats is 0.30000000000000004
    with pytest.raises(ValueError, match="not a Money value"):
        Money.from_common({"amount": "ten", "currency": "EUR"})
    with pytest.raises(ValueError, match="upper-case ISO 4217"):
        Money.from_common({"amount": "1", "currency": "eur"})


@pytest.mark.parametrize(
    ("code", "problem"),
    [
        ("USD", None),
        ("JPY", None),
        ("usd", "write 'USD'"),
        ("US", "three letters"),
        ("US1", "three letters"),
        ("XYZ", "not an ISO 4217 currency code"),
        ("XAU", "not an ISO 4217 currency code"),  # gold has no minor unit: not money to pay with
        (None, "three letters"),
    ],
)
def test_a_written_currency_is_an_upper_case_iso_4217_code(code: object, problem: str | None) -> None:
    found = currency_problem(code)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_the_currency_list_holds_every_code_with_a_known_exponent() -> None:
    assert {"USD", "EUR", "GBP", "JPY", "KWD", "CHF", "CLF"} <= ISO_4217_CURRENCIES
    assert all(len(code) == 3 and code.isupper() for code in ISO_4217_CURRENCIES)
    for code in ("JPY", "KRW", "VND", "BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND", "CLF", "UYW"):
        assert code in ISO_4217_CURRENCIES, code


@strawberry.type
class _Echo:
    @strawberry.field
    def echo(self, amount: Decimal) -> Decimal:
        return amount

    @strawberry.field
    def sum(self, amounts: list[Decimal]) -> Decimal:
        return sum(amounts, Decimal(0))


ECHO = Schema(query=_Echo, scalar_overrides=SCALARS)


@pytest.mark.parametrize("amount", ["0.10", "1234567890123456789.99", "-0.001", "100", "0.000000000000000001"], ids=str)
def test_a_decimal_comes_back_exactly_as_written(amount: str) -> None:
    result = ECHO.execute_sync("query($a: Decimal!) { echo(amount: $a) }", variable_values={"a": amount})
    assert result.errors is None and result.data == {"echo": amount}


def test_decimals_add_up_exactly() -> None:
    result = ECHO.execute_sync('{ sum(amounts: ["0.10", "0.20", "9999999999999999999.70"]) }')
    assert result.errors is None and result.data == {"sum": "10000000000000000000.00"}


@pytest.mark.parametrize(
    ("literal", "reason"),
    [
        ("0.1", "written as text"),  # a JSON number may already have been rounded by the client's float
        ('"1e999999999"', "at most 40 digits"),
        ('"NaN"', "not a finite decimal"),
        ('"ten"', "not a decimal number"),
    ],
)
def test_a_decimal_that_is_not_exact_text_is_refused(literal: str, reason: str) -> None:
    result = ECHO.execute_sync(f"{{ echo(amount: {literal}) }}")
    assert result.errors is not None and reason in result.errors[0].message


@pytest.mark.parametrize("currency", ["USD", "usd", "JPY", "KWD", "CLF", "EUR"])
@pytest.mark.parametrize("minor", [0, 1, 5, -5, 10, 999, 1050, -123456, 10**18 + 7, -(10**30)])
def test_the_ingest_fast_path_gives_the_same_text_as_money(minor: int, currency: str) -> None:
    assert minor_to_common(minor, currency) == Money.from_minor(minor, currency).to_common()


def test_the_ingest_fast_path_refuses_what_money_refuses() -> None:
    assert minor_to_common(1, "US") is None and minor_to_common(1, "U$D") is None
    assert minor_to_common(10**41, "USD") is None

"""SOQL is written with quoted, escaped literals: a value can never become query code."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.salesforce.soql import datetime_literal, identifier, quote, select


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        ("003000000000001AAA", "'003000000000001AAA'"),
        ("x' OR Name != '", "'x\\' OR Name != \\''"),
        ("back\\slash'", "'back\\\\slash\\''"),
        ('say "hi"\n', "'say \\\"hi\\\"\\n'"),
    ],
    ids=["plain", "quote-injection", "backslash-then-quote", "double-quote-newline"],
)
def test_values_become_escaped_literals(value: str, literal: str) -> None:
    assert quote(value) == literal


def literal_end(soql: str, start: int) -> int:
    """Where a string literal opened at `start` closes, reading escapes the way SOQL does."""
    i = start + 1
    while soql[i] != "'":
        i += 2 if soql[i] == "\\" else 1
    return i


def test_the_literal_ends_exactly_where_quote_put_it() -> None:
    for hostile in ("a' OR Id != 'b", "x\\' OR '1'='1", "\\\\'", "'" * 5):
        literal = quote(hostile)
        assert literal_end(literal, 0) == len(literal) - 1, hostile


def test_datetimes_are_utc_literals() -> None:
    assert datetime_literal(datetime(2024, 6, 20, 2, 8, 27, 180000, tzinfo=UTC)) == "2024-06-20T02:08:27.180Z"


@pytest.mark.parametrize("name", ["Name; DELETE", "Id,Name", "Name FROM User", "x'"])
def test_only_api_names_are_accepted_as_identifiers(name: str) -> None:
    with pytest.raises(ValueError, match="API name"):
        identifier(name)


def test_select_builds_the_query() -> None:
    soql = select(["Id", "Loyalty_Tier__c"], "Contact", where=f"Id > {quote('003')}", order_by="Id ASC")
    assert soql == "SELECT Id, Loyalty_Tier__c FROM Contact WHERE Id > '003' ORDER BY Id ASC"

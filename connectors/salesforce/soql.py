"""Writing SOQL safely: every value becomes a quoted, escaped literal, never code."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

# Backslash first, so the escapes added for the others are not escaped again.
_ESCAPES = (("\\", "\\\\"), ("'", "\\'"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t"))


def quote(value: str) -> str:
    """A SOQL string literal: quoted, with every character that could end it escaped."""
    for raw, escaped in _ESCAPES:
        value = value.replace(raw, escaped)
    return f"'{value}'"


def datetime_literal(moment: datetime) -> str:
    """SOQL datetime literals are unquoted ISO-8601 in UTC."""
    # isoformat, not strftime: %Y leaves years before 1000 unpadded, which SOQL does not parse.
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def identifier(name: str) -> str:
    """Field and object names come from describe; refuse anything that is not a plain API name."""
    if not name.replace("_", "").isalnum():
        raise ValueError(f"not a Salesforce API name: {name!r}")
    return name


def select(fields: Iterable[str], sobject: str, where: str | None = None, order_by: str | None = None) -> str:
    soql = f"SELECT {', '.join(identifier(f) for f in fields)} FROM {identifier(sobject)}"  # noqa: S608 - API names only
    if where:
        soql += f" WHERE {where}"
    if order_by:
        soql += f" ORDER BY {order_by}"
    return soql

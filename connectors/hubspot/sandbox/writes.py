"""Validation of property writes, as HubSpot answers them: every bad property is reported at
once and nothing is written unless all of them are valid.

The codes and texts are HubSpot's own, from captured v3 responses (issue threads and integrators'
logs, 2021-2025) and the developer changelog:
- `PROPERTY_DOESNT_EXIST` `Property "x" does not exist`
- `READ_ONLY_VALUE` `"x" is a calculated property; its value cannot be set.`
- `INVALID_EMAIL` `Email address x is invalid`
- `INVALID_OPTION` `x was not one of the allowed options: [a, b, c]`
- `INVALID_INTEGER` `x was not a valid number.` (also for a number property that takes decimals)
- `INVALID_DATE` `1521225089103 is at 18:31:29.103 UTC, not midnight!` (a `date` property)
- `LEADING_TRAILING_WHITESPACE` `"x" includes leading or trailing whitespace.` (non-string
  properties, enforced since 2025)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from connectors.hubspot.sandbox.errors import HubSpotError, api_error, property_errors, validation_error
from connectors.hubspot.sandbox.schema import OPEN_ENUMERATIONS, ObjectType, PropertyDef
from connectors.hubspot.sandbox.timestamps import iso_date, iso_ms, parse_instant

# A value of None in the result means "clear this property".
PropertyChanges = dict[str, str | None]

# Properties HubSpot checks as email addresses. They are plain `string`/`text` properties in the
# properties API (HubSpot has no email field type), so they are known by name.
EMAIL_PROPERTIES = frozenset({("contacts", "email")})
# One address: a local part, an @, and a dotted domain whose last label is letters. HubSpot also refuses
# domains that do not exist; a sandbox cannot know which do, so only the form is checked.
_EMAIL = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$"
)
# Plain decimal notation; `1e-14` is refused by HubSpot ("1.4210854715202004e-14 was not a valid number.").
_NUMBER = re.compile(r"^-?(?:\d+\.?\d*|\.\d+)$")
DAY_MS = 86_400_000
# A `bool` property's options, as the properties API lists them (labels Yes/No, values true/false).
BOOLEAN_OPTIONS = ("true", "false")


def validate_properties(object_type: ObjectType, raw: Any, definitions: Mapping[str, PropertyDef]) -> PropertyChanges:
    """`definitions`: the portal's properties of `object_type`."""
    if not isinstance(raw, dict):
        raise validation_error("properties must be an object of property names to values")
    problems: list[tuple[str, str, str, str | None]] = []
    changes: PropertyChanges = {}
    for name, value in raw.items():
        definition = definitions.get(name)
        shown = value if isinstance(value, str) else None
        if definition is None:
            problems.append((name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist', shown))
            continue
        if definition.read_only:
            problems.append(
                (name, "READ_ONLY_VALUE", f'"{name}" is a calculated property; its value cannot be set.', shown)
            )
            continue
        try:
            changes[name] = _normalize(object_type, definition, value)
        except _InvalidValue as invalid:
            problems.append((name, invalid.code, invalid.message, invalid.value))
    if problems:
        raise property_errors(problems)
    return changes


def require_on_create(object_type: ObjectType, changes: PropertyChanges) -> None:
    missing = [name for name in object_type.required_on_create if changes.get(name) is None]
    if missing:
        raise validation_error(
            f"Error creating {object_type.singular.upper()}.  Some required properties were not set.",
            context={"properties": missing},
        )


def duplicate_contact(existing_id: int) -> HubSpotError:
    return api_error(409, "CONFLICT", f"Contact already exists. Existing ID: {existing_id}")


class _InvalidValue(Exception):
    def __init__(self, code: str, message: str, value: str | None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.value = value


def _normalize(object_type: ObjectType, definition: PropertyDef, value: Any) -> str | None:
    text = _as_text(value)
    if text is None or text == "":
        return None
    kind = definition.type

    def invalid(code: str, message: str) -> _InvalidValue:
        return _InvalidValue(code, message, text)

    if kind != "string" and text != text.strip():
        raise invalid("LEADING_TRAILING_WHITESPACE", f'"{text}" includes leading or trailing whitespace.')
    if (object_type.name, definition.name) in EMAIL_PROPERTIES:
        if not _EMAIL.match(text):
            raise invalid("INVALID_EMAIL", f"Email address {text} is invalid")
        return text
    if kind == "number":
        if not _NUMBER.match(text):
            raise invalid("INVALID_INTEGER", f"{text} was not a valid number.")
        return text
    if kind in ("date", "datetime"):
        instant = parse_instant(text)
        if instant is None:
            # A value that is neither ms since the epoch nor ISO 8601; HubSpot reads dates as longs.
            raise invalid("INVALID_LONG", f"{text} was not a valid long.")
        if kind == "date":
            since_midnight = instant % DAY_MS
            if since_midnight:
                raise invalid("INVALID_DATE", f"{text} is at {_clock(since_midnight)} UTC, not midnight!")
            return iso_date(instant)
        return iso_ms(instant)
    if kind == "bool":
        # A checkbox property is an enumeration of two options; Python's True arrives as "true".
        _check_options(definition.name, [text], BOOLEAN_OPTIONS, text)
        return text
    if kind == "enumeration" and definition.name not in OPEN_ENUMERATIONS:
        # A multiple-checkbox property holds several options separated by semicolons.
        chosen = text.split(";") if definition.field_type == "checkbox" else [text]
        _check_options(definition.name, chosen, definition.options, text)
    return text


def _check_options(name: str, chosen: list[str], options: tuple[str, ...], text: str) -> None:
    for option in chosen:
        if option not in options:
            allowed = ", ".join(options)
            raise _InvalidValue("INVALID_OPTION", f"{option} was not one of the allowed options: [{allowed}]", text)


def _clock(ms_of_day: int) -> str:
    """HubSpot writes the time of day unpadded: `4:0:0.0`, `18:31:29.103`."""
    seconds, millis = divmod(ms_of_day, 1000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return f"{hour}:{minute}:{second}.{millis}"


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    raise _InvalidValue("INVALID_PROPERTY_VALUE", f"{value!r} is not a string, number or boolean.", None)

"""Validation of property writes, as HubSpot answers them: every bad property is reported at
once and nothing is written unless all of them are valid."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.hubspot.sandbox.errors import HubSpotError, api_error, property_errors, validation_error
from connectors.hubspot.sandbox.schema import OPEN_ENUMERATIONS, ObjectType, PropertyDef
from connectors.hubspot.sandbox.timestamps import iso_date, iso_ms, parse_instant

# A value of None in the result means "clear this property".
PropertyChanges = dict[str, str | None]


def validate_properties(object_type: ObjectType, raw: Any, definitions: Mapping[str, PropertyDef]) -> PropertyChanges:
    """`definitions`: the portal's properties of `object_type`."""
    if not isinstance(raw, dict):
        raise validation_error("properties must be an object of property names to values")
    problems: list[tuple[str, str, str]] = []
    changes: PropertyChanges = {}
    for name, value in raw.items():
        definition = definitions.get(name)
        if definition is None:
            problems.append((name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist'))
            continue
        if definition.read_only:
            problems.append((name, "READ_ONLY_VALUE", f'"{name}" is a read only property; its value cannot be set.'))
            continue
        try:
            changes[name] = _normalize(definition, value)
        except _InvalidValue as invalid:
            problems.append((name, invalid.code, invalid.message))
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
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _normalize(definition: PropertyDef, value: Any) -> str | None:
    text = _as_text(value)
    if text is None or text == "":
        return None
    kind = definition.type
    if kind == "number":
        try:
            float(text)
        except ValueError:
            raise _InvalidValue("INVALID_DECIMAL", f"{text} was not a valid number.") from None
    elif kind in ("date", "datetime"):
        instant = parse_instant(text)
        if instant is None:
            raise _InvalidValue("INVALID_DATE", f"{text} was not a valid date; send ms since epoch or ISO 8601.")
        return iso_date(instant) if kind == "date" else iso_ms(instant)
    elif kind == "bool":
        if text.lower() not in ("true", "false"):
            raise _InvalidValue("INVALID_BOOLEAN", f"{text} was not a valid boolean.")
        return text.lower()
    elif kind == "enumeration" and definition.name not in OPEN_ENUMERATIONS and text not in definition.options:
        raise _InvalidValue("INVALID_OPTION", f"{text} was not one of the allowed options")
    return text


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    raise _InvalidValue("INVALID_PROPERTY_VALUE", f"{value!r} is not a string, number or boolean.")

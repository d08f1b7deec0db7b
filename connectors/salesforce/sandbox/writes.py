"""Validation of sObject create and update bodies, in the order Salesforce applies it: the JSON
itself, then which fields may be written, then each value's type, then required fields, then each
value's content. The first failing stage answers; nothing is written unless every field is valid."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson

from connectors.salesforce.sandbox.errors import bad_request, json_parser_error
from connectors.salesforce.sandbox.ids import normalize_id
from connectors.salesforce.sandbox.schema import USER, FieldDef, FieldType, SObjectType, sobject_of_id
from connectors.salesforce.sandbox.store import Row
from connectors.salesforce.sandbox.timestamps import format_datetime, parse_date, parse_datetime

# The stored value of each written field, by field name; None clears a field.
Changes = dict[str, Any]
RecordLookup = Callable[[SObjectType, str], Row | None]

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_SOAP_NAMES = {
    FieldType.DATETIME: "datetime",
    FieldType.DATE: "date",
    FieldType.BOOLEAN: "boolean",
    FieldType.DOUBLE: "double",
    FieldType.CURRENCY: "double",
    FieldType.PERCENT: "double",
    FieldType.INT: "int",
}


def parse_body(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw or b"")
    except orjson.JSONDecodeError as problem:
        raise json_parser_error(f"{problem.msg} at [line:{problem.lineno}, column:{problem.colno}]") from None
    if not isinstance(body, dict):
        raise json_parser_error(
            f"Cannot deserialize instance of sObject from {_token_name(body)} value at [line:1, column:1]"
        )
    return body


def validate_write(
    sobject: SObjectType, body: dict[str, Any], *, creating: bool, lookup: RecordLookup, raw: bytes = b""
) -> Changes:
    written = _writable_fields(sobject, body, creating=creating)
    changes: Changes = {}
    for definition, value in written:
        changes[definition.name] = _deserialize(definition, value, raw)
    _require(sobject, changes, creating=creating)
    for definition, _ in written:
        value = changes[definition.name]
        if value is not None:
            changes[definition.name] = _check_content(definition, value, lookup)
    return changes


def _writable_fields(sobject: SObjectType, body: dict[str, Any], *, creating: bool) -> list[tuple[FieldDef, Any]]:
    written: list[tuple[FieldDef, Any]] = []
    read_only: list[str] = []
    for name, value in body.items():
        if name == "attributes" and isinstance(value, dict):
            continue
        definition = sobject.field(name)
        if definition is None:
            raise bad_request("INVALID_FIELD", f"No such column '{name}' on sobject of type {sobject.name}")
        if definition.type is FieldType.ID:
            raise bad_request("INVALID_FIELD", "The Id field should not be specified in the sobject data.")
        if not (definition.createable if creating else definition.updateable):
            read_only.append(definition.name)
            continue
        written.append((definition, value))
    if read_only:
        raise bad_request(
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            f"Unable to create/update fields: {', '.join(read_only)}. Please check the security settings of this "
            "field and verify that it is read/write for your profile or permission set.",
            read_only,
        )
    return written


def _deserialize(definition: FieldDef, value: Any, raw: bytes) -> Any:
    """The value as stored, or JSON_PARSER_ERROR when its JSON type cannot become the field's type."""
    if value is None:
        return False if definition.type is FieldType.BOOLEAN else None
    kind = definition.type
    converted: Any = None
    if isinstance(value, dict | list):
        converted = None
    elif definition.is_text:
        converted = value if isinstance(value, str) else _text_of(value)
    elif kind is FieldType.BOOLEAN:
        converted = value if isinstance(value, bool) else {"true": True, "false": False}.get(str(value).lower())
    elif definition.is_number:
        converted = _number(value, integral=kind is FieldType.INT)
    elif kind is FieldType.DATE and isinstance(value, str):
        converted = parse_date(value)
    elif kind is FieldType.DATETIME and isinstance(value, str):
        ms = parse_datetime(value, offset_required=False)
        converted = None if ms is None else format_datetime(ms)
    if converted is None:
        type_name = _SOAP_NAMES.get(kind, "string")
        rendered = value if not isinstance(value, dict | list) else ("{" if isinstance(value, dict) else "[")
        raise json_parser_error(
            f"Cannot deserialize instance of {type_name} from {_token_name(value)} value {rendered} "
            f"or request may be missing a required field at [line:1, column:{_column_of(definition.name, raw)}]"
        )
    return converted


def _text_of(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _number(value: Any, *, integral: bool) -> float | int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if not isinstance(value, int | float):
        return None
    if integral:
        return int(value) if float(value).is_integer() else None
    return float(value)


def _require(sobject: SObjectType, changes: Changes, *, creating: bool) -> None:
    if creating:
        missing = [f.name for f in sobject.fields if f.required and changes.get(f.name) is None]
    else:
        missing = [name for name, value in changes.items() if value is None and _field(sobject, name).required]
    if missing:
        raise bad_request("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing)


def _field(sobject: SObjectType, name: str) -> FieldDef:
    definition = sobject.field(name)
    assert definition is not None
    return definition


def _check_content(definition: FieldDef, value: Any, lookup: RecordLookup) -> Any:
    fields = [definition.name]
    label = definition.label
    if definition.type is FieldType.REFERENCE:
        return _reference(definition, value, lookup)
    if definition.is_text and definition.length and len(value) > definition.length:
        raise bad_request(
            "STRING_TOO_LONG",
            f"{label}: data value too large: {value} (max length={definition.length})",
            fields,
        )
    if definition.type is FieldType.EMAIL and not _EMAIL.fullmatch(value):
        raise bad_request("INVALID_EMAIL_ADDRESS", f"{label}: invalid email address: {value}", fields)
    if definition.restricted and value not in definition.picklist:
        raise bad_request(
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            f"{label}: bad value for restricted picklist field: {value}",
            fields,
        )
    return value


def _reference(definition: FieldDef, value: str, lookup: RecordLookup) -> str:
    fields = [definition.name]
    canonical = normalize_id(value)
    target = sobject_of_id(canonical) if canonical else None
    if canonical is None or target is None or target.name not in definition.reference_to:
        allowed = definition.reference_to[0] if len(definition.reference_to) == 1 else definition.label
        raise bad_request("MALFORMED_ID", f"{allowed} ID: id value of incorrect type: {value}", fields)
    row = lookup(target, canonical)
    deleted_at = target.deleted_at
    if row is None or (deleted_at is not None and row[deleted_at]):
        raise bad_request("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", fields)
    if target is USER and not row[USER.position("IsActive")]:
        raise bad_request("INACTIVE_OWNER_OR_USER", "operation performed with inactive user as owner", fields)
    return canonical


def _token_name(value: Any) -> str:
    if isinstance(value, bool):
        return "VALUE_TRUE" if value else "VALUE_FALSE"
    if isinstance(value, int):
        return "VALUE_NUMBER_INT"
    if isinstance(value, float):
        return "VALUE_NUMBER_FLOAT"
    if isinstance(value, str):
        return "VALUE_STRING"
    if isinstance(value, dict):
        return "START_OBJECT"
    if isinstance(value, list):
        return "START_ARRAY"
    return "VALUE_NULL"


def _column_of(name: str, raw: bytes) -> int:
    index = raw.find(f'"{name}"'.encode())
    return index + 1 if index >= 0 else 1

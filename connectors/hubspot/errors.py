"""HubSpot's error dialect: `{status, message, category, errors: [{message, code, context}]}`.

A property validation error names every bad property twice: as a JSON list of verdicts
(`{isValid, message, error, name}`) inside `message` after "Property values were not valid: ", and,
in current responses, as `errors[]` with `context.propertyName`. Older responses carry only the first
form, so both are read.
"""

from __future__ import annotations

from typing import Any

import httpx2
import orjson

from connectors.kit.errors import ProviderError, RateLimited, error_object

PROPERTY_VERDICTS = "Property values were not valid: "


def parse_error(response: httpx2.Response) -> ProviderError:
    body = error_object(response)
    message = str(body.get("message") or f"HubSpot answered {response.status_code}")
    if response.status_code == 429:
        return RateLimited(message, status=429, provider_code=body.get("policyName"))
    code = body.get("category") or body.get("status")
    field = None
    verdicts = _property_verdicts(body)
    if verdicts:
        # The property and HubSpot's reason ("Email address x is invalid", INVALID_EMAIL) say more than
        # the category; every bad property's reason is kept in the message.
        field = verdicts[0][0]
        code = verdicts[0][1]
        message = verdicts[0][2] if len(verdicts) == 1 else "; ".join(f"{n}: {r}" for n, _, r in verdicts)
    else:
        details = body.get("errors")
        first = details[0] if isinstance(details, list) and details and isinstance(details[0], dict) else {}
        field = first.get("in") or _first(first.get("context"), "propertyName")
        if field and first.get("message"):
            message = str(first["message"])
    if field is None:
        # "Some required properties were not set", with their names in context.
        field = _first(body.get("context"), "properties")
    return ProviderError(
        message,
        status=response.status_code,
        provider_code=code,
        field=field,
        correlationId=body.get("correlationId"),
    )


def _property_verdicts(body: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(property, code, reason) of each verdict of a property validation error, else nothing."""
    message = body.get("message")
    if not isinstance(message, str) or not message.startswith(PROPERTY_VERDICTS):
        return []
    try:
        verdicts = orjson.loads(message.removeprefix(PROPERTY_VERDICTS))
    except orjson.JSONDecodeError:
        verdicts = None
    if isinstance(verdicts, list):
        found = [
            (str(v["name"]), str(v.get("error") or body.get("category") or ""), str(v.get("message") or v["name"]))
            for v in verdicts
            if isinstance(v, dict) and v.get("name")
        ]
        if found:
            return found
    # Unparsable verdicts: fall back on the structured copy.
    details = body.get("errors")
    if not isinstance(details, list):
        return []
    return [
        (name, str(d.get("code") or ""), str(d.get("message") or name))
        for d in details
        if isinstance(d, dict) and (name := _first(d.get("context"), "propertyName"))
    ]


def _first(context: Any, key: str) -> str | None:
    values = context.get(key) if isinstance(context, dict) else None
    return str(values[0]) if isinstance(values, list) and values else None

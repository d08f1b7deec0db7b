"""HubSpot's error dialect: `{status, message, category, errors: [{message, in, code}]}`."""

from __future__ import annotations

import httpx2
import orjson

from connectors.kit.errors import ProviderError, RateLimited


def parse_error(response: httpx2.Response) -> ProviderError:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        body = {}
    message = str(body.get("message") or f"HubSpot answered {response.status_code}")
    if response.status_code == 429:
        return RateLimited(message, status=429, provider_code=body.get("policyName"))
    details = body.get("errors") or []
    field = None
    if details and isinstance(details[0], dict):
        field = details[0].get("in") or (details[0].get("context") or {}).get("propertyName", [None])[0]
        if field and details[0].get("message"):
            # The top-level message of a property error is a JSON dump of every verdict; the first one reads better.
            message = str(details[0]["message"])
    missing = (body.get("context") or {}).get("properties") if isinstance(body.get("context"), dict) else None
    if field is None and isinstance(missing, list) and missing:
        field = str(missing[0])  # "Some required properties were not set", with their names in context
    return ProviderError(
        message,
        status=response.status_code,
        provider_code=body.get("category") or body.get("status"),
        field=field,
        correlationId=body.get("correlationId"),
    )

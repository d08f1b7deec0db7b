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
    return ProviderError(
        message,
        status=response.status_code,
        provider_code=body.get("category") or body.get("status"),
        field=field,
        correlationId=body.get("correlationId"),
    )

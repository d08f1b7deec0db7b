"""Salesforce's error dialect: a JSON array of `{message, errorCode, fields}`; limits are 403s."""

from __future__ import annotations

from collections.abc import Mapping

import httpx2

from connectors.kit.errors import ProviderError, RateLimited, error_body


def parse_error(response: httpx2.Response) -> ProviderError:
    body = error_body(response)
    first = body[0] if isinstance(body, list) and body and isinstance(body[0], dict) else {}
    if isinstance(body, dict):  # the OAuth endpoints answer RFC 6749 style
        first = {"message": body.get("error_description"), "errorCode": body.get("error")}
    # The front end's refusals of an over-long request (URI, or URI and headers, over 16,384 bytes) are
    # HTML pages, not the API's error array.
    too_long = {414: "the request URI is too long", 431: "the request URI and headers are too long"}
    fallback = too_long.get(response.status_code, f"Salesforce answered {response.status_code}")
    message = str(first.get("message") or fallback)
    code = first.get("errorCode")
    if code == "REQUEST_LIMIT_EXCEEDED" or response.status_code == 429:
        return RateLimited(message, status=response.status_code, provider_code=code)
    fields = first.get("fields") or []
    return ProviderError(message, status=response.status_code, provider_code=code, field=fields[0] if fields else None)


def pause_near_daily_limit(headers: Mapping[str, str]) -> float | None:
    """`Sforce-Limit-Info: api-usage=N/M`: the org's rolling 24-hour allowance is shared with everything
    else the customer runs, so the syncer slows down well before it is used up."""
    info = headers.get("sforce-limit-info", "")
    for part in info.split(","):
        name, _, value = part.strip().partition("=")
        if name != "api-usage":
            continue
        used, _, limit = value.partition("/")
        if not (used.isdigit() and limit.isdigit()) or int(limit) == 0:
            return None
        share = int(used) / int(limit)
        if share >= 0.98:
            return 600.0
        if share >= 0.9:
            return 10.0
    return None

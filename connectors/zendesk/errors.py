"""Zendesk's error dialects: the classic `{"error": "RecordInvalid", "description": ..., "details": {field:
[{"description", "error"}]}}` and the newer `{"errors": [{"code", "title", "detail"}]}`; 429 says slow down."""

from __future__ import annotations

from typing import Any

import httpx2

from connectors.kit.errors import ProviderError, RateLimited, error_object


def parse_error(response: httpx2.Response) -> ProviderError:
    body = error_object(response)
    if response.status_code == 429:
        return RateLimited("Zendesk's rate limit was reached", status=429)
    listed = body.get("errors")
    if isinstance(listed, list) and listed and isinstance(listed[0], dict):
        first = listed[0]
        message = str(first.get("detail") or first.get("title") or first.get("code") or "")
        return ProviderError(
            message or f"Zendesk answered {response.status_code}",
            status=response.status_code,
            provider_code=first.get("code"),
        )
    error = body.get("error")
    message = str(body.get("description") or _text(error) or f"Zendesk answered {response.status_code}")
    code = error if isinstance(error, str) else None
    field, detail = _first_detail(body.get("details"))
    if detail:
        # The field's own verdict ("Status: closed prevents ticket update") says more than "RecordInvalid".
        message = str(detail.get("description") or message)
        code = str(detail.get("error") or code or "") or None
    return ProviderError(message, status=response.status_code, provider_code=code, field=field)


def _text(error: Any) -> str | None:
    if isinstance(error, dict):  # OAuth-era bodies: {"error": {"title", "message"}}
        return str(error.get("message") or error.get("title") or "") or None
    return str(error) if error else None


def _first_detail(details: Any) -> tuple[str | None, dict[str, Any] | None]:
    if not isinstance(details, dict):
        return None, None
    for field, verdicts in details.items():
        if isinstance(verdicts, list) and verdicts and isinstance(verdicts[0], dict):
            return (None if field == "base" else str(field)), verdicts[0]
    return None, None

"""Stripe's error envelope: `{"error": {"type", "code", "param", "message", "decline_code"?}}`
(docs.stripe.com/api/errors). `param` names the request parameter at fault, in bracket form for nested ones
(`metadata[plan]`), which the error carries in dotted form (`metadata.plan`) so a write names the input
field. 429 is a rate limit; a 402 card error is the caller's input, and says why the card was declined.
`Stripe-Should-Retry` says whether the same request may succeed when sent again (a 409 lock, a 5xx)."""

from __future__ import annotations

import re

import httpx2

from connectors.kit.errors import ProviderError, RateLimited, error_object

_BRACKET = re.compile(r"\[([^\[\]]*)\]")


def dotted(param: str) -> str:
    """`metadata[plan]` -> `metadata.plan`; `lines[0][amount]` -> `lines.0.amount`."""
    return _BRACKET.sub(lambda match: f".{match.group(1)}", param).strip(".")


def parse_error(response: httpx2.Response) -> ProviderError:
    body = error_object(response).get("error")
    error = body if isinstance(body, dict) else {}
    status = response.status_code
    kind = str(error.get("type") or "")
    message = str(error.get("message") or f"Stripe answered {status}")
    param = error.get("param")
    field = dotted(param) if isinstance(param, str) and param else None
    if field and field not in message:
        message = f"{message} (parameter {param})"
    said = response.headers.get("stripe-should-retry")
    should_retry = None if said is None else said.strip().lower() == "true"
    if status == 429:
        return RateLimited(f"Stripe's rate limit was reached: {message}", status=429, provider_code=error.get("code"))
    # An idempotency error is its own kind whatever its status (400 for a key reused with other
    # parameters, 409 for a request with the key still running).
    code = kind if kind == "idempotency_error" else str(error.get("code") or kind or "") or None
    return ProviderError(
        message,
        status=status,
        provider_code=code,
        field=field,
        should_retry=should_retry,
        errorType=kind or None,
        declineCode=error.get("decline_code"),
        requestId=response.headers.get("request-id"),
    )

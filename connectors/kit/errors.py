"""Typed errors. Raised where they arise; the gateway turns them into GraphQL errors in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import orjson

if TYPE_CHECKING:
    import httpx2


class XkitError(Exception):
    """An error a caller can act on; `code` becomes `extensions.code` in GraphQL."""

    code: ClassVar[str] = "INTERNAL_SERVER_ERROR"

    def __init__(self, message: str, **extensions: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extensions = {k: v for k, v in extensions.items() if v is not None}


class BadInput(XkitError):
    code = "BAD_USER_INPUT"


class NotFound(XkitError):
    code = "NOT_FOUND"


class Unauthenticated(XkitError):
    code = "UNAUTHENTICATED"


class Conflict(XkitError):
    code = "CONFLICT"


class ProviderError(XkitError):
    """The provider answered with an error we cannot recover from by retrying."""

    code = "PROVIDER_ERROR"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        provider_code: str | None = None,
        field: str | None = None,
        should_retry: bool | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(message, status=status, providerCode=provider_code, field=field, **extensions)
        self.status = status
        self.provider_code = provider_code
        self.field = field
        # The provider's own word on whether sending the request again may succeed (Stripe's
        # `Stripe-Should-Retry`), over what its status alone suggests; None when it says nothing.
        self.should_retry = should_retry


class RateLimited(ProviderError):
    code = "RATE_LIMITED"

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, retryAfterSeconds=round(retry_after) if retry_after else None, **kwargs)
        self.retry_after = retry_after


class ProviderUnavailable(ProviderError):
    """5xx or network failures that outlasted every retry."""


class ReauthRequired(ProviderError):
    """The provider no longer accepts the connection's credentials; a person must reconnect."""

    code = "UNAUTHENTICATED"


class ResponseTooLarge(ProviderError):
    """The provider's answer, decoded, is larger than the limit; it was not read past the limit."""


class PaginationStopped(ProviderError):
    """A run stopped following the provider's pages: too many for one run, or a cursor handed back twice."""


class PageBudgetSpent(PaginationStopped):
    """A run read the most pages one run may: a large backfill simply goes on in the next run."""


def error_body(response: httpx2.Response) -> Any:
    """A provider's error answer as JSON, or None when it is not JSON (a proxy's HTML page, say)."""
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None


def error_object(response: httpx2.Response) -> dict[str, Any]:
    """A provider's error answer as a JSON object; anything else reads as an empty one."""
    body = error_body(response)
    return body if isinstance(body, dict) else {}

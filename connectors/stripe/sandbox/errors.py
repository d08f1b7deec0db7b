"""Stripe's error envelope, `{"error": {"type", "code", "param", "message", "doc_url"}}`, and the errors the
sandbox answers with, in Stripe's own words where they are known (docs.stripe.com/api/errors)."""

from __future__ import annotations

from typing import Any

DOC_URL = "https://stripe.com/docs/error-codes/"


class StripeError(Exception):
    """An error the API answers with. `validation` marks a request refused before the endpoint ran: Stripe saves
    no idempotent result for it, so a retry with the same key runs afresh."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        validation: bool = False,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.validation = validation
        self.headers = headers or {}
        error: dict[str, Any] = {"type": type, "message": message}
        if code is not None:
            error["code"] = code
            error["doc_url"] = DOC_URL + code.replace("_", "-")
        if param is not None:
            error["param"] = param
        error.update(extra)
        self.body: dict[str, Any] = {"error": error}


def invalid(message: str, param: str | None = None, code: str | None = None) -> StripeError:
    """The request's parameters are wrong: refused before the endpoint runs."""
    return StripeError(
        400, message, param=param, code=code or ("parameter_invalid" if param else None), validation=True
    )


def unknown_parameter(name: str) -> StripeError:
    return StripeError(
        400, f"Received unknown parameter: {name}", param=name, code="parameter_unknown", validation=True
    )


def missing_parameter(name: str) -> StripeError:
    return StripeError(400, f"Missing required param: {name}.", param=name, code="parameter_missing", validation=True)


def resource_missing(kind: str, object_id: str, param: str = "id") -> StripeError:
    return StripeError(404, f"No such {kind}: '{object_id}'", param=param, code="resource_missing")


def state_error(message: str) -> StripeError:
    """The object is not in a state that allows the call (e.g. voiding a paid invoice): the endpoint ran."""
    return StripeError(400, message)


def authentication(message: str) -> StripeError:
    return StripeError(401, message)


def forbidden(message: str, code: str | None = None) -> StripeError:
    return StripeError(403, message, code=code)


def card_declined(payment_intent: dict[str, Any], decline_code: str) -> StripeError:
    return StripeError(
        402,
        "Your card was declined.",
        type="card_error",
        code="card_declined",
        decline_code=decline_code,
        payment_intent=payment_intent,
    )


def rate_limited() -> dict[str, Any]:
    error = StripeError(
        429,
        "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.",
        code="rate_limit",
    )
    return error.body


def server_error(status: int) -> dict[str, Any]:
    message = f"The server answered {status}; Stripe's own errors of this kind are safe to retry."
    return StripeError(status, message, type="api_error").body


def oauth_error(error: str, description: str, status: int = 400) -> StripeError:
    """Connect's OAuth endpoints answer in OAuth's words, not the API's envelope."""
    problem = StripeError(status, description)
    problem.body = {"error": error, "error_description": description}
    return problem

"""HubSpot's error bodies, raised as one exception type and rendered in one place."""

from __future__ import annotations

import uuid
from typing import Any

import orjson


def correlation_id() -> str:
    return str(uuid.uuid4())


class HubSpotError(Exception):
    """An API error with HubSpot's status code and JSON body."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(body.get("message", ""))
        self.status = status
        self.body = body
        self.headers = headers or {}


def api_error(status: int, category: str, message: str, **extra: Any) -> HubSpotError:
    body: dict[str, Any] = {"status": "error", "message": message, "correlationId": correlation_id()}
    body.update(extra)
    body["category"] = category
    return HubSpotError(status, body)


def validation_error(message: str, **extra: Any) -> HubSpotError:
    return api_error(400, "VALIDATION_ERROR", message, **extra)


def not_found(record_id: str) -> HubSpotError:
    if record_id.isdigit():
        return api_error(404, "OBJECT_NOT_FOUND", "resource not found")
    return api_error(
        404, "OBJECT_NOT_FOUND", "Object not found.  objectId are usually numeric.", context={"id": [record_id]}
    )


def property_errors(problems: list[tuple[str, str, str, str | None]]) -> HubSpotError:
    """`problems` are (property name, HubSpot error code, message, the value sent) tuples.

    HubSpot embeds the per-property verdicts as a JSON string in `message` and repeats them,
    structured, in `errors` (the error-handling guide's example); clients parse either, so both are
    reproduced. `propertyValue` is in the verdict when the value was a string, as captured in 2025.
    """
    verdicts = []
    for name, code, message, value in problems:
        verdict: dict[str, Any] = {"isValid": False, "message": message, "error": code, "name": name}
        verdict["localizedErrorMessage"] = message
        if value is not None:
            verdict["propertyValue"] = value
        verdicts.append(verdict)
    details = [
        {"message": message, "code": code, "context": {"propertyName": [name]}} for name, code, message, _ in problems
    ]
    return validation_error(
        "Property values were not valid: " + orjson.dumps(verdicts).decode(),
        errors=details,
    )


def rate_limit_error(limit: str, policy: str) -> dict[str, Any]:
    """HubSpot's 429 body for the limit named `limit` (its words) under the policy `policy`."""
    return {
        "status": "error",
        "message": f"You have reached your {limit} limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": correlation_id(),
        "policyName": policy,
    }


def ten_secondly_limit() -> dict[str, Any]:
    return rate_limit_error("ten_secondly_rolling", "TEN_SECONDLY_ROLLING")


def secondly_limit() -> dict[str, Any]:
    return rate_limit_error("secondly", "SECONDLY")


def server_error(status: int) -> dict[str, Any]:
    messages = {
        500: "internal error",
        502: "Bad Gateway: the upstream service did not answer in time",
        503: "Service Unavailable: try again shortly",
    }
    return {
        "status": "error",
        "message": messages.get(status, "internal error"),
        "correlationId": correlation_id(),
        "category": "INTERNAL_ERROR" if status == 500 else "SERVICE_UNAVAILABLE",
    }

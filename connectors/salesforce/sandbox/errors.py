"""Salesforce's REST error bodies: always a JSON array of `{"message", "errorCode", "fields"?}`,
raised as one exception type and rendered in one place."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

SESSION_EXPIRED = "Session expired or invalid"
RESOURCE_MISSING = "The requested resource does not exist"


class SalesforceError(Exception):
    def __init__(
        self,
        status: int,
        error_code: str,
        message: str,
        fields: Sequence[str] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{error_code}: {message}")
        self.status = status
        self.error_code = error_code
        self.message = message
        self.fields = list(fields) if fields is not None else None
        self.details = details or {}  # further keys of the error object (`duplicateResult`)

    def body(self) -> list[dict[str, Any]]:
        error: dict[str, Any] = {"message": self.message, "errorCode": self.error_code}
        if self.fields is not None:
            error["fields"] = self.fields
        error.update(self.details)
        return [error]


def bad_request(error_code: str, message: str, fields: Sequence[str] | None = None) -> SalesforceError:
    return SalesforceError(400, error_code, message, fields)


def not_found(message: str = RESOURCE_MISSING) -> SalesforceError:
    return SalesforceError(404, "NOT_FOUND", message)


def entity_is_deleted() -> SalesforceError:
    return SalesforceError(404, "ENTITY_IS_DELETED", "entity is deleted", [])


def invalid_session() -> SalesforceError:
    return SalesforceError(401, "INVALID_SESSION_ID", SESSION_EXPIRED)


def request_limit_exceeded() -> SalesforceError:
    return SalesforceError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")


def server_unavailable() -> SalesforceError:
    return SalesforceError(503, "SERVER_UNAVAILABLE", "Server is temporarily unavailable. Please try again later.")


def method_not_allowed(method: str, allowed: Sequence[str]) -> SalesforceError:
    return SalesforceError(
        405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed. Allowed are {','.join(allowed)}"
    )


def json_parser_error(message: str) -> SalesforceError:
    return bad_request("JSON_PARSER_ERROR", message)

"""Zendesk's error bodies: the classic `{"error", "description"}` envelope and its validation details."""

from __future__ import annotations

from typing import Any

# Zendesk's own words for a failed validation of one field (the 422 `details` entries).
Detail = dict[str, str]


class ZendeskError(Exception):
    """An error the API answers with Zendesk's status and body."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(body.get("description") or body.get("error"))
        self.status = status
        self.body = body
        self.headers = headers or {}


def not_found() -> ZendeskError:
    return ZendeskError(404, {"error": "RecordNotFound", "description": "Not found"})


def record_invalid(details: dict[str, list[Detail]]) -> ZendeskError:
    return ZendeskError(422, {"error": "RecordInvalid", "description": "Record validation errors", "details": details})


def invalid_field(field: str, description: str, error: str = "InvalidValue") -> ZendeskError:
    return record_invalid({field: [{"description": description, "error": error}]})


def blank(field: str, label: str) -> ZendeskError:
    return invalid_field(field, f"{label}: cannot be blank", "BlankValue")


def closed_ticket() -> ZendeskError:
    # The description is Zendesk's, as integrators match on it; the error code is from one report only.
    return invalid_field("status", "Status: closed prevents ticket update", "ClosedTicket")


def bad_request(description: str, error: str = "InvalidPaginationParameter") -> ZendeskError:
    return ZendeskError(400, {"error": error, "description": description})


def too_recent_start_time() -> ZendeskError:
    return ZendeskError(
        422, {"error": "InvalidValue", "description": "Too recent start_time. Use a start_time older than 1 minute"}
    )


def unauthenticated() -> dict[str, Any]:
    return {"error": "Couldn't authenticate you"}


def invalid_token() -> dict[str, Any]:
    return {
        "error": "invalid_token",
        "error_description": "The access token provided is expired, revoked, malformed or invalid for other reasons.",
    }


def forbidden() -> dict[str, Any]:
    return {
        "error": "Forbidden",
        "description": "You do not have access to this page. Please contact the account owner of this help desk for "
        "further help.",
    }


def rate_limited() -> dict[str, Any]:
    # Zendesk's 429 body is not documented; clients act on the status and Retry-After.
    return {"error": "APIRateLimitExceeded", "description": "Number of allowed API requests per minute exceeded"}


def server_error(status: int) -> dict[str, Any]:
    return {"error": "ServerError", "description": f"The server answered {status}; try again later"}

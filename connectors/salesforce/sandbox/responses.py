"""JSON responses, rendered with orjson."""

from __future__ import annotations

from starlette.responses import Response

from connectors.kit.sandbox_support import json_response
from connectors.salesforce.sandbox.errors import SalesforceError


def error_response(error: SalesforceError, headers: dict[str, str] | None = None) -> Response:
    return json_response(error.body(), error.status, headers)

"""JSON responses, rendered with orjson."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from connectors.salesforce.sandbox.errors import SalesforceError


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


def error_response(error: SalesforceError, headers: dict[str, str] | None = None) -> Response:
    return json_response(error.body(), error.status, headers)

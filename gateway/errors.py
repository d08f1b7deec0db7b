"""Refusals outside GraphQL's own answers, in the same JSON shape as GraphQL errors (`extensions.code` and all)."""

from __future__ import annotations

import orjson
from starlette.responses import Response

from connectors.kit.errors import XkitError


def error_response(status: int, error: XkitError, *, headers: dict[str, str] | None = None) -> Response:
    """Every refusal outside GraphQL's own answers: the same JSON shape, `extensions.code` and all."""
    body = {"errors": [{"message": error.message, "extensions": {"code": error.code, **error.extensions}}]}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)

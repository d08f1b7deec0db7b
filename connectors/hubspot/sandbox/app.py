"""The sandbox as one Starlette app: API, OAuth and control routes behind HubSpot's gate."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from connectors.hubspot.sandbox.api import CrmApi
from connectors.hubspot.sandbox.errors import HubSpotError, correlation_id, server_error, ten_secondly_limit
from connectors.hubspot.sandbox.gate import HubSpotApiGate, is_api_path
from connectors.hubspot.sandbox.metadata import MetadataApi
from connectors.hubspot.sandbox.oauth import OAuthRoutes
from connectors.hubspot.sandbox.sandbox import HubSpotSandbox
from connectors.hubspot.sandbox.webhooks import WebhookControlRoutes
from connectors.kit.sandbox import closing_lifespan, counted_and_faulted
from connectors.kit.sandbox_support import ControlRoutes, json_response


def create_app(sandbox: HubSpotSandbox) -> Starlette:
    def throttled() -> Response:
        headers = {"Retry-After": "1"} if sandbox.faults.retry_after_header else None
        return json_response(ten_secondly_limit(), 429, headers)

    def failed(status: int) -> Response:
        return json_response(server_error(status), status)

    async def hubspot_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HubSpotError)
        return json_response(exc.body, exc.status, exc.headers or None)

    async def no_route(request: Request, exc: Exception) -> Response:
        # HubSpot answers a path it does not serve with its JSON 404 (captured: no category).
        return json_response(
            {"status": "error", "message": "resource not found", "correlationId": correlation_id()}, 404
        )

    async def wrong_method(request: Request, exc: Exception) -> Response:
        # A method a path does not take: 405 with an empty body and the methods it takes in Allow, as
        # captured from api.hubapi.com.
        assert isinstance(exc, HTTPException)
        return Response(status_code=405, headers=exc.headers)

    return Starlette(
        routes=[
            *MetadataApi(sandbox).routes(),
            *CrmApi(sandbox).routes(),
            *OAuthRoutes(sandbox).routes(),
            *ControlRoutes(sandbox, "expire-tokens", sandbox.expire_access_tokens).routes(),
            *WebhookControlRoutes(sandbox).routes(),
        ],
        middleware=[
            *counted_and_faulted(sandbox, applies_to=is_api_path, throttled=throttled, failed=failed),
            Middleware(HubSpotApiGate, sandbox=sandbox),
        ],
        exception_handlers={HubSpotError: hubspot_error, 404: no_route, 405: wrong_method},
        lifespan=closing_lifespan(sandbox),
    )

"""The sandbox as one Starlette app: every account's API and OAuth routes behind Zendesk's gate, fault
injection, and the `/_sandbox/` control routes."""

from __future__ import annotations

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connectors.kit.sandbox import closing_lifespan, counted_and_faulted
from connectors.kit.sandbox_support import ControlRoutes, json_response
from connectors.zendesk.sandbox.api import SupportApi
from connectors.zendesk.sandbox.errors import ZendeskError, rate_limited, server_error
from connectors.zendesk.sandbox.gate import ZendeskApiGate, is_api_path
from connectors.zendesk.sandbox.oauth import OAuthRoutes
from connectors.zendesk.sandbox.sandbox import ZendeskFaultKnobs, ZendeskSandbox

# What an oversized fault pads a response to: far past any real page.
OVERSIZED_BYTES = 16 * 1024 * 1024


def create_app(sandbox: ZendeskSandbox) -> Starlette:
    def throttled() -> Response:
        return json_response(rate_limited(), 429, {"Retry-After": "1"})

    def failed(status: int) -> Response:
        return json_response(server_error(status), status)

    async def zendesk_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ZendeskError)
        return json_response(exc.body, exc.status, exc.headers or None)

    async def no_route(request: Request, exc: Exception) -> Response:
        return json_response({"error": "InvalidEndpoint", "description": "Not found"}, 404)

    async def wrong_method(request: Request, exc: Exception) -> Response:
        return json_response({"error": "InvalidEndpoint", "description": "Not found"}, 405)

    app = Starlette(
        routes=[
            *SupportApi().routes(),
            *OAuthRoutes(sandbox).routes(),
            *ControlRoutes(sandbox, "expire-tokens", sandbox.expire_access_tokens).routes(),
            *WebhookControlRoutes(sandbox).routes(),
        ],
        middleware=[
            *counted_and_faulted(sandbox, applies_to=is_api_path, throttled=throttled, failed=failed),
            Middleware(BodyFaults, sandbox=sandbox),
            Middleware(ZendeskApiGate, sandbox=sandbox),
        ],
        exception_handlers={ZendeskError: zendesk_error, 404: no_route, 405: wrong_method},
        lifespan=closing_lifespan(sandbox),
    )
    app.state.sandbox = sandbox
    return app


class BodyFaults:
    """Cuts an API response's body short, or pads it far past any real size, at the knobs' rates: what a
    dropped connection or a runaway proxy does to a client."""

    def __init__(self, app: ASGIApp, sandbox: ZendeskSandbox) -> None:
        self.app = app
        self.faults: ZendeskFaultKnobs = sandbox.faults
        self.rng = sandbox.fault_rng

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_api_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        truncate = bool(self.faults.rate_truncated) and self.rng.random() < self.faults.rate_truncated
        oversize = not truncate and bool(self.faults.rate_oversized) and self.rng.random() < self.faults.rate_oversized
        if not truncate and not oversize:
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def collect(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            else:
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, collect)
        assert start is not None
        body = b"".join(chunks)
        body = body[: len(body) // 2] if truncate else body[:-1] + b" " * OVERSIZED_BYTES + body[-1:]
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class WebhookControlRoutes:
    """`PUT /_sandbox/webhooks {"endpoint", "signing_secret"?, "subdomain"?}` turns webhooks on and answers
    the signing secret; `DELETE` turns them off."""

    def __init__(self, sandbox: ZendeskSandbox) -> None:
        self.sandbox = sandbox

    def routes(self) -> list[Route]:
        return [
            Route("/_sandbox/webhooks", self.put, methods=["PUT"]),
            Route("/_sandbox/webhooks", self.delete, methods=["DELETE"]),
        ]

    async def put(self, request: Request) -> Response:
        try:
            body = orjson.loads(await request.body())
            if (
                not isinstance(body, dict)
                or body.get("subdomain", self.sandbox.default_subdomain) not in self.sandbox.accounts
            ):
                raise ValueError('send {"endpoint": "https://...", "signing_secret"?: "...", "subdomain"?: "..."}')
            secret = self.sandbox.configure_webhooks(
                str(body.get("endpoint", "")), body.get("signing_secret"), body.get("subdomain")
            )
        except (orjson.JSONDecodeError, ValueError) as problem:
            return json_response({"message": str(problem)}, 400)
        return json_response({"signing_secret": secret})

    async def delete(self, request: Request) -> Response:
        for subdomain in self.sandbox.accounts:
            self.sandbox.disable_webhooks(subdomain)
        return Response(status_code=204)

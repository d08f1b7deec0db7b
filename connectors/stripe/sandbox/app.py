"""The sandbox as one Starlette app: the `/v1` API and Connect OAuth behind Stripe's gate, request counters,
fault injection (latency, 429 and 5xx storms), and the `/_sandbox/` control routes."""

from __future__ import annotations

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.kit.sandbox import FaultInjectionMiddleware, RequestStatsMiddleware, closing_lifespan
from connectors.kit.sandbox_support import ControlRoutes, json_response
from connectors.stripe.sandbox.api import StripeApi
from connectors.stripe.sandbox.errors import StripeError, rate_limited, server_error
from connectors.stripe.sandbox.gate import StripeGate, is_api_path
from connectors.stripe.sandbox.oauth import OAuthRoutes
from connectors.stripe.sandbox.sandbox import StripeSandbox


def create_app(sandbox: StripeSandbox) -> Starlette:
    def throttled() -> Response:
        return json_response(rate_limited(), 429, {"Stripe-Rate-Limited-Reason": "global-rate"})

    def failed(status: int) -> Response:
        return json_response(server_error(status), status, {"Stripe-Should-Retry": "true"})

    async def unrecognized(request: Request, exc: Exception) -> Response:
        message = (
            f"Unrecognized request URL ({request.method}: {request.url.path}). Please see https://stripe.com/docs or "
            "we can help at https://support.stripe.com/."
        )
        return json_response(StripeError(404, message).body, 404)

    app = Starlette(
        routes=[
            *StripeApi(sandbox).routes(),
            *OAuthRoutes(sandbox).routes(),
            *ControlRoutes(sandbox, "expire-tokens", sandbox.expire_access_tokens).routes(),
            *SandboxControl(sandbox).routes(),
        ],
        middleware=[
            Middleware(RequestStatsMiddleware, stats=sandbox.stats),
            Middleware(StripeGate, sandbox=sandbox),
            Middleware(
                FaultInjectionMiddleware,
                knobs=sandbox.faults,
                applies_to=is_api_path,
                throttled=throttled,
                failed=failed,
                rng=sandbox.fault_rng,
            ),
        ],
        exception_handlers={404: unrecognized, 405: unrecognized},
        lifespan=closing_lifespan(sandbox),
    )
    app.state.sandbox = sandbox
    return app


class SandboxControl:
    """`POST /_sandbox/clock {"advance_s"}` moves the sandbox clock forward (events and idempotency keys age);
    `PUT /_sandbox/webhooks {"url"}` sends every account's events to `url` through a Connect endpoint of the
    platform, and answers its signing secret."""

    def __init__(self, sandbox: StripeSandbox) -> None:
        self.sandbox = sandbox

    def routes(self) -> list[Route]:
        return [
            Route("/_sandbox/clock", self.advance, methods=["POST"]),
            Route("/_sandbox/webhooks", self.webhooks, methods=["PUT"]),
        ]

    async def advance(self, request: Request) -> Response:
        try:
            seconds = orjson.loads(await request.body())["advance_s"]
            if not isinstance(seconds, int) or seconds < 0:
                raise ValueError
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return json_response({"message": 'send {"advance_s": <non-negative seconds>}'}, 400)
        self.sandbox.age(seconds)
        return json_response({"now": self.sandbox.clock()})

    async def webhooks(self, request: Request) -> Response:
        try:
            url = orjson.loads(await request.body())["url"]
            secret = self.sandbox.send_events_to(str(url))
        except (orjson.JSONDecodeError, KeyError, TypeError, StripeError):
            return json_response({"message": 'send {"url": "http(s)://..."}'}, 400)
        return json_response({"secret": secret})

"""The sandbox as two Starlette apps on two hosts, as Salesforce splits them: the login host
(OAuth) and the org's instance host (REST API), and `serve_sandbox` to run both."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from connectors.kit.sandbox import FaultInjectionMiddleware, RequestStatsMiddleware, serve_apps_in_threads
from connectors.kit.sandbox_support import ControlRoutes
from connectors.salesforce.sandbox.api import RestApi
from connectors.salesforce.sandbox.errors import (
    SalesforceError,
    method_not_allowed,
    not_found,
    request_limit_exceeded,
    server_unavailable,
)
from connectors.salesforce.sandbox.gate import (
    LimitInfoMiddleware,
    SessionGate,
    TrailingSlashMiddleware,
    UriLimitMiddleware,
    is_api_path,
)
from connectors.salesforce.sandbox.oauth import OAuthRoutes
from connectors.salesforce.sandbox.responses import error_response
from connectors.salesforce.sandbox.sandbox import SalesforceSandbox
from connectors.salesforce.sandbox.versions import VersionMiddleware

LOGIN_HOST = "localhost"
INSTANCE_HOST = "127.0.0.1"


def create_login_app(sandbox: SalesforceSandbox) -> Starlette:
    return Starlette(
        routes=OAuthRoutes(sandbox).routes(),
        middleware=[Middleware(RequestStatsMiddleware, stats=sandbox.stats)],
    )


def create_instance_app(sandbox: SalesforceSandbox) -> Starlette:
    routes = [
        *RestApi(sandbox).routes(),
        *OAuthRoutes(sandbox).userinfo_routes(),
        *ControlRoutes(sandbox, "expire-sessions", sandbox.expire_sessions).routes(),
    ]

    async def salesforce_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SalesforceError)
        return error_response(exc)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 405:
            # Starlette names the methods of the first route on the path; Salesforce names all of them.
            path = request.url.path
            allowed = sorted({m for r in routes if r.path_regex.match(path) for m in r.methods or ()})
            return error_response(method_not_allowed(request.method, allowed))
        if exc.status_code == 404:
            return error_response(not_found())
        return error_response(SalesforceError(exc.status_code, "UNKNOWN_EXCEPTION", exc.detail))

    async def crash(request: Request, exc: Exception) -> Response:
        # Starlette still re-raises the exception after this answer, so the traceback is logged.
        return error_response(SalesforceError(500, "UNKNOWN_EXCEPTION", f"An unexpected error occurred: {exc!r}"))

    return Starlette(
        routes=routes,
        middleware=[
            Middleware(TrailingSlashMiddleware),
            Middleware(VersionMiddleware),
            Middleware(RequestStatsMiddleware, stats=sandbox.stats),
            Middleware(UriLimitMiddleware),
            Middleware(LimitInfoMiddleware, sandbox=sandbox),
            Middleware(
                FaultInjectionMiddleware,
                knobs=sandbox.faults,
                applies_to=is_api_path,
                throttled=lambda: error_response(request_limit_exceeded()),
                failed=lambda status: error_response(server_unavailable()),
                rng=sandbox.fault_rng,
                throttle_knob="rate_403",
                failure_statuses=(503,),
            ),
            Middleware(SessionGate, sandbox=sandbox),
        ],
        exception_handlers={SalesforceError: salesforce_error, HTTPException: http_error, Exception: crash},
    )


@contextmanager
def serve_sandbox(
    sandbox: SalesforceSandbox, *, login_port: int = 0, instance_port: int = 0
) -> Iterator[tuple[str, str]]:
    """Serve the login host on `localhost` and the instance host on `127.0.0.1` (two host names,
    as on Salesforce) from background threads; yields (login_url, instance_url)."""
    apps = [
        (create_login_app(sandbox), LOGIN_HOST, login_port),
        (create_instance_app(sandbox), INSTANCE_HOST, instance_port),
    ]
    with serve_apps_in_threads(apps) as (login_url, instance_url):
        sandbox.login_url, sandbox.instance_url = login_url, instance_url
        yield login_url, instance_url

"""What stands in front of the instance host's REST API: trailing-slash tolerance, the session
check, the daily request allocation and the `Sforce-Limit-Info` header on every response."""

from __future__ import annotations

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connectors.kit.sandbox import ExpiredToken, UnknownToken
from connectors.salesforce.sandbox.errors import SalesforceError, invalid_session, request_limit_exceeded
from connectors.salesforce.sandbox.limits import limit_info
from connectors.salesforce.sandbox.responses import error_response
from connectors.salesforce.sandbox.sandbox import API_SCOPES, SalesforceSandbox

DATA_PREFIX = "/services/data"
VERSIONED_PREFIX = "/services/data/v"


def is_api_path(path: str) -> bool:
    return path.startswith(VERSIONED_PREFIX)


class TrailingSlashMiddleware:
    """Salesforce answers `/sobjects/Account/` and `/sobjects/Account` alike (its docs use both);
    one spelling keeps routes and request statistics simple."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] == "http" and path.startswith(DATA_PREFIX) and len(path) > 1 and path.endswith("/"):
            scope = {**scope, "path": path.rstrip("/"), "raw_path": path.rstrip("/").encode()}
        await self.app(scope, receive, send)


class LimitInfoMiddleware:
    """Adds `Sforce-Limit-Info: api-usage=N/LIMIT` to every REST response, errors included."""

    def __init__(self, app: ASGIApp, sandbox: SalesforceSandbox) -> None:
        self.app = app
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(DATA_PREFIX):
            await self.app(scope, receive, send)
            return
        sandbox = self.sandbox

        async def send_with_usage(message: Message) -> None:
            # Read when the response starts, so it includes the call being answered.
            if message["type"] == "http.response.start":
                header = limit_info(sandbox.usage.used(), sandbox.faults.daily_api_limit).encode()
                message = {**message, "headers": [*message.get("headers", []), (b"sforce-limit-info", header)]}
            await send(message)

        await self.app(scope, receive, send_with_usage)


class SessionGate:
    """Every versioned REST call needs a live session with API access, and counts against the
    org's daily allocation. The session user's id is left in `request.state.user_id`."""

    def __init__(self, app: ASGIApp, sandbox: SalesforceSandbox) -> None:
        self.app = app
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_api_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        try:
            user_id = self.admit(scope)
        except SalesforceError as refused:
            await error_response(refused)(scope, receive, send)
            return
        scope.setdefault("state", {})["user_id"] = user_id
        await self.app(scope, receive, send)

    def admit(self, scope: Scope) -> str:
        sandbox = self.sandbox
        try:
            session = sandbox.tokens.authenticate(_bearer_token(scope))
        except (UnknownToken, ExpiredToken):
            raise invalid_session() from None
        if not API_SCOPES.intersection(session.grant.scopes):
            raise SalesforceError(401, "INVALID_SESSION_ID", "This session is not valid for use with the REST API")
        faults = sandbox.faults
        if not sandbox.usage.try_call(faults.daily_api_limit, enforced=faults.daily_limit_enabled):
            raise request_limit_exceeded()
        return sandbox.session_user(session.grant)


def _bearer_token(scope: Scope) -> str:
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            # Salesforce also takes the older `OAuth <token>` scheme.
            if scheme.lower() in ("bearer", "oauth") and token.strip():
                return token.strip()
    raise UnknownToken("")


# "In each REST call, the maximum length for the combined URI and headers is 16,384 bytes. A request
# exceeding this limit returns a 431 Request Header Fields Too Large error. If the URI itself exceeds
# this limit, the request returns a 414 URI Too Long error." (Salesforce Help, article 000386264.)
MAX_URI_AND_HEADERS_BYTES = 16_384


class UriLimitMiddleware:
    """Refuses what Salesforce's front end refuses before the API sees it: a URI over 16,384 bytes (414),
    or a URI and headers together over it (431). Those answers come from the web server, not the REST
    API, so they are not JSON: integrators report them as "Bad Message 431 reason: Request Header
    Fields Too Large" (Stitch's Salesforce troubleshooting page), which is Jetty's error page; the body
    here is that page. They count against no API allowance."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        uri = len(scope.get("raw_path") or scope["path"].encode()) + (
            len(scope["query_string"]) + 1 if scope.get("query_string") else 0
        )
        headers = sum(len(name) + len(value) + 4 for name, value in scope["headers"])  # "name: value\r\n"
        if uri > MAX_URI_AND_HEADERS_BYTES:
            await _bad_message(414, "URI Too Long")(scope, receive, send)
        elif uri + headers > MAX_URI_AND_HEADERS_BYTES:
            await _bad_message(431, "Request Header Fields Too Large")(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def _bad_message(status: int, reason: str) -> Response:
    return Response(
        f"<h1>Bad Message {status}</h1><pre>reason: {reason}</pre>",
        status_code=status,
        media_type="text/html;charset=iso-8859-1",
        headers={"Connection": "close"},
    )

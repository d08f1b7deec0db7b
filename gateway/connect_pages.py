"""The browser's side of the OAuth connect flow: `/oauth/start` binds a connect link to the browser that
opens it (a cookie) and sends it on to the provider; `/oauth/callback` completes the link in that browser.

Neither route reads a body. Every refusal is an HTML page of its own; the only redirects go to the
provider's authorize URL or to the platform's registered redirect URI of that very link.
"""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from connectors.kit.errors import XkitError
from resolvers.connect_flow import (
    COOKIE_PATH,
    WrongBrowser,
    complete_connect,
    cookie_name,
    is_token,
    open_connect_link,
)
from sync.storage.store import utcnow

if TYPE_CHECKING:
    from gateway.runtime import Runtime

# Nothing here may be cached, and the callback's code must not travel on in a Referer header.
_PRIVATE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def _page(status: int, title: str, message: str) -> Response:
    title, message = html.escape(title), html.escape(message)
    body = f"<!doctype html><title>{title}</title><h1>{title}</h1><p>{message}</p>"
    return HTMLResponse(body, status_code=status, headers=_PRIVATE)


def _refused(error: XkitError) -> Response:
    return _page(403 if isinstance(error, WrongBrowser) else 400, "Could not connect", error.message)


def _bounded_query(request: Request, names: tuple[str, ...]) -> tuple[dict[str, str | None], Response | None]:
    """The named parameters, each at most once, from a query string within the configured size."""
    runtime: Runtime = request.app.state.runtime
    if request.method != "GET":
        return {}, _page(405, "Method not allowed", "Open this address in a browser.")
    if len(request.scope.get("query_string", b"")) > runtime.settings.oauth_query_max_bytes:
        return {}, _page(414, "Address too long", "This address is longer than any connect link; start again.")
    params = request.query_params
    found: dict[str, str | None] = {}
    for name in names:
        values = params.getlist(name)
        if len(values) > 1:
            return {}, _page(400, "Could not connect", f"The address names {name} more than once; start again.")
        found[name] = values[0] if values else None
    return found, None


async def oauth_start(request: Request) -> Response:
    """`GET /oauth/start?state=...`: the link `connectUrl` returns."""
    runtime: Runtime = request.app.state.runtime
    params, refused = _bounded_query(request, ("state",))
    if refused is not None:
        return refused
    state = params["state"]
    if not is_token(state):
        return _page(400, "Could not connect", "This connect link is incomplete; start again from the application.")
    assert state is not None
    name = cookie_name(state)
    try:
        opened = await open_connect_link(runtime.services, state, request.cookies.get(name))
    except XkitError as error:
        return _refused(error)
    response = RedirectResponse(opened.authorize_url, status_code=303, headers=_PRIVATE)
    response.set_cookie(
        name,
        opened.nonce,
        # The provider's consent may take a while; the cookie lives as long as the link, not longer.
        max_age=max(1, math.ceil((opened.expires_at - utcnow()).total_seconds())),
        path=COOKIE_PATH,
        secure=runtime.services.public_url.startswith("https://"),
        httponly=True,
        # Lax: sent on the provider's top-level redirect back to the callback, never on cross-site subrequests.
        samesite="lax",
    )
    return response


async def oauth_callback(request: Request) -> Response:
    """`GET /oauth/callback?state=...&code=...` (or `error=...`): where the provider sends the browser back."""
    runtime: Runtime = request.app.state.runtime
    params, refused = _bounded_query(request, ("state", "code", "error"))
    if refused is not None:
        return refused
    state = params["state"]
    if not state:
        return _page(400, "Missing state", "Start the connection again from the application.")
    name = cookie_name(state)
    try:
        outcome = await complete_connect(
            runtime.services, state, params["code"], params["error"], request.cookies.get(name)
        )
    except WrongBrowser as error:
        return _refused(error)  # the cookie (if any) belongs to whoever holds it: left alone
    except XkitError as error:
        response = _refused(error)
    else:
        response = RedirectResponse(outcome.redirect_to, status_code=303, headers=_PRIVATE)
    if name in request.cookies:
        response.delete_cookie(name, path=COOKIE_PATH, httponly=True, samesite="lax")
    return response

"""Zendesk's OAuth endpoints, per account: the authorization (consent) page and `POST /oauth/tokens`,
which takes a JSON body and answers 201.

A token is issued for one account and works only there. Without `expires_in` the access token is
long-lived and comes without a refresh token; with it (more than 300 s, under two days) it expires and a
refresh token comes along, valid for `refresh_token_expires_in` (by default 30 days). Codes live 120 s.
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import parse_qs, urlencode

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from connectors.kit.sandbox import CodeRejected, RegisteredApp
from connectors.kit.sandbox_support import ConsentLook, consent_form, consent_page, json_response
from connectors.zendesk.sandbox.sandbox import ZendeskSandbox

AUTHORIZE_FIELDS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
)
EXPIRES_IN_RANGE = (300, 172_800)
REFRESH_EXPIRES_IN_RANGE = (604_800, 7_776_000)
# Zendesk's token endpoint words its refusals as RFC 6749 errors (the descriptions are Doorkeeper's).
INVALID_GRANT = (
    "The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used in the "
    "authorization request, or was issued to another client."
)
INVALID_CLIENT = (
    "Client authentication failed due to unknown client, no client authentication included, or unsupported "
    "authentication method."
)
LOOK = ConsentLook(
    "Zendesk sandbox (xkit) — no real account is involved.", "allow", ("#f8f9f9", "#2f3941", "#1f73b7", "#d8dcde")
)


class TokenRequestError(Exception):
    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status

    def response(self) -> Response:
        return json_response({"error": self.error, "error_description": self.description}, self.status)


class OAuthRoutes:
    def __init__(self, sandbox: ZendeskSandbox) -> None:
        self.sandbox = sandbox

    def routes(self) -> list[Route]:
        return [
            Route("/{subdomain}/oauth/authorizations/new", self.authorize_page, methods=["GET"]),
            Route("/{subdomain}/oauth/authorizations/new", self.authorize_decision, methods=["POST"]),
            Route("/{subdomain}/oauth/tokens", self.token, methods=["POST"]),
        ]

    async def authorize_page(self, request: Request) -> Response:
        subdomain = request.path_params["subdomain"]
        fields = {name: request.query_params.get(name, "") for name in AUTHORIZE_FIELDS}
        problem = self._authorize_problem(subdomain, fields)
        if problem:
            return HTMLResponse(consent_page(LOOK, "Something went wrong", f"<p>{html.escape(problem)}</p>"), 400)
        intro = (
            f"The app <strong>{html.escape(fields['client_id'])}</strong> is requesting access to your Zendesk "
            f"account <strong>{html.escape(subdomain)}</strong>. It will be able to:"
        )
        action = f"/{subdomain}/oauth/authorizations/new"
        form = consent_form(LOOK, intro, fields["scope"].split(), action, fields)
        return HTMLResponse(consent_page(LOOK, "Allow access to your Zendesk account?", form))

    async def authorize_decision(self, request: Request) -> Response:
        subdomain = request.path_params["subdomain"]
        parsed = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
        fields = {name: values[-1] for name, values in parsed.items()}
        problem = self._authorize_problem(subdomain, fields)
        if problem:
            return HTMLResponse(consent_page(LOOK, "Something went wrong", f"<p>{html.escape(problem)}</p>"), 400)
        params: dict[str, str] = {}
        if fields.get("decision") == LOOK.approve:
            grant = self.sandbox.grant_on(subdomain, fields["client_id"], fields.get("scope", "").split())
            challenge = fields.get("code_challenge") or None
            params["code"] = self.sandbox.tokens.create_code(grant, fields["redirect_uri"], challenge)
        else:
            params.update(
                error="access_denied", error_description="The end-user or authorization server denied the request."
            )
        if fields.get("state"):
            params["state"] = fields["state"]
        separator = "&" if "?" in fields["redirect_uri"] else "?"
        return RedirectResponse(f"{fields['redirect_uri']}{separator}{urlencode(params)}", status_code=302)

    def _authorize_problem(self, subdomain: str, fields: dict[str, str]) -> str | None:
        if subdomain not in self.sandbox.accounts:
            return f"There is no Zendesk account {subdomain!r} in this sandbox."
        if fields.get("response_type") != "code":
            return "response_type must be code."
        app = self.sandbox.apps.get(fields.get("client_id", ""))
        if app is None:
            return "Unknown client_id: this OAuth client is not registered with the sandbox."
        if not app.allows_redirect(fields.get("redirect_uri", "")):
            return "redirect_uri is missing or not one of the client's redirect URLs."
        if fields.get("code_challenge") and fields.get("code_challenge_method") != "S256":
            return "code_challenge_method must be S256."
        return None

    async def token(self, request: Request) -> Response:
        subdomain = request.path_params["subdomain"]
        if subdomain not in self.sandbox.accounts:
            return json_response({"error": "RecordNotFound", "description": "Not found"}, 404)
        try:
            fields = await _body(request)
            app = self._client(fields)
            return json_response(self._grant(subdomain, app, fields), 201)
        except CodeRejected:
            return TokenRequestError("invalid_grant", INVALID_GRANT).response()
        except TokenRequestError as failure:
            return failure.response()

    def _grant(self, subdomain: str, app: RegisteredApp, fields: dict[str, Any]) -> dict[str, Any]:
        expires_in = _seconds(fields, "expires_in", EXPIRES_IN_RANGE)
        refresh_expires_in = _seconds(fields, "refresh_token_expires_in", REFRESH_EXPIRES_IN_RANGE)
        account = self.sandbox.accounts[subdomain]
        grant_type = fields.get("grant_type")
        if grant_type == "authorization_code":
            grant = self.sandbox.tokens.redeem_code(
                str(fields.get("code", "")),
                app.client_id,
                str(fields.get("redirect_uri", "")),
                fields.get("code_verifier"),
            )
            if grant.account_id != account.id:
                raise TokenRequestError("invalid_grant", INVALID_GRANT)
            return self.sandbox.issue(grant, expires_in=expires_in, refresh_expires_in=refresh_expires_in)
        if grant_type == "refresh_token":
            refresh_token = str(fields.get("refresh_token", ""))
            holder = self.sandbox.tokens.lookup_refresh(refresh_token)
            if holder is None or holder.client_id != app.client_id or holder.account_id != account.id:
                raise TokenRequestError("invalid_grant", INVALID_GRANT)
            issued = self.sandbox.tokens.rotate(
                refresh_token, app.client_id, expires_in or self.sandbox.faults.token_lifetime_s
            )
            self.sandbox.stats.count_issue(refresh=True)
            return self.sandbox.token_response(issued, expiring=True, refresh_expires_in=refresh_expires_in)
        raise TokenRequestError(
            "unsupported_grant_type", "The authorization grant type is not supported by the authorization server."
        )

    def _client(self, fields: dict[str, Any]) -> RegisteredApp:
        app = self.sandbox.apps.get(str(fields.get("client_id", "")))
        if app is None or fields.get("client_secret") != app.client_secret:
            raise TokenRequestError("invalid_client", INVALID_CLIENT, 401)
        return app


async def _body(request: Request) -> dict[str, Any]:
    """The token request: Zendesk documents a JSON body; a form body is read too, as OAuth libraries send one."""
    raw = await request.body()
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return {name: values[-1] for name, values in parse_qs(raw.decode("utf-8", "replace")).items()}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        raise TokenRequestError("invalid_request", "The request body must be a JSON object.")
    return body


def _seconds(fields: dict[str, Any], name: str, bounds: tuple[int, int]) -> int | None:
    value = fields.get(name)
    if value is None:
        return None
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        seconds = -1
    if not bounds[0] < seconds < bounds[1] and not (name == "refresh_token_expires_in" and seconds in bounds):
        raise TokenRequestError("invalid_request", f"{name} must be between {bounds[0]} and {bounds[1]} seconds.")
    return seconds

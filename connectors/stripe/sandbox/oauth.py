"""Connect OAuth for Standard accounts (docs.stripe.com/connect/oauth-reference), on the sandbox's own host
(what is `connect.stripe.com` in reality):

- `GET /oauth/authorize?response_type=code&client_id=ca_…&scope=read_write&state=…&redirect_uri=…` signs the
  main connected account in at once and redirects back with `code=ac_…`, `scope` and `state`;
- `POST /oauth/token`, authenticated by the platform's secret key (`client_secret=` in the body, or Basic or
  Bearer), exchanges the code (`grant_type=authorization_code`) or a refresh token (`grant_type=refresh_token`)
  for `access_token` (a secret key for the connected account), `refresh_token`, `stripe_user_id`, …;
- `POST /oauth/deauthorize` (`client_id`, `stripe_user_id`) disconnects the account.

Errors are OAuth's `{"error", "error_description"}`."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from connectors.kit.errors import BadInput
from connectors.kit.form import form_decode
from connectors.kit.sandbox import CodeRejected, UnknownToken
from connectors.kit.sandbox_support import json_response
from connectors.stripe.sandbox.errors import StripeError, oauth_error
from connectors.stripe.sandbox.gate import bearer_or_basic_key
from connectors.stripe.sandbox.sandbox import StripeSandbox

CODE_PREFIX = "ac_"
SCOPES = ("read_write", "read_only")


class OAuthRoutes:
    def __init__(self, sandbox: StripeSandbox) -> None:
        self.sandbox = sandbox

    def routes(self) -> list[Route]:
        return [
            Route("/oauth/authorize", self.authorize, methods=["GET"]),
            Route("/oauth/token", self.token, methods=["POST"]),
            Route("/oauth/deauthorize", self.deauthorize, methods=["POST"]),
        ]

    async def authorize(self, request: Request) -> Response:
        query = request.query_params
        client_id = query.get("client_id", "")
        if client_id not in self.sandbox.apps:
            return _error(oauth_error("invalid_client", f"No such application: '{client_id}'"))
        if query.get("response_type") != "code":
            return _error(oauth_error("invalid_request", "response_type must be 'code'"))
        scope = query.get("scope") or "read_only"
        if scope not in SCOPES:
            return _error(oauth_error("invalid_scope", f"Invalid scope: {scope}"))
        redirect_uri = query.get("redirect_uri")
        if not redirect_uri:
            return _error(oauth_error("invalid_redirect_uri", "No redirect_uri was given, and the app has none set."))
        grant = self.sandbox.grant(client_id, (scope,))
        code = CODE_PREFIX + self.sandbox.tokens.create_code(grant, "")
        answer = {"code": code, "scope": scope, **({"state": query["state"]} if "state" in query else {})}
        separator = "&" if "?" in redirect_uri else "?"
        return RedirectResponse(f"{redirect_uri}{separator}{urlencode(answer)}", status_code=302)

    async def token(self, request: Request) -> Response:
        try:
            fields = self._platform_fields(request, await request.body())
            grant_type = fields.get("grant_type")
            if grant_type == "authorization_code":
                code = fields.get("code", "")
                try:
                    grant = self.sandbox.tokens.redeem_code(
                        code.removeprefix(CODE_PREFIX), self.sandbox.client_id, "", None
                    )
                except CodeRejected:
                    raise oauth_error("invalid_grant", f"Authorization code does not exist: {code}") from None
                return json_response(self.sandbox.issue_tokens(grant))
            if grant_type == "refresh_token":
                refresh_token = fields.get("refresh_token", "")
                try:
                    return json_response(self.sandbox.refresh_tokens(refresh_token, self.sandbox.client_id))
                except UnknownToken:
                    raise oauth_error("invalid_grant", f"Refresh token does not exist: {refresh_token}") from None
            raise oauth_error("unsupported_grant_type", f"Unsupported grant type: {grant_type}")
        except StripeError as refused:
            return _error(refused)

    async def deauthorize(self, request: Request) -> Response:
        try:
            fields = self._platform_fields(request, await request.body())
            if fields.get("client_id") != self.sandbox.client_id:
                raise oauth_error("invalid_client", f"No such application: '{fields.get('client_id', '')}'")
            account = self.sandbox.accounts.get(fields.get("stripe_user_id", ""))
            if account is None or not self.sandbox.is_connected(account):
                raise oauth_error(
                    "invalid_client",
                    f"This application is not connected to stripe account {fields.get('stripe_user_id')}.",
                )
            self.sandbox.deauthorize(account)
        except StripeError as refused:
            return _error(refused)
        return json_response({"stripe_user_id": account.id})

    def _platform_fields(self, request: Request, body: bytes) -> dict[str, str]:
        """The form's fields, once the request proved it is the platform (its secret key, in the body or header)."""
        try:
            fields = {
                k: v for k, v in form_decode(body.decode("utf-8", errors="replace")).items() if isinstance(v, str)
            }
        except BadInput:
            raise oauth_error("invalid_request", "The request body is not a form.") from None
        key = fields.get("client_secret") or bearer_or_basic_key(request.scope)
        if key != self.sandbox.client_secret:
            raise oauth_error("invalid_client", "No such API key, or it is not the platform's secret key.", 401)
        return fields


def _error(problem: StripeError) -> Response:
    return json_response(problem.body, problem.status)

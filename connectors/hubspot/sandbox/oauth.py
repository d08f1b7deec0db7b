"""HubSpot's OAuth 2.0 endpoints: the install (approve) page, the token endpoint and token metadata.

HubSpot serves the token endpoint under three paths: the date-versioned `/oauth/2026-03/token` (the current
one), `/oauth/v3/token` (the same API) and the legacy `/oauth/v1/token`, deprecated and served until
2027-02-16 (HubSpot's v1 OAuth migration guide and changelog; specs `Auth/Oauth/Rollouts/279897/{v3,2026-03}`
and `155908/v1` in HubSpot-public-api-spec-collection). The current paths take every parameter in the form
body: v1 also read `client_secret` and `refresh_token` from the query string, they do not. Token metadata
moved from `GET /oauth/v1/access-tokens/{token}` (the token in the path) to `POST .../token/introspect`
(RFC 7662, with the app's client id and secret in the body).
"""

from __future__ import annotations

import html
from urllib.parse import parse_qs, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from connectors.hubspot.sandbox.errors import correlation_id
from connectors.hubspot.sandbox.sandbox import HubSpotSandbox
from connectors.kit.sandbox import GRANT_TYPES, CodeRejected, CodeRejection, RegisteredApp, UnknownToken
from connectors.kit.sandbox_support import ConsentLook, consent_form, consent_page, json_response

# The token API's current paths: the date-versioned one HubSpot's docs name and the equivalent v3.
CURRENT_VERSIONS = ("2026-03", "v3")

AUTHORIZE_FIELDS = (
    "client_id",
    "redirect_uri",
    "scope",
    "optional_scope",
    "state",
    "code_challenge",
    "code_challenge_method",
)

# HubSpot status, RFC 6749 error and message for each way a code exchange fails.
_CODE_FAILURES = {
    CodeRejection.UNKNOWN: ("BAD_AUTH_CODE", "invalid_grant", "missing or unknown auth code"),
    CodeRejection.EXPIRED: ("EXPIRED_AUTH_CODE", "invalid_grant", "auth code is expired"),
    CodeRejection.CLIENT_MISMATCH: ("BAD_AUTH_CODE", "invalid_grant", "auth code was not issued to this client"),
    CodeRejection.REDIRECT_MISMATCH: (
        "BAD_REDIRECT_URI",
        "invalid_grant",
        "redirect_uri does not match the one the auth code was issued for",
    ),
    CodeRejection.VERIFIER_MISSING: ("BAD_CODE_VERIFIER", "invalid_grant", "code_verifier is required for this code"),
    CodeRejection.VERIFIER_MISMATCH: (
        "BAD_CODE_VERIFIER",
        "invalid_grant",
        "code_verifier does not match the code_challenge",
    ),
}


class TokenRequestError(Exception):
    def __init__(self, status: str, error: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message

    def response(self) -> Response:
        body = {
            "status": self.status,
            "message": self.message,
            "correlationId": correlation_id(),
            "error": self.error,
            "error_description": self.message,
        }
        return json_response(body, 400)


class OAuthRoutes:
    def __init__(self, sandbox: HubSpotSandbox) -> None:
        self.sandbox = sandbox

    def routes(self) -> list[Route]:
        return [
            Route("/oauth/authorize", self.authorize_page, methods=["GET"]),
            Route("/oauth/authorize", self.authorize_decision, methods=["POST"]),
            Route("/oauth/v1/token", self.legacy_token, methods=["POST"]),
            *(Route(f"/oauth/{version}/token", self.token, methods=["POST"]) for version in CURRENT_VERSIONS),
            *(
                Route(f"/oauth/{version}/token/introspect", self.introspect, methods=["POST"])
                for version in CURRENT_VERSIONS
            ),
            *(Route(f"/oauth/{version}/token/revoke", self.revoke, methods=["POST"]) for version in CURRENT_VERSIONS),
            Route("/oauth/v1/access-tokens/{token}", self.access_token_info, methods=["GET"]),
            Route("/oauth/v1/refresh-tokens/{token}", self.refresh_token_info, methods=["GET"]),
            Route("/oauth/v1/refresh-tokens/{token}", self.revoke_refresh_token, methods=["DELETE"]),
        ]

    async def authorize_page(self, request: Request) -> Response:
        fields = {name: request.query_params.get(name, "") for name in AUTHORIZE_FIELDS}
        problem = self._authorize_problem(fields)
        if problem:
            return HTMLResponse(_page("Something went wrong", f"<p>{html.escape(problem)}</p>"), 400)
        return HTMLResponse(_approve_page(fields, self.sandbox.hub_id))

    async def authorize_decision(self, request: Request) -> Response:
        fields = _form(await request.body())
        problem = self._authorize_problem(fields)
        if problem:
            return HTMLResponse(_page("Something went wrong", f"<p>{html.escape(problem)}</p>"), 400)
        params: dict[str, str] = {}
        if fields.get("decision") == "approve":
            scopes = (fields.get("scope", "") + " " + fields.get("optional_scope", "")).split()
            grant = self.sandbox.grant(fields["client_id"], scopes)
            challenge = fields.get("code_challenge") or None
            params["code"] = self.sandbox.tokens.create_code(grant, fields["redirect_uri"], challenge)
        else:
            params["error"] = "access_denied"
        if fields.get("state"):
            params["state"] = fields["state"]
        redirect_uri = fields["redirect_uri"]
        separator = "&" if "?" in redirect_uri else "?"
        return RedirectResponse(f"{redirect_uri}{separator}{urlencode(params)}", status_code=302)

    def _authorize_problem(self, fields: dict[str, str]) -> str | None:
        app = self.sandbox.apps.get(fields.get("client_id", ""))
        if app is None:
            return "Unknown client_id: this app is not registered with the sandbox portal."
        if not app.allows_redirect(fields.get("redirect_uri", "")):
            return "redirect_uri is missing or does not match the app's configured redirect URLs."
        if fields.get("code_challenge") and fields.get("code_challenge_method") != "S256":
            return "code_challenge_method must be S256."
        return None

    async def legacy_token(self, request: Request) -> Response:
        """v1 also reads `client_secret` and `refresh_token` from the query string (its spec lists both as
        query parameters); a value in the body wins."""
        fields = {**{k: v for k, v in request.query_params.items()}, **_form(await request.body())}
        return self._token(fields)

    async def token(self, request: Request) -> Response:
        return self._token(_form(await request.body()))

    def _token(self, fields: dict[str, str]) -> Response:
        try:
            app = self._client(fields)
            grant_type = fields.get("grant_type", "")
            if grant_type not in GRANT_TYPES:
                raise TokenRequestError(
                    "BAD_GRANT_TYPE", "unsupported_grant_type", "grant_type must be authorization_code or refresh_token"
                )
            return json_response(self.sandbox.token_grant(grant_type, app.client_id, fields))
        except CodeRejected as rejected:
            return TokenRequestError(*_CODE_FAILURES[rejected.reason]).response()
        except UnknownToken:
            return TokenRequestError(
                "BAD_REFRESH_TOKEN", "invalid_grant", "refresh token is invalid, expired or revoked"
            ).response()
        except TokenRequestError as failure:
            return failure.response()

    def _client(self, fields: dict[str, str]) -> RegisteredApp:
        app = self.sandbox.apps.get(fields.get("client_id", ""))
        if app is None:
            raise TokenRequestError("BAD_CLIENT_ID", "invalid_client", "missing or unknown client id")
        if fields.get("client_secret") != app.client_secret:
            raise TokenRequestError("BAD_CLIENT_SECRET", "invalid_client", "missing or invalid client secret")
        return app

    async def revoke_refresh_token(self, request: Request) -> Response:
        self.sandbox.revoke_refresh_token(request.path_params["token"])
        return Response(status_code=204)

    async def _app_request(self, request: Request) -> tuple[RegisteredApp, dict[str, str]] | Response:
        """The app a form request authenticates as (client id and secret in the body) and the form's
        fields, or the token endpoint's refusal."""
        fields = _form(await request.body())
        try:
            return self._client(fields), fields
        except TokenRequestError as failure:
            return failure.response()

    async def introspect(self, request: Request) -> Response:
        """RFC 7662 introspection: the app authenticates with its client id and secret in the body; a token
        that is unknown, expired, revoked or issued to another app is `{"active": false}` (RFC 7662 2.2)."""
        asked = await self._app_request(request)
        if isinstance(asked, Response):
            return asked
        app, fields = asked
        token = fields.get("token", "")
        hint = fields.get("token_type_hint", "")
        if not token:
            return TokenRequestError("BAD_REQUEST", "invalid_request", "token is required").response()
        info = None
        if hint != "refresh_token":
            info = self.sandbox.access_token_info(token, app.client_id)
        if info is None and hint != "access_token":
            info = self.sandbox.refresh_token_info(token, app.client_id)
        return json_response({"active": True, **info} if info else {"active": False})

    async def revoke(self, request: Request) -> Response:
        """RFC 7009 revocation of a refresh token; an unknown token is not an error (RFC 7009 2.2)."""
        asked = await self._app_request(request)
        if isinstance(asked, Response):
            return asked
        app, fields = asked
        token = fields.get("token", "")
        if self.sandbox.refresh_token_info(token, app.client_id) is not None:
            self.sandbox.revoke_refresh_token(token)
        return Response(status_code=200)

    async def access_token_info(self, request: Request) -> Response:
        """v1 metadata of an access token: needs no client credentials, the token is the proof."""
        info = self.sandbox.access_token_info(request.path_params["token"])
        if info is None:
            return _v1_not_found("access token")
        return json_response({key: value for key, value in info.items() if key not in ("active", "client_id")})

    async def refresh_token_info(self, request: Request) -> Response:
        info = self.sandbox.refresh_token_info(request.path_params["token"])
        if info is None:
            return _v1_not_found("refresh token")
        return json_response({key: value for key, value in info.items() if key not in ("active", "app_id")})


def _v1_not_found(what: str) -> Response:
    # The status and message for an unknown or expired token are unverified (the spec gives only the Error
    # schema); 404 with HubSpot's error body is what its other lookups by id answer.
    body = {
        "status": "error",
        "message": f"{what} not found",
        "correlationId": correlation_id(),
        "category": "OBJECT_NOT_FOUND",
    }
    return json_response(body, 404)


def _form(raw: bytes) -> dict[str, str]:
    parsed = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[-1] for name, values in parsed.items()}


LOOK = ConsentLook(
    "HubSpot sandbox (xkit) — no real account is involved.", "approve", ("#fff", "#33475b", "#ff7a59", "#cbd6e2")
)


def _approve_page(fields: dict[str, str], hub_id: int) -> str:
    scopes = (fields["scope"] + " " + fields["optional_scope"]).split()
    intro = (
        f"The app <strong>{html.escape(fields['client_id'])}</strong> wants to connect to\n"
        f"sandbox HubSpot account <strong>{hub_id}</strong> and will be able to:"
    )
    form = consent_form(LOOK, intro, scopes, "/oauth/authorize", {name: fields[name] for name in AUTHORIZE_FIELDS})
    return _page("Connect an app to your HubSpot account", form)


def _page(title: str, body: str) -> str:
    return consent_page(LOOK, title, body)

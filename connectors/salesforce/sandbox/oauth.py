"""The login host: the OAuth 2.0 web-server flow (approve page, token endpoint with the
authorization_code and refresh_token grants), token revocation and the identity URL.

Salesforce's token errors are `{"error", "error_description"}` with HTTP 400, for example
`invalid_client_id` / "client identifier invalid" and `invalid_grant` / "expired access/refresh token".
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import parse_qs, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from connectors.kit.sandbox import (
    GRANT_TYPES,
    CodeRejected,
    CodeRejection,
    ExpiredToken,
    Grant,
    RegisteredApp,
    UnknownToken,
)
from connectors.kit.sandbox_support import ConsentLook, consent_form, consent_page, json_response
from connectors.salesforce.sandbox.sandbox import DEFAULT_SCOPES, SalesforceSandbox
from connectors.salesforce.sandbox.schema import USER

AUTHORIZE_FIELDS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
)
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

_CODE_FAILURES = {
    CodeRejection.UNKNOWN: ("invalid_grant", "invalid authorization code"),
    CodeRejection.EXPIRED: ("invalid_grant", "expired authorization code"),
    CodeRejection.CLIENT_MISMATCH: ("invalid_grant", "invalid authorization code"),
    CodeRejection.REDIRECT_MISMATCH: ("redirect_uri_mismatch", "redirect_uri must match configuration"),
    CodeRejection.VERIFIER_MISSING: ("invalid_grant", "invalid code verifier"),
    CodeRejection.VERIFIER_MISMATCH: ("invalid_grant", "invalid code verifier"),
}


class TokenError(Exception):
    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description

    def response(self) -> Response:
        return json_response({"error": self.error, "error_description": self.description}, 400, _NO_STORE)


class OAuthRoutes:
    def __init__(self, sandbox: SalesforceSandbox) -> None:
        self.sandbox = sandbox

    def routes(self) -> list[Route]:
        return [
            Route("/services/oauth2/authorize", self.authorize_page, methods=["GET"]),
            Route("/services/oauth2/authorize", self.authorize_decision, methods=["POST"]),
            Route("/services/oauth2/token", self.token, methods=["POST"]),
            Route("/services/oauth2/revoke", self.revoke, methods=["POST"]),
            Route("/id/{org_id}/{user_id}", self.identity, methods=["GET"]),
            *self.userinfo_routes(),
        ]

    def userinfo_routes(self) -> list[Route]:
        """Served by the login host and by the org's own (My Domain) host alike."""
        return [Route("/services/oauth2/userinfo", self.userinfo, methods=["GET", "POST"])]

    # ---- authorize ---------------------------------------------------------------------------

    async def authorize_page(self, request: Request) -> Response:
        fields = {name: request.query_params.get(name, "") for name in AUTHORIZE_FIELDS}
        refused = self._refuse_authorize(fields)
        if refused is not None:
            return refused
        app = self.sandbox.apps[fields["client_id"]]
        return HTMLResponse(_approve_page(fields, app, self.sandbox.org_id))

    async def authorize_decision(self, request: Request) -> Response:
        fields = _form(await request.body())
        refused = self._refuse_authorize(fields)
        if refused is not None:
            return refused
        if fields.get("decision") != "allow":
            return _redirect(fields, {"error": "access_denied", "error_description": "end-user denied authorization"})
        scopes = fields.get("scope", "").split() or list(DEFAULT_SCOPES)
        grant = self.sandbox.grant(fields["client_id"], scopes)
        code = self.sandbox.tokens.create_code(grant, fields["redirect_uri"], fields.get("code_challenge") or None)
        return _redirect(fields, {"code": code})

    def _refuse_authorize(self, fields: dict[str, str]) -> Response | None:
        """An error page when the request cannot be trusted to redirect; otherwise an error redirect
        for a bad request, or None when the user may be asked."""
        app = self.sandbox.apps.get(fields.get("client_id", ""))
        if app is None:
            return _error_page("invalid_client_id", "client identifier invalid")
        if not app.allows_redirect(fields.get("redirect_uri", "")):
            return _error_page("redirect_uri_mismatch", "redirect_uri must match configuration")
        if fields.get("response_type") != "code":
            return _redirect(
                fields, {"error": "unsupported_response_type", "error_description": "response type not supported"}
            )
        if fields.get("code_challenge") and fields.get("code_challenge_method", "S256") != "S256":
            return _redirect(
                fields, {"error": "invalid_request", "error_description": "code_challenge_method must be S256"}
            )
        return None

    # ---- token -------------------------------------------------------------------------------

    async def token(self, request: Request) -> Response:
        fields = _form(await request.body())
        try:
            grant_type = fields.get("grant_type", "")
            if grant_type not in GRANT_TYPES:
                raise TokenError("unsupported_grant_type", "grant type not supported")
            body = self.sandbox.token_grant(grant_type, self._client(fields).client_id, fields)
        except CodeRejected as rejected:
            return TokenError(*_CODE_FAILURES[rejected.reason]).response()
        except UnknownToken:
            return TokenError("invalid_grant", "expired access/refresh token").response()
        except TokenError as failure:
            return failure.response()
        return json_response(body, headers=_NO_STORE)

    def _client(self, fields: dict[str, str]) -> RegisteredApp:
        app = self.sandbox.apps.get(fields.get("client_id", ""))
        if app is None:
            raise TokenError("invalid_client_id", "client identifier invalid")
        if fields.get("client_secret") != app.client_secret:
            raise TokenError("invalid_client", "invalid client credentials")
        return app

    # ---- revoke and identity -----------------------------------------------------------------

    async def revoke(self, request: Request) -> Response:
        fields = {**dict(request.query_params), **_form(await request.body())}
        token = fields.get("token", "")
        tokens = self.sandbox.tokens
        if not (tokens.revoke_refresh(token) or tokens.revoke_access(token)):
            return json_response({"error": "invalid_token", "error_description": "invalid token"}, 400)
        return Response(status_code=200)

    def _session_user(self, request: Request) -> tuple[Grant, dict[str, Any]] | None:
        authorization = request.headers.get("authorization", "")
        scheme, _, token = authorization.partition(" ")
        try:
            session = self.sandbox.tokens.authenticate(token.strip() if scheme.lower() in ("bearer", "oauth") else "")
        except (UnknownToken, ExpiredToken):
            return None
        return session.grant, self.sandbox.org.read(USER, self.sandbox.session_user(session.grant))

    def _urls(self, user_id: str) -> dict[str, str]:
        """The identity service's URL templates: `{version}` is left for the client to fill in."""
        instance = self.sandbox.instance_url
        rest = f"{instance}/services/data/v{{version}}/"
        return {
            "rest": rest,
            "sobjects": f"{rest}sobjects/",
            "search": f"{rest}search/",
            "query": f"{rest}query/",
            "recent": f"{rest}recent/",
            "profile": f"{instance}/{user_id}",
        }

    async def userinfo(self, request: Request) -> Response:
        """OpenID Connect UserInfo: standard claims (`sub` is the identity URL) plus Salesforce's own."""
        found = self._session_user(request)
        if found is None:
            return PlainTextResponse("Bad_OAuth_Token", 403)
        grant, user = found
        sandbox = self.sandbox
        return json_response(
            {
                "sub": sandbox.identity_url(grant),
                "user_id": user["Id"],
                "organization_id": sandbox.org_id,
                "preferred_username": user["Username"],
                "nickname": user["Alias"],
                "name": user["Name"],
                "email": user["Email"],
                "email_verified": True,
                "given_name": user["FirstName"],
                "family_name": user["LastName"],
                "zoneinfo": user["TimeZoneSidKey"],
                "profile": f"{sandbox.instance_url}/{user['Id']}",
                "address": {},
                "urls": self._urls(user["Id"]),
                "active": user["IsActive"],
                "user_type": "STANDARD",
                "language": user["LanguageLocaleKey"],
                "locale": user["LocaleSidKey"],
                "utcOffset": 0,
                "updated_at": user["LastModifiedDate"].replace(".000+0000", "Z"),
                "is_app_installed": True,
            }
        )

    async def identity(self, request: Request) -> Response:
        sandbox = self.sandbox
        found = self._session_user(request)
        if found is None:
            return PlainTextResponse("Bad_OAuth_Token", 403)
        grant, user = found
        user_id = user["Id"]
        if request.path_params["org_id"] != sandbox.org_id or request.path_params["user_id"] != user_id:
            return PlainTextResponse("Bad_Id", 403)
        return json_response(
            {
                "id": sandbox.identity_url(grant),
                "asserted_user": True,
                "user_id": user_id,
                "organization_id": sandbox.org_id,
                "username": user["Username"],
                "nick_name": user["Alias"],
                "display_name": user["Name"],
                "email": user["Email"],
                "email_verified": True,
                "first_name": user["FirstName"],
                "last_name": user["LastName"],
                "timezone": user["TimeZoneSidKey"],
                "active": user["IsActive"],
                "user_type": "STANDARD",
                "language": user["LanguageLocaleKey"],
                "locale": user["LocaleSidKey"],
                "utcOffset": 0,
                "last_modified_date": user["LastModifiedDate"],
                "is_app_installed": True,
                "urls": self._urls(user_id),
            }
        )


def _form(raw: bytes) -> dict[str, str]:
    parsed = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[-1] for name, values in parsed.items()}


def _redirect(fields: dict[str, str], params: dict[str, str]) -> Response:
    if fields.get("state"):
        params = {**params, "state": fields["state"]}
    redirect_uri = fields["redirect_uri"]
    separator = "&" if "?" in redirect_uri else "?"
    return RedirectResponse(f"{redirect_uri}{separator}{urlencode(params)}", status_code=302)


def _error_page(error: str, description: str) -> Response:
    body = f"<p><code>error={html.escape(error)}&amp;error_description={html.escape(description)}</code></p>"
    return HTMLResponse(_page("Remote Access Error", body), 400)


LOOK = ConsentLook(
    "Salesforce sandbox (xkit) — no real org is involved.", "allow", ("#f3f3f3", "#181818", "#0176d3", "#c9c9c9")
)


def _approve_page(fields: dict[str, str], app: RegisteredApp, org_id: str) -> str:
    scopes = fields["scope"].split() or list(DEFAULT_SCOPES)
    intro = (
        f"The connected app <strong>{html.escape(app.client_id[:12])}…</strong> is requesting access to\n"
        f"sandbox org <strong>{html.escape(org_id)}</strong>. It will be able to:"
    )
    form = consent_form(
        LOOK, intro, scopes, "/services/oauth2/authorize", {name: fields[name] for name in AUTHORIZE_FIELDS}
    )
    return _page("Allow Access?", form)


def _page(title: str, body: str) -> str:
    return consent_page(LOOK, title, body)

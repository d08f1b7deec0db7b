"""Calls to a provider's OAuth hosts (token endpoint, introspection, account metadata): held to those hosts,
bounded in time and size, their errors typed."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

import httpx2

from connectors.kit.bounds import BoundedBodies
from connectors.kit.egress import UNREACHABLE, EgressPolicy, EgressRefused, HostPatterns
from connectors.kit.errors import ProviderError, ProviderUnavailable, ReauthRequired

if TYPE_CHECKING:
    from connectors.kit.oauth import OAuthApp


@dataclass(frozen=True)
class TokenCallLimits:
    """Bounds of one call to a token endpoint: per read, for the whole call, and on the answer's decoded size."""

    timeout: float = 30.0
    deadline: float = 60.0
    max_response_bytes: int = 64 * 1024


@dataclass(frozen=True)
class TokenCall:
    """How one connection reaches its provider's OAuth hosts: with which app, resolving relative URLs against
    which base URL, within which bounds."""

    app: OAuthApp
    base_url: str
    limits: TokenCallLimits
    egress: EgressPolicy
    hosts: HostPatterns

    def endpoint(self, url: str) -> str:
        """`url` resolved against the base URL and held to the OAuth hosts: the app's secret or a token goes there."""
        endpoint = url if "://" in url else urljoin(self.base_url.rstrip("/") + "/", url.lstrip("/"))
        try:
            self.egress.check_provider_url(endpoint, self.hosts)
        except EgressRefused as refused:
            raise ProviderError(f"refusing to send the OAuth client secret to {endpoint}: {refused}") from None
        return endpoint

    async def send(self, method: str, url: str, *, what: str, **request: Any) -> dict[str, Any]:
        """The JSON object the provider answers to one request (`what` names it in errors)."""
        endpoint = self.endpoint(url)
        transport = BoundedBodies(self.egress.transport(), self.limits.max_response_bytes)
        try:
            async with (
                # Proxies from the environment would connect on the policy's behalf.
                httpx2.AsyncClient(transport=transport, timeout=self.limits.timeout, trust_env=False) as client,
                asyncio.timeout(self.limits.deadline),
            ):
                response = raise_for_token_error(await client.request(method, endpoint, **request))
        except TimeoutError as exc:
            raise ProviderUnavailable(f"the {what} gave no complete answer within {self.limits.deadline:g} s") from exc
        except httpx2.TransportError as exc:
            raise ProviderUnavailable(f"{what}: {UNREACHABLE}") from exc
        try:
            body = response.json()
        except ValueError:
            raise ProviderError(f"the {what} answer is not JSON") from None
        if not isinstance(body, dict):
            raise ProviderError(f"the {what} answer is not a JSON object")
        return body


def raise_for_token_error(response: httpx2.Response) -> httpx2.Response:
    """OAuth hosts speak each provider's own error dialect, RFC 6749's or not."""
    if response.status_code < 400:
        return response
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    reason = str(
        body.get("error_description")
        or body.get("message")
        or body.get("error")
        or body.get("status")
        or response.reason_phrase
    )
    code = str(body.get("error") or body.get("status") or response.status_code)
    if response.status_code >= 500 or response.status_code == 429:
        raise ProviderUnavailable(f"token endpoint failed: {reason}", status=response.status_code)
    raise ReauthRequired(
        f"the provider refused the credentials: {reason}", status=response.status_code, provider_code=code
    )

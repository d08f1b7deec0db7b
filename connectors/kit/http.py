"""The one HTTP client every connector goes through.

Timeouts, per-connection pacing, retries with backoff on 429/5xx honoring Retry-After, token refresh
before expiry and once on 401 — shared by all concurrent requests of a connection.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, NamedTuple
from urllib.parse import urljoin, urlsplit

import httpx2
import orjson

from connectors.kit import oauth, retries
from connectors.kit.bounds import decoded, read_within
from connectors.kit.credentials import Credentials
from connectors.kit.egress import EgressPolicy, EgressRefused, ProviderHosts
from connectors.kit.errors import (
    ProviderError,
    RateLimited,
    ReauthRequired,
)
from connectors.kit.keys import ApiKey, StaticKey
from connectors.kit.oauth import Auth, OAuth2, OAuthApp
from connectors.kit.ratelimit import RateLimit, RateLimiter
from connectors.kit.records import DEFAULT_MAX_RECORD_BYTES
from connectors.kit.token_calls import TokenCall

log = logging.getLogger(__name__)

ErrorParser = Callable[[httpx2.Response], ProviderError]


def request_target_bytes(url: str, params: Mapping[str, Any] | None = None) -> int:
    """How long the request line's target (path and encoded query) of a GET of `url` with `params` is:
    what providers' URL limits count. `url` may be a path alone."""
    return len(httpx2.URL(url, params=params).raw_path)


CredentialSaver = Callable[[Credentials], Awaitable[None]]

REFRESH_MARGIN = timedelta(seconds=60)


@dataclass
class ConnectionAccess:
    """Everything needed to call one connection's provider account."""

    key: str
    auth: Auth
    base_url: str
    credentials: Credentials
    parse_error: ErrorParser
    rate_limit: RateLimit | None
    # Where the provider may be reached: checked on every request, since an instance URL comes from a token
    # response and a hostile token endpoint must not send the credentials elsewhere.
    hosts: ProviderHosts
    app: OAuthApp | None = None
    save_credentials: CredentialSaver | None = None
    default_headers: Mapping[str, str] = field(default_factory=dict)
    # When set, the credentials name the host to call (Salesforce's instance_url, Mailchimp's api_endpoint)
    # and win over base_url: `OAuth2.base_url_key` unless the connection's own base URL overrides it.
    base_url_key: str | None = None


@dataclass
class _Shared:
    """Per-connection state that every session of that connection shares, in this process."""

    limiter: RateLimiter
    refresh_lock: asyncio.Lock
    credentials: Credentials
    refreshes: int = 0


class HttpKit:
    def __init__(
        self,
        *,
        egress: EgressPolicy,
        timeout: float = 30.0,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        path_window_scale: float = 1.0,
        backoff_max: float = 30.0,
        max_connections: int = 100,
        max_inline_wait: float = 30.0,
        request_deadline: float = 60.0,
        max_response_bytes: int = 64 * 1024 * 1024,
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
        token_limits: oauth.TokenCallLimits | None = None,
    ) -> None:
        self.egress = egress
        self.client = egress.client(
            timeout=timeout,
            limits=httpx2.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            follow_redirects=False,
        )
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.path_window_scale = path_window_scale
        self.backoff_max = backoff_max
        # A pause longer than this fails the request rather than holding a worker (and its lease).
        self.max_inline_wait = max_inline_wait
        # One exchange with the provider, body included, ends within this; httpx's timeout bounds each read only.
        self.request_deadline = request_deadline
        self.max_response_bytes = max_response_bytes
        # Whoever stores what the provider sent (sync, writeback, webhook intake) truncates a larger record.
        self.max_record_bytes = max_record_bytes
        self.token_limits = token_limits or oauth.TokenCallLimits(timeout=timeout, deadline=request_deadline)
        self._shared: dict[str, _Shared] = {}

    def session(self, access: ConnectionAccess) -> ProviderSession:
        shared = self._shared.get(access.key)
        if shared is None:
            shared = _Shared(
                RateLimiter(access.rate_limit, path_window_scale=self.path_window_scale),
                asyncio.Lock(),
                access.credentials,
            )
            self._shared[access.key] = shared
        elif access.credentials.obtained_at > shared.credentials.obtained_at:
            # Refreshed by another process, or replaced by the user since we last looked.
            shared.credentials = access.credentials
        return ProviderSession(self, access, shared)

    def forget(self, key: str) -> None:
        """Drop cached state of a connection whose credentials or settings changed."""
        self._shared.pop(key, None)

    def backoff(self, attempt: int) -> float:
        ceiling = min(self.backoff_max, self.backoff_base * 2**attempt)
        return random.uniform(ceiling / 2, ceiling)

    async def aclose(self) -> None:
        await self.client.aclose()


def retry_after_seconds(response: httpx2.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    if value.strip().replace(".", "", 1).isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


class _Exchanged(NamedTuple):
    outcome: retries.Outcome
    response: httpx2.Response | None = None
    # What the provider's error parser made of an error answer.
    answer_error: ProviderError | None = None
    # The exception behind an exchange that brought no answer.
    cause: Exception | None = None


class ProviderSession:
    """Requests to one connection's provider account, with its credentials injected."""

    def __init__(self, kit: HttpKit, access: ConnectionAccess, shared: _Shared) -> None:
        self.kit = kit
        self.access = access
        self.shared = shared

    @property
    def credentials(self) -> Credentials:
        return self.shared.credentials

    @property
    def base_url(self) -> str:
        if self.access.base_url_key:
            from_credentials = self.credentials.extra.get(self.access.base_url_key)
            if from_credentials:
                return str(from_credentials).rstrip("/")
        return self.access.base_url

    def url(self, path: str) -> str:
        if "://" in path:
            target, base = urlsplit(path), urlsplit(self.base_url)
            if (target.scheme, target.netloc) != (base.scheme, base.netloc):
                raise ValueError(f"refusing to send credentials to another host: {target.netloc}")
            url = path
        else:
            url = urljoin(self.base_url.rstrip("/") + "/", path.lstrip("/"))
        try:
            self.kit.egress.check_provider_url(url, self.access.hosts.api)
        except EgressRefused as refused:
            raise ProviderError(
                f"refusing to send the connection's credentials to {url.split('?')[0]}: {refused}"
            ) from None
        return url

    def request_target_bytes(self, path: str, params: Mapping[str, Any] | None = None) -> int:
        """`request_target_bytes` of a request to this connection's provider."""
        return request_target_bytes(self.url(path), params)

    async def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        response = await self.request("GET", path, params=params)
        return orjson.loads(response.content)

    async def post_json(self, path: str, body: Any, *, may_repeat: bool = True) -> Any:
        response = await self.request("POST", path, json=body, may_repeat=may_repeat)
        return orjson.loads(response.content) if response.content else None

    async def send_json(self, method: str, path: str, body: Any = None) -> Any:
        """PATCH, PUT or DELETE with an optional JSON body; the answer's JSON, or None when it has none."""
        response = await self.request(method, path, json=body)
        return orjson.loads(response.content) if response.content else None

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        return_errors: bool = False,
        may_repeat: bool = True,
    ) -> httpx2.Response:
        """Send a request with the connection's credentials; typed errors for what retries cannot fix.

        With `return_errors` (passthrough), the provider's own error answer is returned instead, after the
        same refresh and retries. Without `may_repeat` (a create), the request is only sent again when the
        provider surely did not act on it (refused connection, 429, 401): a timeout or a 5xx may have
        created the record, so it ends in `ProviderUnavailable` with `outcomeUnknown`.
        """
        url = self.url(path)
        body = orjson.dumps(json) if json is not None else content
        progress = retries.Progress(
            max_retries=self.kit.max_retries,
            may_repeat=may_repeat,
            return_errors=return_errors,
            refreshable=isinstance(self.access.auth, OAuth2),
        )
        url_path = urlsplit(url).path
        while True:
            paused_for = self.shared.limiter.paused_for(url_path)
            if paused_for > self.kit.max_inline_wait:
                raise RateLimited(
                    f"the provider's limit holds this connection for {paused_for:.0f} s more", retry_after=paused_for
                )
            await self.shared.limiter.acquire(url_path)
            await self._refresh_if_expiring()
            sent_token = self.credentials.access_token
            request_headers = {**self.access.default_headers, **self._auth_headers(), **(headers or {})}
            if json is not None:
                request_headers.setdefault("Content-Type", "application/json")
            exchanged = await self._exchange_once(
                method, url, params=self._with_auth_params(params), content=body, headers=request_headers
            )
            response, answer_error = exchanged.response, exchanged.answer_error
            action = retries.decide(exchanged.outcome, progress)
            if isinstance(action, retries.Deliver):
                assert response is not None
                return response
            if isinstance(action, retries.Fail):
                failed = retries.failure_error(
                    action.failure,
                    f"{method} {path}",
                    deadline=self.kit.request_deadline,
                    answer_error=answer_error,
                    status=response.status_code if response is not None else None,
                )
                raise failed from exchanged.cause
            if isinstance(action, retries.Refresh):
                await self._refresh(stale_token=sent_token)
                progress = dataclasses.replace(progress, refreshed_after_401=True)
                continue
            await self._wait_before_retry(action, response, method, path, progress.retries, url_path)
            progress = dataclasses.replace(progress, retries=progress.retries + 1)

    async def _exchange_once(self, method: str, url: str, **request: Any) -> _Exchanged:
        """One exchange, its answer or its failure told apart as the retry decision needs it."""
        try:
            response = await self._exchange(method, url, **request)
        except TimeoutError as exc:
            return _Exchanged(retries.Failed.DEADLINE, cause=exc)
        except httpx2.DecodingError as exc:
            return _Exchanged(retries.Failed.UNDECODABLE, cause=exc)
        except httpx2.TransportError as exc:
            never_sent = isinstance(exc, httpx2.ConnectError | httpx2.ConnectTimeout | httpx2.PoolTimeout)
            return _Exchanged(retries.Failed.NOT_CONNECTED if never_sent else retries.Failed.CONNECTION_LOST, cause=exc)
        self.shared.limiter.observe(response.headers)
        answer_error = self.access.parse_error(response) if response.status_code >= 400 else None
        outcome = retries.Answered(
            response.status_code,
            said_rate_limited=isinstance(answer_error, RateLimited),
            said_retry=answer_error.should_retry if answer_error is not None else None,
        )
        return _Exchanged(outcome, response=response, answer_error=answer_error)

    async def _wait_before_retry(
        self,
        retry: retries.Retry,
        response: httpx2.Response | None,
        method: str,
        path: str,
        attempt: int,
        url_path: str = "",
    ) -> None:
        delay = retry_after_seconds(response) if retry.honors_retry_after and response is not None else None
        if delay is None:
            delay = self.kit.backoff(attempt)
        if retry.pauses_connection:
            self.shared.limiter.pause(delay, url_path)
        else:
            await asyncio.sleep(delay)
        if response is not None:
            log.info(
                "retrying %s %s after %s (attempt %d, %.2fs)", method, path, response.status_code, attempt + 1, delay
            )

    async def _exchange(self, method: str, url: str, **request: Any) -> httpx2.Response:
        """One request and its whole answer, within the deadline and the response size limit."""
        sent = self.kit.client.build_request(method, url, **request)
        async with asyncio.timeout(self.kit.request_deadline):
            response = await self.kit.client.send(sent, stream=True)
            try:
                content = await read_within(response, self.kit.max_response_bytes)
            finally:
                await response.aclose()
        return decoded(response, content, sent)

    def _auth_headers(self) -> dict[str, str]:
        auth = self.access.auth
        if not isinstance(auth, OAuth2):
            return auth.headers(self._key_credentials(auth))
        if self.credentials.access_token:
            return {"Authorization": f"Bearer {self.credentials.access_token}"}
        return {}

    def _with_auth_params(self, params: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        """The request's query with a key the provider takes there (`ApiKey(query=...)`)."""
        if isinstance(self.access.auth, OAuth2):
            return params
        key = self.access.auth.params(self._key_credentials(self.access.auth))
        return {**(params or {}), **key} if key else params

    def _key_credentials(self, auth: StaticKey) -> Credentials:
        """The credentials a static key is read from: the connection's own, or with a platform's key
        (`ApiKey.platform_key`) the OAuth app's client secret as it is now."""
        if not (isinstance(auth, ApiKey) and auth.platform_key):
            return self.credentials
        if self.access.app is None:
            raise ReauthRequired("the connection acts through its platform's app, and none is configured")
        return dataclasses.replace(self.credentials, api_key=self.access.app.client_secret)

    async def _refresh_if_expiring(self) -> None:
        if isinstance(self.access.auth, OAuth2) and self.credentials.expires_within(REFRESH_MARGIN):
            await self._refresh(stale_token=self.credentials.access_token)

    async def _refresh(self, *, stale_token: str | None) -> None:
        """Refresh once for all concurrent requests: whoever comes second finds the token already new."""
        auth = self.access.auth
        assert isinstance(auth, OAuth2)
        async with self.shared.refresh_lock:
            if self.credentials.access_token != stale_token:
                return
            if self.access.app is None:
                raise ReauthRequired("the access token expired and no OAuth app is configured to refresh it")
            fresh = await oauth.refresh(
                auth,
                self.access.app,
                self.base_url,
                self.credentials,
                limits=self.kit.token_limits,
                egress=self.kit.egress,
                hosts=self.access.hosts.oauth,
            )
            self.shared.refreshes += 1
            if self.access.save_credentials is not None:
                await self.access.save_credentials(fresh)
            self.shared.credentials = fresh

    async def fresh_credentials(self) -> Credentials:
        await self._refresh_if_expiring()
        return self.credentials

    async def learn_token_facts(self) -> Credentials:
        """The credentials completed with what the provider's after-token step tells of the access token
        (HubSpot's introspection: the account, `hub_id`), saved. For connections imported with tokens only: a
        token exchange or refresh answers the same facts, so a token the provider no longer knows is refreshed."""
        auth = self.access.auth
        if not isinstance(auth, OAuth2) or auth.after_token is None or self.access.app is None:
            return self.credentials
        credentials = await self.fresh_credentials()
        wanted = auth.after_token.keeps
        if all(credentials.extra.get(key) not in (None, "") for key in wanted) or not credentials.access_token:
            return credentials
        call = TokenCall(
            self.access.app, self.base_url, self.kit.token_limits, self.kit.egress, self.access.hosts.oauth
        )
        facts = await auth.after_token.learn(call, credentials.access_token)
        if not facts:
            # No longer active: a refresh both renews the token and names its account.
            await self._refresh(stale_token=credentials.access_token)
            return self.credentials
        learned = credentials.with_extra(facts)
        if self.access.save_credentials is not None:
            await self.access.save_credentials(learned)
        self.shared.credentials = learned
        return learned

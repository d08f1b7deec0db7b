"""What a provider request does after each exchange: deliver the answer, refresh the token, send again or
fail with a typed error. One pure decision, so every path of `ProviderSession.request` reads as a row of a
table (and is tested as one); the request loop only carries the actions out.

The rules behind the rows:
- A create (`may_repeat=False`) is only sent again when the provider surely did not act on it: the
  connection was never made, or it answered 429 or 401. A lost connection, a passed deadline or a 5xx may
  have created the record, so they fail with `outcomeUnknown`.
- A provider too slow to answer within the deadline will not be faster at once: never retried.
- An OAuth token refused with 401 is refreshed once per request (not counted as a retry); a second 401
  means a person must reconnect. An API key refused with 401 cannot be refreshed.
- 429 (or an error the provider's parser reads as a rate limit) and 5xx are retried up to
  `max_retries` times, after the provider's Retry-After or else a backoff; a rate limit pauses the whole
  connection, a 5xx only this request. A provider that says whether to retry (Stripe-Should-Retry) is
  believed over the status, for a request that may be sent again.
- Passthrough (`return_errors`) gets the provider's own error answer, after the same refresh and
  retries, instead of a typed error.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from connectors.kit.egress import UNREACHABLE
from connectors.kit.errors import ProviderError, ProviderUnavailable, RateLimited, ReauthRequired


class Failed(enum.Enum):
    """An exchange that brought no answer."""

    # No complete answer within the request deadline.
    DEADLINE = enum.auto()
    UNDECODABLE = enum.auto()
    # Refused, a connect timeout, or no free pooled connection: the request never left.
    NOT_CONNECTED = enum.auto()
    # The request may have reached the provider.
    CONNECTION_LOST = enum.auto()


@dataclass(frozen=True)
class Answered:
    """The provider's answer, as far as the decision needs it."""

    status: int
    # The provider's error parser called it a rate limit (some providers say so with a 403 or a 400).
    said_rate_limited: bool = False
    # The provider said whether sending it again may succeed (Stripe-Should-Retry); None when it did not.
    said_retry: bool | None = None


Outcome = Answered | Failed


@dataclass(frozen=True, kw_only=True)
class Progress:
    """The request, and what has happened to it so far."""

    max_retries: int
    retries: int = 0
    may_repeat: bool = True
    return_errors: bool = False
    # OAuth2: a refused token may be cured by a refresh. An API key cannot.
    refreshable: bool = False
    refreshed_after_401: bool = False

    @property
    def retries_spent(self) -> bool:
        return self.retries >= self.max_retries


@enum.unique
class Failure(enum.Enum):
    """Why a request fails; `failure_error` turns each into its typed error (named after the colon)."""

    DEADLINE_PASSED = "too slow: ProviderUnavailable"
    DEADLINE_PASSED_MAYBE_ACTED = "too slow, a create may have happened: ProviderUnavailable, outcomeUnknown"
    UNDECODABLE = "undecodable answer: ProviderError"
    UNREACHABLE = "no connection after every retry: ProviderUnavailable"
    UNREACHABLE_MAYBE_ACTED = "connection lost, a create may have happened: ProviderUnavailable, outcomeUnknown"
    REFRESHED_TOKEN_REFUSED = "401 after a refresh: ReauthRequired"
    API_KEY_REFUSED = "401 for an API key: ReauthRequired"
    SERVER_ERROR_MAYBE_ACTED = "5xx, a create may have happened: ProviderUnavailable, outcomeUnknown"
    PROVIDER_REFUSED = "a refusal retries cannot fix: the provider's error as parsed"
    STILL_RATE_LIMITED = "rate limited after every retry: RateLimited"
    STILL_UNAVAILABLE = "5xx after every retry: ProviderUnavailable"


class Deliver:
    """Hand the answer to the caller (a success, or under passthrough the provider's own error)."""


class Refresh:
    """Refresh the access token, then send again; not counted as a retry."""


@dataclass(frozen=True)
class Fail:
    """Raise the typed error of `failure`."""

    failure: Failure


@dataclass(frozen=True)
class Retry:
    """Send again after a wait: the provider's Retry-After when it answered with one, else a backoff."""

    honors_retry_after: bool
    # A rate limit holds every request of the connection for the wait, not only this one.
    pauses_connection: bool


Action = Deliver | Refresh | Retry | Fail

DELIVER = Deliver()
REFRESH = Refresh()


def decide(outcome: Outcome, progress: Progress) -> Action:
    if isinstance(outcome, Failed):
        return _after_no_answer(outcome, progress)
    return _after_answer(outcome, progress)


def _after_no_answer(failed: Failed, progress: Progress) -> Action:
    if failed is Failed.DEADLINE:
        return Fail(Failure.DEADLINE_PASSED if progress.may_repeat else Failure.DEADLINE_PASSED_MAYBE_ACTED)
    if failed is Failed.UNDECODABLE:
        return Fail(Failure.UNDECODABLE)
    if failed is Failed.CONNECTION_LOST and not progress.may_repeat:
        return Fail(Failure.UNREACHABLE_MAYBE_ACTED)
    if progress.retries_spent:
        return Fail(Failure.UNREACHABLE)
    return Retry(honors_retry_after=False, pauses_connection=False)


def _after_answer(answer: Answered, progress: Progress) -> Action:
    status = answer.status
    if status < 400:
        return DELIVER
    if status == 401 and progress.refreshable:
        if not progress.refreshed_after_401:
            return REFRESH
        return DELIVER if progress.return_errors else Fail(Failure.REFRESHED_TOKEN_REFUSED)
    rate_limited = answer.said_rate_limited or status == 429
    server_error = status >= 500
    if server_error and not progress.may_repeat and not progress.return_errors:
        return Fail(Failure.SERVER_ERROR_MAYBE_ACTED)
    retryable = rate_limited or (server_error and progress.may_repeat)
    if answer.said_retry is not None and not rate_limited:
        # A lock held by another request (409) may clear; a 5xx the provider knows is final will not.
        retryable = answer.said_retry and progress.may_repeat
    if progress.return_errors and (not retryable or progress.retries_spent):
        return DELIVER
    if status == 401:
        return Fail(Failure.API_KEY_REFUSED)
    if not retryable:
        return Fail(Failure.STILL_UNAVAILABLE if server_error else Failure.PROVIDER_REFUSED)
    if progress.retries_spent:
        return Fail(Failure.STILL_RATE_LIMITED if rate_limited else Failure.STILL_UNAVAILABLE)
    return Retry(honors_retry_after=True, pauses_connection=rate_limited)


def failure_error(
    failure: Failure,
    request: str,
    *,
    deadline: float,
    answer_error: ProviderError | None = None,
    status: int | None = None,
) -> ProviderError:
    """The typed error a failed request raises. `request` names it ("GET /path"); `answer_error` is what the
    provider's error parser made of its answer, when there was one."""
    if failure is Failure.DEADLINE_PASSED:
        return ProviderUnavailable(f"{request} got no complete answer within {deadline:g} s")
    if failure is Failure.DEADLINE_PASSED_MAYBE_ACTED:
        return ProviderUnavailable(
            f"{request} got no complete answer within {deadline:g} s; the provider may have acted on it",
            outcomeUnknown=True,
        )
    if failure is Failure.UNDECODABLE:
        return ProviderError(f"{request}: the provider's answer could not be decoded")
    if failure is Failure.UNREACHABLE:
        return ProviderUnavailable(f"{request} failed: {UNREACHABLE}")
    if failure is Failure.UNREACHABLE_MAYBE_ACTED:
        return ProviderUnavailable(
            f"{request} failed: {UNREACHABLE}; the provider may have acted on it", outcomeUnknown=True
        )
    assert answer_error is not None, f"{failure} follows an answer"
    if failure is Failure.REFRESHED_TOKEN_REFUSED:
        return ReauthRequired(
            f"the provider still refuses the refreshed token: {answer_error.message}",
            status=401,
            provider_code=answer_error.provider_code,
        )
    if failure is Failure.API_KEY_REFUSED:
        return ReauthRequired(f"the provider refused the API key: {answer_error.message}", status=401)
    if failure is Failure.SERVER_ERROR_MAYBE_ACTED:
        return ProviderUnavailable(
            f"{answer_error.message}; the provider may have acted on it", status=status, outcomeUnknown=True
        )
    if failure is Failure.STILL_RATE_LIMITED:
        if isinstance(answer_error, RateLimited):
            return answer_error
        return RateLimited(answer_error.message, status=429)
    if failure is Failure.STILL_UNAVAILABLE:
        return ProviderUnavailable(answer_error.message, status=status)
    return answer_error

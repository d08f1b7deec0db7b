"""The request decision, row by row: what a provider request does after each exchange.

The loop that carries these actions out is tested over HTTP in test_kit.py, test_provider_bounds.py and
the connectors' conformance suites (storms, refresh); here every row of the decision is stated once.
"""

from __future__ import annotations

import pytest

from connectors.kit.errors import ProviderError, ProviderUnavailable, RateLimited, ReauthRequired
from connectors.kit.retries import (
    DELIVER,
    REFRESH,
    Action,
    Answered,
    Fail,
    Failed,
    Failure,
    Outcome,
    Progress,
    Retry,
    decide,
    failure_error,
)

MAX = 5
FIRST = Progress(max_retries=MAX)
LAST = Progress(retries=MAX, max_retries=MAX)
CREATE = Progress(max_retries=MAX, may_repeat=False)
CREATE_LAST = Progress(retries=MAX, max_retries=MAX, may_repeat=False)
PASSTHROUGH = Progress(max_retries=MAX, return_errors=True)
PASSTHROUGH_LAST = Progress(retries=MAX, max_retries=MAX, return_errors=True)
PASSTHROUGH_CREATE = Progress(max_retries=MAX, may_repeat=False, return_errors=True)
OAUTH = Progress(max_retries=MAX, refreshable=True)
OAUTH_REFRESHED = Progress(max_retries=MAX, refreshable=True, refreshed_after_401=True)
OAUTH_PASSTHROUGH_REFRESHED = Progress(max_retries=MAX, refreshable=True, refreshed_after_401=True, return_errors=True)
OAUTH_CREATE_LAST = Progress(retries=MAX, max_retries=MAX, refreshable=True, may_repeat=False)

BACKOFF = Retry(honors_retry_after=False, pauses_connection=False)
AFTER_RETRY_AFTER = Retry(honors_retry_after=True, pauses_connection=False)
CONNECTION_PAUSED = Retry(honors_retry_after=True, pauses_connection=True)
API_KEY_REFUSED = Fail(Failure.API_KEY_REFUSED)
MAYBE_ACTED = Fail(Failure.SERVER_ERROR_MAYBE_ACTED)

ROWS: list[tuple[str, Outcome, Progress, Action]] = [
    # No answer
    ("deadline-never-retried", Failed.DEADLINE, FIRST, Fail(Failure.DEADLINE_PASSED)),
    ("deadline-create-maybe-acted", Failed.DEADLINE, CREATE, Fail(Failure.DEADLINE_PASSED_MAYBE_ACTED)),
    ("undecodable-never-retried", Failed.UNDECODABLE, FIRST, Fail(Failure.UNDECODABLE)),
    ("undecodable-create", Failed.UNDECODABLE, CREATE, Fail(Failure.UNDECODABLE)),
    ("not-connected-backs-off", Failed.NOT_CONNECTED, FIRST, BACKOFF),
    ("not-connected-create-backs-off", Failed.NOT_CONNECTED, CREATE, BACKOFF),
    ("not-connected-retries-spent", Failed.NOT_CONNECTED, LAST, Fail(Failure.UNREACHABLE)),
    ("not-connected-create-retries-spent", Failed.NOT_CONNECTED, CREATE_LAST, Fail(Failure.UNREACHABLE)),
    ("connection-lost-backs-off", Failed.CONNECTION_LOST, FIRST, BACKOFF),
    ("connection-lost-retries-spent", Failed.CONNECTION_LOST, LAST, Fail(Failure.UNREACHABLE)),
    ("connection-lost-create-maybe-acted", Failed.CONNECTION_LOST, CREATE, Fail(Failure.UNREACHABLE_MAYBE_ACTED)),
    ("connection-lost-passthrough-backs-off", Failed.CONNECTION_LOST, PASSTHROUGH, BACKOFF),
    # Success
    ("2xx-delivered", Answered(200), FIRST, DELIVER),
    ("3xx-delivered", Answered(304), LAST, DELIVER),
    ("2xx-create-delivered", Answered(201), CREATE, DELIVER),
    # 401
    ("401-oauth-refreshes", Answered(401), OAUTH, REFRESH),
    ("401-oauth-refreshes-even-after-retries", Answered(401), OAUTH_CREATE_LAST, REFRESH),
    ("401-oauth-refreshed-fails", Answered(401), OAUTH_REFRESHED, Fail(Failure.REFRESHED_TOKEN_REFUSED)),
    ("401-oauth-refreshed-passthrough-delivers", Answered(401), OAUTH_PASSTHROUGH_REFRESHED, DELIVER),
    ("401-api-key-fails", Answered(401), FIRST, API_KEY_REFUSED),
    ("401-api-key-create-fails", Answered(401), CREATE, API_KEY_REFUSED),
    ("401-api-key-passthrough-delivers", Answered(401), PASSTHROUGH, DELIVER),
    ("401-said-rate-limited-api-key-fails", Answered(401, said_rate_limited=True), FIRST, API_KEY_REFUSED),
    # Other refusals
    ("400-fails-as-parsed", Answered(400), FIRST, Fail(Failure.PROVIDER_REFUSED)),
    ("404-create-fails-as-parsed", Answered(404), CREATE, Fail(Failure.PROVIDER_REFUSED)),
    ("403-passthrough-delivers", Answered(403), PASSTHROUGH, DELIVER),
    # Rate limits
    ("429-pauses-connection", Answered(429), FIRST, CONNECTION_PAUSED),
    ("429-create-pauses-connection", Answered(429), CREATE, CONNECTION_PAUSED),
    ("429-passthrough-pauses-connection", Answered(429), PASSTHROUGH, CONNECTION_PAUSED),
    ("429-retries-spent", Answered(429), LAST, Fail(Failure.STILL_RATE_LIMITED)),
    ("429-passthrough-retries-spent-delivers", Answered(429), PASSTHROUGH_LAST, DELIVER),
    ("403-said-rate-limited-pauses-connection", Answered(403, said_rate_limited=True), FIRST, CONNECTION_PAUSED),
    ("403-said-rate-limited-spent", Answered(403, said_rate_limited=True), LAST, Fail(Failure.STILL_RATE_LIMITED)),
    (
        "503-said-limited-create-maybe-acted",
        Answered(503, said_rate_limited=True),
        CREATE,
        MAYBE_ACTED,
    ),
    # Server errors
    ("5xx-retried-after-retry-after", Answered(503), FIRST, AFTER_RETRY_AFTER),
    ("5xx-retries-spent", Answered(500), LAST, Fail(Failure.STILL_UNAVAILABLE)),
    ("5xx-create-maybe-acted", Answered(502), CREATE, MAYBE_ACTED),
    ("5xx-passthrough-retried", Answered(503), PASSTHROUGH, AFTER_RETRY_AFTER),
    ("5xx-passthrough-retries-spent-delivers", Answered(503), PASSTHROUGH_LAST, DELIVER),
    ("5xx-passthrough-create-delivers", Answered(500), PASSTHROUGH_CREATE, DELIVER),
]


@pytest.mark.parametrize(("outcome", "progress", "action"), [row[1:] for row in ROWS], ids=[row[0] for row in ROWS])
def test_each_outcome_leads_to_one_action(outcome: Outcome, progress: Progress, action: Action) -> None:
    assert decide(outcome, progress) == action


def test_every_failure_has_a_row() -> None:
    failures = {row[3].failure for row in ROWS if isinstance(row[3], Fail)}
    assert failures == set(Failure)


def test_every_outcome_kind_has_a_row() -> None:
    assert {row[1] for row in ROWS if isinstance(row[1], Failed)} == set(Failed)


PARSED = ProviderError("field is required", status=400, provider_code="INVALID")
PARSED_LIMIT = RateLimited("daily limit", status=403, retry_after=60)

ERRORS: list[tuple[Failure, ProviderError | None, type[ProviderError], bool]] = [
    (Failure.DEADLINE_PASSED, None, ProviderUnavailable, False),
    (Failure.DEADLINE_PASSED_MAYBE_ACTED, None, ProviderUnavailable, True),
    (Failure.UNDECODABLE, None, ProviderError, False),
    (Failure.UNREACHABLE, None, ProviderUnavailable, False),
    (Failure.UNREACHABLE_MAYBE_ACTED, None, ProviderUnavailable, True),
    (Failure.REFRESHED_TOKEN_REFUSED, PARSED, ReauthRequired, False),
    (Failure.API_KEY_REFUSED, PARSED, ReauthRequired, False),
    (Failure.SERVER_ERROR_MAYBE_ACTED, PARSED, ProviderUnavailable, True),
    (Failure.PROVIDER_REFUSED, PARSED, ProviderError, False),
    (Failure.STILL_RATE_LIMITED, PARSED, RateLimited, False),
    (Failure.STILL_UNAVAILABLE, PARSED, ProviderUnavailable, False),
]


@pytest.mark.parametrize(
    ("failure", "answer_error", "error_type", "outcome_unknown"), ERRORS, ids=[row[0].name for row in ERRORS]
)
def test_each_failure_raises_its_typed_error(
    failure: Failure, answer_error: ProviderError | None, error_type: type[ProviderError], outcome_unknown: bool
) -> None:
    error = failure_error(failure, "POST /contacts", deadline=60, answer_error=answer_error, status=503)
    assert type(error) is error_type
    assert error.extensions.get("outcomeUnknown", False) is outcome_unknown
    if answer_error is None:
        assert error.message.startswith("POST /contacts")
    else:
        assert answer_error.message in error.message


def test_a_failure_without_an_answer_says_which_request_and_why() -> None:
    error = failure_error(Failure.DEADLINE_PASSED_MAYBE_ACTED, "POST /contacts", deadline=2.5)
    assert error.message == "POST /contacts got no complete answer within 2.5 s; the provider may have acted on it"


def test_the_parsed_error_is_raised_as_the_provider_gave_it() -> None:
    assert failure_error(Failure.PROVIDER_REFUSED, "GET /x", deadline=1, answer_error=PARSED) is PARSED
    assert failure_error(Failure.STILL_RATE_LIMITED, "GET /x", deadline=1, answer_error=PARSED_LIMIT) is PARSED_LIMIT


def test_a_refused_refreshed_token_keeps_the_providers_code() -> None:
    error = failure_error(Failure.REFRESHED_TOKEN_REFUSED, "GET /x", deadline=1, answer_error=PARSED)
    assert (error.status, error.provider_code) == (401, "INVALID")


def test_a_5xx_that_outlasts_retries_keeps_its_status() -> None:
    error = failure_error(Failure.STILL_UNAVAILABLE, "GET /x", deadline=1, answer_error=PARSED, status=502)
    assert error.status == 502

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
REQUESTS = {
    "first": Progress(max_retries=MAX),
    "last": Progress(retries=MAX, max_retries=MAX),
    "create": Progress(max_retries=MAX, may_repeat=False),
    "create-last": Progress(retries=MAX, max_retries=MAX, may_repeat=False),
    "passthrough": Progress(max_retries=MAX, return_errors=True),
    "passthrough-last": Progress(retries=MAX, max_retries=MAX, return_errors=True),
    "passthrough-create": Progress(max_retries=MAX, may_repeat=False, return_errors=True),
    "oauth": Progress(max_retries=MAX, refreshable=True),
    "oauth-refreshed": Progress(max_retries=MAX, refreshable=True, refreshed_after_401=True),
    "oauth-create-last": Progress(retries=MAX, max_retries=MAX, refreshable=True, may_repeat=False),
    "oauth-passthrough-refreshed": Progress(
        max_retries=MAX, refreshable=True, refreshed_after_401=True, return_errors=True
    ),
}
ACTIONS: dict[str, Action] = {
    "deliver": DELIVER,
    "refresh": REFRESH,
    "backoff": Retry(honors_retry_after=False, pauses_connection=False),
    "retry-after": Retry(honors_retry_after=True, pauses_connection=False),
    "pause-connection": Retry(honors_retry_after=True, pauses_connection=True),
}

# An answer is its status, `-limited` when the provider's error parser called it a rate limit, `-retry` or
# `-final` when the provider said a retry may or may not succeed (Stripe-Should-Retry: true or false). `last` is a
# request that has spent its retries, `create` one sent with may_repeat=False, `passthrough` return_errors.
TABLE = """
deadline         first                        fail DEADLINE_PASSED
deadline         create                       fail DEADLINE_PASSED_MAYBE_ACTED
undecodable      first                        fail UNDECODABLE
undecodable      create                       fail UNDECODABLE
not-connected    first                        backoff
not-connected    create                       backoff
not-connected    last                         fail UNREACHABLE
not-connected    create-last                  fail UNREACHABLE
connection-lost  first                        backoff
connection-lost  passthrough                  backoff
connection-lost  last                         fail UNREACHABLE
connection-lost  create                       fail UNREACHABLE_MAYBE_ACTED
200              first                        deliver
201              create                       deliver
304              last                         deliver
401              oauth                        refresh
401              oauth-create-last            refresh
401              oauth-refreshed              fail REFRESHED_TOKEN_REFUSED
401              oauth-passthrough-refreshed  deliver
401              first                        fail API_KEY_REFUSED
401              create                       fail API_KEY_REFUSED
401-limited      first                        fail API_KEY_REFUSED
401              passthrough                  deliver
400              first                        fail PROVIDER_REFUSED
404              create                       fail PROVIDER_REFUSED
403              passthrough                  deliver
429              first                        pause-connection
429              create                       pause-connection
429              passthrough                  pause-connection
429              last                         fail STILL_RATE_LIMITED
429              passthrough-last             deliver
403-limited      first                        pause-connection
403-limited      last                         fail STILL_RATE_LIMITED
503-limited      create                       fail SERVER_ERROR_MAYBE_ACTED
503              first                        retry-after
503              passthrough                  retry-after
500              last                         fail STILL_UNAVAILABLE
502              create                       fail SERVER_ERROR_MAYBE_ACTED
503              passthrough-last             deliver
500              passthrough-create           deliver
409-retry        first                        retry-after
409-retry        create                       fail PROVIDER_REFUSED
409              first                        fail PROVIDER_REFUSED
500-final        first                        fail STILL_UNAVAILABLE
500-final        passthrough                  deliver
429-final        first                        pause-connection
"""


def _outcome(cell: str) -> Outcome:
    status, _, hint = cell.partition("-")
    if status.isdigit():
        said_retry = {"retry": True, "final": False}.get(hint)
        return Answered(int(status), said_rate_limited=hint == "limited", said_retry=said_retry)
    return Failed[cell.upper().replace("-", "_")]


def _action(cell: str) -> Action:
    kind, _, failure = cell.partition(" ")
    return Fail(Failure[failure]) if kind == "fail" else ACTIONS[kind]


ROWS = [line.split(maxsplit=2) for line in TABLE.strip().splitlines()]


@pytest.mark.parametrize(("outcome", "request_so_far", "action"), ROWS, ids=["/".join(row[:2]) for row in ROWS])
def test_each_outcome_leads_to_one_action(outcome: str, request_so_far: str, action: str) -> None:
    assert decide(_outcome(outcome), REQUESTS[request_so_far]) == _action(action)


def test_every_failure_and_every_kind_of_no_answer_has_a_row() -> None:
    actions = [_action(row[2]) for row in ROWS]
    assert {action.failure for action in actions if isinstance(action, Fail)} == set(Failure)
    assert {_outcome(row[0]) for row in ROWS} >= set(Failed)
    assert set(ACTIONS.values()) <= set(actions)


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

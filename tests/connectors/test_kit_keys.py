"""The kit's pieces for key-based providers (Stripe first): key formats checked before any request, headers
from the credentials' extras, a platform's key read from its app at each request, epoch seconds, per-step
idempotency keys, and the provider's word on retrying."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import httpx2
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.kit.credentials import Credentials
from connectors.kit.declaration import Draft, read_instant
from connectors.kit.errors import ReauthRequired
from connectors.kit.http import HttpKit
from connectors.kit.keys import ApiKey, KeyFormat
from connectors.kit.oauth import OAuthApp
from connectors.kit.sandbox import serve_in_thread
from connectors.stripe import STRIPE
from connectors.stripe.errors import dotted, parse_error
from tests.connectors.kit_sessions import api_key_access
from tests.support import sandbox_egress

STRIPE_LIKE = KeyFormat(
    prefixes=("sk_test_", "sk_live_"),
    refused={"pk_": "a publishable key cannot read data"},
    live_prefixes=("sk_live_",),
    pattern=r"sk_(?:test|live)_[A-Za-z0-9]{16,}",
    hint="a secret key, sk_...",
)


@pytest.mark.parametrize(
    ("key", "test_only", "problem"),
    [
        ("sk_test_abcdefghijklmnop", False, None),
        ("sk_live_abcdefghijklmnop", False, None),
        ("sk_live_abcdefghijklmnop", True, "a live key is refused here: use a test-mode key"),
        ("pk_test_abcdefghijklmnop", False, "a publishable key cannot read data"),
        ("sk_test_short", False, "this does not look like a key of the expected kind: a secret key, sk_..."),
        (
            "sk_test_abcdefghijklmnop!",
            False,
            "this does not look like a key of the expected kind: a secret key, sk_...",
        ),
        (
            "Bearer sk_test_abcdefghijklmnop",
            False,
            "this does not look like a key of the expected kind: a secret key, sk_...",
        ),
    ],
    ids=["test", "live", "live-in-dev", "publishable", "too-short", "stray-character", "header-pasted"],
)
def test_a_key_format_says_why_a_key_cannot_be_used(key: str, test_only: bool, problem: str | None) -> None:
    assert STRIPE_LIKE.problem(key, test_only=test_only) == problem


def test_headers_from_the_credentials_go_only_when_the_credentials_hold_them() -> None:
    key = ApiKey(from_credentials={"Stripe-Version": "version", "Stripe-Account": "account"})
    given = Credentials(api_key="sk_test_1", extra={"version": "2024-06-20"})
    assert key.headers(given) == {"Authorization": "Bearer sk_test_1", "Stripe-Version": "2024-06-20"}
    both = replace(given, extra={"version": "2024-06-20", "account": "acct_1"})
    assert key.headers(both)["Stripe-Account"] == "acct_1"


def _echo_app() -> Starlette:
    async def echo(request: Request) -> Response:
        return JSONResponse({"authorization": request.headers.get("authorization")})

    return Starlette(routes=[Route("/whoami", echo)])


async def test_a_platform_key_is_read_from_the_app_at_each_request() -> None:
    kit = HttpKit(egress=sandbox_egress(), backoff_base=0.01, backoff_max=0.02)
    try:
        with serve_in_thread(_echo_app()) as url:
            access = replace(
                api_key_access(url),
                auth=ApiKey(platform_key=True),
                credentials=Credentials(access_token="never-sent"),
                app=OAuthApp("ca_1", "sk_platform_one"),
            )
            session = kit.session(access)
            assert (await session.get_json("/whoami"))["authorization"] == "Bearer sk_platform_one"
            session.access.app = OAuthApp("ca_1", "sk_platform_two")
            assert (await session.get_json("/whoami"))["authorization"] == "Bearer sk_platform_two"
            assert session.credentials.api_key is None
            session.access.app = None
            with pytest.raises(ReauthRequired):
                await session.get_json("/whoami")
    finally:
        await kit.aclose()


def test_epoch_seconds_and_milliseconds_are_told_apart() -> None:
    moment = datetime(2024, 6, 20, 12, 0, tzinfo=UTC)
    assert read_instant(int(moment.timestamp()), "seconds") == moment
    assert read_instant(int(moment.timestamp() * 1000), "milliseconds") == moment
    assert read_instant("2024-06-20T12:00:00Z", "seconds") == moment


def test_each_step_of_a_write_has_its_own_idempotency_key() -> None:
    draft = Draft({}, idempotency_key="caller-key")
    keys = {draft.step_key(step) for step in ("invoice", "line:0", "line:1")}
    assert len(keys) == 3 and "caller-key" not in keys
    assert draft.step_key("invoice") == Draft({}, idempotency_key="caller-key").step_key("invoice")
    assert Draft({}).step_key("invoice") is None


def _answer(status: int, body: dict[str, object], **headers: str) -> httpx2.Response:
    return httpx2.Response(status, json=body, headers=headers, request=httpx2.Request("POST", "https://x/v1/customers"))


def test_stripes_error_envelope_names_the_parameter_and_the_retry_hint() -> None:
    answer = _answer(
        400,
        {
            "error": {
                "type": "invalid_request_error",
                "code": "parameter_unknown",
                "param": "metadata[plan]",
                "message": "Received unknown parameter: metadata[plan]",
            }
        },
        **{"Stripe-Should-Retry": "false", "Request-Id": "req_1"},
    )
    error = parse_error(answer)
    assert (error.status, error.provider_code, error.field, error.should_retry) == (
        400,
        "parameter_unknown",
        "metadata.plan",
        False,
    )
    assert error.extensions["requestId"] == "req_1"
    conflict = parse_error(
        _answer(
            400,
            {
                "error": {
                    "type": "idempotency_error",
                    "message": "Keys for idempotent requests can only be used with the same parameters",
                }
            },
        )
    )
    assert conflict.provider_code == "idempotency_error"
    card = parse_error(
        _answer(
            402,
            {
                "error": {
                    "type": "card_error",
                    "code": "card_declined",
                    "decline_code": "insufficient_funds",
                    "message": "Your card was declined.",
                }
            },
        )
    )
    assert (card.status, card.provider_code, card.extensions["declineCode"]) == (
        402,
        "card_declined",
        "insufficient_funds",
    )
    assert (
        parse_error(
            _answer(
                429, {"error": {"type": "invalid_request_error", "code": "rate_limit", "message": "Too many requests"}}
            )
        ).code
        == "RATE_LIMITED"
    )
    assert parse_error(_answer(409, {}, **{"Stripe-Should-Retry": "true"})).should_retry is True


def test_bracketed_parameters_read_as_dotted_paths() -> None:
    assert dotted("metadata[plan]") == "metadata.plan"
    assert dotted("lines[0][amount]") == "lines.0.amount"
    assert dotted("email") == "email"


def test_a_declined_card_and_a_reused_key_are_the_callers_to_fix() -> None:
    mapping = STRIPE.stream("customers").mapping
    assert mapping is not None
    declined = parse_error(_answer(402, {"error": {"type": "card_error", "code": "card_declined", "message": "No."}}))
    assert STRIPE.write_error(declined, mapping).code == "BAD_USER_INPUT"
    reused = parse_error(_answer(400, {"error": {"type": "idempotency_error", "message": "Other parameters."}}))
    assert STRIPE.write_error(reused, mapping).code == "CONFLICT"
    named = parse_error(
        _answer(400, {"error": {"type": "invalid_request_error", "param": "email", "message": "Invalid email."}})
    )
    assert STRIPE.write_error(named, mapping).extensions["field"] == "email"

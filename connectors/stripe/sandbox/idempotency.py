"""Stripe's `Idempotency-Key` (docs.stripe.com/api/idempotent_requests): the first response to a key (status
and body, errors included) is saved once the endpoint runs and replayed for every retry with the same
parameters; the same key with other parameters is an `idempotency_error`; a retry while the first request
still runs gets 409; a request refused by validation saves nothing; keys go after 24 hours."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from connectors.stripe.sandbox.errors import StripeError

KEY_MAX_CHARS = 255
KEY_LIFETIME_S = 86_400


@dataclass
class Saved:
    endpoint: str
    parameters: bytes
    saved_at: int
    request_id: str  # the first request's: a replay names it in `Original-Request`
    status: int | None = None  # None while the first request runs
    body: bytes = b""


class IdempotencyStore:
    """Saved responses by (account, key), oldest first, so pruning stops at the first fresh one."""

    def __init__(self, clock: Callable[[], int]) -> None:
        self.clock = clock
        self._saved: dict[tuple[str, str], Saved] = {}
        self._lock = threading.Lock()

    def begin(self, account_id: str, key: str, endpoint: str, parameters: bytes, request_id: str) -> Saved | None:
        """The saved response to replay, or None when this request is the key's first (it now holds the key).
        Raises StripeError for a key too long, reused elsewhere or with other parameters, or in use."""
        if len(key) > KEY_MAX_CHARS:
            raise StripeError(
                400, f"Idempotency keys can be no longer than {KEY_MAX_CHARS} characters.", validation=True
            )
        now = self.clock()
        with self._lock:
            self._prune(now)
            saved = self._saved.get((account_id, key))
            if saved is None:
                self._saved[(account_id, key)] = Saved(endpoint, parameters, now, request_id)
                return None
        if saved.endpoint != endpoint:
            # Reported by stripe-ruby's users as an invalid_request_error, unlike the parameters' mismatch.
            raise StripeError(
                400,
                f"Keys for idempotent requests can only be used for the same endpoint they were first used for "
                f"('{saved.endpoint}' vs '{endpoint}'). Try using a key other than '{key}' if you meant to execute "
                "a different request.",
                validation=True,
            )
        if saved.parameters != parameters:
            raise _mismatch(
                "Keys for idempotent requests can only be used with the same parameters they were first used with. "
                f"Try using a key other than '{key}' if you meant to execute a different request."
            )
        if saved.status is None:
            raise StripeError(
                409,
                "There is currently another in-progress request using this Stripe-Account and idempotency key. "
                "Please try again later.",
                code="idempotency_key_in_use",
                validation=True,
            )
        return saved

    def in_progress(self, account_id: str, key: str) -> bool:
        """Whether a request holding this key is running now."""
        with self._lock:
            saved = self._saved.get((account_id, key))
        return saved is not None and saved.status is None

    def finish(self, account_id: str, key: str, status: int, body: bytes) -> None:
        with self._lock:
            saved = self._saved.get((account_id, key))
            if saved is not None:
                saved.status, saved.body = status, body

    def abandon(self, account_id: str, key: str) -> None:
        """The request failed validation: Stripe keeps nothing, and the key is free again."""
        with self._lock:
            saved = self._saved.get((account_id, key))
            if saved is not None and saved.status is None:
                del self._saved[(account_id, key)]

    def _prune(self, now: int) -> None:
        while self._saved:
            scope, saved = next(iter(self._saved.items()))
            if saved.saved_at > now - KEY_LIFETIME_S:
                return
            del self._saved[scope]


def _mismatch(message: str) -> StripeError:
    return StripeError(400, message, type="idempotency_error", validation=True)

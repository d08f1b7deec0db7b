"""Revoked API keys, announced to everything in this process that trusts a key for longer than a request.

A revocation is committed to `api_keys.revoked_at` first; the database stays the source of truth. On
PostgreSQL the revoking transaction also sends `NOTIFY xkit_keys_revoked` with the key's id, which
`sync/cache/listen.py` turns into `publish` on every listening process; the revoking process publishes at once.
`publish(None)` means "any key may have been revoked": the listener says so after (re)connecting, since a
notification sent while it was away is lost.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

log = logging.getLogger(__name__)

KEYS_CHANNEL = "xkit_keys_revoked"

Subscriber = Callable[[uuid.UUID | None], None]


class KeyRevocations:
    """In-process announcements of revoked keys; subscribers are plain callbacks run on the event loop."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Returns the call that unsubscribes."""
        self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)

        return unsubscribe

    def publish(self, key_id: uuid.UUID | None) -> None:
        for subscriber in list(self._subscribers):
            try:
                subscriber(key_id)
            except Exception:
                # One broken subscriber must not keep a revocation from the others.
                log.exception("a subscriber to key revocations failed")

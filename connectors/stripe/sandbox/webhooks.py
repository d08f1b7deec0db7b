"""Webhook endpoints and the deliveries the sandbox sends them, as Stripe does: each event whose type an
endpoint enabled (or `*`) is POSTed as JSON, signed in `Stripe-Signature: t=<unix>,v1=<hex>` where v1 is
HMAC-SHA256 of `f"{t}.{body}"` under the endpoint's `whsec_` secret (stripe-python `_webhook.py`). While a
secret is being rolled, both the new and the old secret sign (two v1 values). A platform's Connect endpoint
receives its connected accounts' events, each naming its `account`.

Deliveries run in order on a background thread and are retried a few times on a network error or a non-2xx.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx2
import orjson

from connectors.kit.sandbox_support import DeliveryQueue
from connectors.stripe.sandbox.errors import invalid

if TYPE_CHECKING:
    from connectors.stripe.sandbox.account import Account

MAX_ATTEMPTS = 4
FIRST_RETRY_S = 0.05


def signature(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secrets_in_use: list[str], timestamp: int, body: bytes) -> str:
    return ",".join([f"t={timestamp}", *(f"v1={signature(secret, timestamp, body)}" for secret in secrets_in_use)])


def new_secret() -> str:
    return "whsec_" + secrets.token_hex(16)


@dataclass
class Endpoint:
    id: str
    account_id: str
    url: str
    enabled_events: list[str]
    # The secret in use first; the previous one follows while it is being rolled.
    secrets: list[str]
    connect: bool = False

    def wants(self, event_type: str) -> bool:
        return "*" in self.enabled_events or event_type in self.enabled_events


@dataclass
class WebhookStats:
    delivered: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 0
    failures: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, *, delivered: dict[str, Any] | None = None, failed: bool = False) -> None:
        with self._lock:
            self.attempts += 1
            self.failures += failed
            if delivered is not None:
                self.delivered.append(delivered)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"delivered": len(self.delivered), "attempts": self.attempts, "failures": self.failures}


def check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise invalid(f"Invalid URL: {url}. URLs must begin with http:// or https://", "url")
    return url


class WebhookSender:
    """Every account's endpoints, and one queue of deliveries posted in order."""

    def __init__(self, stats: WebhookStats, connected_to: Callable[[str], set[str]]) -> None:
        self.stats = stats
        # The accounts connected to a platform account: what its Connect endpoints hear about.
        self.connected_to = connected_to
        self.endpoints: dict[str, Endpoint] = {}
        self._deliveries: DeliveryQueue[tuple[Endpoint, dict[str, Any], bytes]] = DeliveryQueue(
            lambda client, item: self._deliver(client, *item), thread_name="stripe-sandbox-webhooks"
        )

    def register(self, endpoint: Endpoint) -> None:
        self.endpoints[endpoint.id] = endpoint

    def remove(self, endpoint_id: str) -> None:
        self.endpoints.pop(endpoint_id, None)

    def roll_secret(self, endpoint_id: str) -> str:
        """A new secret signs from now on; the old one keeps signing beside it until `end_roll`."""
        endpoint = self.endpoints[endpoint_id]
        endpoint.secrets = [new_secret(), endpoint.secrets[0]]
        return endpoint.secrets[0]

    def end_roll(self, endpoint_id: str) -> None:
        endpoint = self.endpoints[endpoint_id]
        endpoint.secrets = endpoint.secrets[:1]

    def publish(self, account: Account, event: dict[str, Any]) -> None:
        targets = [
            endpoint
            for endpoint in list(self.endpoints.values())
            if endpoint.wants(event["type"])
            and (
                endpoint.account_id == account.id
                or (endpoint.connect and account.id in self.connected_to(endpoint.account_id))
            )
        ]
        if not targets:
            return
        event["pending_webhooks"] = len(targets)
        for endpoint in targets:
            sent = {**event, "account": account.id} if endpoint.account_id != account.id else event
            self._deliveries.put((endpoint, event, orjson.dumps(sent)))

    def flush(self, timeout: float = 5.0) -> bool:
        return self._deliveries.flush(timeout)

    def close(self) -> None:
        self._deliveries.close()

    def _deliver(self, client: httpx2.Client, endpoint: Endpoint, event: dict[str, Any], body: bytes) -> None:
        for attempt in range(MAX_ATTEMPTS):
            if endpoint.id not in self.endpoints:
                return
            headers = {
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                "Stripe-Signature": signature_header(endpoint.secrets, int(time.time()), body),
            }
            try:
                status = client.post(endpoint.url, content=body, headers=headers).status_code
            except httpx2.HTTPError:
                status = 0
            if 200 <= status < 300:
                self.stats.count(delivered=orjson.loads(body))
                event["pending_webhooks"] = max(0, event["pending_webhooks"] - 1)
                return
            self.stats.count(failed=True)
            time.sleep(FIRST_RETRY_S * 2**attempt)

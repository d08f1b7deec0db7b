"""Webhooks the sandbox sends itself, as a Zendesk webhook subscribed to ticket, user and organization
events does: one JSON event per request, signed with the webhook's signing secret.

The signature is `base64(HMAC-SHA256(secret, timestamp + body))`, sent in `X-Zendesk-Webhook-Signature`
with the timestamp in `X-Zendesk-Webhook-Signature-Timestamp` (ISO 8601, as captured). Deliveries run on a
background thread, in order, retried a few times on a network error, 409, 429 or 5xx.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx2
import orjson

from connectors.kit.sandbox_support import DeliveryQueue
from connectors.zendesk.sandbox.account import Change

EVENT_VERSION = "2022-06-20"
RETRY_STATUSES = {409, 429, 500, 502, 503, 504}


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


@dataclass(frozen=True)
class WebhookConfig:
    endpoint: str
    signing_secret: str
    webhook_id: str
    # A trigger's webhook carries the body its admin wrote; xkit's setup has it name the account's subdomain,
    # which an event subscription's body does not (it names only the numeric account id).
    subdomain: str | None = None

    def __post_init__(self) -> None:
        parts = urlsplit(self.endpoint)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"a webhook endpoint must be an absolute http(s) URL, not {self.endpoint!r}")


@dataclass
class WebhookStats:
    delivered: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 0
    failures: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"delivered": len(self.delivered), "attempts": self.attempts, "failures": self.failures}


def build_event(change: Change, account_id: int) -> dict[str, Any]:
    """Called for every change while webhooks are on; `WebhookSender.publish` adds the subdomain when asked."""
    return _event(change, account_id)


def _shout(value: Any) -> Any:
    # Event bodies spell statuses and priorities in capitals ("SOLVED"), unlike the REST API.
    return value.upper() if isinstance(value, str) else value


def _event(change: Change, account_id: int) -> dict[str, Any]:
    """An event-subscription payload: ids are strings in `detail`, as Zendesk sends them."""
    record = change.record
    detail: dict[str, Any] = {"id": str(record["id"])}
    if change.kind == "ticket":
        for name in ("status", "priority"):
            detail[name] = _shout(record.get(name))
        for name in ("subject", "type"):
            detail[name] = record.get(name)
        for name in ("requester_id", "assignee_id", "organization_id", "group_id"):
            detail[name] = str(record[name]) if record.get(name) is not None else None
        detail["tags"] = record.get("tags", [])
    elif change.kind == "user":
        detail.update(email=record.get("email"), name=record.get("name"), role=record.get("role"))
        detail["organization_id"] = str(record.get("organization_id") or 0)
    else:
        detail["name"] = record.get("name")
    for name in ("created_at", "updated_at"):
        value = record.get(name)
        detail[name] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(value)) if isinstance(value, int) else value
    event: dict[str, Any] = {}
    if change.event == "comment_added" and isinstance(change.current, dict):
        comment = change.current
        event["comment"] = {
            "id": str(comment["id"]),
            "body": comment["body"],
            "is_public": comment["public"],
            "author": {"id": str(comment["author_id"])},
        }
    elif change.event in ("status_changed", "priority_changed"):
        event = {"previous": _shout(change.previous), "current": _shout(change.current)}
    elif change.previous is not None or change.current is not None:
        event = {"previous": change.previous, "current": change.current}
    return {
        "type": f"zen:event-type:{change.kind}.{change.event}",
        "account_id": account_id,
        "id": str(uuid.uuid4()),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "zendesk_event_version": EVENT_VERSION,
        "subject": f"zen:{change.kind}:{record['id']}",
        "detail": detail,
        "event": event,
    }


class WebhookSender:
    """Queues events of one account and posts them, signed, on a background thread."""

    def __init__(self, stats: WebhookStats, max_attempts: int = 3) -> None:
        self.stats = stats
        self.max_attempts = max_attempts
        self.config: WebhookConfig | None = None
        self._deliveries: DeliveryQueue[tuple[WebhookConfig, dict[str, Any]]] = DeliveryQueue(
            lambda client, item: self._deliver(client, *item), thread_name="zendesk-sandbox-webhooks"
        )

    def configure(self, config: WebhookConfig | None) -> None:
        self.config = config

    def publish(self, event: dict[str, Any]) -> None:
        config = self.config
        if config is None:
            return
        if config.subdomain is not None:
            event = {**event, "subdomain": config.subdomain}
        self._deliveries.put((config, event))

    def flush(self, timeout: float = 5.0) -> bool:
        return self._deliveries.flush(timeout)

    def close(self) -> None:
        self.config = None
        self._deliveries.close()

    def _deliver(self, client: httpx2.Client, config: WebhookConfig, event: dict[str, Any]) -> None:
        body = orjson.dumps(event)
        for attempt in range(self.max_attempts):
            timestamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "Zendesk Webhook",
                "X-Zendesk-Webhook-Id": config.webhook_id,
                "X-Zendesk-Webhook-Invocation-Id": str(secrets.randbelow(10**12)),
                "X-Zendesk-Webhook-Signature-Timestamp": timestamp,
                "X-Zendesk-Webhook-Signature": sign(config.signing_secret, timestamp, body),
            }
            with self.stats._lock:
                self.stats.attempts += 1
            try:
                status = client.post(config.endpoint, content=body, headers=headers).status_code
            except httpx2.HTTPError:
                status = 0
            if status and status not in RETRY_STATUSES:
                with self.stats._lock:
                    self.stats.delivered.append(event)
                return
            with self.stats._lock:
                self.stats.failures += 1
            time.sleep(0.05 * 2**attempt)

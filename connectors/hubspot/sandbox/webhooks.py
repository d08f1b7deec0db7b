"""Webhooks as a HubSpot app receives them: every CRM change becomes an event, and events are
POSTed in batches (a JSON array) to the app's target URL, signed with signature v3 and retried
with exponential backoff. See /work/shared/providers/hubspot.md section 1.7.

Delivery runs on a background thread that starts when there is something to send and ends after a
moment of idleness, so a write never waits for a webhook and an idle sandbox holds no thread.

Which events are emitted, and what is unverified:
- contacts, companies, deals and tickets: `<object>.creation`, `.propertyChange` (one event per
  property whose value really changed), `.deletion` and `.associationChange`. Notes and tasks emit
  nothing: HubSpot's classic (`contact.*`-style) subscriptions have no such types.
- Every subscription type counts as subscribed, and every property: one subscription per type
  (`subscriptionId` below), where HubSpot has one per subscribed property of a propertyChange.
- A creation does not also emit propertyChange events for the values it was created with
  (unverified: HubSpot may fire those for subscribed properties).
- An association change fires one event from each end (documented for different object types in
  HubSpot's "Bugfix: Webhook AssociationChanges" changelog). Its fields `associationType`
  ("CONTACT_TO_COMPANY"), `fromObjectId`, `toObjectId`, `associationRemoved` and
  `isPrimaryAssociation` come from HubSpot's "New subscription types for webhooks" changelog; that
  it carries no `objectId` is unverified. Archiving a record fires no association events.
- `changeSource` is "API" for REST writes and "CRM_UI" for the Python facade; real HubSpot also
  reports "INTEGRATION", "IMPORT" and others.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx2
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.hubspot.sandbox.crm import CrmChange
from connectors.hubspot.sandbox.schema import OBJECT_TYPES
from connectors.hubspot.webhooks import signature_v3
from connectors.kit.sandbox_support import json_response

if TYPE_CHECKING:
    from connectors.hubspot.sandbox.sandbox import HubSpotSandbox

WEBHOOK_OBJECT_TYPES = ("contacts", "companies", "deals", "tickets")
_CHANGE_KINDS = ("creation", "deletion", "propertyChange", "associationChange")
# One subscription per type, with fixed ids; the app's subscriptions are not modelled further.
SUBSCRIPTION_IDS = {
    f"{OBJECT_TYPES[name].singular}.{kind}": 1_000_000 + 10 * i + j
    for i, name in enumerate(WEBHOOK_OBJECT_TYPES)
    for j, kind in enumerate(_CHANGE_KINDS)
}
# HubSpot retries every outcome but success and these (legacy docs; hubspot.md 1.7).
NOT_RETRIED = frozenset({400, 401, 403, 404, 405})
KEPT_PAYLOADS = 50
IDLE_EXIT_S = 2.0


@dataclass(frozen=True)
class WebhookConfig:
    target_url: str
    client_secret: str
    app_id: int
    portal_id: int
    batch_window_ms: int = 50
    max_batch: int = 100
    max_retries: int = 10  # HubSpot: "up to 10 times", so attemptNumber runs 0..10
    retry_base_s: float = 0.2  # HubSpot's own spread is hours; a sandbox keeps it short
    retry_cap_s: float = 5.0
    timeout_s: float = 5.0

    def __post_init__(self) -> None:
        url = httpx2.URL(self.target_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"the webhook target URL must be an absolute http(s) URL, not {self.target_url!r}")
        if self.batch_window_ms < 0 or not 1 <= self.max_batch <= 1000 or self.max_retries < 0:
            raise ValueError("batch_window_ms must be >= 0, max_batch 1..1000, max_retries >= 0")

    def backoff_s(self, attempt_number: int) -> float:
        """The wait before attempt `attempt_number` + 1."""
        return float(min(self.retry_cap_s, self.retry_base_s * 2**attempt_number))

    def describe(self) -> dict[str, Any]:
        # The secret is left out: a tool that needs it knows it already.
        return {
            "targetUrl": self.target_url,
            "appId": self.app_id,
            "portalId": self.portal_id,
            "batchWindowMs": self.batch_window_ms,
            "maxBatch": self.max_batch,
            "maxRetries": self.max_retries,
        }


@dataclass
class WebhookStats:
    """What delivery did, for tests: counts, and the last `KEPT_PAYLOADS` delivered arrays."""

    events_queued: int = 0
    events_delivered: int = 0  # in requests answered 2xx
    events_given_up: int = 0  # answered 400/401/403/404/405, or out of retries, or dropped unsent
    requests_sent: int = 0  # every POST attempt, whatever came of it
    failures: int = 0  # attempts not answered 2xx (errors, timeouts, other statuses)
    retries: int = 0  # attempts scheduled again after a failure
    last_error: str | None = None
    payloads: deque[list[dict[str, Any]]] = field(default_factory=lambda: deque(maxlen=KEPT_PAYLOADS))
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def delivered_events(self) -> list[dict[str, Any]]:
        """Every event of the kept payloads, oldest first."""
        with self._lock:
            return [event for payload in self.payloads for event in payload]

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "events_queued": self.events_queued,
                "events_delivered": self.events_delivered,
                "events_given_up": self.events_given_up,
                "requests_sent": self.requests_sent,
                "failures": self.failures,
                "retries": self.retries,
                "last_error": self.last_error,
            }

    def count_queued(self, events: int) -> None:
        with self._lock:
            self.events_queued += events

    def count_given_up(self, events: int) -> None:
        with self._lock:
            self.events_given_up += events

    def record_attempt(self, events: list[dict[str, Any]], *, delivered: bool, retried: bool, error: str) -> None:
        with self._lock:
            self.requests_sent += 1
            if delivered:
                self.events_delivered += len(events)
                self.payloads.append(events)
                return
            self.failures += 1
            self.last_error = error
            if retried:
                self.retries += 1
            else:
                self.events_given_up += len(events)

    def reset(self) -> None:
        with self._lock:
            self.events_queued = self.events_delivered = self.events_given_up = 0
            self.requests_sent = self.failures = self.retries = 0
            self.last_error = None
            self.payloads.clear()


def build_event(change: CrmChange, event_id: int, config: WebhookConfig) -> dict[str, Any] | None:
    """The event HubSpot would send for `change`, or None when no subscription covers it."""
    if change.object_type not in WEBHOOK_OBJECT_TYPES:
        return None
    if change.kind == "associationChange" and change.to_type not in WEBHOOK_OBJECT_TYPES:
        return None
    singular = OBJECT_TYPES[change.object_type].singular
    subscription_type = f"{singular}.{change.kind}"
    event: dict[str, Any] = {
        "eventId": event_id,
        "subscriptionId": SUBSCRIPTION_IDS[subscription_type],
        "portalId": config.portal_id,
        "appId": config.app_id,
        "occurredAt": change.occurred_ms,
        "subscriptionType": subscription_type,
        "attemptNumber": 0,
    }
    if change.kind == "associationChange":
        assert change.to_type is not None
        event["changeSource"] = change.source
        event["associationType"] = f"{singular}_TO_{OBJECT_TYPES[change.to_type].singular}".upper()
        event["fromObjectId"] = change.object_id
        event["toObjectId"] = change.to_id
        event["associationRemoved"] = change.association_removed
        event["isPrimaryAssociation"] = change.primary
        return event
    event["objectId"] = change.object_id
    if change.kind == "propertyChange":
        event["propertyName"] = change.property_name
        event["propertyValue"] = change.property_value or ""  # a cleared property reads as ""
    event["changeSource"] = change.source
    return event


@dataclass(order=True)
class _Retry:
    due: float
    seq: int
    events: list[dict[str, Any]] = field(compare=False)


class WebhookDispatcher:
    """Queues events and delivers them from a background thread.

    `publish` is called with the CRM lock held, so it only appends and signals; the thread never
    touches the CRM. Batches are sent one at a time; a batch waiting for its retry does not hold
    up newer events.
    """

    def __init__(self, stats: WebhookStats, latency_ms: Callable[[], int] = lambda: 0) -> None:
        self.stats = stats
        self._latency_ms = latency_ms
        self._config: WebhookConfig | None = None
        self._cond = threading.Condition()
        self._fresh: list[dict[str, Any]] = []
        self._fresh_since = 0.0
        self._retries: list[_Retry] = []
        self._in_flight = 0
        self._thread: threading.Thread | None = None
        self._event_ids = itertools.count(1)
        self._retry_seq = itertools.count()

    @property
    def config(self) -> WebhookConfig | None:
        return self._config

    def configure(self, config: WebhookConfig | None) -> None:
        """Start (or retarget) delivery; None stops it and drops whatever was not sent yet."""
        with self._cond:
            self._config = config
            if config is None:
                self._drop_pending()
            self._cond.notify_all()

    def publish(self, changes: list[CrmChange]) -> None:
        with self._cond:
            config = self._config
            if config is None:
                return
            events = [e for e in (build_event(c, next(self._event_ids), config) for c in changes) if e is not None]
            if not events:
                return
            if not self._fresh:
                self._fresh_since = time.monotonic()
            self._fresh.extend(events)
            self.stats.count_queued(len(events))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="hubspot-sandbox-webhooks", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued event was delivered or given up; False if `timeout` ran out first."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._fresh or self._retries or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def close(self, timeout: float = 6.0) -> None:
        """Stop delivering: pending events are dropped and the thread is joined."""
        with self._cond:
            self._config = None
            self._drop_pending()
            thread = self._thread
            self._cond.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _drop_pending(self) -> None:
        dropped = len(self._fresh) + sum(len(r.events) for r in self._retries)
        self._fresh.clear()
        self._retries.clear()
        if dropped:
            self.stats.count_given_up(dropped)

    # ---- the delivery thread -----------------------------------------------------------------

    def _run(self) -> None:
        with httpx2.Client(follow_redirects=False) as client:
            while True:
                job = self._next_batch()
                if job is None:
                    return
                config, events = job
                try:
                    self._deliver(client, config, events)
                finally:
                    with self._cond:
                        self._in_flight -= 1
                        self._cond.notify_all()

    def _next_batch(self) -> tuple[WebhookConfig, list[dict[str, Any]]] | None:
        """The next batch to send, once it is due; None when the thread should end."""
        with self._cond:
            idle_since: float | None = None
            while True:
                config = self._config
                now = time.monotonic()
                if config is None:
                    self._thread = None
                    return None
                if self._retries and self._retries[0].due <= now:
                    self._in_flight += 1
                    return config, heapq.heappop(self._retries).events
                wake_at = self._retries[0].due if self._retries else None
                if self._fresh:
                    ready_at = self._fresh_since + (config.batch_window_ms + self._latency_ms()) / 1000
                    if now >= ready_at or len(self._fresh) >= config.max_batch:
                        batch = self._fresh[: config.max_batch]
                        del self._fresh[: config.max_batch]
                        self._in_flight += 1
                        return config, batch
                    wake_at = ready_at if wake_at is None else min(wake_at, ready_at)
                if wake_at is not None:
                    idle_since = None
                    self._cond.wait(wake_at - now)
                    continue
                idle_since = now if idle_since is None else idle_since
                if now - idle_since >= IDLE_EXIT_S:
                    self._thread = None
                    return None
                self._cond.wait(IDLE_EXIT_S - (now - idle_since))

    def _deliver(self, client: httpx2.Client, config: WebhookConfig, events: list[dict[str, Any]]) -> None:
        body = orjson.dumps(events)
        timestamp = str(int(time.time() * 1000))
        headers = {
            "Content-Type": "application/json",
            "X-HubSpot-Signature-v3": signature_v3(config.client_secret, "POST", config.target_url, body, timestamp),
            "X-HubSpot-Request-Timestamp": timestamp,
        }
        status: int | None = None
        error: str | None = None
        try:
            status = client.post(config.target_url, content=body, headers=headers, timeout=config.timeout_s).status_code
        except Exception as failure:  # every failure is retried, whatever broke
            error = f"{type(failure).__name__}: {failure}"
        delivered = status is not None and 200 <= status < 300
        attempt = int(events[0]["attemptNumber"])
        retry = not delivered and status not in NOT_RETRIED and attempt < config.max_retries
        self.stats.record_attempt(
            events, delivered=delivered, retried=retry, error=error or f"{config.target_url} answered {status}"
        )
        if not retry:
            return
        again = [{**event, "attemptNumber": attempt + 1} for event in events]
        with self._cond:
            if self._config is None:  # stopped meanwhile
                self.stats.count_given_up(len(again))
                return
            due = time.monotonic() + config.backoff_s(attempt)
            heapq.heappush(self._retries, _Retry(due, next(self._retry_seq), again))


class WebhookControlRoutes:
    """`/_sandbox/webhooks`: GET the settings and delivery stats, PUT `{targetUrl, clientSecret?,
    appId?, portalId?, batchWindowMs?, maxBatch?}` to start or retarget delivery, DELETE to stop."""

    def __init__(self, sandbox: HubSpotSandbox) -> None:
        self.sandbox = sandbox

    def routes(self) -> list[Route]:
        return [
            Route("/_sandbox/webhooks", self.get, methods=["GET"]),
            Route("/_sandbox/webhooks", self.put, methods=["PUT"]),
            Route("/_sandbox/webhooks", self.delete, methods=["DELETE"]),
        ]

    async def get(self, request: Request) -> Response:
        return json_response(self._state())

    async def put(self, request: Request) -> Response:
        try:
            body = orjson.loads(await request.body())
            if not isinstance(body, dict) or not isinstance(body.get("targetUrl"), str):
                raise ValueError('send {"targetUrl": "...", "clientSecret"?, "appId"?, "portalId"?}')
            options: dict[str, Any] = {}
            for key, name, kind in (
                ("clientSecret", "client_secret", str),
                ("appId", "app_id", int),
                ("portalId", "portal_id", int),
                ("batchWindowMs", "batch_window_ms", int),
                ("maxBatch", "max_batch", int),
            ):
                value = body.get(key)
                if value is None:
                    continue
                if not isinstance(value, kind) or isinstance(value, bool):
                    raise ValueError(f"{key} must be a {kind.__name__}")
                options[name] = value
            self.sandbox.configure_webhooks(body["targetUrl"], **options)
        except (orjson.JSONDecodeError, ValueError) as problem:
            return json_response({"message": str(problem)}, 400)
        return json_response(self._state())

    async def delete(self, request: Request) -> Response:
        self.sandbox.disable_webhooks()
        return Response(status_code=204)

    def _state(self) -> dict[str, Any]:
        config = self.sandbox.webhooks.config
        described = config.describe() if config else {}
        return {"enabled": config is not None, **described, "stats": self.sandbox.webhook_stats.snapshot()}

"""Webhook signatures as data: an HMAC over a template of the request's parts, checked in constant time.

Providers differ only in which parts they sign and in what order, how the digest is written, which headers
carry the signature and the timestamp, and how the timestamp is written:

- HubSpot v3: base64 over method + URI + body + timestamp (milliseconds), two headers.
- Stripe: `Stripe-Signature: t=<seconds>,v1=<hex>[,v1=<hex>…]` over `{t}.{body}`; any v1 may match (rotation).
- Zendesk: base64 over timestamp (ISO 8601) + body, two headers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import string
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from connectors.kit.webhooks import WebhookRejected, WebhookRequest

Part = Literal["method", "url", "body", "timestamp"]
PARTS: frozenset[str] = frozenset({"method", "url", "body", "timestamp"})
Encoding = Literal["hex", "base64"]
TimestampFormat = Literal["seconds", "milliseconds", "iso8601"]


@dataclass(frozen=True)
class KeyedSignatures:
    """A header of comma-separated `key=value` pairs carrying the timestamp and one or more signatures, as
    Stripe's `t=1509023726,v1=…,v1=…,v0=…`: every `signature_key` entry is tried, other schemes are ignored."""

    timestamp_key: str = "t"
    signature_key: str = "v1"

    def read(self, value: str) -> tuple[str | None, list[str]]:
        timestamp: str | None = None
        signatures: list[str] = []
        for item in value.split(","):
            key, _, found = item.strip().partition("=")
            if key == self.timestamp_key:
                timestamp = found
            elif key == self.signature_key and found:
                signatures.append(found)
        return timestamp, signatures


@dataclass(frozen=True)
class HmacSignature:
    """A webhook verifier: HMAC-SHA256 keyed with the secret over `signs`, a template of `{method}`, `{url}`,
    `{body}` and `{timestamp}` (the body as raw bytes, the rest UTF-8), with the request's timestamp no
    further than `max_age_seconds` from now either way.

    The signature comes in `header`; the timestamp in `timestamp_header`, or inside `header` when it is
    `keyed` (Stripe). Header names are matched lower-case, as `WebhookRequest` carries them."""

    header: str
    signs: str
    timestamp_header: str | None = None
    keyed: KeyedSignatures | None = None
    encoding: Encoding = "hex"
    timestamp_format: TimestampFormat = "seconds"
    max_age_seconds: float = 300

    def __post_init__(self) -> None:
        fields = {name for _, name, _, _ in string.Formatter().parse(self.signs) if name is not None}
        if not fields <= PARTS:
            raise ValueError(f"a signature template may name only {sorted(PARTS)}, not {sorted(fields - PARTS)}")
        if "timestamp" in fields and self.timestamp_header is None and self.keyed is None:
            raise ValueError("a signed timestamp needs a timestamp header or a keyed signature header")

    def sign(self, secret: str, *, method: str, url: str, body: bytes, timestamp: str) -> str:
        """The signature of these parts: what the provider sends, and what a verifier expects."""
        parts = {"method": method.upper().encode(), "url": url.encode(), "body": body, "timestamp": timestamp.encode()}
        source = b"".join(
            literal.encode() + (parts[name] if name is not None else b"")
            for literal, name, _, _ in string.Formatter().parse(self.signs)
        )
        digest = hmac.new(secret.encode(), source, hashlib.sha256).digest()
        return digest.hex() if self.encoding == "hex" else base64.b64encode(digest).decode()

    def signature(self, request: WebhookRequest) -> str:
        return request.headers.get(self.header.lower(), "")

    def verify(self, request: WebhookRequest, secret: str, *, now: float) -> None:
        timestamp, offered = self._carried(request)
        if not offered or (timestamp is None and self._timestamped):
            raise WebhookRejected(f"missing {self._named_headers}")
        if timestamp is not None:
            moment = self._moment(timestamp)
            if moment is None:
                raise WebhookRejected(f"the webhook timestamp {timestamp[:40]!r} is not a valid timestamp")
            if abs(now - moment) > self.max_age_seconds:
                away = _duration(self.max_age_seconds)
                raise WebhookRejected(f"the webhook timestamp is more than {away} away from now")
        stamp = timestamp or ""
        expected = self.sign(secret, method=request.method, url=request.url, body=request.body, timestamp=stamp)
        # Every candidate is compared, so the time taken does not tell which one came close.
        matches = [hmac.compare_digest(expected.encode(), candidate.encode()) for candidate in offered]
        if not any(matches):
            raise WebhookRejected("the webhook signature does not match")

    @property
    def _timestamped(self) -> bool:
        return self.timestamp_header is not None or self.keyed is not None

    @property
    def _named_headers(self) -> str:
        return " or ".join(h for h in (self.header, self.timestamp_header) if h is not None)

    def _carried(self, request: WebhookRequest) -> tuple[str | None, list[str]]:
        value = request.headers.get(self.header.lower(), "")
        if self.keyed is not None:
            return self.keyed.read(value)
        timestamp = request.headers.get(self.timestamp_header.lower()) if self.timestamp_header else None
        return (timestamp or None), ([value] if value else [])

    def _moment(self, timestamp: str) -> float | None:
        """The timestamp in Unix seconds, or None when it is not written as the provider writes it."""
        if self.timestamp_format == "iso8601":
            try:
                moment = datetime.fromisoformat(timestamp)
            except ValueError:
                return None
            return moment.timestamp() if moment.tzinfo is not None else None
        if not timestamp.isdigit() or len(timestamp) > 16:
            return None
        return int(timestamp) / (1000 if self.timestamp_format == "milliseconds" else 1)


_MINUTES = {1: "one minute", 2: "two minutes", 3: "three minutes", 5: "five minutes", 10: "ten minutes"}


def _duration(seconds: float) -> str:
    minutes, rest = divmod(seconds, 60)
    return _MINUTES.get(int(minutes), f"{seconds:g} s") if rest == 0 else f"{seconds:g} s"

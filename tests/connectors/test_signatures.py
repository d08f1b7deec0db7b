"""The HMAC signature family against vectors written out in the test, per provider scheme."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest

from connectors.hubspot.webhooks import SIGNATURE_V3 as HUBSPOT
from connectors.kit.signatures import HmacSignature, KeyedSignatures
from connectors.kit.webhooks import WebhookRejected, WebhookRequest

URL = "https://xkit.example/webhooks/provider?x=1"
BODY = b'{"id":"evt_1","type":"customer.updated"}'
SECRET = "whsec_test_secret"

# Stripe: `Stripe-Signature: t=<unix>,v1=<hex>` over "{t}.{body}" (stripe-python's WebhookSignature).
STRIPE = HmacSignature(header="Stripe-Signature", signs="{timestamp}.{body}", keyed=KeyedSignatures("t", "v1"))
# Zendesk: base64 over timestamp + body, the timestamp written in ISO 8601 in its own header.
ZENDESK_HEADERS = ("X-Zendesk-Webhook-Signature", "X-Zendesk-Webhook-Signature-Timestamp")
ZENDESK = HmacSignature(ZENDESK_HEADERS[0], "{timestamp}{body}", ZENDESK_HEADERS[1], None, "base64", "iso8601")


def request(headers: dict[str, str], body: bytes = BODY, url: str = URL) -> WebhookRequest:
    return WebhookRequest("POST", url, {k.lower(): v for k, v in headers.items()}, body)


def hex_hmac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def b64_hmac(secret: str, message: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def stripe_header(secret: str, t: int, body: bytes = BODY, *, extra: str = "") -> str:
    return f"t={t},v1={hex_hmac(secret, f'{t}.'.encode() + body)}{extra}"


def test_stripe_accepts_its_own_signature_and_refuses_a_changed_body_or_secret() -> None:
    now = int(time.time())
    STRIPE.verify(request({"Stripe-Signature": stripe_header(SECRET, now)}), SECRET, now=now)
    with pytest.raises(WebhookRejected, match="does not match"):
        STRIPE.verify(request({"Stripe-Signature": stripe_header(SECRET, now)}, body=BODY + b" "), SECRET, now=now)
    with pytest.raises(WebhookRejected, match="does not match"):
        STRIPE.verify(request({"Stripe-Signature": stripe_header("whsec_other", now)}), SECRET, now=now)


def test_stripe_accepts_any_v1_during_a_secret_rotation_and_never_a_v0() -> None:
    now = int(time.time())
    rotated = stripe_header("whsec_old", now, extra=f",v1={hex_hmac(SECRET, f'{now}.'.encode() + BODY)}")
    STRIPE.verify(request({"Stripe-Signature": rotated}), SECRET, now=now)
    v0_only = f"t={now},v0={hex_hmac(SECRET, f'{now}.'.encode() + BODY)}"
    with pytest.raises(WebhookRejected, match="missing"):
        STRIPE.verify(request({"Stripe-Signature": v0_only}), SECRET, now=now)


def test_stripe_refuses_a_timestamp_beyond_its_five_minute_tolerance() -> None:
    now = int(time.time())
    STRIPE.verify(request({"Stripe-Signature": stripe_header(SECRET, now - 299)}), SECRET, now=now)
    with pytest.raises(WebhookRejected, match="five minutes"):
        STRIPE.verify(request({"Stripe-Signature": stripe_header(SECRET, now - 301)}), SECRET, now=now)
    without_t = stripe_header(SECRET, now).split(",", 1)[1]
    with pytest.raises(WebhookRejected, match="missing"):
        STRIPE.verify(request({"Stripe-Signature": without_t}), SECRET, now=now)


def test_zendesk_signs_the_iso_timestamp_then_the_body_in_base64() -> None:
    stamp, now = "2024-04-17T17:18:10Z", 1713374290.0
    signed = {"X-Zendesk-Webhook-Signature": b64_hmac(SECRET, stamp.encode() + BODY)}
    ZENDESK.verify(request({**signed, "X-Zendesk-Webhook-Signature-Timestamp": stamp}), SECRET, now=now)
    empty = {"X-Zendesk-Webhook-Signature": b64_hmac(SECRET, stamp.encode())}
    ZENDESK.verify(request({**empty, "X-Zendesk-Webhook-Signature-Timestamp": stamp}, body=b""), SECRET, now=now)
    hex_instead = {"X-Zendesk-Webhook-Signature": hex_hmac(SECRET, stamp.encode() + BODY)}
    with pytest.raises(WebhookRejected, match="does not match"):
        ZENDESK.verify(request({**hex_instead, "X-Zendesk-Webhook-Signature-Timestamp": stamp}), SECRET, now=now)
    with pytest.raises(WebhookRejected, match="five minutes"):
        ZENDESK.verify(request({**signed, "X-Zendesk-Webhook-Signature-Timestamp": stamp}), SECRET, now=now + 301)


@pytest.mark.parametrize("stamp", ["1713374290", "yesterday", "2024-04-17T17:18:10"], ids=["unix", "word", "no-zone"])
def test_zendesk_refuses_a_timestamp_not_written_in_iso_8601_with_a_zone(stamp: str) -> None:
    signed = {"X-Zendesk-Webhook-Signature": b64_hmac(SECRET, stamp.encode() + BODY)}
    with pytest.raises(WebhookRejected, match="not a valid timestamp"):
        ZENDESK.verify(request({**signed, "X-Zendesk-Webhook-Signature-Timestamp": stamp}), SECRET, now=1713374290)


def test_hubspot_v3_signs_method_uri_body_and_millisecond_timestamp_in_base64() -> None:
    now = time.time()
    stamp = str(int(now * 1000))
    headers = {"X-HubSpot-Signature-v3": b64_hmac(SECRET, b"POST" + URL.encode() + BODY + stamp.encode())}
    HUBSPOT.verify(request({**headers, "X-HubSpot-Request-Timestamp": stamp}), SECRET, now=now)
    with pytest.raises(WebhookRejected, match="does not match"):
        HUBSPOT.verify(request({**headers, "X-HubSpot-Request-Timestamp": stamp}, url=URL + "&y=2"), SECRET, now=now)
    with pytest.raises(WebhookRejected, match="five minutes"):
        HUBSPOT.verify(request({**headers, "X-HubSpot-Request-Timestamp": stamp}), SECRET, now=now + 301)
    with pytest.raises(WebhookRejected, match="missing"):
        HUBSPOT.verify(request(headers), SECRET, now=now)
    assert HUBSPOT.signature(request(headers)) == headers["X-HubSpot-Signature-v3"]


def test_a_template_naming_an_unknown_part_or_an_unsent_timestamp_is_refused() -> None:
    with pytest.raises(ValueError, match="query"):
        HmacSignature(header="X-Sig", signs="{query}{body}")
    with pytest.raises(ValueError, match="timestamp header"):
        HmacSignature(header="X-Sig", signs="{timestamp}{body}")

"""Verifying that an incoming webhook really comes from the provider."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from connectors.kit.errors import XkitError


class WebhookRejected(XkitError):
    code = "UNAUTHENTICATED"


@dataclass(frozen=True)
class WebhookRequest:
    method: str
    url: str  # as the provider addressed it: scheme, host, path and query
    headers: Mapping[str, str]  # lower-case names
    body: bytes


class WebhookVerifier(Protocol):
    def verify(self, request: WebhookRequest, secret: str, *, now: float) -> None:
        """Raise WebhookRejected unless the request is signed with `secret` and fresh."""


@dataclass(frozen=True)
class WebhookEvent:
    """What a provider's webhook says happened: which account, which stream's record, and whether it is gone."""

    account: str  # the provider account the event is about (HubSpot's portalId)
    stream: str
    remote_id: str
    deleted: bool = False


class WebhookEvents(Protocol):
    def parse(self, body: bytes) -> list[WebhookEvent]:
        """The events of one delivery; raise WebhookMalformed when the body is not the provider's shape."""
        ...


class WebhookMalformed(XkitError):
    code = "BAD_USER_INPUT"

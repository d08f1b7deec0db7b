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

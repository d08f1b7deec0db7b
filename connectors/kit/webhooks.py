"""Verifying that an incoming webhook really comes from the provider."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import orjson

from connectors.kit.errors import XkitError

Shape = TypeVar("Shape", list[Any], dict[str, Any])


class WebhookRejected(XkitError):
    code = "UNAUTHENTICATED"


@dataclass(frozen=True)
class WebhookRequest:
    method: str
    url: str  # as the provider addressed it: scheme, host, path and query
    headers: Mapping[str, str]  # lower-case names
    body: bytes


class WebhookVerifier(Protocol):
    @property
    def max_age_seconds(self) -> float:
        """A signed request is accepted this long either side of its timestamp: a replay can only come within it."""
        ...

    def verify(self, request: WebhookRequest, secret: str, *, now: float) -> None:
        """Raise WebhookRejected unless the request is signed with `secret` and fresh."""

    def signature(self, request: WebhookRequest) -> str:
        """The signature the request carries ('' if none): the same delivery sent again carries the same one."""
        ...


@dataclass(frozen=True)
class WebhookEvent:
    """What a provider's webhook says happened: which account, which stream's record, and whether it is gone."""

    account: str  # the provider account the event is about (HubSpot's portalId)
    stream: str
    remote_id: str
    deleted: bool = False


@dataclass(frozen=True)
class WebhookDelivery:
    """One parsed delivery: every provider account it names (even in events xkit does not act on) and the
    events it acts on."""

    accounts: frozenset[str]
    events: list[WebhookEvent]


class WebhookEvents(Protocol):
    def parse(self, body: bytes) -> WebhookDelivery:
        """The events of one delivery; raise WebhookMalformed when the body is not the provider's shape."""
        ...


class WebhookMalformed(XkitError):
    code = "BAD_USER_INPUT"


def json_delivery(body: bytes, shape: type[Shape], not_shaped: str) -> Shape:
    """A delivery's JSON body, which must be a `shape` (a list or an object); WebhookMalformed otherwise."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise WebhookMalformed("the webhook body is not JSON") from None
    if not isinstance(parsed, shape):
        raise WebhookMalformed(not_shaped)
    return parsed

"""Opaque global ids and tamper-proof page cursors."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import datetime

from connectors.kit.errors import BadInput
from sync.storage.ids import b64 as _b64
from sync.storage.ids import to_global_id as to_global_id


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def from_global_id(global_id: str, *, field: str = "id") -> tuple[str, str]:
    try:
        type_name, _, local_id = _unb64(global_id).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadInput(f"{global_id!r} is not an id this API issued", field=field) from None
    if not type_name or not local_id:
        raise BadInput(f"{global_id!r} is not an id this API issued", field=field)
    return type_name, local_id


def parse_uuid_id(global_id: str, expected_type: str, *, field: str) -> uuid.UUID:
    """The UUID inside a global id of `expected_type` (Connection, WebhookDestination, ...)."""
    type_name, local_id = from_global_id(global_id, field=field)
    if type_name != expected_type:
        raise BadInput(f"{global_id!r} is a {type_name} id, not a {expected_type} id", field=field)
    try:
        return uuid.UUID(local_id)
    except ValueError:
        raise BadInput(f"{global_id!r} is not an id this API issued", field=field) from None


def parse_connection_id(global_id: str, *, field: str = "connectionId") -> uuid.UUID:
    return parse_uuid_id(global_id, "Connection", field=field)


@dataclass(frozen=True)
class Position:
    """Where a page ended: the sort value of its last item and the id that breaks ties."""

    updated_at: datetime | None
    key: int | str


class CursorCodec:
    """Cursors are signed so that a forged or edited one is refused instead of silently misread."""

    def __init__(self, key: bytes) -> None:
        self._key = hashlib.sha256(b"xkit-cursor:" + key).digest()

    def _sign(self, payload: bytes) -> bytes:
        # Keyed BLAKE2b is a MAC in one C call: a page signs a hundred cursors.
        return hashlib.blake2b(payload, key=self._key, digest_size=12).digest()

    def encode(self, scope: str, position: Position) -> str:
        stamp = position.updated_at.isoformat() if position.updated_at else ""
        payload = f"{scope}|{stamp}|{position.key}".encode()
        return _b64(payload + b"|" + self._sign(payload))

    def decode(self, scope: str, cursor: str, *, field: str = "after") -> Position:
        invalid = BadInput(
            f"the {field} cursor is invalid: pass a startCursor, endCursor or edge cursor this API returned",
            field=field,
        )
        try:
            blob = _unb64(cursor)
        except (binascii.Error, ValueError):
            raise invalid from None
        payload, separator, signature = blob[:-13], blob[-13:-12], blob[-12:]
        if separator != b"|" or not hmac.compare_digest(signature, self._sign(payload)):
            raise invalid
        try:
            cursor_scope, stamp, key = payload.decode().split("|")
            position = Position(datetime.fromisoformat(stamp) if stamp else None, int(key) if key.isdigit() else key)
        except ValueError:
            raise invalid from None
        if cursor_scope != scope:
            raise BadInput(f"the {field} cursor belongs to another list or ordering", field=field)
        return position

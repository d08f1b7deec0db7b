"""Opaque cursors and sealed credentials."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.kit.errors import BadInput
from resolvers.ids import CursorCodec, Position
from sync.storage.crypto import SecretKeyError, Vault, generate_secret_key, parse_secret_key


def test_cursors_round_trip_and_refuse_tampering() -> None:
    codec = CursorCodec(b"k" * 32)
    position = Position(datetime(2025, 5, 1, tzinfo=UTC), 42)
    cursor = codec.encode("Contact:desc", position)
    assert codec.decode("Contact:desc", cursor) == position
    with pytest.raises(BadInput):
        CursorCodec(b"j" * 32).decode("Contact:desc", cursor)
    with pytest.raises(BadInput):
        codec.decode("Deal:desc", cursor)


def test_sealed_secrets_open_only_with_the_same_key_and_row() -> None:
    vault = Vault(parse_secret_key(generate_secret_key()))
    sealed = vault.encrypt(b"token", bound_to="row-1")
    assert vault.decrypt(sealed, bound_to="row-1") == b"token"
    with pytest.raises(SecretKeyError):
        vault.decrypt(sealed, bound_to="row-2")
    with pytest.raises(SecretKeyError):
        Vault(parse_secret_key(generate_secret_key())).decrypt(sealed, bound_to="row-1")
    with pytest.raises(SecretKeyError):
        parse_secret_key("too-short")

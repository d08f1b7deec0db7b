"""Credentials at rest: AES-256-GCM, the row's id as associated data so a ciphertext cannot be moved
to another row."""

from __future__ import annotations

import base64
import binascii
import os
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = b"\x01"
_NONCE_BYTES = 12


class SecretKeyError(ValueError):
    pass


def generate_secret_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def parse_secret_key(text: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip().encode())
    except (binascii.Error, ValueError) as exc:
        raise SecretKeyError("XKIT_SECRET_KEY must be 32 bytes in URL-safe base64 (xkit keys secret)") from exc
    if len(key) != 32:
        raise SecretKeyError(f"XKIT_SECRET_KEY must decode to 32 bytes, not {len(key)}")
    return key


class Vault:
    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def encrypt(self, plaintext: bytes, *, bound_to: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext, bound_to.encode())

    def decrypt(self, blob: bytes, *, bound_to: str) -> bytes:
        if blob[:1] != _VERSION:
            raise SecretKeyError("unknown ciphertext version")
        nonce, ciphertext = blob[1 : 1 + _NONCE_BYTES], blob[1 + _NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, ciphertext, bound_to.encode())
        except InvalidTag as exc:
            raise SecretKeyError("credentials cannot be decrypted: wrong XKIT_SECRET_KEY?") from exc

"""The encoding of the API's opaque ids and change cursors, below the resolvers so that the data plane
(outbound webhooks) writes the very ids and cursors the GraphQL API hands out."""

from __future__ import annotations

import base64


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def to_global_id(type_name: str, local_id: object) -> str:
    return b64(f"{type_name}:{local_id}".encode())


def change_cursor(seq: int) -> str:
    """A position in the change log: resume after this change."""
    return to_global_id("Change", seq)

"""Trusted documents mode: a platform that turned it on runs only the documents it registered.

Checked here because every transport passes here (HTTP, both WebSocket protocols, Server-Sent Events): a
document sent in full is looked up by the SHA-256 of its text; one sent by hash alone was given its text
by the gateway (gateway/documents.py) and is looked up the same way. The check comes after validation so
that a refusal replaces whatever validation said: a caller learns only that the document is not trusted.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from sync.storage.store import Store
from sync.tenancy.documents import DocumentNotTrusted, is_registered, sha256_of, trusted_only


class TrustedDocumentsOnly(SchemaExtension):
    async def on_validate(self) -> AsyncIterator[None]:
        context = self.execution_context
        services = getattr(context.context, "services", None)
        store = getattr(services, "store", None)
        platform_id = getattr(context.context, "platform_id", None)
        if (
            isinstance(store, Store)
            and isinstance(platform_id, uuid.UUID)
            and context.query is not None
            and await trusted_only(store, platform_id)
            and not await is_registered(store, platform_id, sha256_of(context.query))
        ):
            refused = DocumentNotTrusted(
                "this platform runs only the documents it registered (xkit documents push), and this is not one "
                "of them; send a registered document or its hash",
                sha256=sha256_of(context.query),
            )
            context.pre_execution_errors = [GraphQLError(refused.message, original_error=refused)]
        yield

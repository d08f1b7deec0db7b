"""The GraphQL schema: plain strawberry types over the resolvers."""

from __future__ import annotations

from graphql import GraphQLError
from strawberry import Schema
from strawberry.extensions import SchemaExtension
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from schema.caching import ValidationByQueryText
from schema.connect import ConnectMutation, ConnectQuery
from schema.documents import TrustedDocumentsOnly
from schema.errors import process_errors
from schema.execution import FastPlainFieldsExecutionContext
from schema.keys import KeyMutation, KeyQuery
from schema.limits import LimitedParserCache
from schema.mutation import Mutation
from schema.objects import OBJECT_TYPES, Record
from schema.query import ListQuery, Query
from schema.scalars import SCALARS
from schema.subscription import Subscription
from schema.webhooks import WebhookMutation, WebhookQuery
from schema.writes import WriteMutation


class XkitSchema(Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        process_errors(errors, execution_context)

    def get_extensions(self, sync: bool = False) -> list[SchemaExtension]:
        # Trusted documents are looked up in the database, so only asynchronous execution (that of every
        # transport) checks them; it comes last, after validation (schema/documents.py).
        extensions = super().get_extensions(sync)
        return extensions if sync else [*extensions, TrustedDocumentsOnly()]


schema = XkitSchema(
    query=merge_types("Query", (ListQuery, Query, WebhookQuery, KeyQuery, ConnectQuery)),
    mutation=merge_types("Mutation", (Mutation, WriteMutation, WebhookMutation, KeyMutation, ConnectMutation)),
    subscription=Subscription,
    types=[*OBJECT_TYPES.values(), Record],
    scalar_overrides=SCALARS,
    execution_context_class=FastPlainFieldsExecutionContext,
    # The limits on documents (schema/limits.py) are checked in these two, cached by query text, rather
    # than by validation rules, which would run on every request and defeat the validation cache.
    extensions=[
        LimitedParserCache,
        ValidationByQueryText,
    ],
)

__all__ = ["schema"]

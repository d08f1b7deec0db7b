"""The GraphQL schema: plain strawberry types over the resolvers."""

from __future__ import annotations

from graphql import GraphQLError
from strawberry import Schema
from strawberry.extensions import ParserCache, QueryDepthLimiter, ValidationCache
from strawberry.types import ExecutionContext

from schema.errors import process_errors
from schema.mutation import Mutation
from schema.objects import Company, Contact, Deal, Note, Record, Task, User
from schema.query import Query


class XkitSchema(Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        process_errors(errors, execution_context)


schema = XkitSchema(
    query=Query,
    mutation=Mutation,
    types=[Contact, Company, Deal, User, Note, Task, Record],
    extensions=[
        ParserCache(maxsize=256),
        ValidationCache(maxsize=256),
        QueryDepthLimiter(max_depth=12),
    ],
)

__all__ = ["schema"]

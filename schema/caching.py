"""Validation results cached by query text, and the limits checked before validation.

strawberry's ValidationCache keys its LRU on the parsed document, and graphql-core hashes a document by
walking its whole tree on every request; the query text is the same key at the cost of one string hash.
A document's measures (schema/limits.py) are cached the same way, so a repeated query pays only for
comparing a few numbers, checking its variables and charging its cost to the key's budget.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

from connectors.kit.errors import XkitError
from resolvers.limits import OverBudget, check_input_values
from schema.limits import check_document, limits_of, shape_of

MAX_CACHED_QUERIES = 512

_validated: OrderedDict[str, list[GraphQLError]] = OrderedDict()


class ValidationByQueryText(SchemaExtension):
    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        try:
            cost = self._check_limits_before_validation()
        except XkitError as refused:
            context.pre_execution_errors = [GraphQLError(refused.message, original_error=refused)]
            yield
            return
        self._validate()
        if not context.pre_execution_errors and cost is not None:
            try:
                self._check_inputs_and_charge(cost)
            except XkitError as refused:
                context.pre_execution_errors = [GraphQLError(refused.message, original_error=refused)]
        yield

    def _check_limits_before_validation(self) -> int | None:
        context = self.execution_context
        limits = limits_of(context.context)
        if limits is None or context.query is None:
            return None
        self._charge_request()
        assert context.graphql_document is not None
        shape = shape_of(context.query, context.graphql_document)
        return check_document(shape, context.graphql_document, context.schema._schema, limits, context.operation_name)

    def _charge_request(self) -> None:
        """An operation over a WebSocket is charged to the key's request rate here; over HTTP the gateway
        charged the request before reading it."""
        caller: Any = self.execution_context.context
        if caller.rate_charged:
            return
        rates = caller.services.request_rates
        wait = rates.take(caller.api_key_id or caller.platform_id)
        if wait:
            raise OverBudget(
                f"too many requests with this key; retry in {math.ceil(wait)} s",
                limit="requests",
                maximum=rates.capacity,
                retry_after=wait,
            )

    def _check_inputs_and_charge(self, cost: int) -> None:
        context = self.execution_context
        limits = limits_of(context.context)
        assert limits is not None
        if context.variables:
            check_input_values(context.variables, limits)
        caller: Any = context.context
        budget = caller.services.cost_budgets
        wait = budget.take(caller.api_key_id or caller.platform_id, cost)
        if wait:
            raise OverBudget(
                f"this key has spent its budget of {budget.capacity:g} cost points; retry in {wait:.0f} s",
                limit="costBudget",
                maximum=budget.capacity,
                retry_after=wait,
            )

    def _validate(self) -> None:
        context = self.execution_context
        key = context.query
        errors = _validated.get(key) if key is not None else None
        if errors is None:
            assert context.graphql_document is not None
            errors = validate_document(context.schema._schema, context.graphql_document, context.validation_rules)
            if key is not None:
                _validated[key] = errors
                if len(_validated) > MAX_CACHED_QUERIES:
                    _validated.popitem(last=False)
        else:
            _validated.move_to_end(key)  # type: ignore[arg-type]
        context.pre_execution_errors = errors

"""A writer for plain REST resources: create at a collection path, update and delete at the item path.

Most providers need no more than this (Stripe: POST form bodies to `/v1/customers` and
`/v1/customers/{id}`; Zendesk: `{"ticket": {...}}` JSON to `/api/v2/tickets` and PUT `/tickets/{id}`;
Pipedrive v2: JSON, PATCH, the new record under `data`). The mapping names each provider field by its
dotted path; the body nests them (`address.city` -> {"address": {"city": ...}}). A provider with rules of
its own for some members (Salesforce's polymorphic lookups and create-only relations) declares them as
`BodyRule`s, and fields it requires on create as `create_defaults`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol
from urllib.parse import quote

import orjson

from connectors.kit.declaration import Draft, StreamContext
from connectors.kit.errors import BadInput, ProviderError
from connectors.kit.form import ArrayStyle, form_encode
from connectors.kit.jsonpath import dig
from connectors.kit.mapping import ModelMapping
from connectors.kit.records import RemoteRecord

FORM = "application/x-www-form-urlencoded"


def nest(fields: Mapping[str, Any]) -> dict[str, Any]:
    """{dotted path: value} as nested objects; a path both set whole and set inside is refused."""
    nested: dict[str, Any] = {}
    for path, value in fields.items():
        *parents, last = path.split(".")
        node = nested
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise BadInput(f"{path} writes inside {part}, which is also written whole")
            node = child
        if isinstance(node.get(last), dict) and not isinstance(value, dict):
            raise BadInput(f"{path} is written whole and inside at once")
        node[last] = value
    return nested


class BodyRule(Protocol):
    """A provider's own rule for some common members of a write, where a plain mapping does not say it all
    (one provider field fed by several relations; a relation set only on create). The writer leaves those
    members to the rule."""

    @property
    def members(self) -> tuple[str, ...]: ...

    def apply(
        self, body: dict[str, Any], values: Mapping[str, Any], current: RemoteRecord | None, mapping: ModelMapping
    ) -> None:
        """Write the provider fields for the members set in `values` into `body`, or refuse them; `current`
        is the record being updated, None on create."""
        ...


@dataclass(frozen=True)
class RestWriter:
    mapping: ModelMapping
    # Where records are created, e.g. "/v1/customers".
    collection_path: str
    # Where one record is updated and deleted; `{id}` stands for its (URL-escaped) remote id.
    item_path: str
    # Where the created record's id sits in the create answer ("id"; Zendesk "ticket.id"; Pipedrive "data.id").
    created_id: str = "id"
    update_method: Literal["PATCH", "PUT", "POST"] = "PATCH"
    # The body sits under this key (Zendesk: "ticket"), or is the record itself.
    envelope: str | None = None
    encoding: Literal["json", "form"] = "json"
    arrays: ArrayStyle = "indexed"
    rules: tuple[BodyRule, ...] = ()
    # Fields the provider requires on create, derived from the body the caller's input makes (a note's
    # title from its text); never over a field the input sets.
    create_defaults: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None
    # The header carrying the caller's idempotency key to a provider that deduplicates writes itself
    # (Stripe's `Idempotency-Key`): a create sent under it may be sent again, the provider answers once.
    idempotency_header: str | None = None
    # Fields the connection's mappings write (`Draft.provider_fields`) go into the body like mapped members.
    merges_provider_fields: ClassVar[bool] = True

    async def create(self, ctx: StreamContext, draft: Draft) -> str:
        body = self._body(draft, None)
        if self.create_defaults:
            for name, value in self.create_defaults(body).items():
                body.setdefault(name, value)
        key = draft.step_key("create") if self.idempotency_header else None
        answer = await self._send(ctx, "POST", self.collection_path, body, may_repeat=key is not None, key=key)
        created = dig(answer, self.created_id)
        if created in (None, ""):
            raise ProviderError(f"the provider's answer to a create names no id at {self.created_id}")
        return str(created)

    async def update(self, ctx: StreamContext, remote_id: str, draft: Draft, current: RemoteRecord) -> None:
        body = self._body(draft, current)
        if body:
            key = draft.step_key("update") if self.idempotency_header else None
            await self._send(ctx, self.update_method, self._item(remote_id), body, key=key)

    async def delete(self, ctx: StreamContext, remote_id: str) -> None:
        await ctx.session.send_json("DELETE", self._item(remote_id))

    def _item(self, remote_id: str) -> str:
        return self.item_path.format(id=quote(remote_id, safe=""))

    def _body(self, draft: Draft, current: RemoteRecord | None) -> dict[str, Any]:
        ruled: dict[str, Any] = {}
        for rule in self.rules:
            rule.apply(ruled, draft.values, current, self.mapping)
        handled = frozenset(member for rule in self.rules for member in rule.members)
        fields = {**self.mapping.provider_values(draft.values, handled=handled, currencies=draft.currencies), **ruled}
        return nest(self.mapping.merge_raw_fields(draft.with_provider_fields(fields), draft.raw_fields))

    async def _send(
        self,
        ctx: StreamContext,
        method: str,
        path: str,
        body: dict[str, Any],
        *,
        may_repeat: bool = True,
        key: str | None = None,
    ) -> Any:
        payload = {self.envelope: body} if self.envelope else body
        if self.encoding == "json" and key is None:
            if method == "POST":
                return await ctx.session.post_json(path, payload, may_repeat=may_repeat)
            return await ctx.session.send_json(method, path, payload)
        headers = {"Content-Type": FORM if self.encoding == "form" else "application/json"}
        if key is not None and self.idempotency_header:
            headers[self.idempotency_header] = key
        content = (
            form_encode(payload, arrays=self.arrays) if self.encoding == "form" else orjson.dumps(payload).decode()
        )
        response = await ctx.session.request(
            method, path, content=content.encode(), headers=headers, may_repeat=may_repeat
        )
        return orjson.loads(response.content) if response.content else None

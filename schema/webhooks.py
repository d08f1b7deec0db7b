"""Outbound webhooks: destinations the platform registers, and what was delivered to them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Self

import strawberry
from sqlalchemy.engine import Row

from resolvers import webhooks as resolve
from resolvers.changes import encode_cursor
from resolvers.webhooks import DestinationInput
from schema.context import Info
from schema.relay import Node, Page, connection_field, page_request
from schema.subscription import ObjectType

DEFAULT_DELIVERIES = 20


@strawberry.type(description="One change sent (or being sent) to a destination.")
class WebhookDelivery:
    event_id: str = strawberry.field(description="The X-Xkit-Event-Id header: the same on every attempt.")
    cursor: str = strawberry.field(description="The change's cursor (replay from it, or subscribe after it).")
    status: str = strawberry.field(description="pending, delivered or failed (gave up).")
    attempts: int
    last_status_code: int | None = strawberry.field(description="The receiver's last HTTP status, if it answered.")
    last_error: str | None = strawberry.field(description="Why the last attempt failed.")
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime

    @classmethod
    def build(cls, row: Row[Any]) -> Self:
        return cls(
            event_id=row.event_id,
            cursor=encode_cursor(row.change_seq),
            status=row.status,
            attempts=row.attempts,
            last_status_code=row.last_status_code,
            last_error=row.last_error,
            next_attempt_at=row.next_attempt_at,
            delivered_at=row.delivered_at,
            created_at=row.created_at,
        )


@strawberry.type(description="Where changes are POSTed, signed with the destination's secret.")
class WebhookDestination(Node):
    url: str
    objects: list[ObjectType] | None = strawberry.field(
        description="Only changes of these common models; null: every object, raw streams included."
    )
    connection_ids: list[strawberry.ID] | None
    external_user_ids: list[str] | None
    enabled: bool
    cursor: str = strawberry.field(description="The last change handed to deliveries.")
    created_at: datetime
    _row: strawberry.Private[Row[Any]]

    @strawberry.field(
        description="Newest first.", deprecation_reason="Use deliveryLog, a connection that pages both ways."
    )
    async def deliveries(
        self, info: Info, first: int = DEFAULT_DELIVERIES, status: str | None = None
    ) -> list[WebhookDelivery]:
        rows = await resolve.list_deliveries(info.context, self._row.id, first, status)
        return [WebhookDelivery.build(row) for row in rows]

    @strawberry.field(description="What was sent (or is being sent) here, newest first; `status` picks one state.")
    async def delivery_log(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        status: str | None = None,
    ) -> Page[WebhookDelivery]:
        request = page_request(info, first, after, last, before)
        return Page.of(
            await resolve.list_delivery_page(info.context, self._row.id, request, status), WebhookDelivery.build
        )

    @classmethod
    def build(cls, row: Row[Any]) -> Self:
        return cls(
            id=strawberry.ID(resolve.destination_global_id(row.id)),
            url=row.url,
            objects=[ObjectType(m) for m in row.models] if row.models is not None else None,
            connection_ids=[strawberry.ID(resolve.connection_global_id(c)) for c in row.connection_ids]
            if row.connection_ids is not None
            else None,
            external_user_ids=list(row.external_user_ids) if row.external_user_ids is not None else None,
            enabled=row.enabled,
            cursor=encode_cursor(row.cursor),
            created_at=row.created_at,
            _row=row,
        )


@strawberry.input
class CreateWebhookDestinationInput:
    url: str = strawberry.field(description="An absolute http(s) URL; each change is POSTed to it as JSON.")
    secret: str | None = strawberry.field(
        default=None, description="Signs every request (16+ characters); left out, one is generated."
    )
    objects: list[ObjectType] | None = None
    connection_ids: list[strawberry.ID] | None = None
    external_user_ids: list[str] | None = None
    from_cursor: str | None = strawberry.field(
        default=None, description="Send the changes after this change cursor too; left out, only new ones."
    )


@strawberry.type
class CreatedWebhookDestination:
    destination: WebhookDestination
    secret: str = strawberry.field(description="Verify signatures with it. Shown here only, never again.")


@strawberry.type
class DeletedWebhookDestination:
    id: strawberry.ID


@strawberry.type
class WebhookMutation:
    @strawberry.mutation(description="Register a URL that receives every change (or those the filters pick).")
    async def create_webhook_destination(
        self, info: Info, input: CreateWebhookDestinationInput
    ) -> CreatedWebhookDestination:
        created = await resolve.create_destination(
            info.context,
            DestinationInput(
                url=input.url,
                secret=input.secret,
                models=[o.value for o in input.objects] if input.objects is not None else None,
                connection_ids=[str(c) for c in input.connection_ids] if input.connection_ids is not None else None,
                external_user_ids=input.external_user_ids,
                from_cursor=input.from_cursor,
            ),
        )
        return CreatedWebhookDestination(destination=WebhookDestination.build(created.row), secret=created.secret)

    @strawberry.mutation(description="Stop sending to a destination and forget its deliveries.")
    async def delete_webhook_destination(self, info: Info, id: strawberry.ID) -> DeletedWebhookDestination:
        await resolve.delete_destination(info.context, id)
        return DeletedWebhookDestination(id=id)

    @strawberry.mutation(
        description="Send every change after `after` (a change cursor) again, with the same event ids, then carry on."
    )
    async def replay_webhook_destination(self, info: Info, id: strawberry.ID, after: str) -> WebhookDestination:
        return WebhookDestination.build(await resolve.replay_destination(info.context, id, after))


@strawberry.type
class WebhookQuery:
    @strawberry.field(
        description="Your webhook destinations, oldest first.",
        deprecation_reason="Use webhooks, a connection that pages both ways.",
    )
    async def webhook_destinations(self, info: Info) -> list[WebhookDestination]:
        return [WebhookDestination.build(row) for row in await resolve.list_destinations(info.context)]

    webhooks = connection_field(
        WebhookDestination,
        lambda _, info, request: resolve.list_destination_page(info.context, request),
        WebhookDestination.build,
        description="Your webhook destinations, oldest first.",
    )

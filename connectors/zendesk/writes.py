"""Writing Zendesk tickets and comments.

A ticket's description is its first comment: a create sends it as `comment.body`, and it cannot change
after. A comment is added by updating its ticket with `comment` (there is no comment endpoint); comments
are immutable, and a closed ticket refuses them (`ClosedPreventsUpdate`, a CONFLICT)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connectors.kit.declaration import Draft, StreamContext
from connectors.kit.errors import BadInput, ProviderError
from connectors.kit.mapping import ModelMapping
from connectors.kit.records import RemoteRecord
from connectors.kit.writers import RestWriter
from connectors.zendesk.mapping import TICKET_MAPPING


@dataclass(frozen=True)
class FirstComment:
    """`description` becomes the create's first comment and is refused on update."""

    members: tuple[str, ...] = ("description",)

    def apply(
        self, body: dict[str, Any], values: Mapping[str, Any], current: RemoteRecord | None, mapping: ModelMapping
    ) -> None:
        if "description" not in values:
            return
        if current is not None:
            raise BadInput(
                "description is a Zendesk ticket's first comment and cannot change: add a comment instead",
                field="description",
            )
        if values["description"] is not None:
            body["comment"] = {"body": values["description"]}


TICKET_WRITER = RestWriter(
    TICKET_MAPPING,
    collection_path="/api/v2/tickets",
    item_path="/api/v2/tickets/{id}",
    created_id="ticket.id",
    update_method="PUT",
    envelope="ticket",
    rules=(FirstComment(),),
)


@dataclass(frozen=True)
class CommentWriter:
    """A comment is a ticket update; its id comes from the update's audit."""

    mapping: ModelMapping

    async def create(self, ctx: StreamContext, draft: Draft) -> str:
        values = draft.values
        ticket = values.get("ticket")
        if not ticket or not str(ticket).isdigit():
            raise BadInput("a comment needs the remote id of its ticket", field="ticket")
        if not values.get("body") and not values.get("html_body"):
            raise BadInput("a comment needs a body or an htmlBody", field="body")
        comment: dict[str, Any] = {"public": values.get("is_public") is not False}
        if values.get("html_body"):
            comment["html_body"] = values["html_body"]
        else:
            comment["body"] = values["body"]
        author = values.get("author_user") or values.get("author_contact")
        if author:
            comment["author_id"] = int(author) if str(author).isdigit() else author
        comment.update(draft.raw_fields)
        answer = await ctx.session.send_json("PUT", f"/api/v2/tickets/{ticket}", {"ticket": {"comment": comment}})
        events = ((answer or {}).get("audit") or {}).get("events") or []
        added = [e for e in events if isinstance(e, dict) and e.get("type") == "Comment" and e.get("id") is not None]
        if not added:
            raise ProviderError("Zendesk's answer to a comment names no comment in its audit")
        return f"{ticket}-{added[-1]['id']}"

    async def update(self, ctx: StreamContext, remote_id: str, draft: Draft, current: RemoteRecord) -> None:
        raise BadInput("Zendesk comments cannot be changed once written")

    async def delete(self, ctx: StreamContext, remote_id: str) -> None:
        raise BadInput("Zendesk comments cannot be deleted (only redacted in Zendesk itself)")

"""HubSpot pipelines: what the stage ids that records carry (`dealstage`, `hs_pipeline_stage`) stand for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connectors.kit.http import ProviderSession


async def _pipelines(session: ProviderSession, object_type: str) -> list[dict[str, Any]]:
    body = await session.get_json(f"/crm/v3/pipelines/{object_type}")
    return list(body.get("results") or [])


@dataclass(frozen=True)
class PipelineStageLabels:
    """Stage id -> stage label across every pipeline of an object type (`GET /crm/v3/pipelines/{objectType}`).

    HubSpot stage ids are unique across an object type's pipelines: the default pipeline's are fixed words
    (`closedwon`), custom ones numbers; labels are only unique within one pipeline."""

    object_type: str

    async def read(self, session: ProviderSession) -> dict[str, str]:
        return {
            str(stage["id"]): str(stage["label"])
            for pipeline in await _pipelines(session, self.object_type)
            for stage in pipeline.get("stages", [])
        }


# Words in a stage's label that say the ticket waits on the customer, or is parked.
PENDING_WORDS = ("waiting on contact", "waiting on customer", "waiting for customer", "pending")
ON_HOLD_WORDS = ("on hold",)


def ticket_status(label: str, ticket_state: str | None, *, first_stage: bool) -> str:
    """A ticket stage's TicketStatus. HubSpot's one fact is the stage's `ticketState` (OPEN or CLOSED), so:
    CLOSED -> CLOSED (HubSpot has no solved-but-not-closed state); the pipeline's first stage -> NEW; a stage
    whose label says it waits on the customer -> PENDING, or that it is on hold -> ON_HOLD; any other -> OPEN."""
    if (ticket_state or "").upper() == "CLOSED":
        return "CLOSED"
    if first_stage:
        return "NEW"
    words = label.casefold()
    if any(word in words for word in PENDING_WORDS):
        return "PENDING"
    if any(word in words for word in ON_HOLD_WORDS):
        return "ON_HOLD"
    return "OPEN"


@dataclass(frozen=True)
class TicketStageStatuses:
    """Ticket stage id -> TicketStatus member, from the ticket pipelines (`GET /crm/v3/pipelines/tickets`)."""

    async def read(self, session: ProviderSession) -> dict[str, str]:
        statuses: dict[str, str] = {}
        for pipeline in await _pipelines(session, "tickets"):
            stages = sorted(pipeline.get("stages") or [], key=lambda stage: int(stage.get("displayOrder") or 0))
            for index, stage in enumerate(stages):
                state = (stage.get("metadata") or {}).get("ticketState")
                statuses[str(stage["id"])] = ticket_status(str(stage.get("label") or ""), state, first_stage=index == 0)
        return statuses

"""The portal's deal and ticket pipelines: HubSpot's default "Sales Pipeline" and "Support Pipeline" with
their fixed stage ids, and one custom pipeline each whose ids are numbers, as HubSpot gives custom
pipelines and stages.

Shapes from `PublicApiSpecs/CRM/Pipelines/Rollouts/145896/v3/pipelines.json` (HubSpot-public-api-spec-collection):
stage `metadata` values are strings (`additionalProperties: string`); deal stages carry `probability`
(0.0 to 1.0) and `isClosed`; ticket stages carry `ticketState` (OPEN or CLOSED) instead. Default pipelines and
their stages have `createdAt` = 0 (the spec says so). The default ticket pipeline is "0" with stages "1" New,
"2" Waiting on contact, "3" Waiting on us and "4" Closed, as every portal gets it.
"""

from __future__ import annotations

from dataclasses import dataclass

EPOCH = "1970-01-01T00:00:00Z"
CUSTOM_CREATED = "2023-03-02T10:15:00.000Z"


@dataclass(frozen=True)
class Stage:
    id: str
    label: str
    probability: str = ""
    closed: bool = False
    # Ticket stages only: OPEN or CLOSED, HubSpot's own split of a ticket pipeline.
    ticket_state: str | None = None


@dataclass(frozen=True)
class Pipeline:
    id: str
    label: str
    display_order: int
    created_at: str
    stages: tuple[Stage, ...]

    def stage(self, stage_id: str) -> Stage | None:
        return next((s for s in self.stages if s.id == stage_id), None)


def _ticket_stage(stage_id: str, label: str, state: str) -> Stage:
    return Stage(stage_id, label, closed=state == "CLOSED", ticket_state=state)


DEFAULT_PIPELINE = Pipeline(
    "default",
    "Sales Pipeline",
    0,
    EPOCH,
    (
        Stage("appointmentscheduled", "Appointment Scheduled", "0.2"),
        Stage("qualifiedtobuy", "Qualified To Buy", "0.4"),
        Stage("presentationscheduled", "Presentation Scheduled", "0.6"),
        Stage("decisionmakerboughtin", "Decision Maker Bought-In", "0.8"),
        Stage("contractsent", "Contract Sent", "0.9"),
        Stage("closedwon", "Closed Won", "1.0", closed=True),
        Stage("closedlost", "Closed Lost", "0.0", closed=True),
    ),
)

RENEWALS_PIPELINE = Pipeline(
    "75821094",
    "Renewals",
    1,
    CUSTOM_CREATED,
    (
        Stage("163498711", "Renewal Due", "0.3"),
        Stage("163498712", "Quote Sent", "0.6"),
        Stage("163498713", "Renewed", "1.0", closed=True),
        Stage("163498714", "Churned", "0.0", closed=True),
    ),
)

DEAL_PIPELINES: tuple[Pipeline, ...] = (DEFAULT_PIPELINE, RENEWALS_PIPELINE)
DEAL_PIPELINE_IDS = tuple(p.id for p in DEAL_PIPELINES)
# Every deal stage id of the portal: the `dealstage` property's options.
DEAL_STAGE_IDS = tuple(s.id for p in DEAL_PIPELINES for s in p.stages)


SUPPORT_PIPELINE = Pipeline(
    "0",
    "Support Pipeline",
    0,
    EPOCH,
    (
        _ticket_stage("1", "New", "OPEN"),
        _ticket_stage("2", "Waiting on contact", "OPEN"),
        _ticket_stage("3", "Waiting on us", "OPEN"),
        _ticket_stage("4", "Closed", "CLOSED"),
    ),
)

ESCALATIONS_PIPELINE = Pipeline(
    "81234567",
    "Escalations",
    1,
    CUSTOM_CREATED,
    (
        _ticket_stage("190000101", "Escalated", "OPEN"),
        _ticket_stage("190000102", "Waiting on engineering", "OPEN"),
        _ticket_stage("190000103", "Resolved", "CLOSED"),
    ),
)

TICKET_PIPELINES: tuple[Pipeline, ...] = (SUPPORT_PIPELINE, ESCALATIONS_PIPELINE)
TICKET_PIPELINE_IDS = tuple(p.id for p in TICKET_PIPELINES)
TICKET_STAGE_IDS = tuple(s.id for p in TICKET_PIPELINES for s in p.stages)
PIPELINES = {"deals": DEAL_PIPELINES, "tickets": TICKET_PIPELINES}


def pipeline_of_stage(object_type: str, stage_id: str) -> Pipeline | None:
    """Stage ids are unique across an object type's pipelines, so a stage names its pipeline."""
    return next((p for p in PIPELINES.get(object_type, ()) if p.stage(stage_id)), None)


def stage_json(stage: Stage, display_order: int, created_at: str) -> dict[str, object]:
    metadata = (
        {"ticketState": stage.ticket_state}
        if stage.ticket_state
        else {"isClosed": "true" if stage.closed else "false", "probability": stage.probability}
    )
    return {
        "label": stage.label,
        "displayOrder": display_order,
        "metadata": metadata,
        "id": stage.id,
        "createdAt": created_at,
        "updatedAt": created_at,
        "archived": False,
        "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
    }


def pipeline_json(pipeline: Pipeline) -> dict[str, object]:
    return {
        "label": pipeline.label,
        "displayOrder": pipeline.display_order,
        "id": pipeline.id,
        "stages": [stage_json(s, i, pipeline.created_at) for i, s in enumerate(pipeline.stages)],
        "createdAt": pipeline.created_at,
        "updatedAt": pipeline.created_at,
        "archived": False,
    }


def ticket_stage_effects(
    changes: dict[str, str | None], current: dict[str, str], now_iso: str
) -> dict[str, str | None]:
    """What HubSpot sets beside a ticket's stage: the pipeline the stage belongs to when none is given, and
    `closed_date` when the ticket enters a CLOSED stage (cleared when it reopens), unless set explicitly."""
    stage_id = changes.get("hs_pipeline_stage")
    if stage_id is None:
        return {}
    pipeline = pipeline_of_stage("tickets", stage_id)
    stage = pipeline.stage(stage_id) if pipeline else None
    if pipeline is None or stage is None:
        return {}
    effects: dict[str, str | None] = {}
    if changes.get("hs_pipeline") is None and current.get("hs_pipeline") != pipeline.id:
        effects["hs_pipeline"] = pipeline.id
    if "closed_date" not in changes:
        if stage.closed and not current.get("closed_date"):
            effects["closed_date"] = now_iso
        elif not stage.closed and current.get("closed_date"):
            effects["closed_date"] = None
    return effects

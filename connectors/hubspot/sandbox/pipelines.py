"""The portal's deal pipelines: HubSpot's default "Sales Pipeline" with its fixed stage ids, and one custom
pipeline whose ids are numbers, as HubSpot gives custom pipelines and stages.

Shapes from `PublicApiSpecs/CRM/Pipelines/Rollouts/145896/v3/pipelines.json` (HubSpot-public-api-spec-collection):
stage `metadata` values are strings (`additionalProperties: string`); deal stages carry `probability`
(0.0 to 1.0) and `isClosed`. Default pipelines and their stages have `createdAt` = 0 (the spec says so).
"""

from __future__ import annotations

from dataclasses import dataclass

EPOCH = "1970-01-01T00:00:00Z"
CUSTOM_CREATED = "2023-03-02T10:15:00.000Z"


@dataclass(frozen=True)
class Stage:
    id: str
    label: str
    probability: str
    closed: bool = False


@dataclass(frozen=True)
class Pipeline:
    id: str
    label: str
    display_order: int
    created_at: str
    stages: tuple[Stage, ...]

    def stage(self, stage_id: str) -> Stage | None:
        return next((s for s in self.stages if s.id == stage_id), None)


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


def stage_json(stage: Stage, display_order: int, created_at: str) -> dict[str, object]:
    return {
        "label": stage.label,
        "displayOrder": display_order,
        "metadata": {"isClosed": "true" if stage.closed else "false", "probability": stage.probability},
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

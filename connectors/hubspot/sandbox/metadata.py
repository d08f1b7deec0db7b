"""The portal's metadata beyond properties: deal and ticket pipelines and their stages, property groups
and custom object schemas, in the shapes of HubSpot's specs (HubSpot-public-api-spec-collection:
`CRM/Pipelines/…/145896/v3`,
`CRM/Properties/…/145899/v3` and `CRM/Schemas/…/145900/v3`)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.hubspot.sandbox.api import CrmApi
from connectors.hubspot.sandbox.errors import api_error
from connectors.hubspot.sandbox.pipelines import PIPELINES, Pipeline, pipeline_json, stage_json
from connectors.hubspot.sandbox.sandbox import HubSpotSandbox
from connectors.hubspot.sandbox.schema import (
    ADDITIONAL_CURRENCIES,
    COMPANY_CURRENCY,
    OBJECT_TYPES,
    PROPERTIES,
    ObjectType,
    PropertyDef,
    resolve_object_type,
)
from connectors.kit.sandbox_support import json_response

# Labels HubSpot shows for its standard property groups.
GROUP_LABELS = {
    "contactinformation": "Contact information",
    "companyinformation": "Company information",
    "dealinformation": "Deal information",
    "noteinformation": "Note information",
    "taskinformation": "Task information",
    "ticketinformation": "Ticket information",
}

# One custom object type, as a portal that defined "Projects" has it. Custom object type ids are
# `2-<number>`; its fully qualified name is `p<portal id>_<name>` (spec example).
PROJECT_TYPE_ID = "2-3508302"
PROJECT_CREATED = "2024-02-06T14:20:31.118Z"
PROJECT_PROPERTIES = (
    PropertyDef("project_name", "Project name", "string", "text", "project_information"),
    PropertyDef(
        "project_status",
        "Status",
        "enumeration",
        "select",
        "project_information",
        options=("planned", "in_progress", "done"),
    ),
    PropertyDef("budget", "Budget", "number", "number", "project_information"),
)


class MetadataApi:
    def __init__(self, sandbox: HubSpotSandbox) -> None:
        self.sandbox = sandbox
        self.properties = CrmApi(sandbox)

    def routes(self) -> list[Route]:
        """Listed before the object and property routes: `/properties/{type}/groups` is no property name."""
        pipelines = "/crm/v3/pipelines/{objectType}"
        schemas = [
            Route(f"{prefix}/v3/schemas", self.list_schemas, methods=["GET"])
            for prefix in ("/crm", "/crm-object-schemas")
        ]
        return [
            Route(pipelines, self.list_pipelines, methods=["GET"]),
            Route(f"{pipelines}/{{pipelineId}}", self.get_pipeline, methods=["GET"]),
            Route(f"{pipelines}/{{pipelineId}}/stages", self.list_stages, methods=["GET"]),
            Route(f"{pipelines}/{{pipelineId}}/stages/{{stageId}}", self.get_stage, methods=["GET"]),
            Route("/crm/v3/properties/{objectType}/groups", self.list_groups, methods=["GET"]),
            Route("/crm/v3/properties/{objectType}/groups/{groupName}", self.get_group, methods=["GET"]),
            *schemas,
            Route("/crm/v3/schemas/{objectType}", self.get_schema, methods=["GET"]),
            Route("/crm-object-schemas/v3/schemas/{objectType}", self.get_schema, methods=["GET"]),
            Route("/account-info/v3/details", self.account_details, methods=["GET"]),
        ]

    # ---- the account -------------------------------------------------------------------------

    async def account_details(self, request: Request) -> Response:
        """The portal's details (HubSpot's Account Information API, `GET /account-info/v3/details`)."""
        if not self.sandbox.faults.account_info:
            raise api_error(404, "OBJECT_NOT_FOUND", "resource not found")
        return json_response(
            {
                "portalId": self.sandbox.hub_id,
                "accountType": "STANDARD",
                "timeZone": "US/Eastern",
                "companyCurrency": COMPANY_CURRENCY,
                "additionalCurrencies": list(ADDITIONAL_CURRENCIES),
                "utcOffset": "-05:00",
                "utcOffsetMilliseconds": -18_000_000,
                "uiDomain": "app.hubspot.com",
                "dataHostingLocation": "na1",
            }
        )

    # ---- pipelines ---------------------------------------------------------------------------

    async def list_pipelines(self, request: Request) -> Response:
        return json_response({"results": [pipeline_json(p) for p in _pipelines(request)]})

    async def get_pipeline(self, request: Request) -> Response:
        return json_response(pipeline_json(_pipeline(request)))

    async def list_stages(self, request: Request) -> Response:
        pipeline = _pipeline(request)
        stages = [stage_json(s, i, pipeline.created_at) for i, s in enumerate(pipeline.stages)]
        return json_response({"results": stages})

    async def get_stage(self, request: Request) -> Response:
        pipeline = _pipeline(request)
        stage_id = request.path_params["stageId"]
        for index, stage in enumerate(pipeline.stages):
            if stage.id == stage_id:
                return json_response(stage_json(stage, index, pipeline.created_at))
        raise api_error(404, "OBJECT_NOT_FOUND", f"Unable to find stage {stage_id} in pipeline {pipeline.id}")

    # ---- property groups ---------------------------------------------------------------------

    async def list_groups(self, request: Request) -> Response:
        return json_response({"results": _groups(_object_type(request))})

    async def get_group(self, request: Request) -> Response:
        kind = _object_type(request)
        name = request.path_params["groupName"]
        for group in _groups(kind):
            if group["name"] == name:
                return json_response(group)
        raise api_error(404, "OBJECT_NOT_FOUND", f"Unable to find property group {name} for object type {kind.name}")

    # ---- custom object schemas ---------------------------------------------------------------

    async def list_schemas(self, request: Request) -> Response:
        # Lists custom object types only; HubSpot's standard objects are not schemas here.
        return json_response({"results": [self._project_schema()]})

    async def get_schema(self, request: Request) -> Response:
        wanted = request.path_params["objectType"]
        schema = self._project_schema()
        if wanted in (schema["objectTypeId"], schema["name"], schema["fullyQualifiedName"]):
            return json_response(schema)
        raise api_error(404, "OBJECT_NOT_FOUND", f"Unable to find object type {wanted}")

    def _project_schema(self) -> dict[str, Any]:
        number = PROJECT_TYPE_ID.split("-", 1)[1]
        associations = [
            {
                "fromObjectTypeId": PROJECT_TYPE_ID,
                "toObjectTypeId": OBJECT_TYPES[target].type_id,
                "name": f"project_to_{OBJECT_TYPES[target].singular}",
                "id": str(association_id),
                "createdAt": PROJECT_CREATED,
                "updatedAt": PROJECT_CREATED,
            }
            for association_id, target in ((97, "contacts"), (99, "companies"))
        ]
        return {
            "id": number,
            "objectTypeId": PROJECT_TYPE_ID,
            "name": "project",
            "fullyQualifiedName": f"p{self.sandbox.hub_id}_project",
            "labels": {"singular": "Project", "plural": "Projects"},
            "description": "Implementation projects sold with a deal",
            "primaryDisplayProperty": "project_name",
            "secondaryDisplayProperties": ["project_status"],
            "requiredProperties": ["project_name"],
            "searchableProperties": ["project_name"],
            "properties": [self.properties.render_property(p, i) for i, p in enumerate(PROJECT_PROPERTIES)],
            "associations": associations,
            "allowsSensitiveProperties": False,
            "archived": False,
            "createdAt": PROJECT_CREATED,
            "updatedAt": PROJECT_CREATED,
            "createdByUserId": self.sandbox.user_id,
            "updatedByUserId": self.sandbox.user_id,
        }


def _object_type(request: Request) -> ObjectType:
    raw = request.path_params["objectType"]
    kind = resolve_object_type(raw)
    if kind is None:
        raise api_error(400, "VALIDATION_ERROR", f"Unable to infer object type from: {raw}")
    return kind


def _pipelines(request: Request) -> tuple[Pipeline, ...]:
    kind = _object_type(request)
    pipelines = PIPELINES.get(kind.name)
    if pipelines is None:
        raise api_error(400, "VALIDATION_ERROR", f"Pipelines are not supported for object type {kind.name}")
    return pipelines


def _pipeline(request: Request) -> Pipeline:
    pipeline_id = request.path_params["pipelineId"]
    for pipeline in _pipelines(request):
        if pipeline.id == pipeline_id:
            return pipeline
    raise api_error(404, "OBJECT_NOT_FOUND", f"Unable to find pipeline {pipeline_id}")


def _groups(kind: ObjectType) -> list[dict[str, Any]]:
    names = dict.fromkeys(p.group for p in PROPERTIES[kind.name].values())
    return [
        {"name": name, "label": GROUP_LABELS.get(name, name), "displayOrder": index, "archived": False}
        for index, name in enumerate(names)
    ]

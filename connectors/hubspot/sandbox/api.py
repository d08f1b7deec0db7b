"""The HubSpot CRM API routes the connector uses: objects (v3), search, associations (v4),
owners and properties."""

from __future__ import annotations

import base64
import binascii
import bisect
import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.hubspot.sandbox import search
from connectors.hubspot.sandbox.crm import missing_records_error
from connectors.hubspot.sandbox.data import Owner
from connectors.hubspot.sandbox.errors import api_error, validation_error
from connectors.hubspot.sandbox.sandbox import HubSpotSandbox
from connectors.hubspot.sandbox.schema import ObjectType, PropertyDef, resolve_object_type
from connectors.hubspot.sandbox.timestamps import iso_ms
from connectors.kit.sandbox_support import json_response

LIST_LIMIT = 100
OWNER_LIMIT = 500
BATCH_READ_LIMIT = 100
# The fields of HubSpot's BatchReadInputSimplePublicObjectId (spec).
BATCH_READ_KEYS = frozenset({"inputs", "properties", "propertiesWithHistory", "idProperty"})
ASSOCIATION_LIST_LIMIT = 500
STANDARD_PROPERTY_CREATED = "2019-08-06T02:41:52.261Z"
CUSTOM_PROPERTY_CREATED = "2023-11-14T09:30:00.000Z"


class CrmApi:
    def __init__(self, sandbox: HubSpotSandbox) -> None:
        self.sandbox = sandbox
        self.crm = sandbox.crm

    def routes(self) -> list[Route]:
        objects = "/crm/v3/objects/{objectType}"
        return [
            Route(f"{objects}/search", self.search, methods=["POST"]),
            Route(f"{objects}/batch/read", self.batch_read, methods=["POST"]),
            Route(objects, self.list_objects, methods=["GET"]),
            Route(objects, self.create_object, methods=["POST"]),
            Route(f"{objects}/{{objectId}}", self.get_object, methods=["GET"]),
            Route(f"{objects}/{{objectId}}", self.update_object, methods=["PATCH"]),
            Route(f"{objects}/{{objectId}}", self.archive_object, methods=["DELETE"]),
            Route(
                "/crm/v4/associations/{fromObjectType}/{toObjectType}/batch/read",
                self.batch_read_associations,
                methods=["POST"],
            ),
            Route(
                "/crm/v4/objects/{objectType}/{objectId}/associations/{toObjectType}",
                self.list_associations,
                methods=["GET"],
            ),
            Route(
                "/crm/v4/objects/{fromObjectType}/{fromObjectId}/associations/default/{toObjectType}/{toObjectId}",
                self.associate_default,
                methods=["PUT"],
            ),
            Route(
                "/crm/v4/objects/{objectType}/{objectId}/associations/{toObjectType}/{toObjectId}",
                self.unassociate,
                methods=["DELETE"],
            ),
            Route("/crm/v3/owners", self.list_owners, methods=["GET"]),
            # HubSpot's own spec (and so its SDKs) name the owners list with a trailing slash; both answer 200.
            Route("/crm/v3/owners/", self.list_owners, methods=["GET"]),
            Route("/crm/v3/owners/{ownerId}", self.get_owner, methods=["GET"]),
            Route("/crm/v3/properties/{objectType}", self.list_properties, methods=["GET"]),
            Route("/crm/v3/properties/{objectType}/{propertyName}", self.get_property, methods=["GET"]),
        ]

    # ---- objects -----------------------------------------------------------------------------

    async def list_objects(self, request: Request) -> Response:
        kind = _object_type(request.path_params["objectType"])
        limit = _limit(request, default=10, maximum=LIST_LIMIT)
        start = decode_cursor(request.query_params.get("after"))
        results, next_id = self.crm.list_page(
            kind,
            start,
            limit,
            archived=_flag(request, "archived"),
            properties=self.crm.read_properties(kind, _csv(request, "properties")),
            associations=_association_types(request),
            history=self.crm.history_properties(kind, _csv(request, "propertiesWithHistory")),
        )
        body: dict[str, Any] = {"results": results}
        if next_id is not None:
            after = encode_cursor(next_id)
            body["paging"] = {"next": {"after": after, "link": f"?after={after}"}}
        return json_response(body)

    async def get_object(self, request: Request) -> Response:
        kind = _object_type(request.path_params["objectType"])
        record = self.crm.read(
            kind,
            request.path_params["objectId"],
            archived=_flag(request, "archived"),
            id_property=request.query_params.get("idProperty"),
            properties=self.crm.read_properties(kind, _csv(request, "properties")),
            associations=_association_types(request),
            history=self.crm.history_properties(kind, _csv(request, "propertiesWithHistory")),
        )
        return json_response(record)

    async def create_object(self, request: Request) -> Response:
        kind = _object_type(request.path_params["objectType"])
        body = await _json_object(request)
        return json_response(self.crm.create(kind, body.get("properties", {}), body.get("associations")), 201)

    async def update_object(self, request: Request) -> Response:
        kind = _object_type(request.path_params["objectType"])
        body = await _json_object(request)
        record = self.crm.update(
            kind,
            request.path_params["objectId"],
            body.get("properties", {}),
            id_property=request.query_params.get("idProperty"),
        )
        return json_response(record)

    async def archive_object(self, request: Request) -> Response:
        kind = _object_type(request.path_params["objectType"])
        self.crm.archive(kind, request.path_params["objectId"])
        return Response(status_code=204)

    async def search(self, request: Request) -> Response:
        kind = _object_type(request.path_params["objectType"])
        query = search.parse_search(await _json_object(request))
        total, results = self.crm.search(kind, query)
        body: dict[str, Any] = {"total": total, "results": results}
        end = query.offset + len(results)
        if end < total:
            body["paging"] = {"next": {"after": str(end)}}
        return json_response(body)

    async def batch_read(self, request: Request) -> Response:
        kind = _object_type(request.path_params["objectType"])
        body = await _json_object(request)
        unknown = sorted(set(body) - BATCH_READ_KEYS)
        if unknown:
            raise validation_error(f'Invalid input JSON: Unrecognized field "{unknown[0]}", not marked as ignorable')
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or not all(isinstance(i, dict) and "id" in i for i in inputs):
            raise validation_error("inputs must be a list of {id}")
        if len(inputs) > BATCH_READ_LIMIT:
            raise validation_error(f"Too many inputs: {len(inputs)}. The limit is {BATCH_READ_LIMIT}.")
        names = self.crm.read_properties(kind, _names(body, "properties"))
        id_property = body.get("idProperty")
        if id_property is not None and not isinstance(id_property, str):
            raise validation_error("Invalid input JSON: idProperty must be a property name")
        started = _now()
        found, missing = self.crm.batch_read(
            kind,
            [str(i["id"]) for i in inputs],
            names,
            archived=_flag(request, "archived"),
            id_property=id_property,
            history=self.crm.history_properties(kind, _names(body, "propertiesWithHistory")),
        )
        errors = [missing_records_error(kind, missing)] if missing else []
        return _batch_response(found, errors, started)

    # ---- associations ------------------------------------------------------------------------

    async def batch_read_associations(self, request: Request) -> Response:
        from_kind = _object_type(request.path_params["fromObjectType"])
        to_kind = _object_type(request.path_params["toObjectType"])
        started = _now()
        body = await _json_object(request)
        results, errors = self.crm.association_batch_read(from_kind, to_kind, body.get("inputs"))
        return _batch_response(results, errors, started)

    async def list_associations(self, request: Request) -> Response:
        limit = _limit(request, default=ASSOCIATION_LIST_LIMIT, maximum=ASSOCIATION_LIST_LIMIT)
        after = request.query_params.get("after")
        start = int(after) if after and after.isdigit() else 0
        rows, next_id = self.crm.association_list(
            _object_type(request.path_params["objectType"]),
            request.path_params["objectId"],
            _object_type(request.path_params["toObjectType"]),
            start,
            limit,
        )
        body: dict[str, Any] = {"results": rows}
        if next_id is not None:
            body["paging"] = {"next": {"after": str(next_id), "link": f"?after={next_id}"}}
        return json_response(body)

    async def associate_default(self, request: Request) -> Response:
        started = _now()
        results = self.crm.associate_default(
            _object_type(request.path_params["fromObjectType"]),
            request.path_params["fromObjectId"],
            _object_type(request.path_params["toObjectType"]),
            request.path_params["toObjectId"],
        )
        return json_response({"status": "COMPLETE", "results": results, "startedAt": started, "completedAt": _now()})

    async def unassociate(self, request: Request) -> Response:
        self.crm.unassociate(
            _object_type(request.path_params["objectType"]),
            request.path_params["objectId"],
            _object_type(request.path_params["toObjectType"]),
            request.path_params["toObjectId"],
        )
        return Response(status_code=204)

    # ---- owners ------------------------------------------------------------------------------

    async def list_owners(self, request: Request) -> Response:
        limit = _limit(request, default=100, maximum=OWNER_LIMIT)
        owners = [] if _flag(request, "archived") else self.crm.owners
        email = request.query_params.get("email")
        if email:
            owners = [o for o in owners if o.email.lower() == email.strip().lower()]
        start = decode_cursor(request.query_params.get("after"))
        index = bisect.bisect_left([int(o.id) for o in owners], start)
        page = owners[index : index + limit]
        body: dict[str, Any] = {"results": [render_owner(o) for o in page]}
        if index + limit < len(owners):
            after = encode_cursor(int(owners[index + limit].id))
            body["paging"] = {"next": {"after": after, "link": f"?after={after}"}}
        return json_response(body)

    async def get_owner(self, request: Request) -> Response:
        raw = request.path_params["ownerId"]
        by_user = request.query_params.get("idProperty") == "userId"
        for owner in self.crm.owners:
            if (str(owner.user_id) if by_user else owner.id) == raw:
                return json_response(render_owner(owner))
        raise api_error(404, "OBJECT_NOT_FOUND", f"No owner found with {'userId' if by_user else 'id'} {raw}")

    # ---- properties --------------------------------------------------------------------------

    async def list_properties(self, request: Request) -> Response:
        kind = _object_type(request.path_params["objectType"])
        definitions = self.crm.properties[kind.name].values()
        return json_response({"results": [self.render_property(p, i) for i, p in enumerate(definitions)]})

    async def get_property(self, request: Request) -> Response:
        kind = _object_type(request.path_params["objectType"])
        name = request.path_params["propertyName"]
        for index, definition in enumerate(self.crm.properties[kind.name].values()):
            if definition.name == name:
                return json_response(self.render_property(definition, index))
        raise api_error(404, "OBJECT_NOT_FOUND", f"Unable to find property {name} for object type {kind.name}")

    def render_property(self, definition: PropertyDef, display_order: int) -> dict[str, Any]:
        if definition.name == "hubspot_owner_id":
            choices = [(f"{o.first_name} {o.last_name}", o.id) for o in self.crm.owners]
        else:
            choices = [(value.replace("_", " ").title(), value) for value in definition.options]
        created = STANDARD_PROPERTY_CREATED if definition.hubspot_defined else CUSTOM_PROPERTY_CREATED
        return {
            "name": definition.name,
            "label": definition.label,
            "type": definition.type,
            "fieldType": definition.field_type,
            "description": definition.description,
            "groupName": definition.group,
            "options": [
                {"label": label, "value": value, "displayOrder": i, "hidden": False}
                for i, (label, value) in enumerate(choices)
            ],
            "displayOrder": display_order,
            "calculated": False,
            "externalOptions": definition.name == "hubspot_owner_id",
            "hasUniqueValue": definition.has_unique_value,
            "hidden": False,
            "hubspotDefined": definition.hubspot_defined,
            "formField": not definition.read_only,
            "createdAt": created,
            "updatedAt": created,
            "archived": False,
            "modificationMetadata": {
                "archivable": not definition.hubspot_defined,
                "readOnlyDefinition": definition.hubspot_defined,
                "readOnlyValue": definition.read_only,
            },
        }


def render_owner(owner: Owner) -> dict[str, Any]:
    return {
        "id": owner.id,
        "email": owner.email,
        "type": "PERSON",
        "firstName": owner.first_name,
        "lastName": owner.last_name,
        "userId": owner.user_id,
        "userIdIncludingInactive": owner.user_id,
        "createdAt": iso_ms(owner.created_ms),
        "updatedAt": iso_ms(owner.updated_ms),
        "archived": False,
        "teams": [{"id": owner.team_id, "name": owner.team_name, "primary": True}],
    }


def encode_cursor(record_id: int) -> str:
    return base64.urlsafe_b64encode(str(record_id).encode()).rstrip(b"=").decode()


def decode_cursor(raw: str | None) -> int:
    """The id a page starts at. Plain numeric cursors are accepted too, as HubSpot does."""
    if not raw:
        return 0
    if raw.isdigit():
        return int(raw)
    try:
        decoded = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        decoded = ""
    if not decoded.isdigit():
        raise validation_error(f"Invalid paging cursor after={raw!r}; pass paging.next.after from the last page")
    return int(decoded)


def _object_type(raw: str) -> ObjectType:
    kind = resolve_object_type(raw)
    if kind is None:
        raise validation_error(f"Unable to infer object type from: {raw}")
    return kind


def _names(body: dict[str, Any], key: str) -> list[str] | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise validation_error(f"Invalid input JSON: {key} must be a list of property names")
    return value


def _csv(request: Request, name: str) -> list[str] | None:
    values = request.query_params.getlist(name)
    if not values:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _association_types(request: Request) -> list[ObjectType]:
    kinds = (resolve_object_type(name) for name in _csv(request, "associations") or [])
    unique: dict[str, ObjectType] = {}
    for kind in kinds:
        if kind is not None:
            unique.setdefault(kind.name, kind)
    return list(unique.values())


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "false").lower() == "true"


def _limit(request: Request, *, default: int, maximum: int) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return default
    try:
        limit = int(raw)
    except ValueError:
        raise validation_error(f"limit must be an integer, was {raw!r}") from None
    if not 1 <= limit <= maximum:
        raise validation_error(f"limit must be between 1 and {maximum}, was {limit}")
    return limit


async def _json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise validation_error(f"Invalid input JSON: {error}") from None
    if not isinstance(body, dict):
        raise validation_error("Invalid input JSON: expected an object")
    return body


def _now() -> str:
    return iso_ms(int(time.time() * 1000))


def _batch_response(results: list[dict[str, Any]], errors: list[dict[str, Any]], started: str) -> Response:
    body: dict[str, Any] = {"status": "COMPLETE", "results": results}
    if errors:
        body["numErrors"] = len(errors)
        body["errors"] = errors
    body["startedAt"] = started
    body["completedAt"] = _now()
    return json_response(body, 207 if errors else 200)

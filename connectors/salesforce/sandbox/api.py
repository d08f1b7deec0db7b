"""The instance host's REST API (v60.0): versions, limits, describe, SOQL query and queryAll with
their cursors, sObject rows (read, create, update, delete), and the getUpdated/getDeleted feeds."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.kit.sandbox_support import json_response
from connectors.salesforce.sandbox import describe
from connectors.salesforce.sandbox.cursors import batch_size_from
from connectors.salesforce.sandbox.duplicates import DUPLICATE_RULE_HEADER, allows_save
from connectors.salesforce.sandbox.errors import bad_request, not_found
from connectors.salesforce.sandbox.org import API_ROOT, API_VERSION
from connectors.salesforce.sandbox.sandbox import SalesforceSandbox
from connectors.salesforce.sandbox.schema import SObjectType, resolve_sobject
from connectors.salesforce.sandbox.writes import parse_body

VERSIONS = [{"label": "Spring '24", "url": API_ROOT, "version": API_VERSION}]
QUERY_OPTIONS_HEADER = "sforce-query-options"


class RestApi:
    def __init__(self, sandbox: SalesforceSandbox) -> None:
        self.sandbox = sandbox
        self.org = sandbox.org

    def routes(self) -> list[Route]:
        sobjects = f"{API_ROOT}/sobjects"
        return [
            Route("/services/data", self.versions, methods=["GET"]),
            Route(API_ROOT, self.resources, methods=["GET"]),
            Route(f"{API_ROOT}/limits", self.limits, methods=["GET"]),
            Route(sobjects, self.global_describe, methods=["GET"]),
            Route(f"{sobjects}/{{sobject}}", self.basic_info, methods=["GET"]),
            Route(f"{sobjects}/{{sobject}}", self.create, methods=["POST"]),
            Route(f"{sobjects}/{{sobject}}/describe", self.describe, methods=["GET"]),
            Route(f"{sobjects}/{{sobject}}/updated", self.updated, methods=["GET"]),
            Route(f"{sobjects}/{{sobject}}/deleted", self.deleted, methods=["GET"]),
            Route(f"{sobjects}/{{sobject}}/{{record_id}}", self.read, methods=["GET"]),
            Route(f"{sobjects}/{{sobject}}/{{record_id}}", self.update, methods=["PATCH"]),
            Route(f"{sobjects}/{{sobject}}/{{record_id}}", self.delete, methods=["DELETE"]),
            Route(f"{API_ROOT}/query", self.query, methods=["GET"]),
            Route(f"{API_ROOT}/queryAll", self.query_all, methods=["GET"]),
            # A queryAll cursor's nextRecordsUrl says /query/; Salesforce serves it under both paths.
            Route(f"{API_ROOT}/query/{{locator}}", self.query_more, methods=["GET"]),
            Route(f"{API_ROOT}/queryAll/{{locator}}", self.query_more, methods=["GET"]),
        ]

    # ---- discovery ---------------------------------------------------------------------------

    async def versions(self, request: Request) -> Response:
        return json_response(VERSIONS)

    async def resources(self, request: Request) -> Response:
        names = ("limits", "query", "queryAll", "sobjects")
        return json_response({name: f"{API_ROOT}/{name}" for name in names})

    async def limits(self, request: Request) -> Response:
        limit = self.sandbox.faults.daily_api_limit
        remaining = max(0, limit - self.sandbox.usage.used())
        return json_response({"DailyApiRequests": {"Max": limit, "Remaining": remaining}})

    async def global_describe(self, request: Request) -> Response:
        return json_response(describe.global_describe(API_ROOT))

    async def basic_info(self, request: Request) -> Response:
        sobject = _sobject(request)
        return json_response({"objectDescribe": describe.object_summary(sobject, API_ROOT), "recentItems": []})

    async def describe(self, request: Request) -> Response:
        return json_response(describe.describe(_sobject(request), API_ROOT))

    # ---- queries -----------------------------------------------------------------------------

    async def query(self, request: Request) -> Response:
        return self._query(request, include_deleted=False)

    async def query_all(self, request: Request) -> Response:
        return self._query(request, include_deleted=True)

    def _query(self, request: Request, *, include_deleted: bool) -> Response:
        soql = request.query_params.get("q")
        if not soql or not soql.strip():
            raise bad_request("MALFORMED_QUERY", "A query string has to be specified")
        batch_size = batch_size_from(request.headers.get(QUERY_OPTIONS_HEADER))
        return json_response(self.org.query(soql, include_deleted=include_deleted, batch_size=batch_size))

    async def query_more(self, request: Request) -> Response:
        header = request.headers.get(QUERY_OPTIONS_HEADER)
        batch_size = batch_size_from(header) if header else None
        return json_response(self.org.query_more(request.path_params["locator"], batch_size))

    # ---- records -----------------------------------------------------------------------------

    async def read(self, request: Request) -> Response:
        requested = request.query_params.get("fields")
        fields = [name.strip() for name in requested.split(",") if name.strip()] if requested else None
        return json_response(self.org.read(_sobject(request), request.path_params["record_id"], fields))

    async def create(self, request: Request) -> Response:
        sobject = _sobject(request)
        raw = await request.body()
        record_id = self.org.create(
            sobject, parse_body(raw), request.state.user_id, raw, allow_duplicates=_allows_duplicates(request)
        )
        return json_response({"id": record_id, "success": True, "errors": []}, 201)

    async def update(self, request: Request) -> Response:
        sobject = _sobject(request)
        raw = await request.body()
        record_id = request.path_params["record_id"]
        user_id = request.state.user_id
        allow_duplicates = _allows_duplicates(request)
        self.org.update(sobject, record_id, parse_body(raw), user_id, raw, allow_duplicates=allow_duplicates)
        return Response(status_code=204)

    async def delete(self, request: Request) -> Response:
        self.org.delete(_sobject(request), request.path_params["record_id"], request.state.user_id)
        return Response(status_code=204)

    # ---- replication -------------------------------------------------------------------------

    async def updated(self, request: Request) -> Response:
        params = request.query_params
        return json_response(self.org.updated(_sobject(request), params.get("start"), params.get("end")))

    async def deleted(self, request: Request) -> Response:
        params = request.query_params
        return json_response(self.org.deleted(_sobject(request), params.get("start"), params.get("end")))


def _allows_duplicates(request: Request) -> bool:
    return allows_save(request.headers.get(DUPLICATE_RULE_HEADER))


def _sobject(request: Request) -> SObjectType:
    sobject = resolve_sobject(request.path_params["sobject"])
    if sobject is None:
        raise not_found()
    return sobject

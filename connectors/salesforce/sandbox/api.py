"""The instance host's REST API (v60.0 behaviour under every served version): versions, limits, describe,
SOQL query and queryAll with their cursors, Composite for queries, sObject rows (read, create, update,
delete), and the getUpdated/getDeleted feeds.

A query parameter the sandbox does not implement is refused (400 in Salesforce's error array), never
ignored: a client relying on it would otherwise get a silently different answer."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.kit.sandbox_support import json_response
from connectors.salesforce.sandbox import describe
from connectors.salesforce.sandbox.composite import run_composite
from connectors.salesforce.sandbox.cursors import batch_size_from
from connectors.salesforce.sandbox.duplicates import DUPLICATE_RULE_HEADER, allows_save
from connectors.salesforce.sandbox.errors import bad_request, not_found
from connectors.salesforce.sandbox.org import API_ROOT
from connectors.salesforce.sandbox.sandbox import SalesforceSandbox
from connectors.salesforce.sandbox.schema import SObjectType
from connectors.salesforce.sandbox.versions import VERSION_LIST
from connectors.salesforce.sandbox.writes import parse_body

QUERY_OPTIONS_HEADER = "sforce-query-options"
# `GET /limits` beyond the daily API requests: a Developer Edition org's allocations, none used.
STATIC_LIMITS = {
    "ConcurrentAsyncGetReportInstances": 200,
    "ConcurrentSyncReportRuns": 20,
    "DailyAsyncApexExecutions": 250_000,
    "DailyBulkApiBatches": 15_000,
    "DailyBulkV2QueryFileStorageMB": 976_562,
    "DailyBulkV2QueryJobs": 10_000,
    "DailyDurableStreamingApiEvents": 10_000,
    "DailyStreamingApiEvents": 10_000,
    "DailyWorkflowEmails": 2_000,
    "DataStorageMB": 5,
    "FileStorageMB": 20,
    "HourlyDashboardRefreshes": 200,
    "HourlyODataCallout": 10_000,
    "HourlyTimeBasedWorkflow": 50,
    "MassEmail": 10,
    "SingleEmail": 15,
    "StreamingApiConcurrentClients": 20,
}


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
            Route(f"{API_ROOT}/composite", self.composite, methods=["POST"]),
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

    def _sobject(self, request: Request) -> SObjectType:
        sobject = self.org.schema.resolve(request.path_params["sobject"])
        if sobject is None:
            raise not_found()
        return sobject

    # ---- discovery ---------------------------------------------------------------------------

    async def versions(self, request: Request) -> Response:
        _takes_no_parameters(request)
        return json_response(VERSION_LIST)

    async def resources(self, request: Request) -> Response:
        _takes_no_parameters(request)
        names = ("composite", "limits", "query", "queryAll", "sobjects")
        return json_response({name: f"{API_ROOT}/{name}" for name in names})

    async def limits(self, request: Request) -> Response:
        _takes_no_parameters(request)
        limit = self.sandbox.faults.daily_api_limit
        remaining = max(0, limit - self.sandbox.usage.used())
        body: dict[str, Any] = {"DailyApiRequests": {"Max": limit, "Remaining": remaining}}
        body.update({name: {"Max": most, "Remaining": most} for name, most in STATIC_LIMITS.items()})
        return json_response(dict(sorted(body.items())))

    async def composite(self, request: Request) -> Response:
        _takes_no_parameters(request)

        def run(resource: str, locator: str | None, soql: str | None, options: str | None) -> dict[str, Any]:
            if locator is not None:
                return self.org.query_more(locator, batch_size_from(options) if options else None)
            return self._run_query(soql, resource == "queryAll", options)

        return json_response(run_composite(await request.body(), API_ROOT, run))

    async def global_describe(self, request: Request) -> Response:
        _takes_no_parameters(request)
        return json_response(describe.global_describe(self.org.schema, API_ROOT))

    async def basic_info(self, request: Request) -> Response:
        _takes_no_parameters(request)
        sobject = self._sobject(request)
        return json_response({"objectDescribe": describe.object_summary(sobject, API_ROOT), "recentItems": []})

    async def describe(self, request: Request) -> Response:
        _takes_no_parameters(request)
        return json_response(describe.describe(self._sobject(request), API_ROOT))

    # ---- queries -----------------------------------------------------------------------------

    async def query(self, request: Request) -> Response:
        return self._query(request, include_deleted=False)

    async def query_all(self, request: Request) -> Response:
        return self._query(request, include_deleted=True)

    def _query(self, request: Request, *, include_deleted: bool) -> Response:
        _takes_only(request, "q")
        soql = request.query_params.get("q")
        return json_response(self._run_query(soql, include_deleted, request.headers.get(QUERY_OPTIONS_HEADER)))

    def _run_query(self, soql: str | None, include_deleted: bool, options: str | None) -> dict[str, Any]:
        if not soql or not soql.strip():
            raise bad_request("MALFORMED_QUERY", "A query string has to be specified")
        return self.org.query(soql, include_deleted=include_deleted, batch_size=batch_size_from(options))

    async def query_more(self, request: Request) -> Response:
        _takes_no_parameters(request)
        header = request.headers.get(QUERY_OPTIONS_HEADER)
        batch_size = batch_size_from(header) if header else None
        return json_response(self.org.query_more(request.path_params["locator"], batch_size))

    # ---- records -----------------------------------------------------------------------------

    async def read(self, request: Request) -> Response:
        _takes_only(request, "fields")
        requested = request.query_params.get("fields")
        fields = [name.strip() for name in requested.split(",") if name.strip()] if requested else None
        return json_response(self.org.read(self._sobject(request), request.path_params["record_id"], fields))

    async def create(self, request: Request) -> Response:
        _takes_no_parameters(request)
        sobject = self._sobject(request)
        raw = await request.body()
        record_id = self.org.create(
            sobject, parse_body(raw), request.state.user_id, raw, allow_duplicates=_allows_duplicates(request)
        )
        return json_response({"id": record_id, "success": True, "errors": []}, 201)

    async def update(self, request: Request) -> Response:
        _takes_no_parameters(request)
        sobject = self._sobject(request)
        raw = await request.body()
        record_id = request.path_params["record_id"]
        user_id = request.state.user_id
        allow_duplicates = _allows_duplicates(request)
        self.org.update(sobject, record_id, parse_body(raw), user_id, raw, allow_duplicates=allow_duplicates)
        return Response(status_code=204)

    async def delete(self, request: Request) -> Response:
        _takes_no_parameters(request)
        self.org.delete(self._sobject(request), request.path_params["record_id"], request.state.user_id)
        return Response(status_code=204)

    # ---- replication -------------------------------------------------------------------------

    async def updated(self, request: Request) -> Response:
        _takes_only(request, "start", "end")
        params = request.query_params
        return json_response(self.org.updated(self._sobject(request), params.get("start"), params.get("end")))

    async def deleted(self, request: Request) -> Response:
        _takes_only(request, "start", "end")
        params = request.query_params
        return json_response(self.org.deleted(self._sobject(request), params.get("start"), params.get("end")))


def _allows_duplicates(request: Request) -> bool:
    return allows_save(request.headers.get(DUPLICATE_RULE_HEADER))


def _takes_only(request: Request, *names: str) -> None:
    """Refuses a query parameter the resource does not take (or the sandbox does not implement)."""
    for name in request.query_params:
        if name not in names:
            raise bad_request(
                "INVALID_API_INPUT",
                f"This resource does not take the parameter '{name}'"
                + (f"; it takes {', '.join(names)}" if names else ""),
            )


def _takes_no_parameters(request: Request) -> None:
    _takes_only(request)

"""GraphQL over HTTP as the spec says (graphql.github.io/graphql-over-http): media types, status codes, the
operationName rules and every refusal as typed JSON, checked rule by rule over real HTTP and by the official
audit (graphql-http's auditServer)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest
import pytest_asyncio

from connectors.kit.http import HttpKit
from sync.storage.store import Store
from tests.js_clients import run_node
from tests.support import Gateway, Tenant, gateway, new_tenant

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
CREATE_DESTINATION = """mutation Create { createWebhookDestination(input: {url: "https://hooks.example.com/x"}) {
    destination { id } } }"""
DESTINATIONS = "query Destinations { webhookDestinations { id } }"
SUBSCRIPTION = "subscription { changes { op remoteId } }"


class Client:
    """A GraphQL-over-HTTP client with the tenant's key; every request says what it accepts (or not)."""

    def __init__(self, api: Gateway, tenant: Tenant) -> None:
        self.url = f"{api.url}/graphql"
        self.http = api.client
        self.key = tenant.api_key

    def headers(self, accept: str | None, **more: str) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.key}", **more}
        if accept is not None:
            headers["Accept"] = accept
        return headers

    async def post(self, body: dict[str, Any], accept: str | None = GRAPHQL_RESPONSE) -> httpx2.Response:
        return await self.http.post(self.url, json=body, headers=self.headers(accept))

    async def get(self, params: dict[str, str], accept: str | None = GRAPHQL_RESPONSE) -> httpx2.Response:
        return await self.http.get(self.url, params=params, headers=self.headers(accept))

    async def destinations(self) -> list[Any]:
        answer = await self.post({"query": DESTINATIONS})
        assert answer.status_code == 200, answer.text
        found: list[Any] = answer.json()["data"]["webhookDestinations"]
        return found


@pytest_asyncio.fixture
async def served(store: Store, kit: HttpKit, secret_key: str) -> AsyncIterator[tuple[Gateway, Tenant]]:
    tenant = await new_tenant(store)
    async with gateway(store, kit, secret_key) as api:
        yield api, tenant


@pytest.fixture
def client(served: tuple[Gateway, Tenant]) -> Client:
    return Client(*served)


def media_type(response: httpx2.Response) -> str:
    return response.headers["content-type"].split(";")[0].strip()


def refusal(response: httpx2.Response) -> dict[str, Any]:
    """The one error of a refused request: JSON, no `data` entry (nothing ran), a message and a code."""
    body = response.json()
    assert "data" not in body, body
    assert len(body["errors"]) == 1, body
    error: dict[str, Any] = body["errors"][0]
    assert error["message"] and error["extensions"]["code"], body
    return error


def code(response: httpx2.Response) -> str:
    return str(refusal(response)["extensions"]["code"])


async def test_the_official_graphql_over_http_audit_passes_with_no_failure_or_warning(
    served: tuple[Gateway, Tenant],
) -> None:
    api, tenant = served
    report = await run_node("graphql-http-audit.mjs", f"{api.url}/graphql", tenant.api_key)
    results = report["results"]
    assert len(results) > 50  # the whole audit ran
    assert [r for r in results if r["status"] != "ok"] == []


# Media types


@pytest.mark.parametrize(
    ("accept", "answered_in"),
    [
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
        ("application/graphql-response+json; charset=utf-8, application/json; charset=utf-8", GRAPHQL_RESPONSE),
        ("application/json, application/graphql-response+json", GRAPHQL_RESPONSE),
        ("application/graphql-response+json, application/json;q=0.9", GRAPHQL_RESPONSE),  # Apollo Client's
        ("application/json, application/graphql-response+json;q=0.5", JSON),
        (JSON, JSON),
        ("*/*", JSON),
        ("application/*", JSON),
        ("text/html;q=0.9, */*;q=0.8", JSON),
        ("application/json;q=0, */*", GRAPHQL_RESPONSE),
        ("application/graphql-response+json, multipart/mixed", GRAPHQL_RESPONSE),
        ("multipart/mixed;deferSpec=20220824, application/json", JSON),
        (None, JSON),
    ],
    ids=[
        "graphql-response",
        "the spec's recommended header",
        "both named",
        "apollo client",
        "json preferred",
        "json",
        "any",
        "application wildcard",
        "browser-like",
        "json refused",
        "graphiql (incremental delivery)",
        "apollo client @defer",
        "no accept header",
    ],
)
async def test_the_answer_comes_in_the_media_type_the_client_prefers(
    client: Client, accept: str | None, answered_in: str
) -> None:
    answer = await client.post({"query": "{ __typename }"}, accept=accept)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == f"{answered_in}; charset=utf-8"
    assert answer.json() == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize("accept", ["text/plain", "application/xml", "application/json;q=0", "text/html"])
async def test_an_accept_header_allowing_neither_json_type_gets_406_and_nothing_runs(
    client: Client, accept: str
) -> None:
    answer = await client.post({"query": CREATE_DESTINATION}, accept=accept)
    assert answer.status_code == 406
    assert media_type(answer) == JSON
    assert code(answer) == "NOT_ACCEPTABLE"
    assert await client.destinations() == []


# Status codes: a request error has no `data`; its status depends on the media type


REQUEST_ERRORS = [
    ({"query": "{ __typename"}, "GRAPHQL_PARSE_FAILED"),
    ({"query": "{ nonsense }"}, "GRAPHQL_VALIDATION_FAILED"),
    ({"query": "query($id: ID!) { node(id: $id) { id } }", "variables": {"id": None}}, "BAD_USER_INPUT"),
    ({"query": "query A { __typename } query B { __typename }"}, "OPERATION_RESOLUTION_FAILURE"),
]
REQUEST_ERROR_IDS = ["parse", "validation", "variable coercion", "operation not determined"]


@pytest.mark.parametrize(("body", "expected_code"), REQUEST_ERRORS, ids=REQUEST_ERROR_IDS)
async def test_a_request_error_is_a_400_without_data_under_graphql_response_json(
    client: Client, body: dict[str, Any], expected_code: str
) -> None:
    answer = await client.post(body, accept=GRAPHQL_RESPONSE)
    assert answer.status_code == 400
    assert media_type(answer) == GRAPHQL_RESPONSE
    assert code(answer) == expected_code


@pytest.mark.parametrize(("body", "expected_code"), REQUEST_ERRORS, ids=REQUEST_ERROR_IDS)
async def test_a_request_error_is_a_200_without_data_under_application_json(
    client: Client, body: dict[str, Any], expected_code: str
) -> None:
    answer = await client.post(body, accept=JSON)
    assert answer.status_code == 200
    assert media_type(answer) == JSON
    assert code(answer) == expected_code


@pytest.mark.parametrize("accept", [GRAPHQL_RESPONSE, JSON])
async def test_a_field_error_is_a_200_response_with_its_data_entry(client: Client, accept: str) -> None:
    # connection(id:) is non-null, so its error nulls the whole `data`: still an executed operation.
    answer = await client.post({"query": '{ connection(id: "nonsense") { id } }'}, accept=accept)
    assert answer.status_code == 200
    body = answer.json()
    assert "data" in body and body["data"] is None
    assert body["errors"][0]["path"] == ["connection"]


async def test_a_spent_cost_budget_stays_a_429_under_both_media_types(
    store: Store, kit: HttpKit, secret_key: str
) -> None:
    tenant = await new_tenant(store)
    async with gateway(store, kit, secret_key, graphql_cost_budget=3, graphql_cost_window_seconds=3600) as api:
        client = Client(api, tenant)
        assert (await client.post({"query": "{ a: __typename b: __typename c: __typename }"})).status_code == 200
        for accept in (GRAPHQL_RESPONSE, JSON):
            answer = await client.post({"query": "{ __typename }"}, accept=accept)
            assert answer.status_code == 429
            assert int(answer.headers["retry-after"]) > 0
            assert media_type(answer) == accept
            assert refusal(answer)["extensions"]["limit"] == "costBudget"


# Methods


@pytest.mark.parametrize("accept", [GRAPHQL_RESPONSE, JSON])
async def test_a_mutation_over_get_is_405_allowing_post_and_does_not_run(client: Client, accept: str) -> None:
    answer = await client.get({"query": CREATE_DESTINATION}, accept=accept)
    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST"
    assert code(answer) == "METHOD_NOT_ALLOWED"
    assert "POST" in refusal(answer)["message"]
    # The same operation chosen by name from a document that also holds a query.
    both = f"{DESTINATIONS} {CREATE_DESTINATION}"
    named = await client.get({"query": both, "operationName": "Create"}, accept=accept)
    assert named.status_code == 405
    assert await client.destinations() == []
    ran = await client.get({"query": both, "operationName": "Destinations"}, accept=accept)
    assert ran.status_code == 200 and ran.json() == {"data": {"webhookDestinations": []}}


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
async def test_methods_other_than_get_and_post_get_405_allowing_both(client: Client, method: str) -> None:
    answer = await client.http.request(
        method, client.url, json={"query": CREATE_DESTINATION}, headers=client.headers(GRAPHQL_RESPONSE)
    )
    assert answer.status_code == 405
    assert answer.headers["allow"] == "GET, POST"
    assert code(answer) == "METHOD_NOT_ALLOWED"
    assert await client.destinations() == []


async def test_a_query_over_get_runs_with_its_variables(client: Client) -> None:
    params = {"query": "query Type($name: String!) { __type(name: $name) { name } }", "variables": '{"name": "Query"}'}
    answer = await client.get(params)
    assert answer.status_code == 200
    assert answer.json() == {"data": {"__type": {"name": "Query"}}}
    # Empty parameters are absent ones (a shared link often carries `variables=`).
    bare = await client.get({"query": "{ __typename }", "variables": "", "extensions": "", "operationName": ""})
    assert bare.status_code == 200 and bare.json() == {"data": {"__typename": "Query"}}


# operationName


async def test_several_operations_without_an_operation_name_run_none_of_them(client: Client) -> None:
    document = f"{CREATE_DESTINATION} {DESTINATIONS}"
    for accept, status in ((GRAPHQL_RESPONSE, 400), (JSON, 200)):
        answer = await client.post({"query": document}, accept=accept)
        assert answer.status_code == status
        error = refusal(answer)
        assert error["extensions"]["code"] == "OPERATION_RESOLUTION_FAILURE"
        assert "Create, Destinations" in error["message"] and "operationName" in error["message"]
    # GET: an empty operationName is no operationName.
    empty = await client.get({"query": f"{DESTINATIONS} query Other {{ __typename }}", "operationName": ""})
    assert empty.status_code == 400 and code(empty) == "OPERATION_RESOLUTION_FAILURE"
    assert await client.destinations() == []
    chosen = await client.post({"query": document, "operationName": "Create"})
    assert chosen.status_code == 200 and chosen.json()["data"]["createWebhookDestination"]["destination"]["id"]
    assert len(await client.destinations()) == 1


async def test_an_unknown_operation_name_runs_nothing(client: Client) -> None:
    answer = await client.post({"query": CREATE_DESTINATION, "operationName": "Delete"})
    assert answer.status_code == 400
    error = refusal(answer)
    assert error["extensions"] == {"code": "OPERATION_RESOLUTION_FAILURE"}
    assert "'Delete'" in error["message"] and "Create" in error["message"]
    assert await client.destinations() == []


async def test_a_document_of_fragments_only_has_no_operation_to_run(client: Client) -> None:
    answer = await client.post({"query": "fragment F on Query { __typename }"})
    assert answer.status_code == 400
    assert code(answer) == "OPERATION_RESOLUTION_FAILURE"


# Variables


PAGE = "query($n: Int!) { contacts(first: $n) { edges { cursor } } }"
FILTERED = "query($f: ContactFilter) { contacts(filter: $f) { edges { cursor } } }"


@pytest.mark.parametrize(
    ("query", "variables", "variable"),
    [
        (PAGE, {}, "n"),
        (PAGE, {"n": None}, "n"),
        (PAGE, {"n": "ten"}, "n"),
        (FILTERED, {"f": {"nope": 1}}, "f"),
        (FILTERED, {"f": {"updatedAfter": "soon"}}, "f"),
    ],
    ids=["missing", "null", "wrong type", "unknown input field", "a scalar refusing the value"],
)
async def test_a_variable_that_does_not_coerce_is_bad_user_input_naming_the_variable(
    client: Client, query: str, variables: dict[str, Any], variable: str, caplog: pytest.LogCaptureFixture
) -> None:
    for accept, status in ((GRAPHQL_RESPONSE, 400), (JSON, 200)):
        answer = await client.post({"query": query, "variables": variables}, accept=accept)
        assert answer.status_code == status
        error = refusal(answer)
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert error["message"].startswith(f"Variable '${variable}' has invalid value"), error
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_an_unused_variable_stays_a_validation_error(client: Client) -> None:
    # The other error graphql-core reports on a variable's definition: validation, not the caller's value.
    answer = await client.post({"query": "query($n: Int) { __typename }", "variables": {"n": 1}})
    assert answer.status_code == 400
    assert code(answer) == "GRAPHQL_VALIDATION_FAILED"


# Subscriptions need a stream


@pytest.mark.parametrize("accept", [GRAPHQL_RESPONSE, JSON, None])
async def test_a_subscription_asked_for_as_one_json_answer_gets_a_clear_refusal(
    client: Client, accept: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    for answer in (
        await client.post({"query": SUBSCRIPTION}, accept=accept),
        await client.get({"query": SUBSCRIPTION}, accept=accept),
    ):
        assert answer.status_code == 406
        error = refusal(answer)
        assert error["extensions"]["code"] == "SUBSCRIPTION_NEEDS_STREAM"
        assert "WebSocket" in error["message"] and "Server-Sent Events" in error["message"]
        assert "text/event-stream" in error["message"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    "accept", ["text/event-stream", "multipart/mixed;subscriptionSpec=1.0, application/json"], ids=["sse", "multipart"]
)
async def test_a_request_for_a_stream_is_not_refused_as_unacceptable(client: Client, accept: str) -> None:
    # Streams are served apart (gateway/graphql_app.py `_serve_stream`): the refusals above never catch them.
    async with client.http.stream(
        "POST", client.url, json={"query": SUBSCRIPTION}, headers=client.headers(accept)
    ) as answer:
        assert answer.status_code != 406


# Refusals before GraphQL: always JSON with a code


async def test_a_request_without_a_key_or_with_a_wrong_one_is_401_with_a_bearer_challenge(client: Client) -> None:
    missing = await client.http.post(client.url, json={"query": "{ __typename }"}, headers={"Accept": GRAPHQL_RESPONSE})
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert media_type(missing) == GRAPHQL_RESPONSE
    assert code(missing) == "UNAUTHENTICATED"
    wrong = await client.http.post(
        client.url, json={"query": "{ __typename }"}, headers={"Authorization": "Bearer xk_not-a-key"}
    )
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert media_type(wrong) == JSON
    assert code(wrong) == "UNAUTHENTICATED"


@pytest.mark.parametrize(
    ("content", "content_type", "status", "expected_code"),
    [
        (b'{"query": "{ __typename }"}', None, 415, "UNSUPPORTED_MEDIA_TYPE"),
        (b'{"query": "{ __typename }"}', "text/plain", 415, "UNSUPPORTED_MEDIA_TYPE"),
        (b"query=%7B__typename%7D", "application/x-www-form-urlencoded", 415, "UNSUPPORTED_MEDIA_TYPE"),
        (b'{"query": "{ __typename }"}', "application/json; charset=latin-1", 415, "UNSUPPORTED_MEDIA_TYPE"),
        (b'{"query": "{ __typename', JSON, 400, "BAD_REQUEST"),
        (b'{"query": "\xff"}', JSON, 400, "BAD_REQUEST"),
        (b"", JSON, 400, "BAD_REQUEST"),
        (b'[{"query": "{ __typename }"}]', JSON, 400, "BAD_REQUEST"),
        (b'"{ __typename }"', JSON, 400, "BAD_REQUEST"),
        (b'{"query": {"kind": "Document"}}', JSON, 400, "BAD_REQUEST"),
        (b'{"query": "{ __typename }", "variables": "{}"}', JSON, 400, "BAD_REQUEST"),
        (b'{"query": "{ __typename }", "variables": [7]}', JSON, 400, "BAD_REQUEST"),
        (b'{"query": "{ __typename }", "operationName": 7}', JSON, 400, "BAD_REQUEST"),
        (b'{"query": "{ __typename }", "extensions": "x"}', JSON, 400, "BAD_REQUEST"),
        (b'{"qeury": "{ __typename }"}', JSON, 400, "BAD_REQUEST"),
        (b'{"query": null}', JSON, 400, "BAD_REQUEST"),
    ],
    ids=[
        "no content type",
        "text",
        "form",
        "not utf-8",
        "malformed json",
        "malformed utf-8",
        "empty body",
        "a batch",
        "not an object",
        "query not a string",
        "variables as text",
        "variables a list",
        "operation name a number",
        "extensions as text",
        "no query",
        "null query",
    ],
)
async def test_a_body_that_is_not_a_graphql_request_gets_a_typed_4xx(
    client: Client, content: bytes, content_type: str | None, status: int, expected_code: str
) -> None:
    headers = client.headers(GRAPHQL_RESPONSE)
    if content_type is not None:
        headers["Content-Type"] = content_type
    answer = await client.http.post(client.url, content=content, headers=headers)
    assert answer.status_code == status
    assert media_type(answer) == GRAPHQL_RESPONSE
    assert code(answer) == expected_code


@pytest.mark.parametrize(
    "params",
    [
        {"query": "{ __typename }", "variables": "{not json"},
        {"query": "{ __typename }", "variables": "[1]"},
        [("query", "{ __typename }"), ("query", "{ __schema { queryType { name } } }")],
        {"variables": "{}"},
    ],
    ids=["variables not json", "variables not an object", "query twice", "no query"],
)
async def test_a_query_string_that_is_not_a_graphql_request_gets_a_400(client: Client, params: Any) -> None:
    answer = await client.http.get(client.url, params=params, headers=client.headers(JSON))
    assert answer.status_code == 400
    assert code(answer) == "BAD_REQUEST"


async def test_bodies_query_strings_and_request_rates_over_their_limits_are_typed_refusals(
    store: Store, kit: HttpKit, secret_key: str
) -> None:
    tenant = await new_tenant(store)
    limits = {"graphql_max_request_bytes": 1000, "graphql_request_burst": 3, "graphql_requests_per_second": 0.001}
    async with gateway(store, kit, secret_key, **limits) as api:
        client = Client(api, tenant)
        large = await client.post({"query": "{ __typename }" + " " * 1000})
        assert large.status_code == 413 and code(large) == "PAYLOAD_TOO_LARGE"
        long = await client.get({"query": "{ __typename }" + " " * 1000})
        assert long.status_code == 414 and code(long) == "PAYLOAD_TOO_LARGE"
        assert media_type(long) == GRAPHQL_RESPONSE
        assert (await client.post({"query": "{ __typename }"})).status_code == 200
        limited = await client.post({"query": "{ __typename }"}, accept=JSON)
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
        assert media_type(limited) == JSON
        assert refusal(limited)["extensions"]["limit"] == "requests"

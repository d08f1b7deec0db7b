"""Passthrough refuses header names, header values, paths and sizes that are not plain HTTP, before anything
is sent: a typed error, never `INTERNAL_SERVER_ERROR`, and the provider sees nothing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from connectors.hubspot.sandbox import HubSpotSandbox
from connectors.kit.http import HttpKit
from sync.storage.store import Store
from tests.support import PASSTHROUGH as CALL
from tests.support import PassthroughSetup, data, error_codes, passthrough_ready

OWNERS = "/crm/v3/owners"
# Small limits, so a test sends a request just over each without sending megabytes.
LIMITS = {
    "passthrough_max_headers": 4,
    "passthrough_max_header_bytes": 64,
    "passthrough_max_url_bytes": 128,
    "passthrough_max_body_bytes": 256,
}


class Setup(PassthroughSetup):
    async def call(self, **input: Any) -> dict[str, Any]:
        return await super().call(**{"method": "GET", "path": OWNERS, **input})

    def requests_seen(self) -> int:
        return sum(self.sandbox.stats.snapshot()["requests"].values())

    async def assert_refused_unsent(self, code: str, field: str | None = None, **input: Any) -> dict[str, Any]:
        """The call is refused with `code`, the provider saw nothing, and a plain call right after works."""
        before = self.requests_seen()
        body = await self.call(**input)
        assert error_codes(body) == [code], body
        if field is not None:
            # The field, or a path into it when the refusal is the one every string input gets (NUL).
            assert field in body["errors"][0]["extensions"]["field"].split("."), body
        assert self.requests_seen() == before
        control = data(await self.call())["passthrough"]
        assert control["status"] == 200
        assert self.requests_seen() == before + 1
        return body


@pytest_asyncio.fixture
async def setup(
    store: Store, kit: HttpKit, hubspot: HubSpotSandbox, hubspot_url: str, secret_key: str
) -> AsyncIterator[Setup]:
    async with passthrough_ready(Setup, store, kit, hubspot, hubspot_url, secret_key, **LIMITS) as ready:
        yield ready


@pytest.mark.parametrize(
    "name",
    ["Host ", " host", "HOST\t", "Authorization ", "X-A:b", "X A", "X-Caf\u00e9", "", "X-\x00", "(X)"],
    ids=["host-trailing-space", "host-leading-space", "host-tab", "authorization-space", "colon", "space",
         "non-ascii", "empty", "nul", "separators"],
)  # fmt: skip
async def test_header_names_that_are_not_http_tokens_are_refused(setup: Setup, name: str) -> None:
    await setup.assert_refused_unsent("BAD_USER_INPUT", "headers", headers={name: "value"})


@pytest.mark.parametrize("name", ["Host", "host", "HOST", "Cookie", "Proxy-Authorization", "Transfer-Encoding"])
async def test_reserved_header_names_are_refused_in_any_case(setup: Setup, name: str) -> None:
    await setup.assert_refused_unsent("BAD_USER_INPUT", "headers", headers={name: "example.org"})


@pytest.mark.parametrize(
    "value",
    ["a\x00b", "a\rb", "a\nInjected: yes", "a\x7fb", "a\x1bb", "caf\u00e9", "\u2028", " leading", "trailing\t",
     "a\x85b", 12, True, None, {"nested": "x"}, ["x"]],
    ids=["nul", "cr", "lf", "del", "escape", "non-ascii", "line-separator", "leading-space", "trailing-tab",
         "c1-control", "number", "boolean", "null", "object", "list"],
)  # fmt: skip
async def test_header_values_that_are_not_plain_visible_text_are_refused(setup: Setup, value: Any) -> None:
    await setup.assert_refused_unsent("BAD_USER_INPUT", "headers", headers={"X-Custom": value})


async def test_headers_as_anything_but_an_object_are_refused(setup: Setup) -> None:
    await setup.assert_refused_unsent("BAD_USER_INPUT", "headers", headers=["X-Custom: 1"])


async def test_a_plain_header_with_inner_spaces_and_tabs_is_sent(setup: Setup) -> None:
    before = setup.requests_seen()
    result = data(await setup.call(headers={"X-Custom-Note": "a b\tc", "Accept": "application/json"}))
    assert result["passthrough"]["status"] == 200
    assert setup.requests_seen() == before + 1


async def test_more_headers_than_the_limit_are_refused(setup: Setup) -> None:
    headers = {f"X-H{index}": "1" for index in range(LIMITS["passthrough_max_headers"] + 1)}
    body = await setup.assert_refused_unsent("INPUT_TOO_LARGE", headers=headers)
    assert body["errors"][0]["extensions"]["max"] == LIMITS["passthrough_max_headers"]


async def test_a_header_over_the_size_limit_is_refused(setup: Setup) -> None:
    await setup.assert_refused_unsent(
        "INPUT_TOO_LARGE", headers={"X-Long": "x" * LIMITS["passthrough_max_header_bytes"]}
    )


@pytest.mark.parametrize(
    "path",
    ["/crm/v3/owners\x00", "/crm/v3/%00/owners", "/crm/v3/%2500/owners", "/crm/v3/owners?x=%00"],
    ids=["raw", "encoded", "double-encoded", "in-query"],
)
async def test_a_nul_byte_in_the_path_is_refused(setup: Setup, path: str) -> None:
    await setup.assert_refused_unsent("BAD_USER_INPUT", path=path)


async def test_a_path_over_the_url_limit_is_refused(setup: Setup) -> None:
    await setup.assert_refused_unsent("INPUT_TOO_LARGE", path="/crm/" + "x" * LIMITS["passthrough_max_url_bytes"])


async def test_query_parameters_over_the_url_limit_are_refused(setup: Setup) -> None:
    query = {"filter": "x" * LIMITS["passthrough_max_url_bytes"]}
    await setup.assert_refused_unsent("INPUT_TOO_LARGE", query=query)


async def test_many_short_query_parameters_over_the_url_limit_are_refused(setup: Setup) -> None:
    query = {"ids": ["1"] * LIMITS["passthrough_max_url_bytes"]}
    await setup.assert_refused_unsent("INPUT_TOO_LARGE", query=query)


async def test_a_query_parameter_with_a_nul_byte_is_refused(setup: Setup) -> None:
    await setup.assert_refused_unsent("BAD_USER_INPUT", "query", query={"q": "a\x00b"})


async def test_a_json_body_over_the_limit_is_refused(setup: Setup) -> None:
    body = {"properties": {"email": "x" * LIMITS["passthrough_max_body_bytes"]}}
    await setup.assert_refused_unsent("INPUT_TOO_LARGE", method="POST", body=body)


async def test_a_body_text_over_the_limit_is_refused(setup: Setup) -> None:
    # Counted in bytes: two-byte characters reach the limit at half as many characters.
    text = "\u00e9" * (LIMITS["passthrough_max_body_bytes"] // 2 + 1)
    await setup.assert_refused_unsent("INPUT_TOO_LARGE", method="POST", bodyText=text)


@pytest.mark.parametrize("where", ["variables", "document"])
async def test_a_lone_surrogate_is_refused_before_it_reaches_the_provider(setup: Setup, where: str) -> None:
    """Text that cannot be encoded to send: refused as malformed JSON or GraphQL, never an internal error."""
    before = setup.requests_seen()
    given = {"connectionId": setup.connection, "method": "POST", "path": OWNERS, "bodyText": "a\udc80b"}
    if where == "variables":
        payload: dict[str, Any] = {"query": CALL, "variables": {"input": given}}
    else:
        fields = ", ".join(f"{name}: {json.dumps(value)}" for name, value in given.items())
        payload = {"query": f"mutation {{ passthrough(input: {{{fields}}}) {{ status }} }}"}
    response = await setup.api.client.post(
        f"{setup.api.url}/graphql",
        content=json.dumps(payload),  # ASCII with \u escapes: the surrogate travels as JSON allows
        headers={"Authorization": f"Bearer {setup.tenant.api_key}", "Content-Type": "application/json"},
    )
    assert 400 <= response.status_code < 500 or error_codes(response.json()) in (
        ["BAD_USER_INPUT"],
        ["GRAPHQL_PARSE_FAILED"],
    ), response.text
    assert "INTERNAL_SERVER_ERROR" not in response.text
    assert setup.requests_seen() == before


async def test_a_json_body_within_the_limit_is_sent(setup: Setup, hubspot: HubSpotSandbox) -> None:
    body = {"properties": {"email": "within@example.org"}}
    result = data(await setup.call(method="POST", path="/crm/v3/objects/contacts", body=body))["passthrough"]
    assert result["status"] == 201
    assert result["json"]["id"] in hubspot.all_ids("contacts")

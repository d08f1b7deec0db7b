"""Persisted queries (Apollo's APQ protocol) and trusted documents, over real HTTP and WebSocket, on both
databases."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from gql import Client, gql
from gql.transport.exceptions import TransportQueryError
from gql.transport.websockets import WebsocketsTransport
from graphql import parse, print_ast

from connectors.kit.http import HttpKit
from gateway import cli
from gateway.documents import AutomaticPersistedQueries, ManifestLimits, ManifestRefused, read_manifest
from resolvers.limits import RequestLimits
from sync.storage.store import Store
from sync.tenancy import documents
from sync.tenancy.documents import NewDocument, TooManyDocuments, sha256_of
from tests.js_clients import JS_DIR, ClientFailed
from tests.support import Gateway, Tenant, data, error_codes, gateway, new_tenant

KEYS = "query Keys { apiKeys { name } }"
URIS = "query Uris { redirectUris }"
CHANGES = "subscription Changes { changes { cursor } }"
LIMITS = ManifestLimits(
    max_bytes=64 * 1024,
    max_documents=10,
    max_document_bytes=8 * 1024,
    request=RequestLimits(
        max_tokens=15_000,
        max_aliases=100,
        max_depth=20,
        max_operations=20,
        max_string_length=10_000,
        max_list_length=1_000,
        max_cost=20_000,
    ),
)


def persisted(sha256: str, version: object = 1) -> dict[str, Any]:
    return {"persistedQuery": {"version": version, "sha256Hash": sha256}}


@dataclass
class Api:
    api: Gateway
    tenant: Tenant

    async def post(self, body: dict[str, Any], key: str | None = None) -> tuple[int, dict[str, Any], Any]:
        response = await self.api.client.post(
            f"{self.api.url}/graphql",
            json=body,
            headers={"Authorization": f"Bearer {key or self.tenant.api_key}"},
        )
        return response.status_code, response.json(), response.headers

    async def get(self, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        response = await self.api.client.get(
            f"{self.api.url}/graphql",
            params=params,
            headers={"Authorization": f"Bearer {self.tenant.api_key}", "Accept": "application/json"},
        )
        return response.status_code, response.json()

    async def push(self, *documents_: str) -> documents.Pushed:
        checked = [NewDocument(sha256_of(d), d, ()) for d in documents_]
        return await documents.register_documents(self.api.runtime.store, self.tenant.platform_id, checked, limit=100)

    @property
    def ws_url(self) -> str:
        return self.api.url.replace("http://", "ws://") + "/graphql"


@pytest_asyncio.fixture
async def apq(store: Store, kit: HttpKit, secret_key: str, request: pytest.FixtureRequest) -> AsyncIterator[Api]:
    settings = getattr(request, "param", {})
    tenant = await new_tenant(store)
    async with gateway(store, kit, secret_key, **settings) as api:
        yield Api(api, tenant)


def message_and_code(body: dict[str, Any]) -> tuple[str, str]:
    error = body["errors"][0]
    return error["message"], error["extensions"]["code"]


# Automatic persisted queries


async def test_an_unknown_hash_is_not_found_as_apollo_clients_expect(apq: Api) -> None:
    status, body, headers = await apq.post({"extensions": persisted(sha256_of(KEYS))})
    assert status == 200
    assert message_and_code(body) == ("PersistedQueryNotFound", "PERSISTED_QUERY_NOT_FOUND")
    assert "no-cache" in headers["cache-control"]


async def test_the_document_sent_with_its_hash_runs_and_then_the_hash_alone_runs_it(apq: Api) -> None:
    sha256 = sha256_of(KEYS)
    status, first, _ = await apq.post({"query": KEYS, "extensions": persisted(sha256)})
    assert status == 200
    assert data(first)["apiKeys"] == [{"name": "default"}]
    _, by_post, _ = await apq.post({"extensions": persisted(sha256), "operationName": "Keys"})
    assert data(by_post) == data(first)
    _, by_get = await apq.get({"extensions": json.dumps(persisted(sha256))})
    assert data(by_get) == data(first)


async def test_a_hash_that_is_not_the_documents_is_refused_and_not_stored(apq: Api) -> None:
    wrong = sha256_of(URIS)
    status, body, _ = await apq.post({"query": KEYS, "extensions": persisted(wrong)})
    assert status == 400
    assert error_codes(body) == ["PERSISTED_QUERY_HASH_MISMATCH"]
    assert body["errors"][0]["extensions"]["expected"] == sha256_of(KEYS)
    _, after, _ = await apq.post({"extensions": persisted(wrong)})
    assert error_codes(after) == ["PERSISTED_QUERY_NOT_FOUND"]


@pytest.mark.parametrize(
    ("extension", "code"),
    [
        ({"persistedQuery": "abc"}, "BAD_USER_INPUT"),
        (persisted("not-a-hash"), "BAD_USER_INPUT"),
        (persisted("ab" * 31), "BAD_USER_INPUT"),
        (persisted(sha256_of(KEYS), version=2), "PERSISTED_QUERY_NOT_SUPPORTED"),
        (persisted(sha256_of(KEYS), version="1"), "PERSISTED_QUERY_NOT_SUPPORTED"),
    ],
    ids=["not-an-object", "not-hex", "too-short", "version-2", "version-as-text"],
)
async def test_malformed_persisted_queries_get_a_typed_error(apq: Api, extension: Any, code: str) -> None:
    status, body, _ = await apq.post({"query": KEYS, "extensions": extension})
    assert error_codes(body) == [code]
    assert status == (200 if code == "PERSISTED_QUERY_NOT_SUPPORTED" else 400)


@pytest.mark.parametrize("apq", [{"graphql_apq_enabled": False}], indirect=True)
async def test_with_apq_turned_off_a_hash_alone_is_not_supported(apq: Api) -> None:
    sha256 = sha256_of(KEYS)
    status, body, _ = await apq.post({"extensions": persisted(sha256)})
    assert (status, message_and_code(body)) == (200, ("PersistedQueryNotSupported", "PERSISTED_QUERY_NOT_SUPPORTED"))
    # The document with its hash still runs (checked), but is not remembered.
    _, sent, _ = await apq.post({"query": KEYS, "extensions": persisted(sha256)})
    assert data(sent)["apiKeys"] == [{"name": "default"}]
    _, again, _ = await apq.post({"extensions": persisted(sha256)})
    assert error_codes(again) == ["PERSISTED_QUERY_NOT_SUPPORTED"]
    # A document the platform registered is found by its hash all the same.
    await apq.push(KEYS)
    _, registered, _ = await apq.post({"extensions": persisted(sha256)})
    assert data(registered) == data(sent)


@pytest.mark.parametrize(
    "apq", [{"graphql_cost_budget": 30, "graphql_cost_window_seconds": 3600, "graphql_max_cost": 50}], indirect=True
)
async def test_a_stored_document_passes_the_limits_every_time_it_runs(apq: Api) -> None:
    sha256 = sha256_of(KEYS)  # costs 11: a list without a page size counts as 10 items
    _, first, _ = await apq.post({"query": KEYS, "extensions": persisted(sha256)})
    _, second, _ = await apq.post({"extensions": persisted(sha256)})
    assert data(first) == data(second)
    status, third, _ = await apq.post({"extensions": persisted(sha256)})
    assert (status, error_codes(third)) == (429, ["RATE_LIMITED"])  # 33 points of a budget of 30
    # Over the cost limit: refused when sent, and just as refused when named by its hash.
    costly = "query Costly { contacts(first: 100) { edges { node { id email } } } }"
    _, sent, _ = await apq.post({"query": costly, "extensions": persisted(sha256_of(costly))})
    _, again, _ = await apq.post({"extensions": persisted(sha256_of(costly))})
    assert error_codes(sent) == error_codes(again) == ["QUERY_TOO_COMPLEX"]


async def test_a_hash_stored_for_one_platform_is_unknown_to_another(apq: Api, store: Store) -> None:
    _, stored, _ = await apq.post({"query": KEYS, "extensions": persisted(sha256_of(KEYS))})
    data(stored)
    other = await new_tenant(store, "other")
    _, body, _ = await apq.post({"extensions": persisted(sha256_of(KEYS))}, key=other.api_key)
    assert error_codes(body) == ["PERSISTED_QUERY_NOT_FOUND"]


def test_the_apq_store_is_bounded_in_documents_and_bytes_and_keeps_the_recently_used() -> None:
    platform = uuid.uuid4()
    cache = AutomaticPersistedQueries(max_documents=3, max_bytes=100)
    for name in "abc":
        cache.put(platform, name, name * 10)
    assert cache.get(platform, "a") == "a" * 10  # now the most recently used
    cache.put(platform, "d", "d" * 10)
    assert [cache.get(platform, n) is not None for n in "abcd"] == [True, False, True, True]
    cache.put(platform, "e", "e" * 85)  # 115 bytes in all: the least recently used go until it fits
    assert len(cache) == 2 and cache.bytes == 95
    assert cache.get(platform, "e") is not None and cache.get(platform, "d") is not None
    cache.put(platform, "huge", "x" * 101)  # larger than the whole store: never stored
    assert cache.get(platform, "huge") is None and cache.bytes == 95
    assert cache.get(uuid.uuid4(), "e") is None  # another platform's


# Manifests


def test_manifests_in_the_common_formats_are_read_and_checked() -> None:
    by_sha256 = read_manifest(json.dumps({sha256_of(KEYS): KEYS}).encode(), "persisted-documents.json", LIMITS)
    assert [(d.sha256, d.operation_names) for d in by_sha256] == [(sha256_of(KEYS), ("Keys",))]
    # relay-compiler's default is MD5: checked with it, stored under the SHA-256 clients send.
    md5 = hashlib.md5(URIS.encode(), usedforsecurity=False).hexdigest()
    assert [d.sha256 for d in read_manifest(json.dumps({md5: URIS}).encode(), "q.json", LIMITS)] == [sha256_of(URIS)]
    apollo = {
        "format": "apollo-persisted-query-manifest",
        "version": 1,
        "operations": [{"id": sha256_of(KEYS), "body": KEYS, "name": "Keys", "type": "query"}],
    }
    assert [d.document for d in read_manifest(json.dumps(apollo).encode(), "manifest.json", LIMITS)] == [KEYS]
    operations = """
        query Keys { apiKeys { ...KeyName } }
        fragment KeyName on ApiKey { name }
        fragment Unused on ApiKey { prefix }
        query Uris { redirectUris }
    """
    read = read_manifest(operations.encode(), "operations.graphql", LIMITS)
    assert [d.operation_names for d in read] == [("Keys",), ("Uris",)]
    assert "fragment KeyName" in read[0].document and "Unused" not in read[0].document
    assert read[1].sha256 == sha256_of(read[1].document)


@pytest.mark.parametrize(
    ("content", "name", "reason"),
    [
        (b"{not json", "m.json", "not valid JSON"),
        (b'["query { apiKeys { name } }"]', "m.json", "must map each document's hash"),
        (json.dumps({sha256_of(URIS): KEYS}).encode(), "m.json", "does not match the document, whose SHA-256"),
        (json.dumps({"Keys": KEYS}).encode(), "m.json", "not a hash of the document"),
        (json.dumps({sha256_of("query { nope }"): "query { nope }"}).encode(), "m.json", "Cannot query field 'nope'"),
        (json.dumps({sha256_of("query {"): "query {"}).encode(), "m.json", "does not parse"),
        (b"{ apiKeys { name } }", "ops.graphql", "needs a name"),
        (b"x" * (LIMITS.max_bytes + 1), "m.json", "more than the 65536 allowed"),
        (
            json.dumps(
                {sha256_of(f"query Q{i} {{ redirectUris }}"): f"query Q{i} {{ redirectUris }}" for i in range(11)}
            ).encode(),
            "m.json",
            "more than the 10",
        ),
        (b"{}", "m.json", "no documents"),
    ],
    ids=[
        "bad-json",
        "not-a-map",
        "hash-mismatch",
        "not-a-hash",
        "invalid",
        "syntax",
        "anonymous",
        "oversize",
        "too-many",
        "empty",
    ],
)
def test_a_bad_manifest_is_refused_with_the_reason(content: bytes, name: str, reason: str) -> None:
    with pytest.raises(ManifestRefused) as refused:
        read_manifest(content, name, LIMITS)
    assert reason in refused.value.message


def test_every_refused_document_of_a_manifest_is_named() -> None:
    manifest = {sha256_of(KEYS): KEYS, sha256_of("query { nope }"): "query { nope }", "f" * 64: URIS}
    with pytest.raises(ManifestRefused) as refused:
        read_manifest(json.dumps(manifest).encode(), "m.json", LIMITS)
    message = refused.value.message
    assert message.startswith("2 of 3 documents refused; nothing was stored")
    assert sha256_of("query { nope }") in message and "f" * 64 in message and sha256_of(KEYS) not in message


def test_a_document_over_the_limits_is_refused_in_a_manifest() -> None:
    costly = "query Costly { contacts(first: 100) { edges { node { id } } } }"
    tight = ManifestLimits(64 * 1024, 10, 8 * 1024, RequestLimits(15_000, 100, 20, 20, 10_000, 1_000, 50))
    with pytest.raises(ManifestRefused) as refused:
        read_manifest(json.dumps({sha256_of(costly): costly}).encode(), "m.json", tight)
    assert "points of estimated cost" in refused.value.message


async def test_pushing_is_idempotent_and_all_or_nothing(store: Store) -> None:
    platform = await new_tenant(store)
    first = await documents.register_documents(store, platform.platform_id, [_new(KEYS)], limit=2)
    again = await documents.register_documents(store, platform.platform_id, [_new(KEYS), _new(URIS)], limit=2)
    assert (first, again) == (documents.Pushed(1, 0), documents.Pushed(1, 1))
    with pytest.raises(TooManyDocuments):
        await documents.register_documents(store, platform.platform_id, [_new(CHANGES)], limit=2)
    listed = await documents.list_documents(store, platform.platform_id)
    assert sorted(d.sha256 for d in listed) == sorted([sha256_of(KEYS), sha256_of(URIS)])
    assert await documents.remove_documents(store, platform.platform_id, [sha256_of(KEYS)]) == 1
    assert [d.sha256 for d in await documents.list_documents(store, platform.platform_id)] == [sha256_of(URIS)]


def _new(document: str) -> NewDocument:
    return NewDocument(sha256_of(document), document, ())


# Trusted documents mode


async def test_a_trusted_only_platform_runs_only_its_registered_documents(apq: Api, store: Store) -> None:
    await apq.push(KEYS)
    assert await documents.set_trusted_only(store, apq.tenant.platform_id, True)
    _, ad_hoc, _ = await apq.post({"query": URIS})
    assert error_codes(ad_hoc) == ["QUERY_NOT_IN_SAFELIST"]
    _, unknown, _ = await apq.post({"extensions": persisted(sha256_of(URIS))})
    assert error_codes(unknown) == ["PERSISTED_QUERY_NOT_FOUND"]
    # Apollo's fallback after that (the document with its hash) is refused too, and not remembered.
    _, fallback, _ = await apq.post({"query": URIS, "extensions": persisted(sha256_of(URIS))})
    assert error_codes(fallback) == ["QUERY_NOT_IN_SAFELIST"]
    _, by_text, _ = await apq.post({"query": KEYS})
    _, by_hash, _ = await apq.post({"extensions": persisted(sha256_of(KEYS))})
    assert data(by_text) == data(by_hash) == {"apiKeys": [{"name": "default"}]}
    # Removed: refused again; mode off: anything runs.
    await documents.remove_documents(store, apq.tenant.platform_id, None)
    _, removed, _ = await apq.post({"query": KEYS})
    assert error_codes(removed) == ["QUERY_NOT_IN_SAFELIST"]
    await documents.set_trusted_only(store, apq.tenant.platform_id, False)
    _, off, _ = await apq.post({"query": URIS})
    assert data(off) == {"redirectUris": []}


async def test_another_platforms_documents_are_not_trusted(apq: Api, store: Store) -> None:
    await apq.push(KEYS)
    other = await new_tenant(store, "other")
    await documents.set_trusted_only(store, other.platform_id, True)
    _, by_text, _ = await apq.post({"query": KEYS}, key=other.api_key)
    _, by_hash, _ = await apq.post({"extensions": persisted(sha256_of(KEYS))}, key=other.api_key)
    assert (error_codes(by_text), error_codes(by_hash)) == (["QUERY_NOT_IN_SAFELIST"], ["PERSISTED_QUERY_NOT_FOUND"])


@pytest.mark.parametrize(
    "protocol", [WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL, WebsocketsTransport.APOLLO_SUBPROTOCOL]
)
async def test_trusted_documents_apply_on_websockets(apq: Api, store: Store, protocol: str) -> None:
    await apq.push(print_ast(parse(KEYS)))  # gql sends documents as graphql-core prints them
    await documents.set_trusted_only(store, apq.tenant.platform_id, True)
    transport = WebsocketsTransport(
        url=apq.ws_url,
        init_payload={"Authorization": f"Bearer {apq.tenant.api_key}"},
        subprotocols=[protocol],
        ack_timeout=5,
    )
    async with Client(transport=transport) as session:
        with pytest.raises(TransportQueryError) as refused:
            async for _ in session.subscribe(gql(CHANGES)):
                break
        assert refused.value.errors is not None
        assert refused.value.errors[0]["extensions"]["code"] == "QUERY_NOT_IN_SAFELIST"
        if protocol == WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL:  # the legacy protocol carries subscriptions only
            assert await session.execute(gql(KEYS)) == {"apiKeys": [{"name": "default"}]}


# relay-compiler's persisted queries


RELAY_QUERY = """import { graphql } from "react-relay";
export const query = graphql`query KeysQuery { apiKeys { name } }`;
"""


@pytest.fixture(scope="module")
def relay_manifests(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """relay-compiler's persisted-query output for one query, with its default hash (MD5) and with SHA-256."""
    compiler = JS_DIR / "node_modules" / ".bin" / "relay-compiler"
    if not compiler.exists():
        raise ClientFailed("relay-compiler is not installed: run `make clients`")
    manifests = {}
    for algorithm in ("MD5", "SHA256"):
        project = tmp_path_factory.mktemp(f"relay-{algorithm}")
        (project / "src").mkdir()
        (project / "src" / "Keys.js").write_text(RELAY_QUERY)
        (project / "__generated__").mkdir()
        manifests[algorithm] = project / "persisted_queries.json"
        manifests[algorithm].write_text("{}")  # relay-compiler adds to the file it is given
        config = {
            "src": "./src",
            "schema": str(Path(__file__).resolve().parent.parent / "schema.graphql"),
            "language": "javascript",
            "artifactDirectory": "./__generated__",
            "persistConfig": {"file": "./persisted_queries.json", "algorithm": algorithm},
        }
        (project / "relay.config.json").write_text(json.dumps(config))
        compiled = subprocess.run(  # noqa: S603 - the pinned relay-compiler
            [str(compiler)], cwd=project, capture_output=True, text=True, timeout=120
        )
        assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    return manifests


async def test_relay_compilers_persisted_queries_are_registered_and_run(
    apq: Api, relay_manifests: dict[str, Path], store: Store
) -> None:
    limits = ManifestLimits(64 * 1024, 10, 8 * 1024, apq.api.runtime.services.limits)
    by_md5 = read_manifest(relay_manifests["MD5"].read_bytes(), "persisted_queries.json", limits)
    by_sha256 = read_manifest(relay_manifests["SHA256"].read_bytes(), "persisted_queries.json", limits)
    assert by_md5 == by_sha256 and [d.operation_names for d in by_sha256] == [("KeysQuery",)]
    [relay_id] = json.loads(relay_manifests["SHA256"].read_text())
    await documents.register_documents(store, apq.tenant.platform_id, by_sha256, limit=10)
    await documents.set_trusted_only(store, apq.tenant.platform_id, True)
    _, body, _ = await apq.post({"extensions": persisted(relay_id), "operationName": "KeysQuery"})
    [key] = data(body)["apiKeys"]
    assert key["name"] == "default" and key["id"]  # relay-compiler asks for every Node's id


# The command line


async def test_the_documents_commands(
    store: Store,
    database_url: str,
    secret_key: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("XKIT_DATABASE_URL", database_url)
    monkeypatch.setenv("XKIT_SECRET_KEY", secret_key)
    tenant = await new_tenant(store)
    platform = str(tenant.platform_id)

    async def xkit(*argv: str) -> str:
        await asyncio.to_thread(cli.main, list(argv))
        return capsys.readouterr().out.strip()

    manifest = tmp_path / "persisted-documents.json"
    manifest.write_text(json.dumps({sha256_of(KEYS): KEYS, sha256_of(URIS): URIS}))
    assert await xkit("documents", "push", str(manifest), "--platform", platform) == "added 2, unchanged 0"
    assert await xkit("documents", "push", str(manifest), "--platform", platform) == "added 0, unchanged 2"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({sha256_of(CHANGES): CHANGES, sha256_of(URIS): "query { nope }"}))
    with pytest.raises(SystemExit) as refused:
        await xkit("documents", "push", str(bad), "--platform", platform)
    assert "1 of 2 documents refused; nothing was stored" in str(refused.value.code)
    listed = await xkit("documents", "list", "--platform", platform)
    assert sha256_of(KEYS) in listed and "Keys" in listed and sha256_of(CHANGES) not in listed
    assert listed.endswith("2 documents; trusted documents only: off")
    assert (await xkit("documents", "trusted-only", "on", "--platform", platform)).startswith(
        "trusted documents only: on"
    )
    assert await documents.trusted_only(store, tenant.platform_id)
    assert await xkit("documents", "remove", sha256_of(KEYS), "--platform", platform) == "removed 1"
    with pytest.raises(SystemExit) as missing:
        await xkit("documents", "remove", sha256_of(KEYS), "--platform", platform)
    assert "none of these hashes" in str(missing.value.code)
    assert await xkit("documents", "remove", "--all", "--platform", platform) == "removed 1"
    with pytest.raises(SystemExit):
        await xkit("documents", "push", str(tmp_path / "missing.json"), "--platform", platform)
    with pytest.raises(SystemExit) as no_platform:
        await xkit("documents", "push", str(manifest), "--platform", str(uuid.uuid4()))
    assert "no platform with id" in str(no_platform.value.code)

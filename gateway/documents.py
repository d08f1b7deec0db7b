"""Persisted queries over HTTP: Apollo's Automatic Persisted Queries, and documents a platform registered.

A request whose `extensions.persistedQuery` carries `{version: 1, sha256Hash}` (in a POST body, or as the
`extensions` parameter of a GET) without a `query` is given the document of that hash, looked up among the
platform's registered documents (`xkit documents push`) and then in this process's APQ store; an unknown
hash gets `PERSISTED_QUERY_NOT_FOUND`, on which Apollo's clients send the document with its hash, which is
checked and stored. Either way the document then goes through parsing, validation and the limits like any
other, every time it runs. Whether a platform's documents must be registered is checked later, on every
transport alike (schema/documents.py).

The APQ store is a cache, bounded in documents and bytes and kept per process (least recently used first
out): a miss costs the client one round trip that the protocol already defines, so it needs neither the
database (where any caller could then write rows) nor sharing between processes.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson
from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    OperationDefinitionNode,
    parse,
    print_ast,
    validate,
    visit,
)
from graphql.language import Visitor
from starlette.types import Scope

from connectors.kit.errors import BadInput, XkitError
from resolvers.limits import RequestLimits
from schema import schema
from schema.limits import check_document, shape_of
from sync.storage.store import Store
from sync.tenancy import documents
from sync.tenancy.documents import NewDocument, PersistedQueryNotFound, PersistedQueryNotSupported, sha256_of

APQ_VERSION = 1
SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
# The hashes relay-compiler and graphql-codegen may be configured to write, by length in hex digits.
MANIFEST_HASHES = {32: ("md5", "MD5"), 40: ("sha1", "SHA-1"), 64: ("sha256", "SHA-256")}
# Apollo Server answers both refusals with 200 and this header: the client is about to fill the store.
UNCACHED = {"Cache-Control": "private, no-cache, must-revalidate"}
MAX_REASONS_SHOWN = 20


# The two answers on which Apollo's clients send the document (and, on the second, stop sending hashes).
PersistedQueryUnknown = (PersistedQueryNotFound, PersistedQueryNotSupported)


class PersistedQueryHashMismatch(BadInput):
    code = "PERSISTED_QUERY_HASH_MISMATCH"


class ManifestRefused(BadInput):
    """A manifest with at least one document that cannot be registered; none of it was stored."""


class AutomaticPersistedQueries:
    """Documents by platform and SHA-256, at most `max_documents` of them and `max_bytes` of text in all."""

    def __init__(self, max_documents: int, max_bytes: int) -> None:
        self.max_documents = max_documents
        self.max_bytes = max_bytes
        self.bytes = 0
        self._documents: OrderedDict[tuple[uuid.UUID, str], str] = OrderedDict()

    def __len__(self) -> int:
        return len(self._documents)

    def get(self, platform_id: uuid.UUID, sha256: str) -> str | None:
        key = (platform_id, sha256)
        document = self._documents.get(key)
        if document is not None:
            self._documents.move_to_end(key)
        return document

    def put(self, platform_id: uuid.UUID, sha256: str, document: str) -> None:
        size = len(document.encode())
        key = (platform_id, sha256)
        if size > self.max_bytes or key in self._documents:
            return
        self._documents[key] = document
        self.bytes += size
        while len(self._documents) > self.max_documents or self.bytes > self.max_bytes:
            _, evicted = self._documents.popitem(last=False)
            self.bytes -= len(evicted.encode())


class PersistedQueries:
    """Gives a persisted-query request its document before strawberry reads the request."""

    def __init__(self, store: Store, *, apq_enabled: bool, max_documents: int, max_bytes: int) -> None:
        self.store = store
        self.apq_enabled = apq_enabled
        self.apq = AutomaticPersistedQueries(max_documents, max_bytes)

    async def resolve(self, scope: Scope, body: bytes, platform_id: uuid.UUID) -> bytes:
        """The body to hand on to strawberry (a GET's query string is rewritten in `scope`)."""
        if scope["method"] == "GET":
            query_string: bytes = scope.get("query_string", b"")
            if b"persistedQuery" in query_string:
                params = dict(parse_qsl(query_string.decode(errors="replace"), keep_blank_values=True))
                try:
                    extensions = orjson.loads(params.get("extensions", ""))
                except orjson.JSONDecodeError:
                    return body  # strawberry refuses it as it refuses any malformed request
                document = await self.query_for(params.get("query"), extensions, platform_id)
                if document is not None:
                    scope["query_string"] = urlencode({**params, "query": document}).encode()
            return body
        if b"persistedQuery" not in body:
            return body
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError:
            return body
        if not isinstance(request, dict):
            return body
        document = await self.query_for(request.get("query"), request.get("extensions"), platform_id)
        return body if document is None else orjson.dumps({**request, "query": document})

    async def query_for(self, query: object, extensions: object, platform_id: uuid.UUID) -> str | None:
        """The document to run for a request that names one by hash alone; None to run the request as it came
        (after checking and storing a document sent with its hash). Raises PERSISTED_QUERY_* refusals."""
        if not isinstance(extensions, dict) or "persistedQuery" not in extensions:
            return None
        sha256 = self._hash_of(extensions["persistedQuery"])
        if query is None or query == "":
            return await self._stored(platform_id, sha256)
        if isinstance(query, str):
            if sha256_of(query) != sha256:
                raise PersistedQueryHashMismatch(
                    "extensions.persistedQuery.sha256Hash is not the SHA-256 of the query sent with it",
                    field="extensions.persistedQuery.sha256Hash",
                    expected=sha256_of(query),
                )
            if self.apq_enabled and not await documents.trusted_only(self.store, platform_id):
                self.apq.put(platform_id, sha256, query)
        return None

    @staticmethod
    def _hash_of(persisted: object) -> str:
        if not isinstance(persisted, dict):
            raise BadInput(
                "extensions.persistedQuery must be an object: {version: 1, sha256Hash}",
                field="extensions.persistedQuery",
            )
        version = persisted.get("version")
        if version != APQ_VERSION:
            raise PersistedQueryNotSupported(
                "PersistedQueryNotSupported", reason=f"persisted query version {version!r} is unknown; send 1"
            )
        sha256 = persisted.get("sha256Hash")
        if not isinstance(sha256, str) or not SHA256_HEX.fullmatch(sha256):
            raise BadInput(
                "extensions.persistedQuery.sha256Hash must be the SHA-256 of the document in 64 hexadecimal digits",
                field="extensions.persistedQuery.sha256Hash",
            )
        return sha256.lower()

    async def _stored(self, platform_id: uuid.UUID, sha256: str) -> str:
        document = self.apq.get(platform_id, sha256)
        if document is None:
            document = await documents.registered_document(self.store, platform_id, sha256)
            if document is not None:
                self.apq.put(platform_id, sha256, document)
        if document is not None:
            return document
        if self.apq_enabled or await documents.trusted_only(self.store, platform_id):
            raise PersistedQueryNotFound("PersistedQueryNotFound")
        raise PersistedQueryNotSupported(
            "PersistedQueryNotSupported", reason="automatic persisted queries are turned off on this gateway"
        )


@dataclass(frozen=True)
class ManifestLimits:
    max_bytes: int
    max_documents: int
    max_document_bytes: int
    request: RequestLimits


def read_manifest(content: bytes, name: str, limits: ManifestLimits) -> list[NewDocument]:
    """The documents of a manifest, each checked: a JSON map of hash to document (relay-compiler's
    persisted queries, graphql-codegen's persisted documents), Apollo's persisted query manifest, or a
    .graphql file of named operations. Any refusal refuses the whole manifest, with every reason."""
    if len(content) > limits.max_bytes:
        raise ManifestRefused(
            f"the manifest has {len(content)} bytes, more than the {limits.max_bytes} allowed",
            limit="manifestBytes",
            maximum=limits.max_bytes,
        )
    try:
        text = content.decode()
    except UnicodeDecodeError:
        raise ManifestRefused("the manifest is not UTF-8 text") from None
    entries = _operations_file(text) if name.endswith((".graphql", ".gql")) else _json_manifest(text)
    if len(entries) > limits.max_documents:
        raise ManifestRefused(
            f"the manifest has {len(entries)} documents, more than the {limits.max_documents} a platform may register",
            limit="documents",
            maximum=limits.max_documents,
        )
    checked: list[NewDocument] = []
    reasons: list[str] = []
    for claimed, document in entries:
        try:
            checked.append(_checked(claimed, document, limits))
        except XkitError as refused:
            reasons.append(f"{claimed or _first_line(document)}: {refused.message}")
    if reasons:
        shown = "\n  ".join(reasons[:MAX_REASONS_SHOWN])
        more = f"\n  ... and {len(reasons) - MAX_REASONS_SHOWN} more" if len(reasons) > MAX_REASONS_SHOWN else ""
        summary = f"{len(reasons)} of {len(entries)} documents refused; nothing was stored"
        raise ManifestRefused(f"{summary}:\n  {shown}{more}")
    if not checked:
        raise ManifestRefused("the manifest has no documents")
    return checked


def _json_manifest(text: str) -> list[tuple[str | None, str]]:
    try:
        manifest = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise ManifestRefused(f"the manifest is not valid JSON: {error}") from None
    if isinstance(manifest, dict) and manifest.get("format") == "apollo-persisted-query-manifest":
        operations = manifest.get("operations")
        if not isinstance(operations, list) or not all(
            isinstance(o, dict) and isinstance(o.get("id"), str) and isinstance(o.get("body"), str) for o in operations
        ):
            raise ManifestRefused("an Apollo manifest's `operations` must be a list of {id, body, name, type}")
        return [(o["id"], o["body"]) for o in operations]
    if not isinstance(manifest, dict) or not all(isinstance(v, str) for v in manifest.values()):
        raise ManifestRefused(
            'a JSON manifest must map each document\'s hash to its text ({"<sha256>": "query ..."}), as '
            "relay-compiler and graphql-codegen write it, or be an Apollo persisted query manifest"
        )
    return list(manifest.items())


def _operations_file(text: str) -> list[tuple[str | None, str]]:
    """Each named operation of a .graphql file, with the fragments it uses, printed as one document."""
    try:
        parsed = parse(text)
    except GraphQLError as error:
        raise ManifestRefused(f"the file is not a GraphQL document: {error.message}") from None
    fragments = {d.name.value: d for d in parsed.definitions if isinstance(d, FragmentDefinitionNode)}
    entries: list[tuple[str | None, str]] = []
    for definition in parsed.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        if definition.name is None:
            raise ManifestRefused("every operation in a .graphql manifest needs a name")
        used = _fragments_used(definition, fragments)
        document = DocumentNode(definitions=(definition, *(fragments[name] for name in fragments if name in used)))
        entries.append((None, print_ast(document)))
    return entries


def _fragments_used(operation: OperationDefinitionNode, fragments: Mapping[str, FragmentDefinitionNode]) -> set[str]:
    used: set[str] = set()
    pending: list[Any] = [operation]
    while pending:
        names = _spreads_in(pending.pop())
        for name in names - used:
            used.add(name)
            if name in fragments:
                pending.append(fragments[name])
    return used


def _spreads_in(node: Any) -> set[str]:
    names: set[str] = set()

    class Spreads(Visitor):
        def enter_fragment_spread(self, spread: FragmentSpreadNode, *_: object) -> None:
            names.add(spread.name.value)

    visit(node, Spreads())
    return names


def _checked(claimed: str | None, document: str, limits: ManifestLimits) -> NewDocument:
    size = len(document.encode())
    if size > limits.max_document_bytes:
        raise ManifestRefused(f"the document has {size} bytes, more than the {limits.max_document_bytes} allowed")
    sha256 = sha256_of(document)
    if claimed is not None:
        _check_claimed_hash(claimed, document)
    try:
        parsed = parse(document, max_tokens=limits.request.max_tokens)
    except GraphQLError as error:
        raise ManifestRefused(f"does not parse: {error.message}") from None
    errors = validate(schema._schema, parsed)
    if errors:
        raise ManifestRefused(f"does not validate against the schema: {errors[0].message}")
    operations = [d for d in parsed.definitions if isinstance(d, OperationDefinitionNode)]
    if not operations:
        raise ManifestRefused("defines no operation")
    names = tuple(d.name.value if d.name else "" for d in operations)
    shape = shape_of(document, parsed)
    for name in names:
        check_document(shape, parsed, schema._schema, limits.request, name or None)
    return NewDocument(sha256, document, names)


def _check_claimed_hash(claimed: str, document: str) -> None:
    known = MANIFEST_HASHES.get(len(claimed)) if re.fullmatch(r"[0-9a-fA-F]+", claimed) else None
    if known is None:
        raise ManifestRefused("the key is not a hash of the document (MD5, SHA-1 or SHA-256 in hexadecimal)")
    algorithm, name = known
    actual = hashlib.new(algorithm, document.encode()).hexdigest()
    if actual != claimed.lower():
        raise PersistedQueryHashMismatch(f"the key does not match the document, whose {name} is {actual}")


def _first_line(document: str) -> str:
    line = next((line.strip() for line in document.splitlines() if line.strip()), "")
    return line[:60]


def operation_summary(names: Iterable[str]) -> str:
    return ", ".join(name or "(anonymous)" for name in names)

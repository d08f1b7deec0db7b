"""`POST /services/data/vXX.X/composite`: several REST calls in one request, counted as one API call.

Body `{"allOrNone"?, "collateSubrequests"?, "compositeRequest": [{"method", "url", "referenceId",
"body"?, "httpHeaders"?}]}` (at most 25 subrequests, at most 5 of them query operations); answer
`{"compositeResponse": [{"body", "httpHeaders", "httpStatusCode", "referenceId"}]}` with HTTP 200 even
when subrequests fail. With allOrNone, every other subrequest of a failed request answers 400
PROCESSING_HALTED. (Developer guide: "Send Multiple Requests Using Composite", Composite Request and
Response Body.) Salesforce recommends it for SOQL too long for a URL (Help article 000386264): the query
travels in the JSON body, where the 16,384-byte URI limit does not apply.

The sandbox serves the query subrequests: GET query and queryAll with `q`, and their `nextRecordsUrl`
cursors, with an optional `Sforce-Query-Options` header. Anything else is refused in Salesforce's error
array, as the subrequest's answer; an unknown resource is 404 NOT_FOUND as it would be outside Composite.
The messages of the top-level refusals are not documented; they follow the errors' documented shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from connectors.salesforce.sandbox.errors import SalesforceError, bad_request, json_parser_error, not_found
from connectors.salesforce.sandbox.versions import served_root

MAX_SUBREQUESTS = 25
MAX_QUERY_SUBREQUESTS = 5
TOP_LEVEL_KEYS = frozenset({"allOrNone", "collateSubrequests", "compositeRequest"})
SUBREQUEST_KEYS = frozenset({"method", "url", "referenceId", "body", "httpHeaders"})
QUERY_OPTIONS = "sforce-query-options"
# Resources the sandbox serves outside Composite but not as subrequests; any other is unknown (404).
OTHER_RESOURCES = frozenset({"sobjects", "limits", "composite"})
HALTED = SalesforceError(
    400, "PROCESSING_HALTED", "The transaction was rolled back since another operation in the same transaction failed."
)

# (resource, locator or None, SOQL or None, Sforce-Query-Options or None) -> query result
QueryRunner = Callable[[str, str | None, str | None, str | None], dict[str, Any]]


def run_composite(raw: bytes, api_root: str, run_query: QueryRunner) -> dict[str, Any]:
    try:
        body = orjson.loads(raw or b"")
    except orjson.JSONDecodeError as problem:
        raise json_parser_error(f"{problem.msg} at [line:{problem.lineno}, column:{problem.colno}]") from None
    if not isinstance(body, dict) or not isinstance(body.get("compositeRequest"), list):
        raise bad_request("INVALID_API_INPUT", "compositeRequest: a list of subrequests is required")
    unknown = sorted(set(body) - TOP_LEVEL_KEYS)
    if unknown:
        raise json_parser_error(f'Unrecognized field "{unknown[0]}" in the composite request')
    subrequests: list[Any] = body["compositeRequest"]
    if not 1 <= len(subrequests) <= MAX_SUBREQUESTS:
        raise bad_request("INVALID_API_INPUT", f"compositeRequest takes 1 to {MAX_SUBREQUESTS} subrequests")
    for flag in ("allOrNone", "collateSubrequests"):
        if flag in body and not isinstance(body[flag], bool):
            raise json_parser_error(f"{flag}: a boolean is required")
    references: set[str] = set()
    for subrequest in subrequests:
        _check_subrequest(subrequest, references)
    queries = sum(1 for s in subrequests if _is_query(s["url"], api_root))
    if queries > MAX_QUERY_SUBREQUESTS:
        raise bad_request(
            "INVALID_API_INPUT", f"A composite request can have at most {MAX_QUERY_SUBREQUESTS} query subrequests"
        )
    results: list[tuple[str, int, Any]] = []
    failed = False
    for subrequest in subrequests:
        try:
            answer: Any = _serve(subrequest, api_root, run_query)
            results.append((subrequest["referenceId"], 200, answer))
        except SalesforceError as refused:
            failed = True
            results.append((subrequest["referenceId"], refused.status, refused.body()))
    if failed and body.get("allOrNone"):
        results = [
            (ref, status, answer) if status >= 400 else (ref, HALTED.status, HALTED.body())
            for ref, status, answer in results
        ]
    return {
        "compositeResponse": [
            {"body": answer, "httpHeaders": {}, "httpStatusCode": status, "referenceId": ref}
            for ref, status, answer in results
        ]
    }


def _check_subrequest(subrequest: Any, references: set[str]) -> None:
    if not isinstance(subrequest, dict):
        raise json_parser_error("compositeRequest: each subrequest is a JSON object")
    unknown = sorted(set(subrequest) - SUBREQUEST_KEYS)
    if unknown:
        raise json_parser_error(f'Unrecognized field "{unknown[0]}" in a composite subrequest')
    for name in ("method", "url", "referenceId"):
        if not isinstance(subrequest.get(name), str) or not subrequest[name]:
            raise bad_request("INVALID_API_INPUT", f"{name}: a value is required in every composite subrequest")
    reference = subrequest["referenceId"]
    if not reference.replace("_", "").isalnum() or not reference[0].isalpha():
        raise bad_request(
            "INVALID_API_INPUT", f"referenceId {reference!r}: letters, digits and underscores, starting with a letter"
        )
    if reference in references:
        raise bad_request("INVALID_API_INPUT", f"Duplicate referenceId provided in the request: {reference}")
    references.add(reference)
    headers = subrequest.get("httpHeaders")
    if headers is not None and not isinstance(headers, dict):
        raise json_parser_error("httpHeaders: a JSON object of header names and values is required")


def _is_query(url: str, api_root: str) -> bool:
    path = served_root(urlsplit(url).path.rstrip("/")) or ""
    return path.startswith((f"{api_root}/query", f"{api_root}/queryAll"))


def _serve(subrequest: dict[str, Any], api_root: str, run_query: QueryRunner) -> dict[str, Any]:
    parts = urlsplit(subrequest["url"])
    path = served_root(parts.path.rstrip("/"))
    if path is None or not path.startswith(api_root + "/"):
        raise not_found()
    resource, _, locator = path.removeprefix(api_root + "/").partition("/")
    if resource not in ("query", "queryAll"):
        if resource not in OTHER_RESOURCES:
            raise not_found()
        raise bad_request(
            "INVALID_API_INPUT",
            f"This sandbox's composite resource serves query subrequests only, not {subrequest['method']} {path}",
        )
    if subrequest["method"] != "GET":
        raise SalesforceError(
            405, "METHOD_NOT_ALLOWED", f"HTTP Method '{subrequest['method']}' not allowed. Allowed are GET,HEAD"
        )
    if "body" in subrequest:
        raise bad_request("INVALID_API_INPUT", "A GET subrequest takes no body")
    headers = {str(k).lower(): str(v) for k, v in (subrequest.get("httpHeaders") or {}).items()}
    unsupported = sorted(set(headers) - {QUERY_OPTIONS})
    if unsupported:
        raise bad_request("INVALID_API_INPUT", f"This sandbox does not support the header {unsupported[0]} here")
    params = parse_qs(parts.query, keep_blank_values=True)
    if locator:
        if params:
            raise bad_request("INVALID_API_INPUT", f"A query cursor takes no parameters: {sorted(params)[0]}")
        return run_query(resource, locator, None, headers.get(QUERY_OPTIONS))
    unknown = sorted(set(params) - {"q"})
    if unknown:
        raise bad_request("INVALID_API_INPUT", f"The query resource does not take the parameter {unknown[0]}")
    return run_query(resource, None, (params.get("q") or [""])[-1], headers.get(QUERY_OPTIONS))

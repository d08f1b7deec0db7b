"""Apollo Client's multipart subscriptions: the event streams of gateway/sse.py framed as multipart/mixed.

A request that accepts `multipart/mixed` with `subscriptionSpec=1.0` gets one JSON part per result, as
`{"payload": result}`, an empty `{}` part as the keep-alive, and the closing boundary when the operation
completes. A revoked key's last part is `{"payload": null, "errors": [...]}`, which Apollo reports as a
protocol error.
"""

from __future__ import annotations

from typing import Any, ClassVar

import orjson
from strawberry.http import GraphQLHTTPResponse

from gateway.graphql_http import media_ranges
from gateway.sse import Framing

BOUNDARY = b"graphql"
PART_HEADERS = b"\r\ncontent-type: application/json; charset=utf-8\r\n\r\n"


def accepts_multipart_subscription(accept: str) -> bool:
    return any(
        r.quality > 0 and r.name == "multipart/mixed" and "subscriptionspec" in r.parameters
        for r in media_ranges(accept)
    )


class MultipartFraming(Framing):
    media_type: ClassVar[str] = 'multipart/mixed;boundary="graphql";subscriptionSpec="1.0"'

    def opening(self) -> bytes:
        return b"\r\n--" + BOUNDARY

    def next_event(self, operation_id: str | None, payload: GraphQLHTTPResponse) -> bytes:
        return self._part({"payload": payload})

    def complete_event(self, operation_id: str | None) -> bytes:
        return b"--\r\n"

    def keep_alive(self) -> bytes:
        return self._part({})

    def refused(self, operation_id: str | None, error: dict[str, Any]) -> bytes:
        return self._part({"payload": None, "errors": [error]}) + self.complete_event(operation_id)

    @staticmethod
    def _part(body: object) -> bytes:
        return PART_HEADERS + orjson.dumps(body) + b"\r\n--" + BOUNDARY

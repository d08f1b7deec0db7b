"""Provider answers read within a size limit, counted on the decoded bytes (a gzip bomb stops at the limit)."""

from __future__ import annotations

import httpx2

from connectors.kit.errors import ResponseTooLarge

# The body is decoded here, so what the caller gets is plain bytes: these no longer describe it.
_ENCODING_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


async def read_within(response: httpx2.Response, max_bytes: int) -> bytes:
    """The decoded body of a streamed response, refused as soon as it is known to exceed `max_bytes`.

    httpx2 inflates in bounded pieces, so memory stays near the limit whatever the compression ratio.
    """
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise ResponseTooLarge(f"the provider's answer is larger than the limit of {max_bytes} bytes")
    body = bytearray()
    async for chunk in response.aiter_bytes():
        if len(body) + len(chunk) > max_bytes:
            raise ResponseTooLarge(f"the provider's answer is larger than the limit of {max_bytes} bytes")
        body += chunk
    return bytes(body)


def decoded(response: httpx2.Response, content: bytes, request: httpx2.Request | None = None) -> httpx2.Response:
    """`response` with `content` as its already decoded body."""
    headers = [(name, value) for name, value in response.headers.multi_items() if name not in _ENCODING_HEADERS]
    extensions = {k: v for k, v in response.extensions.items() if k in ("http_version", "reason_phrase")}
    return httpx2.Response(
        response.status_code, headers=headers, content=content, request=request, extensions=extensions
    )


class BoundedBodies(httpx2.AsyncBaseTransport):
    """A transport whose answers are read whole, decoded and within `max_bytes`, before anyone sees them.

    For clients whose requests a library sends (authlib's token calls), where the caller cannot stream.
    """

    def __init__(self, inner: httpx2.AsyncBaseTransport, max_bytes: int) -> None:
        self.inner = inner
        self.max_bytes = max_bytes

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self.inner.handle_async_request(request)
        try:
            content = await read_within(response, self.max_bytes)
        finally:
            await response.aclose()
        return decoded(response, content)

    async def aclose(self) -> None:
        await self.inner.aclose()

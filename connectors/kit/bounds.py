"""Provider answers read within a size limit, counted on the decoded bytes (a gzip bomb stops at the limit)."""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable

import httpx2

from connectors.kit.errors import ResponseTooLarge

# The body is decoded here, so what the caller gets is plain bytes: these no longer describe it.
_ENCODING_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


async def collect_within(
    chunks: AsyncIterable[bytes], declared_length: str | None, max_bytes: int, refuse: Callable[[], Exception]
) -> bytes:
    """A body refused (`refuse()` raised) as soon as it is known to exceed `max_bytes`: by its declared
    length before a byte is read, or while it arrives, never holding more than `max_bytes` of it. Shared by
    what providers answer and what callers send."""
    if declared_length is not None and declared_length.isdigit() and int(declared_length) > max_bytes:
        raise refuse()
    body = bytearray()
    async for chunk in chunks:
        if len(body) + len(chunk) > max_bytes:
            raise refuse()
        body += chunk
    return bytes(body)


async def read_within(response: httpx2.Response, max_bytes: int) -> bytes:
    """The decoded body of a streamed response, refused as soon as it is known to exceed `max_bytes`.

    httpx2 inflates in bounded pieces, so memory stays near the limit whatever the compression ratio.
    """

    def refuse() -> Exception:
        return ResponseTooLarge(f"the provider's answer is larger than the limit of {max_bytes} bytes")

    return await collect_within(response.aiter_bytes(), response.headers.get("content-length"), max_bytes, refuse)


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

"""The redirect URIs a platform registers for the connect flow, and what a valid one looks like."""

from __future__ import annotations

from urllib.parse import urlsplit

from connectors.kit.errors import BadInput, NotFound
from resolvers.context import Caller
from sync.tenancy import redirect_uris as registry
from sync.tenancy.redirect_uris import MAX_REDIRECT_URI_LENGTH

# Plain http only where it cannot cross a network: a developer's own machine.
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def check_redirect_uri(uri: str, *, field: str = "uri") -> str:
    """An absolute https URI (http for loopback), printable ASCII, no fragment or user info: the string the
    end user's browser will be sent to, unambiguous to compare byte for byte."""
    if not uri or len(uri) > MAX_REDIRECT_URI_LENGTH:
        raise BadInput(f"a redirect URI is 1 to {MAX_REDIRECT_URI_LENGTH} characters", field=field)
    if not uri.isascii() or not uri.isprintable() or " " in uri:
        raise BadInput("a redirect URI is printable ASCII without spaces (percent-encode the rest)", field=field)
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises on a port that is not a number in range
    except ValueError:
        raise BadInput("a redirect URI must be an absolute URL", field=field) from None
    host = parts.hostname or ""
    if not host or not uri.startswith(f"{parts.scheme}://"):
        raise BadInput("a redirect URI must be an absolute URL with a host", field=field)
    if parts.scheme != "https" and not (parts.scheme == "http" and host in LOOPBACK_HOSTS):
        raise BadInput("a redirect URI must use https (http only for localhost and 127.0.0.1)", field=field)
    if "#" in uri:
        raise BadInput("a redirect URI cannot have a fragment", field=field)
    if "@" in parts.netloc:
        raise BadInput("a redirect URI cannot carry a user name or password", field=field)
    return uri


async def list_redirect_uris(caller: Caller) -> list[str]:
    async with caller.store.reader.connect() as conn:
        return await registry.list_redirect_uris(conn, caller.platform_id)


async def add_redirect_uri(caller: Caller, uri: str) -> list[str]:
    limit = caller.services.connect.redirect_uris_per_platform
    return await registry.add_redirect_uri(caller.store, caller.platform_id, check_redirect_uri(uri), limit=limit)


async def remove_redirect_uri(caller: Caller, uri: str) -> list[str]:
    if not await registry.remove_redirect_uri(caller.store, caller.platform_id, check_redirect_uri(uri)):
        raise NotFound("that redirect URI is not registered", field="uri")
    return await list_redirect_uris(caller)


async def set_redirect_uris(caller: Caller, uris: list[str]) -> list[str]:
    checked = [check_redirect_uri(uri, field=f"uris.{index}") for index, uri in enumerate(uris)]
    limit = caller.services.connect.redirect_uris_per_platform
    return await registry.replace_redirect_uris(caller.store, caller.platform_id, checked, limit=limit)

"""The REST API versions the instance host serves, and `GET /services/data/` listing them.

Salesforce serves every version from its oldest supported one to the current release, under
`/services/data/vNN.0/`, and lists them as `[{"label", "url", "version"}]`, oldest first. The sandbox
serves 40.0 to 62.0 — including the stock clients' defaults: simple-salesforce 1.12 uses 59.0
(`DEFAULT_API_VERSION`), jsforce 2 and 3 use 50.0 (`defaultConnectionConfig.version`) — all with the
v60.0 behaviour. A version it does not serve answers 404 NOT_FOUND, as an unknown version does.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Receive, Scope, Send

from connectors.salesforce.sandbox.errors import not_found
from connectors.salesforce.sandbox.org import API_ROOT
from connectors.salesforce.sandbox.responses import error_response

OLDEST_VERSION = 40
NEWEST_VERSION = 62
# Three releases a year; v60.0 is Spring '24, and a Winter release carries the next year's name.
_SEASONS = ("Spring", "Summer", "Winter")
_VERSIONED = re.compile(r"^/services/data/v(\d+\.\d)(?=/|$)")


def release_label(major: int) -> str:
    steps = major - 60
    season = _SEASONS[steps % 3]
    year = 24 + steps // 3 + (1 if season == "Winter" else 0)
    return f"{season} '{year:02d}"


SERVED_VERSIONS = tuple(f"{major}.0" for major in range(OLDEST_VERSION, NEWEST_VERSION + 1))
VERSION_LIST = [
    {"label": release_label(int(float(version))), "url": f"/services/data/v{version}", "version": version}
    for version in SERVED_VERSIONS
]


def served_root(path: str) -> str | None:
    """The path under the sandbox's one route tree (v60.0) for a path under any served version; the path
    itself when it names no version; None for a version the sandbox does not serve."""
    match = _VERSIONED.match(path)
    if match is None:
        return path
    if match.group(1) not in SERVED_VERSIONS:
        return None
    return API_ROOT + path[match.end() :]


class VersionMiddleware:
    """Routes every served version to the same handlers. Record and cursor URLs in answers keep the
    v60.0 prefix (Salesforce would echo the version asked for); clients follow them as given."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            routed = served_root(path)
            if routed is None:
                await error_response(not_found())(scope, receive, send)
                return
            if routed != path:
                scope = {**scope, "path": routed, "raw_path": routed.encode()}
        await self.app(scope, receive, send)

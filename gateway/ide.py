"""GraphiQL served by the gateway itself: the page at `/graphql` for a browser, and its files from the pinned
npm package in `gateway/ide/` (built into `gateway/ide/assets/` by `make ide`), never from a CDN.

The page runs no inline script or style, so it is sent with a Content-Security-Policy that lets it load
and call nothing but this gateway. The files are named by their content's digest and cached for a year."""

from __future__ import annotations

import gzip
import hashlib
import html
import secrets
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from connectors.kit.errors import NotFound
from gateway.errors import error_response

IDE_FOLDER = Path(__file__).with_name("ide")
BUILD_TARGET = "make ide"

# Fonts and icons come inside GraphiQL's stylesheet as data: URIs; nothing else is allowed but this gateway,
# and the one <style> GraphiQL's dialogs add at run time, which carries this response's nonce.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'nonce-{nonce}'; connect-src 'self'; "
    "img-src 'self' data:; font-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
ASSET_CACHE_CONTROL = "public, max-age=31536000, immutable"

# What the page loads, in order: (name it is served as, where it is under gateway/ide/, media type).
PAGE_FILES = (
    ("graphiql.min.css", "assets/graphiql.min.css", "text/css"),
    ("graphiql-page.css", "graphiql-page.css", "text/css"),
    ("react.production.min.js", "assets/react.production.min.js", "text/javascript"),
    ("react-dom.production.min.js", "assets/react-dom.production.min.js", "text/javascript"),
    ("graphiql.min.js", "assets/graphiql.min.js", "text/javascript"),
    ("graphiql-page.js", "graphiql-page.js", "text/javascript"),
)


@dataclass(frozen=True)
class Asset:
    name: str
    media_type: str
    body: bytes
    gzipped: bytes

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.body).hexdigest()[:16]


class GraphiQLPage:
    """The IDE page and its files, read from `folder` on first use (and looked for again while missing,
    so running the build target beside a running gateway is enough)."""

    def __init__(self, folder: Path = IDE_FOLDER) -> None:
        self.folder = folder
        self._assets: dict[str, Asset] | None = None

    @property
    def built(self) -> bool:
        return self._load() is not None

    def page(self, request: Request) -> Response:
        nonce = secrets.token_urlsafe(16)
        headers = {**PAGE_HEADERS, "Content-Security-Policy": CONTENT_SECURITY_POLICY.format(nonce=nonce)}
        assets = self._load()
        if assets is None:
            return HTMLResponse(_NOT_BUILT_PAGE, status_code=503, headers=headers)
        base = f"{request.url.path.rstrip('/')}/ide/assets"
        urls = {asset.name: f"{base}/{asset.digest}/{asset.name}" for asset in assets.values()}
        styles = "".join(
            f'<link rel="stylesheet" href="{html.escape(urls[name])}">\n'
            for name, _, media_type in PAGE_FILES
            if media_type == "text/css"
        )
        scripts = "".join(
            _script(urls[name], nonce if name == "graphiql-page.js" else None)
            for name, _, media_type in PAGE_FILES
            if media_type == "text/javascript"
        )
        return HTMLResponse(_PAGE.format(styles=styles, scripts=scripts), headers=headers)

    async def asset(self, request: Request) -> Response:
        """`GET /graphql/ide/assets/{digest}/{name}`: a file of the page, only under its current digest."""
        assets = self._load() or {}
        asset = assets.get(request.path_params["name"])
        if asset is None or request.path_params["digest"] != asset.digest:
            return error_response(404, NotFound("no such GraphiQL file; reload the page at /graphql"))
        headers = {"Cache-Control": ASSET_CACHE_CONTROL, "X-Content-Type-Options": "nosniff", "Vary": "Accept-Encoding"}
        if "gzip" in request.headers.get("accept-encoding", ""):
            headers["Content-Encoding"] = "gzip"
            return Response(asset.gzipped, media_type=asset.media_type, headers=headers)
        return Response(asset.body, media_type=asset.media_type, headers=headers)

    def _load(self) -> dict[str, Asset] | None:
        if self._assets is None:
            paths = [(name, self.folder / relative, media_type) for name, relative, media_type in PAGE_FILES]
            if not all(path.is_file() for _, path, _ in paths):
                return None
            self._assets = {}
            for name, path, media_type in paths:
                body = path.read_bytes()
                self._assets[name] = Asset(name, media_type, body, gzip.compress(body, mtime=0))
        return self._assets


def _script(url: str, nonce: str | None) -> str:
    # The page's own script carries the nonce only to hand it to GraphiQL for the <style> its dialogs add.
    nonce_attribute = f' nonce="{nonce}"' if nonce else ""
    return f'<script src="{html.escape(url)}"{nonce_attribute}></script>\n'


def is_browser_navigation(accept: str) -> bool:
    """A browser opening the address (it prefers HTML) rather than a GraphQL client (it prefers JSON):
    the first listed of the most preferred media types decides."""
    best: tuple[float, int, str] | None = None
    for position, item in enumerate(accept.split(",")):
        media_type, *params = (part.strip() for part in item.split(";"))
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if media_type.lower() in _HTML_OR_JSON and quality > 0 and (best is None or quality > best[0]):
            best = (quality, position, media_type.lower())
    return best is not None and best[2] == "text/html"


_HTML_OR_JSON = {"text/html", "application/json", "application/graphql-response+json", "*/*", "application/*"}

graphiql_page = GraphiQLPage()

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>xkit GraphiQL</title>
<link rel="icon" href="data:,">
{styles}</head>
<body>
<p id="xkit-key-hint" class="xkit-key-hint" role="status">
Put your secret API key in <strong>Headers</strong> (under the query) as
<code>{{"Authorization": "Bearer &lt;your secret key&gt;"}}</code>.
It is kept in this tab's session storage only, never in local storage.
</p>
<div id="graphiql" class="xkit-graphiql">Loading GraphiQL&hellip;</div>
{scripts}</body>
</html>
"""

_NOT_BUILT_PAGE = f"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>GraphiQL is not built</title></head>
<body>
<h1>GraphiQL is not built</h1>
<p>This gateway serves GraphiQL from its own files, and they are not built in this checkout.
Run <code>{BUILD_TARGET}</code> (<code>make dev</code> and <code>make test</code> run it too) and reload this page.</p>
<p>GraphQL itself works: POST your queries to this address with
<code>Authorization: Bearer &lt;your secret key&gt;</code>.</p>
</body>
</html>
"""

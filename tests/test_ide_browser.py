"""GraphiQL as a person uses it: served by the gateway with its own files (no other host is ever asked), the key
typed into the header editor and kept in session storage only, shared links that open the page, a 401 that
says where the key goes. Debian's Chromium, headless, driven by Playwright."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, Route, async_playwright
from playwright.async_api import TimeoutError as PlaywrightTimeout
from starlette.requests import Request

from connectors.kit.http import HttpKit
from gateway.ide import BUILD_TARGET, GraphiQLPage, graphiql_page, is_browser_navigation
from sync.storage.store import Store
from tests.support import Gateway, Tenant, gateway, new_tenant

CHROMIUM = "/usr/bin/chromium"
CHROME_ACCEPT = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,"
    "application/signed-exchange;v=b3;q=0.7"
)
PROVIDERS = "{ providers { name } }"
# Two operations: the shared link's operationName says which one runs.
SHARED_QUERY = (
    "query Names { providers { name } }\n"
    "query FirstContacts($first: Int!) { contacts(first: $first) { edges { cursor } } }"
)

# GraphiQL's CodeMirror editors; under the query, the variables editor comes first, then the headers editor.
QUERY_EDITOR = "section[aria-label='Query Editor'] .CodeMirror"
VARIABLE_EDITOR = ".graphiql-editor-tool .graphiql-editor >> nth=0 >> .CodeMirror"
HEADER_EDITOR = ".graphiql-editor-tool .graphiql-editor >> nth=1 >> .CodeMirror"
RESULT = ".result-window .CodeMirror"
RUN = "button[aria-label='Execute query (Ctrl-Enter)']"
HINT = "#xkit-key-hint"

# Every Content-Security-Policy violation the page meets, kept where the test can read it.
RECORD_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(event.violatedDirective + " " + event.blockedURI);
});
"""


@pytest.fixture
def built() -> None:
    if not graphiql_page.built:
        pytest.fail(f"GraphiQL's files are not built in this checkout: run `{BUILD_TARGET}` (make test runs it)")


@pytest.fixture
def backend() -> str:
    # The page reaches storage only through the key check, which runs on both databases elsewhere.
    return "sqlite"


@dataclass
class Offline:
    """A browser context where every request to a host other than the gateway is refused, and recorded."""

    context: BrowserContext
    gateway_origin: str
    elsewhere: list[str] = field(default_factory=list)

    async def refuse_other_hosts(self, route: Route) -> None:
        url = urlsplit(route.request.url)
        if f"{url.scheme}://{url.netloc}" == self.gateway_origin:
            await route.continue_()
        else:
            self.elsewhere.append(route.request.url)
            await route.abort()

    async def new_page(self) -> Page:
        page = await self.context.new_page()
        await page.add_init_script(RECORD_CSP_VIOLATIONS)
        return page


@dataclass
class Setup:
    api: Gateway
    tenant: Tenant
    browser: Browser
    offline: Offline


@pytest_asyncio.fixture
async def setup(built: None, store: Store, kit: HttpKit, secret_key: str) -> AsyncIterator[Setup]:
    tenant = await new_tenant(store)
    async with gateway(store, kit, secret_key) as api, async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        context = await browser.new_context(viewport={"width": 1400, "height": 900})
        offline = Offline(context, api.url)
        await context.route("**/*", offline.refuse_other_hosts)
        try:
            yield Setup(api, tenant, browser, offline)
        finally:
            await browser.close()


async def editor_text(page: Page, selector: str) -> str:
    return str(await page.locator(selector).evaluate("(element) => element.CodeMirror.getValue()"))


async def type_into(page: Page, selector: str, text: str) -> None:
    """Replace an editor's text as a person pasting into it would."""
    await page.locator(selector).click()
    await page.keyboard.press("Control+A")
    await page.keyboard.insert_text(text)


async def run_and_read(page: Page, expected: str) -> dict[str, object]:
    """Press the run button and read the result once it shows `expected`. A press that lands while GraphiQL is
    still settling a freshly loaded page (a busy machine) runs nothing, so it is pressed again, up to three times."""
    for attempt in range(3):
        await page.locator(RUN).click()
        try:
            await page.wait_for_function(
                "([selector, expected]) => document.querySelector(selector).CodeMirror.getValue().includes(expected)",
                arg=[RESULT, expected],
                timeout=15_000,
            )
            break
        except PlaywrightTimeout:
            if attempt == 2:
                raise
    result: dict[str, object] = json.loads(await editor_text(page, RESULT))
    return result


async def storage_of(page: Page, kind: str) -> dict[str, str]:
    return dict(await page.evaluate(f"() => ({{...window.{kind}}})"))


async def csp_violations(page: Page) -> list[str]:
    return list(await page.evaluate("() => window.__cspViolations"))


async def test_graphiql_runs_a_query_offline_with_the_key_in_session_storage_only(setup: Setup, tmp_path: Path) -> None:
    page = await setup.offline.new_page()
    graphql_requests: list[str] = []
    page.on("request", lambda request: graphql_requests.append(request.method) if request.method == "POST" else None)
    await page.goto(f"{setup.api.url}/graphql")

    # It opens asking for the key, and the header editor shows where it goes; the placeholder is never sent.
    hint = page.locator(HINT)
    await hint.filter(has_text="No API key yet").wait_for()
    assert graphql_requests == []
    assert json.loads(await editor_text(page, HEADER_EDITOR)) == {"Authorization": "Bearer <your secret key>"}
    assert "replace <your secret key> with your secret API key" in await editor_text(page, RESULT)

    await type_into(page, HEADER_EDITOR, json.dumps({"Authorization": f"Bearer {setup.tenant.api_key}"}))
    await type_into(page, QUERY_EDITOR, PROVIDERS)
    result = await run_and_read(page, "hubspot")
    assert {"name": "hubspot"} in result["data"]["providers"]  # type: ignore[index]
    assert "xkit-key-hint--alert" not in (await hint.get_attribute("class") or "")
    # With a key that works, the schema is fetched again: the documentation explorer shows it.
    await page.locator("button[aria-label='Show Documentation Explorer']").click()
    await page.locator(".graphiql-doc-explorer").get_by_text("All Schema Types").wait_for()
    # The address now shares the query, and never the headers.
    assert "query=" in page.url and setup.tenant.api_key not in page.url
    await page.screenshot(path=tmp_path / "graphiql-after-query.png")

    # A shared link, reloaded: the page opens with its query, variables and operation prefilled, runs it with
    # the key this tab already holds.
    shared = urlencode({"query": SHARED_QUERY, "variables": '{"first": 3}', "operationName": "FirstContacts"})
    await page.goto(f"{setup.api.url}/graphql?{shared}")
    await page.locator(QUERY_EDITOR).wait_for()
    assert await editor_text(page, QUERY_EDITOR) == SHARED_QUERY
    assert json.loads(await editor_text(page, VARIABLE_EDITOR)) == {"first": 3}
    assert "operationName=FirstContacts" in page.url
    result = await run_and_read(page, "contacts")
    assert result == {"data": {"contacts": {"edges": []}}}
    # Once the document is edited, GraphiQL chooses the operation again (the link's name no longer applies).
    await type_into(page, QUERY_EDITOR, "query Renamed { providers { name } }")
    result = await run_and_read(page, "providers")
    assert {"name": "hubspot"} in result["data"]["providers"]  # type: ignore[index]
    await page.screenshot(path=tmp_path / "graphiql-shared-link.png")

    # The key lives in this tab's session storage, and nowhere in local storage; a new tab starts without it.
    assert setup.tenant.api_key in json.dumps(await storage_of(page, "sessionStorage"))
    assert setup.tenant.api_key not in json.dumps(await storage_of(page, "localStorage"))
    assert await storage_of(page, "localStorage") == {}
    another_tab = await setup.offline.new_page()
    await another_tab.goto(f"{setup.api.url}/graphql")
    await another_tab.locator(HEADER_EDITOR).wait_for()
    assert setup.tenant.api_key not in await editor_text(another_tab, HEADER_EDITOR)

    # GraphiQL's dialogs add a <style> of their own: it carries the page's nonce.
    await page.locator("button[aria-label='Open settings dialog']").click()
    await page.get_by_role("dialog").wait_for()
    await page.keyboard.press("Escape")

    # Nothing was asked of any other host, and nothing broke the page's Content-Security-Policy.
    assert setup.offline.elsewhere == []
    assert await csp_violations(page) == []
    assert await csp_violations(another_tab) == []


async def test_a_refused_key_shows_the_401_with_where_the_key_goes(setup: Setup, tmp_path: Path) -> None:
    page = await setup.offline.new_page()
    await page.goto(f"{setup.api.url}/graphql?{urlencode({'query': PROVIDERS})}")
    await type_into(page, HEADER_EDITOR, json.dumps({"Authorization": "Bearer not-a-key"}))

    result = await run_and_read(page, "UNAUTHENTICATED")

    assert result["errors"][0]["message"] == "the API key is not valid"  # type: ignore[index]
    hint = page.locator(HINT)
    assert "xkit-key-hint--alert" in (await hint.get_attribute("class") or "")
    assert "401" in await hint.inner_text()
    assert '{"Authorization": "Bearer <your secret key>"}' in await hint.inner_text()
    await page.screenshot(path=tmp_path / "graphiql-401.png")
    assert setup.offline.elsewhere == []


async def test_a_browser_opening_a_shared_link_gets_the_page_and_a_client_gets_the_answer(
    built: None, store: Store, kit: HttpKit, secret_key: str
) -> None:
    tenant = await new_tenant(store)
    async with gateway(store, kit, secret_key) as api:
        link = f"{api.url}/graphql?{urlencode({'query': PROVIDERS})}"

        page = await api.client.get(link, headers={"Accept": CHROME_ACCEPT})
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        policy = dict(part.strip().split(" ", 1) for part in page.headers["content-security-policy"].split(";"))
        assert policy["default-src"] == "'none'"
        assert policy["script-src"] == policy["connect-src"] == "'self'"
        assert policy["style-src"].startswith("'self' 'nonce-")
        assert "https://" not in page.text and "http://" not in page.text

        answer = await api.client.get(
            link, headers={"Accept": "application/json", "Authorization": f"Bearer {tenant.api_key}"}
        )
        assert answer.status_code == 200
        assert {"name": "hubspot"} in answer.json()["data"]["providers"]

        unauthenticated = await api.client.get(link, headers={"Accept": "application/json"})
        assert unauthenticated.status_code == 401


async def test_graphiql_files_are_served_by_digest_with_long_cache_headers(
    built: None, store: Store, kit: HttpKit, secret_key: str
) -> None:
    async with gateway(store, kit, secret_key) as api:
        page = await api.client.get(f"{api.url}/graphql", headers={"Accept": CHROME_ACCEPT})
        paths = [part.split('"')[1] for part in page.text.split(" src=")[1:] + page.text.split(" href=")[1:]]
        files = [path for path in paths if path.startswith("/graphql/ide/assets/")]
        assert {path.rsplit("/", 1)[1] for path in files} == {
            "graphiql.min.css",
            "graphiql-page.css",
            "react.production.min.js",
            "react-dom.production.min.js",
            "graphiql.min.js",
            "graphiql-page.js",
        }
        for path in files:
            served = await api.client.get(f"{api.url}{path}")
            assert served.status_code == 200, path
            assert served.headers["cache-control"] == "public, max-age=31536000, immutable"
            assert served.headers["content-encoding"] == "gzip"
            kind = "text/css" if path.endswith(".css") else "text/javascript"
            assert served.headers["content-type"].startswith(kind)

        name = files[0].rsplit("/", 1)[1]
        stale = await api.client.get(f"{api.url}/graphql/ide/assets/0000000000000000/{name}")
        assert stale.status_code == 404
        assert stale.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
        unknown = await api.client.get(f"{api.url}{files[0].rsplit('/', 1)[0]}/secrets.txt")
        assert unknown.status_code == 404


def test_without_built_files_the_page_names_the_make_target(tmp_path: Path) -> None:
    scope = {"type": "http", "method": "GET", "path": "/graphql", "headers": [], "query_string": b""}

    response = GraphiQLPage(tmp_path).page(Request(scope))

    assert response.status_code == 503
    assert b"make ide" in bytes(response.body)


@pytest.mark.parametrize(
    ("accept", "browser"),
    [
        (CHROME_ACCEPT, True),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", True),
        ("*/*", False),
        ("", False),
        ("application/graphql-response+json, application/json;q=0.9", False),
        ("application/json, text/html", False),
        ("text/html;q=0.5, application/json", False),
        ("text/html;q=0, */*", False),
    ],
    ids=["chrome", "firefox", "curl", "none", "graphql-client", "json-first", "json-preferred", "html-refused"],
)
def test_only_a_browser_preferring_html_gets_the_page(accept: str, browser: bool) -> None:
    assert is_browser_navigation(accept) is browser

"""The Zendesk sandbox behaves as Zendesk's Support API does, driven over real HTTP: accounts by subdomain,
API-token and OAuth auth, both kinds of paging, the incremental exports, rate limits, Zendesk's validation
errors and comment rules, soft deletes, signed webhooks and fault knobs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.kit.sandbox import TokenStore, pkce_s256_challenge, serve_in_thread
from connectors.zendesk.sandbox import SandboxSize, ZendeskSandbox, base_url_for, create_app
from connectors.zendesk.sandbox.account import Account
from connectors.zendesk.sandbox.driver import STREAM_IDS, ZendeskDriver

SIZE = SandboxSize(tickets=150, users=30, agents=4, organizations=8)
REDIRECT = "https://platform.example/callback"
AN_HOUR_AGO = str(int(time.time()) - 3600)


@dataclass
class Zendesk:
    sandbox: ZendeskSandbox
    url: str
    http: httpx2.Client

    def base(self, subdomain: str = "acme") -> str:
        return base_url_for(self.url, subdomain)

    def api(self, subdomain: str = "acme") -> str:
        return self.base(subdomain) + "/api/v2"


def basic(sandbox: ZendeskSandbox, subdomain: str = "acme") -> dict[str, str]:
    email, token = sandbox.api_token(subdomain)
    return {"Authorization": "Basic " + base64.b64encode(f"{email}/token:{token}".encode()).decode()}


@pytest.fixture
def zendesk() -> Iterator[Zendesk]:
    sandbox = ZendeskSandbox(seed=3, size=SIZE, subdomains=("acme", "globex"))
    # The exports show a change at once here; test_the_exports_leave_out_the_last_minute keeps Zendesk's lag.
    sandbox.faults.export_lag_s = 0
    with sandbox, serve_in_thread(create_app(sandbox)) as url, httpx2.Client(headers=basic(sandbox)) as http:
        yield Zendesk(sandbox, url, http)


def with_status(account: Account, *statuses: str) -> list[int]:
    """The account's live tickets whose status is one of `statuses`."""
    return [i for i in account.ticket_ids if (account.ticket(i) or {}).get("status") in statuses]


WORKABLE = ("new", "open", "pending", "hold", "solved")


def authorize(zendesk: Zendesk, subdomain: str = "acme", scope: str = "read write") -> tuple[str, str]:
    """Walks the consent page as a user who allows access; the code and the PKCE verifier."""
    verifier = "v" * 50
    params = {
        "response_type": "code",
        "client_id": zendesk.sandbox.client_id,
        "redirect_uri": REDIRECT,
        "scope": scope,
        "state": "s1",
        "code_challenge": pkce_s256_challenge(verifier),
        "code_challenge_method": "S256",
    }
    page = httpx2.get(f"{zendesk.base(subdomain)}/oauth/authorizations/new", params=params)
    assert page.status_code == 200 and "Allow" in page.text
    decision = httpx2.post(f"{zendesk.base(subdomain)}/oauth/authorizations/new", data={**params, "decision": "allow"})
    assert decision.status_code == 302
    query = parse_qs(urlsplit(decision.headers["location"]).query)
    assert query["state"] == ["s1"]
    return query["code"][0], verifier


def exchange(zendesk: Zendesk, code: str, verifier: str, subdomain: str = "acme", **more: Any) -> httpx2.Response:
    body = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": zendesk.sandbox.client_id,
        "client_secret": zendesk.sandbox.client_secret,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
        **more,
    }
    return httpx2.post(f"{zendesk.base(subdomain)}/oauth/tokens", json=body)


# ---- auth -------------------------------------------------------------------------------------------


def test_api_token_basic_auth_reads_the_account(zendesk: Zendesk) -> None:
    response = zendesk.http.get(f"{zendesk.api()}/users/me.json")
    assert response.status_code == 200
    assert response.json()["user"]["role"] == "admin"


@pytest.mark.parametrize(
    "authorization",
    ["Basic " + base64.b64encode(b"nobody@example.org/token:wrong").decode(), "Bearer not-a-token", ""],
    ids=["wrong-api-token", "unknown-bearer", "none"],
)
def test_bad_credentials_get_401(zendesk: Zendesk, authorization: str) -> None:
    response = httpx2.get(f"{zendesk.api()}/tickets.json", headers={"Authorization": authorization})
    assert response.status_code == 401
    assert "error" in response.json()


def test_an_api_token_works_only_on_its_own_account(zendesk: Zendesk) -> None:
    assert zendesk.http.get(f"{zendesk.api('globex')}/tickets.json").status_code == 401
    assert httpx2.get(f"{zendesk.api('globex')}/tickets.json", headers=basic(zendesk.sandbox, "globex")).is_success


def test_an_unknown_subdomain_is_not_an_account(zendesk: Zendesk) -> None:
    assert zendesk.http.get(f"{zendesk.api('nosuch')}/tickets.json").status_code == 404


def test_oauth_without_expires_in_gives_a_long_lived_token_without_refresh(zendesk: Zendesk) -> None:
    code, verifier = authorize(zendesk)
    response = exchange(zendesk, code, verifier)
    assert response.status_code == 201
    token = response.json()
    assert token["token_type"] == "bearer" and token["scope"] == "read write"
    assert "refresh_token" not in token and "expires_in" not in token
    me = httpx2.get(f"{zendesk.api()}/users/me", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert me.status_code == 200


def test_oauth_with_expires_in_gives_a_refresh_token_that_is_spent_by_use(zendesk: Zendesk) -> None:
    code, verifier = authorize(zendesk)
    token = exchange(zendesk, code, verifier, expires_in=3600).json()
    assert token["expires_in"] == 3600 and token["refresh_token"]
    refresh = {
        "grant_type": "refresh_token",
        "refresh_token": token["refresh_token"],
        "client_id": zendesk.sandbox.client_id,
        "client_secret": zendesk.sandbox.client_secret,
    }
    renewed = httpx2.post(f"{zendesk.base()}/oauth/tokens", json=refresh)
    assert renewed.status_code == 201 and renewed.json()["access_token"] != token["access_token"]
    again = httpx2.post(f"{zendesk.base()}/oauth/tokens", json=refresh)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert zendesk.sandbox.stats.token_refreshes == 1


@pytest.mark.parametrize("expires_in", [300, 172_800, "soon"], ids=["too-short", "too-long", "not-a-number"])
def test_oauth_refuses_expires_in_out_of_range(zendesk: Zendesk, expires_in: Any) -> None:
    code, verifier = authorize(zendesk)
    response = exchange(zendesk, code, verifier, expires_in=expires_in)
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


def test_oauth_code_is_refused_with_a_wrong_verifier_or_on_another_account(zendesk: Zendesk) -> None:
    code, _ = authorize(zendesk)
    assert exchange(zendesk, code, "x" * 50).json()["error"] == "invalid_grant"
    code, verifier = authorize(zendesk)
    assert exchange(zendesk, code, verifier, subdomain="globex").json()["error"] == "invalid_grant"


def test_oauth_code_expires_after_120_seconds(zendesk: Zendesk) -> None:
    now = [1_000_000.0]
    zendesk.sandbox.tokens = TokenStore(clock=lambda: now[0], code_lifetime_s=120)
    code, verifier = authorize(zendesk)
    now[0] += 121
    response = exchange(zendesk, code, verifier)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_a_token_of_one_account_is_refused_on_another(zendesk: Zendesk) -> None:
    code, verifier = authorize(zendesk)
    token = exchange(zendesk, code, verifier).json()["access_token"]
    response = httpx2.get(f"{zendesk.api('globex')}/tickets", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


def test_a_missing_scope_is_forbidden(zendesk: Zendesk) -> None:
    code, verifier = authorize(zendesk, scope="tickets:read")
    headers = {"Authorization": "Bearer " + exchange(zendesk, code, verifier).json()["access_token"]}
    assert httpx2.get(f"{zendesk.api()}/tickets", headers=headers).status_code == 200
    for response in (
        httpx2.get(f"{zendesk.api()}/users", headers=headers),
        httpx2.put(f"{zendesk.api()}/tickets/2", headers=headers, json={"ticket": {"priority": "high"}}),
    ):
        assert response.status_code == 403 and response.json()["error"] == "Forbidden"


def test_an_expired_access_token_is_refused(zendesk: Zendesk) -> None:
    token = zendesk.sandbox.mint_tokens()["access_token"]
    zendesk.sandbox.expire_access_tokens()
    response = httpx2.get(f"{zendesk.api()}/tickets", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401 and response.json()["error"] == "invalid_token"


# ---- paging -----------------------------------------------------------------------------------------


def test_offset_pages_follow_next_page_and_count(zendesk: Zendesk) -> None:
    seen: list[int] = []
    url: str | None = f"{zendesk.api()}/tickets.json?per_page=40"
    while url:
        body = zendesk.http.get(url).json()
        assert body["count"] == SIZE.tickets
        seen += [ticket["id"] for ticket in body["tickets"]]
        url = body["next_page"]
    assert seen == sorted(zendesk.sandbox.account("acme").ticket_ids)


def test_offset_paging_past_100_pages_is_refused(zendesk: Zendesk) -> None:
    response = zendesk.http.get(f"{zendesk.api()}/tickets.json", params={"page": 101, "per_page": 1})
    assert response.status_code == 400
    assert zendesk.http.get(f"{zendesk.api()}/tickets.json", params={"page": 100, "per_page": 1}).status_code == 200


def test_cursor_pages_carry_meta_and_links(zendesk: Zendesk) -> None:
    account = zendesk.sandbox.account("acme")
    ticket_id = max(account.ticket_ids, key=lambda i: len(account.comments(i)))
    expected = [c["id"] for c in account.comments(ticket_id)]
    seen: list[int] = []
    url: str | None = f"{zendesk.api()}/tickets/{ticket_id}/comments.json?page[size]=1"
    while url:
        body = zendesk.http.get(url).json()
        seen += [comment["id"] for comment in body["comments"]]
        assert set(body["meta"]) == {"has_more", "after_cursor", "before_cursor"}
        url = body["links"]["next"] if body["meta"]["has_more"] else None
    assert seen == expected and len(expected) > 1


def test_cursor_page_size_above_100_is_refused(zendesk: Zendesk) -> None:
    assert zendesk.http.get(f"{zendesk.api()}/tickets.json", params={"page[size]": 101}).status_code == 400


# ---- incremental exports ----------------------------------------------------------------------------


def walk_cursor_export(zendesk: Zendesk, first: str) -> tuple[list[dict[str, Any]], str]:
    """Every ticket from `first` to end_of_stream, and the cursor to poll from next."""
    tickets: list[dict[str, Any]] = []
    url = first
    while True:
        body = zendesk.http.get(url).json()
        tickets += body["tickets"]
        assert body["after_url"].endswith(body["after_cursor"])
        if body["end_of_stream"]:
            return tickets, body["after_cursor"]
        url = body["after_url"]


def test_cursor_export_reaches_end_of_stream_and_resumes_with_only_the_changes(zendesk: Zendesk) -> None:
    zendesk.sandbox.faults.rate_limit_enabled = False
    export = f"{zendesk.api()}/incremental/tickets/cursor.json"
    tickets, cursor = walk_cursor_export(zendesk, f"{export}?start_time=0&per_page=40")
    account = zendesk.sandbox.account("acme")
    assert sorted(t["id"] for t in tickets) == account.ticket_ids
    stamps = [t["generated_timestamp"] for t in tickets]
    assert stamps == sorted(stamps)

    changed, deleted = with_status(account, *WORKABLE)[:2]
    zendesk.http.put(f"{zendesk.api()}/tickets/{changed}.json", json={"ticket": {"comment": {"body": "More"}}})
    assert zendesk.http.delete(f"{zendesk.api()}/tickets/{deleted}.json").status_code == 204
    later, _ = walk_cursor_export(zendesk, f"{export}?cursor={cursor}")
    assert [(t["id"], t["status"] == "deleted") for t in later] == [(changed, False), (deleted, True)]
    excluded, _ = walk_cursor_export(zendesk, f"{export}?cursor={cursor}&exclude_deleted=true")
    assert [t["id"] for t in excluded] == [changed]


def test_two_changes_in_one_second_are_both_exported(zendesk: Zendesk) -> None:
    export = f"{zendesk.api()}/incremental/tickets/cursor.json"
    ticket_id = with_status(zendesk.sandbox.account("acme"), *WORKABLE)[0]
    update = {"ticket": {"comment": {"body": "first"}}}
    zendesk.http.put(f"{zendesk.api()}/tickets/{ticket_id}", json=update)
    _, cursor = walk_cursor_export(zendesk, f"{export}?start_time={AN_HOUR_AGO}")
    zendesk.http.put(f"{zendesk.api()}/tickets/{ticket_id}", json={"ticket": {"comment": {"body": "second"}}})
    later, _ = walk_cursor_export(zendesk, f"{export}?cursor={cursor}")
    assert [t["id"] for t in later] == [ticket_id]


@pytest.mark.parametrize(
    "path", ["incremental/tickets/cursor.json", "incremental/tickets.json", "incremental/organizations.json"]
)
def test_exports_refuse_a_start_time_within_the_last_minute(zendesk: Zendesk, path: str) -> None:
    zendesk.sandbox.faults.export_lag_s = 60
    response = zendesk.http.get(f"{zendesk.api()}/{path}", params={"start_time": int(time.time()) - 30})
    assert response.status_code == 422
    assert response.json()["description"].startswith("Too recent start_time")


@pytest.mark.parametrize("path", ["incremental/tickets/cursor.json", "incremental/ticket_events.json"])
def test_the_exports_leave_out_the_last_minute(zendesk: Zendesk, path: str) -> None:
    zendesk.sandbox.faults.rate_limit_enabled = False
    account = zendesk.sandbox.account("acme")
    ticket_id = with_status(account, *WORKABLE)[0]
    zendesk.http.put(f"{zendesk.api()}/tickets/{ticket_id}", json={"ticket": {"comment": {"body": "Just now"}}})
    # An hour's lag stands for the minute, so the change is surely inside it.
    zendesk.sandbox.faults.export_lag_s = 3600
    before = int(time.time())
    query: dict[str, str | int] = {"start_time": 0, "per_page": 1000, "include": "comment_events"}
    body = zendesk.http.get(f"{zendesk.api()}/{path}", params=query).json()
    assert body["end_of_stream"] is True
    if "cursor" in path:
        assert ticket_id not in {ticket["id"] for ticket in body["tickets"]}
    else:
        bodies = {child.get("body") for event in body["ticket_events"] for child in event["child_events"]}
        assert bodies and "Just now" not in bodies
    zendesk.sandbox.faults.export_lag_s = 0
    if "cursor" in path:
        later = zendesk.http.get(body["after_url"]).json()["tickets"]
        assert [ticket["id"] for ticket in later] == [ticket_id]
    else:
        # The end time is where the lag began: the next export starts there and misses nothing.
        assert before - 3600 <= body["end_time"] <= int(time.time()) - 3600
        later = zendesk.http.get(body["next_page"]).json()["ticket_events"]
        assert [event["ticket_id"] for event in later] == [ticket_id]


def test_time_based_export_pages_by_end_time_until_end_of_stream(zendesk: Zendesk) -> None:
    zendesk.sandbox.faults.rate_limit_enabled = False
    seen: set[int] = set()
    url = f"{zendesk.api()}/incremental/organizations.json?start_time=0&per_page=3"
    while True:
        body = zendesk.http.get(url).json()
        assert body["count"] == len(body["organizations"])
        assert parse_qs(urlsplit(body["next_page"]).query)["start_time"] == [str(body["end_time"])]
        seen |= {org["id"] for org in body["organizations"]}
        if body["end_of_stream"]:
            break
        url = body["next_page"]
    assert seen == set(zendesk.sandbox.account("acme").organizations)


def test_deleted_organizations_stay_in_the_export_with_deleted_at(zendesk: Zendesk) -> None:
    organization = min(zendesk.sandbox.account("acme").organizations)
    assert zendesk.http.delete(f"{zendesk.api()}/organizations/{organization}").status_code == 204
    body = zendesk.http.get(f"{zendesk.api()}/incremental/organizations", params={"start_time": AN_HOUR_AGO}).json()
    assert [(o["id"], o["deleted_at"] is not None) for o in body["organizations"]] == [(organization, True)]
    assert zendesk.http.get(f"{zendesk.api()}/organizations/{organization}").status_code == 404


def test_ticket_events_carry_comments_only_with_include_comment_events(zendesk: Zendesk) -> None:
    ticket_id = with_status(zendesk.sandbox.account("acme"), *WORKABLE)[0]
    update = {"ticket": {"tags": ["escalated"], "comment": {"body": "On it", "public": False}}}
    zendesk.http.put(f"{zendesk.api()}/tickets/{ticket_id}", json=update)
    url = f"{zendesk.api()}/incremental/ticket_events.json"
    plain = zendesk.http.get(url, params={"start_time": AN_HOUR_AGO}).json()["ticket_events"]
    rich = zendesk.http.get(url, params={"start_time": AN_HOUR_AGO, "include": "comment_events"}).json()
    (event,) = rich["ticket_events"]
    assert event["ticket_id"] == ticket_id
    kinds = {child["event_type"]: child for child in event["child_events"]}
    assert kinds["Comment"]["body"] == "On it" and kinds["Comment"]["public"] is False
    assert kinds["Change"]["field_name"] == "tags" and kinds["Change"]["value"] == ["escalated"]
    assert [c["event_type"] for c in plain[0]["child_events"]] == ["Change"]


def test_ticket_events_of_the_seed_hold_every_seeded_comment(zendesk: Zendesk) -> None:
    zendesk.sandbox.faults.rate_limit_enabled = False
    account = zendesk.sandbox.account("acme")
    url: str | None = f"{zendesk.api()}/incremental/ticket_events.json?start_time=0&include=comment_events"
    comments: set[int] = set()
    while url:
        body = zendesk.http.get(url).json()
        comments |= {c["id"] for e in body["ticket_events"] for c in e["child_events"]}
        url = None if body["end_of_stream"] else body["next_page"]
    assert comments == {c["id"] for t in account.ticket_ids for c in account.comments(t)}


# ---- rate limits ------------------------------------------------------------------------------------


def test_every_response_carries_the_rate_limit_headers(zendesk: Zendesk) -> None:
    first = zendesk.http.get(f"{zendesk.api()}/tickets.json")
    second = zendesk.http.get(f"{zendesk.api()}/groups.json")
    assert first.headers["X-Rate-Limit"] == "700"
    assert int(first.headers["X-Rate-Limit-Remaining"]) - 1 == int(second.headers["X-Rate-Limit-Remaining"])


def test_over_the_account_limit_answers_429_with_retry_after(zendesk: Zendesk) -> None:
    zendesk.sandbox.faults.rate_limit_max = 3
    statuses = [zendesk.http.get(f"{zendesk.api()}/groups").status_code for _ in range(3)]
    refused = zendesk.http.get(f"{zendesk.api()}/groups")
    assert statuses == [200, 200, 200] and refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert zendesk.sandbox.stats.responses_by_status[429] == 1
    # The limit is per account: another account is not slowed down.
    assert httpx2.get(f"{zendesk.api('globex')}/groups", headers=basic(zendesk.sandbox, "globex")).is_success


def test_the_incremental_exports_allow_ten_requests_a_minute(zendesk: Zendesk) -> None:
    url = f"{zendesk.api()}/incremental/organizations.json"
    statuses = [zendesk.http.get(url, params={"start_time": 0}).status_code for _ in range(10)]
    refused = zendesk.http.get(url, params={"start_time": 0})
    assert statuses == [200] * 10
    assert refused.status_code == 429 and "Retry-After" in refused.headers
    assert zendesk.http.get(f"{zendesk.api()}/tickets").status_code == 200


# ---- writes -----------------------------------------------------------------------------------------


def test_creating_a_ticket_with_a_new_requester_email_creates_the_end_user(zendesk: Zendesk) -> None:
    ticket = {
        "subject": "Printer on fire",
        "priority": "urgent",
        "comment": {"body": "The smoke is very colorful."},
        "requester": {"email": "Ada@Engines.example", "name": "Ada Lovelace"},
        "tags": ["fire"],
    }
    response = zendesk.http.post(f"{zendesk.api()}/tickets.json", json={"ticket": ticket})
    assert response.status_code == 201
    created = response.json()["ticket"]
    assert created["status"] == "new" and created["priority"] == "urgent" and created["tags"] == ["fire"]
    requester = zendesk.http.get(f"{zendesk.api()}/users/{created['requester_id']}").json()["user"]
    assert (requester["email"], requester["role"]) == ("ada@engines.example", "end-user")
    comments = zendesk.http.get(f"{zendesk.api()}/tickets/{created['id']}/comments").json()["comments"]
    assert [(c["body"], c["author_id"]) for c in comments] == [("The smoke is very colorful.", requester["id"])]
    # The same email again is the same user.
    again = zendesk.http.post(f"{zendesk.api()}/tickets.json", json={"ticket": ticket}).json()["ticket"]
    assert again["requester_id"] == requester["id"]


@pytest.mark.parametrize(
    ("ticket", "field"),
    [
        ({"subject": "No words"}, "base"),
        ({"comment": {"body": "x"}, "status": "sleeping"}, "status"),
        ({"comment": {"body": "x"}, "priority": "critical"}, "priority"),
        ({"comment": {"body": "x"}, "requester": {"email": "not-an-email"}}, "requester"),
        ({"comment": {"body": "x"}, "requester_id": 1}, "requester"),
        ({"comment": {"body": "x"}, "custom_fields": [{"id": 360300000001, "value": "toaster"}]}, "product"),
    ],
    ids=["no-comment", "unknown-status", "unknown-priority", "bad-email", "unknown-requester", "bad-option"],
)
def test_invalid_tickets_get_record_invalid_and_change_nothing(
    zendesk: Zendesk, ticket: dict[str, Any], field: str
) -> None:
    before = list(zendesk.sandbox.account("acme").ticket_ids)
    response = zendesk.http.post(f"{zendesk.api()}/tickets.json", json={"ticket": ticket})
    assert response.status_code == 422
    body = response.json()
    assert (body["error"], body["description"]) == ("RecordInvalid", "Record validation errors")
    assert {"description", "error"} <= set(body["details"][field][0])
    assert zendesk.sandbox.account("acme").ticket_ids == before


def test_updates_change_status_priority_assignee_tags_and_custom_fields(zendesk: Zendesk) -> None:
    account = zendesk.sandbox.account("acme")
    ticket_id = with_status(account, "new", "open")[0]
    agent = next(u["id"] for u in account.active_users() if u["role"] == "agent")
    update = {
        "status": "pending",
        "priority": "low",
        "assignee_id": agent,
        "tags": ["a", "b"],
        "custom_fields": [{"id": 360300000002, "value": "ORD-1"}],
    }
    response = zendesk.http.put(f"{zendesk.api()}/tickets/{ticket_id}.json", json={"ticket": update})
    assert response.status_code == 200
    ticket = zendesk.http.get(f"{zendesk.api()}/tickets/{ticket_id}.json").json()["ticket"]
    assert (ticket["status"], ticket["priority"], ticket["assignee_id"], ticket["tags"]) == (
        "pending",
        "low",
        agent,
        ["a", "b"],
    )
    assert {"id": 360300000002, "value": "ORD-1"} in ticket["custom_fields"]


def test_a_comment_is_added_only_through_a_ticket_update_and_never_changes(zendesk: Zendesk) -> None:
    account = zendesk.sandbox.account("acme")
    ticket_id = with_status(account, *WORKABLE)[0]
    comments = f"{zendesk.api()}/tickets/{ticket_id}/comments.json"
    before = zendesk.http.get(comments).json()["comments"]
    assert zendesk.http.post(comments, json={"comment": {"body": "direct"}}).status_code == 405
    update = {"ticket": {"comment": {"body": "Internal note", "public": False}}}
    assert zendesk.http.put(f"{zendesk.api()}/tickets/{ticket_id}.json", json=update).status_code == 200
    after = zendesk.http.get(comments).json()["comments"]
    assert after[: len(before)] == before
    assert [(c["body"], c["public"]) for c in after[len(before) :]] == [("Internal note", False)]
    comment_id = after[-1]["id"]
    assert zendesk.http.put(f"{comments[:-5]}/{comment_id}.json", json={"comment": {"body": "x"}}).status_code == 404


def test_a_closed_ticket_refuses_any_update_as_zendesk_does(zendesk: Zendesk) -> None:
    account = zendesk.sandbox.account("acme")
    ticket_id = with_status(account, "closed")[0]
    before = account.comments(ticket_id)
    response = zendesk.http.put(
        f"{zendesk.api()}/tickets/{ticket_id}.json", json={"ticket": {"comment": {"body": "Hello again?"}}}
    )
    assert response.status_code == 422
    assert response.json()["details"]["status"][0]["description"] == "Status: closed prevents ticket update"
    assert account.comments(ticket_id) == before


def test_soft_delete_answers_204_and_lists_the_ticket_in_deleted_tickets(zendesk: Zendesk) -> None:
    ticket_id = zendesk.sandbox.account("acme").ticket_ids[10]
    assert zendesk.http.delete(f"{zendesk.api()}/tickets/{ticket_id}.json").status_code == 204
    missing = zendesk.http.get(f"{zendesk.api()}/tickets/{ticket_id}.json")
    assert missing.status_code == 404 and missing.json() == {"error": "RecordNotFound", "description": "Not found"}
    deleted = zendesk.http.get(f"{zendesk.api()}/deleted_tickets.json").json()
    assert [(t["id"], t["actor"]["id"]) for t in deleted["deleted_tickets"]] == [
        (ticket_id, zendesk.sandbox.account("acme").admin_id)
    ]
    listed = zendesk.http.get(f"{zendesk.api()}/tickets.json", params={"per_page": 100, "page": 1}).json()
    assert listed["count"] == SIZE.tickets - 1


def test_users_soft_delete_into_deleted_users_and_emails_stay_unique(zendesk: Zendesk) -> None:
    created = zendesk.http.post(f"{zendesk.api()}/users", json={"user": {"name": "Grace", "email": "g@x.example"}})
    assert created.status_code == 201
    user_id = created.json()["user"]["id"]
    duplicate = zendesk.http.post(f"{zendesk.api()}/users", json={"user": {"name": "Other", "email": "G@x.example"}})
    assert duplicate.status_code == 422 and duplicate.json()["details"]["email"][0]["error"] == "DuplicateValue"
    assert zendesk.http.post(f"{zendesk.api()}/users", json={"user": {"email": "n@x.example"}}).status_code == 422
    deleted = zendesk.http.delete(f"{zendesk.api()}/users/{user_id}")
    assert deleted.status_code == 200 and deleted.json()["user"]["active"] is False
    gone = zendesk.http.get(f"{zendesk.api()}/deleted_users").json()["deleted_users"]
    assert [u["id"] for u in gone] == [user_id]
    export = zendesk.http.get(f"{zendesk.api()}/incremental/users/cursor", params={"start_time": AN_HOUR_AGO}).json()
    assert [(u["id"], u["active"]) for u in export["users"]] == [(user_id, False)]


def test_organizations_are_created_updated_and_names_stay_unique(zendesk: Zendesk) -> None:
    api = f"{zendesk.api()}/organizations"
    created = zendesk.http.post(api, json={"organization": {"name": "Engines Ltd", "domain_names": ["engines.io"]}})
    assert created.status_code == 201
    organization = created.json()["organization"]
    taken = zendesk.http.post(api, json={"organization": {"name": "engines ltd"}})
    assert taken.status_code == 422 and "name" in taken.json()["details"]
    updated = zendesk.http.put(f"{api}/{organization['id']}", json={"organization": {"notes": "VIP"}})
    assert updated.json()["organization"]["notes"] == "VIP"


def test_show_many_reads_records_by_id(zendesk: Zendesk) -> None:
    account = zendesk.sandbox.account("acme")
    ids = account.ticket_ids[:3]
    body = zendesk.http.get(f"{zendesk.api()}/tickets/show_many.json", params={"ids": ",".join(map(str, ids))}).json()
    assert [t["id"] for t in body["tickets"]] == ids
    too_many = ",".join(str(i) for i in range(1, 102))
    assert zendesk.http.get(f"{zendesk.api()}/users/show_many", params={"ids": too_many}).status_code == 400


# ---- webhooks ---------------------------------------------------------------------------------------


@dataclass
class Receiver:
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)

    async def hook(self, request: Request) -> Response:
        self.requests.append((dict(request.headers), await request.body()))
        self.arrived.set()
        return Response(status_code=200)


def test_webhooks_are_signed_with_hmac_of_timestamp_and_body(zendesk: Zendesk) -> None:
    receiver = Receiver()
    app = Starlette(routes=[Route("/hook", receiver.hook, methods=["POST"])])
    with serve_in_thread(app) as hook_url:
        secret = zendesk.sandbox.configure_webhooks(f"{hook_url}/hook", subdomain="acme")
        account = zendesk.sandbox.account("acme")
        ticket_id = with_status(account, "open")[0]
        zendesk.http.put(f"{zendesk.api()}/tickets/{ticket_id}", json={"ticket": {"status": "solved"}})
        assert zendesk.sandbox.flush_webhooks()
    ((headers, body),) = receiver.requests
    timestamp = headers["x-zendesk-webhook-signature-timestamp"]
    expected = base64.b64encode(hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest())
    assert headers["x-zendesk-webhook-signature"] == expected.decode()
    event = orjson.loads(body)
    assert event["type"] == "zen:event-type:ticket.status_changed"
    assert event["subject"] == f"zen:ticket:{ticket_id}" and event["account_id"] == account.id
    assert event["event"] == {"previous": "OPEN", "current": "SOLVED"} and event["detail"]["id"] == str(ticket_id)
    assert "subdomain" not in event


def test_webhooks_can_name_the_subdomain_and_report_deletions(zendesk: Zendesk) -> None:
    receiver = Receiver()
    app = Starlette(routes=[Route("/hook", receiver.hook, methods=["POST"])])
    with serve_in_thread(app) as hook_url:
        zendesk.sandbox.configure_webhooks(f"{hook_url}/hook", "secret", "acme", name_subdomain=True)
        ticket_id = zendesk.sandbox.account("acme").ticket_ids[0]
        zendesk.http.delete(f"{zendesk.api()}/tickets/{ticket_id}")
        assert zendesk.sandbox.flush_webhooks()
    (event,) = [orjson.loads(body) for _, body in receiver.requests]
    assert (event["type"], event["subdomain"]) == ("zen:event-type:ticket.soft_deleted", "acme")


# ---- faults -----------------------------------------------------------------------------------------


def test_fault_knobs_inject_server_errors_and_throttling(zendesk: Zendesk) -> None:
    zendesk.sandbox.faults.update({"rate_5xx": 1.0})
    assert zendesk.http.get(f"{zendesk.api()}/tickets").status_code in (500, 502, 503)
    zendesk.sandbox.faults.update({"rate_5xx": 0.0, "rate_429": 1.0})
    throttled = zendesk.http.get(f"{zendesk.api()}/tickets")
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "1"
    counted = zendesk.sandbox.stats.responses_by_status
    assert counted[429] == 1 and sum(counted[s] for s in (500, 502, 503)) == 1


def test_fault_knobs_truncate_or_oversize_bodies(zendesk: Zendesk) -> None:
    zendesk.sandbox.faults.update({"rate_truncated": 1.0})
    cut = zendesk.http.get(f"{zendesk.api()}/groups")
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(cut.content)
    zendesk.sandbox.faults.update({"rate_truncated": 0.0, "rate_oversized": 1.0})
    with zendesk.http.stream("GET", f"{zendesk.api()}/groups") as big:
        assert int(big.headers["content-length"]) > 16 * 1024 * 1024


def test_control_routes_turn_knobs_over_http(zendesk: Zendesk) -> None:
    assert httpx2.patch(f"{zendesk.url}/_sandbox/faults", json={"export_rate_per_min": 2}).status_code == 200
    assert zendesk.sandbox.faults.export_rate_per_min == 2
    assert httpx2.patch(f"{zendesk.url}/_sandbox/faults", json={"rate_5xx": 2}).status_code == 400


# ---- size and determinism ---------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_account() -> None:
    first, second = (ZendeskSandbox(seed=9, size=SandboxSize(tickets=40)) for _ in range(2))
    a, b = first.account(), second.account()
    assert [a.ticket(i) for i in a.ticket_ids] == [b.ticket(i) for i in b.ticket_ids]
    assert [a.comments(i) for i in a.ticket_ids] == [b.comments(i) for i in b.ticket_ids]
    assert (first.client_id, first.api_token()) == (second.client_id, second.api_token())


def test_a_large_account_renders_tickets_and_comments_on_demand() -> None:
    sandbox = ZendeskSandbox(seed=1, size=SandboxSize(tickets=20_000, users=2_000, organizations=200))
    account = sandbox.account()
    assert len(account.ticket_ids) == 20_000 and len(account.tickets_timeline) == 20_000
    assert account.comments(19_999) == account.comments(19_999)
    # Reading never keeps a rendered ticket: only writes do.
    assert account.live_tickets == {} and account.live_comments == {}
    statuses = {account.ticket(i)["status"] for i in range(1, 20_001, 97)}  # type: ignore[index]
    assert statuses == {"new", "open", "pending", "hold", "solved", "closed"}


# ---- driver -----------------------------------------------------------------------------------------


def test_the_driver_names_every_stream_and_its_writes_show_in_the_export() -> None:
    driver = ZendeskDriver(ZendeskSandbox(seed=5, size=SandboxSize(tickets=30, users=10)))
    driver.sandbox.faults.export_lag_s = 0
    assert all(driver.expected_ids(stream) for stream in STREAM_IDS)
    created = driver.create()
    closed = str(with_status(driver.account, "closed")[0])
    driver.update(closed)
    driver.delete(created)
    assert created not in driver.expected_ids("tickets")
    with driver.serve() as endpoints, httpx2.Client(headers=basic(driver.sandbox, "xkit-demo")) as http:
        assert endpoints.base_url is not None
        export = f"{endpoints.base_url}/api/v2/incremental/tickets/cursor.json"
        body = http.get(export, params={"start_time": AN_HOUR_AGO}).json()
    assert {(str(t["id"]), t["status"]) for t in body["tickets"]} == {(closed, "closed"), (created, "deleted")}

"""The Support API routes of every account: tickets and their comments, users, organizations, groups,
fields, satisfaction ratings, soft deletions and the incremental exports."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.kit.sandbox_support import json_response
from connectors.zendesk.sandbox.account import Account, render
from connectors.zendesk.sandbox.data import USER_FIELDS, FieldDef, ticket_field_definitions
from connectors.zendesk.sandbox.errors import ZendeskError, bad_request, not_found, too_recent_start_time
from connectors.zendesk.sandbox.gate import Caller
from connectors.zendesk.sandbox.paging import page_of
from connectors.zendesk.sandbox.sandbox import ZendeskSandbox
from connectors.zendesk.sandbox.timeline import Position, Timeline, decode_cursor, encode_cursor

EXPORT_PAGE_MAX = 1000
SHOW_MANY_MAX = 100
PREFIX = "/{subdomain}/api/v2"

Handler = Callable[[Request, Caller], Awaitable[Response]]


def _handler(method: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return await method(request, request.state.caller)

    return endpoint


class SupportApi:
    def routes(self) -> list[Route]:
        table: list[tuple[str, Handler, str]] = [
            ("/tickets", self.list_tickets, "GET"),
            ("/tickets", self.create_ticket, "POST"),
            ("/tickets/show_many", self.show_many_tickets, "GET"),
            ("/tickets/{id:int}", self.show_ticket, "GET"),
            ("/tickets/{id:int}", self.update_ticket, "PUT"),
            ("/tickets/{id:int}", self.delete_ticket, "DELETE"),
            ("/tickets/{id:int}/comments", self.list_comments, "GET"),
            ("/deleted_tickets", self.list_deleted_tickets, "GET"),
            ("/users", self.list_users, "GET"),
            ("/users", self.create_user, "POST"),
            ("/users/me", self.me, "GET"),
            ("/users/show_many", self.show_many_users, "GET"),
            ("/users/{id:int}", self.show_user, "GET"),
            ("/users/{id:int}", self.update_user, "PUT"),
            ("/users/{id:int}", self.delete_user, "DELETE"),
            ("/deleted_users", self.list_deleted_users, "GET"),
            ("/organizations", self.list_organizations, "GET"),
            ("/organizations", self.create_organization, "POST"),
            ("/organizations/show_many", self.show_many_organizations, "GET"),
            ("/organizations/{id:int}", self.show_organization, "GET"),
            ("/organizations/{id:int}", self.update_organization, "PUT"),
            ("/organizations/{id:int}", self.delete_organization, "DELETE"),
            ("/groups", self.list_groups, "GET"),
            ("/ticket_fields", self.list_ticket_fields, "GET"),
            ("/user_fields", self.list_user_fields, "GET"),
            ("/satisfaction_ratings", self.list_satisfaction_ratings, "GET"),
            ("/incremental/tickets/cursor", self.export_tickets_by_cursor, "GET"),
            ("/incremental/users/cursor", self.export_users_by_cursor, "GET"),
            ("/incremental/tickets", self.export_tickets, "GET"),
            ("/incremental/users", self.export_users, "GET"),
            ("/incremental/organizations", self.export_organizations, "GET"),
            ("/incremental/ticket_events", self.export_ticket_events, "GET"),
        ]
        return [Route(PREFIX + path, _handler(handler), methods=[method]) for path, handler, method in table]

    # ---- tickets ----------------------------------------------------------------------------------

    async def list_tickets(self, request: Request, caller: Caller) -> Response:
        account = caller.account
        ids = account.ticket_ids
        return json_response(page_of(request, "tickets", ids, lambda i: self._ticket(request, account, i)))

    async def show_many_tickets(self, request: Request, caller: Caller) -> Response:
        ids = _ids(request)
        account = caller.account
        found = [i for i in ids if account.ticket(i) is not None]
        return json_response({"tickets": [self._ticket(request, account, i) for i in found], "count": len(found)})

    async def show_ticket(self, request: Request, caller: Caller) -> Response:
        account = caller.account
        if account.ticket(request.path_params["id"]) is None:
            raise not_found()
        return json_response({"ticket": self._ticket(request, account, request.path_params["id"])})

    async def create_ticket(self, request: Request, caller: Caller) -> Response:
        fields = await _root(request, "ticket")
        ticket, audit = caller.account.create_ticket(fields, caller.user_id)
        body = {"ticket": self._render_ticket(request, caller.account, ticket), "audit": _render_audit(audit)}
        headers = {"Location": _record_url(request, caller.account, "tickets", ticket["id"])}
        return json_response(body, 201, headers)

    async def update_ticket(self, request: Request, caller: Caller) -> Response:
        fields = await _root(request, "ticket")
        ticket, audit = caller.account.update_ticket(request.path_params["id"], fields, caller.user_id)
        return json_response(
            {"ticket": self._render_ticket(request, caller.account, ticket), "audit": _render_audit(audit)}
        )

    async def delete_ticket(self, request: Request, caller: Caller) -> Response:
        caller.account.delete_ticket(request.path_params["id"], caller.user_id)
        return Response(status_code=204)

    async def list_comments(self, request: Request, caller: Caller) -> Response:
        account = caller.account
        if account.ticket(request.path_params["id"]) is None:
            raise not_found()
        comments = account.comments(request.path_params["id"])
        if request.query_params.get("sort") == "-created_at" or request.query_params.get("sort_order") == "desc":
            comments = comments[::-1]
        return json_response(page_of(request, "comments", comments, render))

    async def list_deleted_tickets(self, request: Request, caller: Caller) -> Response:
        def shown(ticket: dict[str, Any]) -> dict[str, Any]:
            return render(
                {
                    "id": ticket["id"],
                    "subject": ticket["subject"],
                    "description": ticket["description"],
                    "actor": ticket["actor"],
                    "previous_state": ticket["previous_state"],
                    "deleted_at": ticket["deleted_at"],
                }
            )

        return json_response(page_of(request, "deleted_tickets", caller.account.deleted_tickets(), shown))

    def _ticket(self, request: Request, account: Account, ticket_id: int) -> dict[str, Any]:
        ticket = account.any_ticket(ticket_id)
        assert ticket is not None
        return self._render_ticket(request, account, ticket)

    def _render_ticket(self, request: Request, account: Account, ticket: dict[str, Any]) -> dict[str, Any]:
        shown = render(ticket, _record_url(request, account, "tickets", ticket["id"]))
        shown["generated_timestamp"] = ticket["updated_at"]
        for key in ("actor", "previous_state", "deleted_at"):
            shown.pop(key, None)
        return shown

    # ---- users, organizations and the rest -----------------------------------------------------------

    async def list_users(self, request: Request, caller: Caller) -> Response:
        users = sorted(caller.account.active_users(), key=lambda u: u["id"])
        roles = request.query_params.getlist("role[]") or request.query_params.getlist("role")
        if roles:
            users = [u for u in users if u["role"] in roles]
        return json_response(page_of(request, "users", users, self._user_renderer(request, caller.account)))

    async def list_deleted_users(self, request: Request, caller: Caller) -> Response:
        users = sorted(caller.account.deleted_users(), key=lambda u: u["id"])
        return json_response(page_of(request, "deleted_users", users, self._user_renderer(request, caller.account)))

    async def show_many_users(self, request: Request, caller: Caller) -> Response:
        # Deleted users are still shown, inactive, as `GET /users/{id}` shows them.
        users = [user for i in _ids(request) if (user := caller.account.user(i)) is not None]
        return json_response({"users": [self._user_renderer(request, caller.account)(u) for u in users]})

    async def show_many_organizations(self, request: Request, caller: Caller) -> Response:
        found = [caller.account.organizations.get(i) for i in _ids(request)]
        live = [o for o in found if o is not None and o.get("deleted_at") is None]
        renderer = self._organization_renderer(request, caller.account)
        return json_response({"organizations": [renderer(o) for o in live]})

    async def me(self, request: Request, caller: Caller) -> Response:
        user = caller.account.users[caller.user_id]
        return json_response({"user": self._user_renderer(request, caller.account)(user)})

    async def show_user(self, request: Request, caller: Caller) -> Response:
        user = caller.account.user(request.path_params["id"])
        if user is None:
            raise not_found()
        return json_response({"user": self._user_renderer(request, caller.account)(user)})

    async def create_user(self, request: Request, caller: Caller) -> Response:
        user = caller.account.create_user(await _root(request, "user"))
        return json_response({"user": self._user_renderer(request, caller.account)(user)}, 201)

    async def update_user(self, request: Request, caller: Caller) -> Response:
        user = caller.account.update_user(request.path_params["id"], await _root(request, "user"))
        return json_response({"user": self._user_renderer(request, caller.account)(user)})

    async def delete_user(self, request: Request, caller: Caller) -> Response:
        user = caller.account.delete_user(request.path_params["id"])
        return json_response({"user": self._user_renderer(request, caller.account)(user)})

    def _user_renderer(self, request: Request, account: Account) -> Callable[[dict[str, Any]], dict[str, Any]]:
        return lambda user: render(user, _record_url(request, account, "users", user["id"]))

    def _organization_renderer(self, request: Request, account: Account) -> Callable[[dict[str, Any]], dict[str, Any]]:
        return lambda org: render(org, _record_url(request, account, "organizations", org["id"]))

    async def list_organizations(self, request: Request, caller: Caller) -> Response:
        organizations = sorted(caller.account.live_organizations(), key=lambda o: o["id"])
        renderer = self._organization_renderer(request, caller.account)
        return json_response(page_of(request, "organizations", organizations, renderer))

    async def show_organization(self, request: Request, caller: Caller) -> Response:
        organization = caller.account.organizations.get(request.path_params["id"])
        if organization is None or organization.get("deleted_at") is not None:
            raise not_found()
        return json_response({"organization": self._organization_renderer(request, caller.account)(organization)})

    async def create_organization(self, request: Request, caller: Caller) -> Response:
        organization = caller.account.create_organization(await _root(request, "organization"))
        renderer = self._organization_renderer(request, caller.account)
        return json_response({"organization": renderer(organization)}, 201)

    async def update_organization(self, request: Request, caller: Caller) -> Response:
        organization = caller.account.update_organization(
            request.path_params["id"], await _root(request, "organization")
        )
        return json_response({"organization": self._organization_renderer(request, caller.account)(organization)})

    async def delete_organization(self, request: Request, caller: Caller) -> Response:
        caller.account.delete_organization(request.path_params["id"])
        return Response(status_code=204)

    async def list_groups(self, request: Request, caller: Caller) -> Response:
        account = caller.account
        groups = [render(g, _record_url(request, account, "groups", g["id"])) for g in account.groups]
        return json_response(page_of(request, "groups", groups, lambda g: g))

    async def list_ticket_fields(self, request: Request, caller: Caller) -> Response:
        account = caller.account
        fields = [
            _field_json(request, account, "ticket_fields", field, system)
            for field, system in ticket_field_definitions(account.id)
        ]
        return json_response(page_of(request, "ticket_fields", fields, lambda f: f))

    async def list_user_fields(self, request: Request, caller: Caller) -> Response:
        fields = [_field_json(request, caller.account, "user_fields", f, False) for f in USER_FIELDS]
        return json_response(page_of(request, "user_fields", fields, lambda f: f))

    async def list_satisfaction_ratings(self, request: Request, caller: Caller) -> Response:
        account = caller.account
        ratings = account.satisfaction_ratings()
        return json_response(
            page_of(
                request,
                "satisfaction_ratings",
                ratings,
                lambda r: render(r, _record_url(request, account, "satisfaction_ratings", r["id"])),
            )
        )

    # ---- incremental exports ------------------------------------------------------------------------

    async def export_tickets_by_cursor(self, request: Request, caller: Caller) -> Response:
        account = caller.account
        exclude_deleted = request.query_params.get("exclude_deleted") == "true"

        def shown(ticket_id: int) -> dict[str, Any] | None:
            ticket = account.any_ticket(ticket_id)
            if ticket is None or (exclude_deleted and ticket["status"] == "deleted"):
                return None
            return self._render_ticket(request, account, ticket)

        return json_response(_cursor_export(request, "tickets", account.tickets_timeline, shown))

    async def export_users_by_cursor(self, request: Request, caller: Caller) -> Response:
        account = caller.account
        renderer = self._user_renderer(request, account)
        return json_response(
            _cursor_export(request, "users", account.users_timeline, lambda i: renderer(account.users[i]))
        )

    async def export_tickets(self, request: Request, caller: Caller) -> Response:
        account = caller.account

        def shown(ticket_id: int) -> dict[str, Any] | None:
            ticket = account.any_ticket(ticket_id)
            return None if ticket is None else self._render_ticket(request, account, ticket)

        return json_response(_time_export(request, "tickets", account.tickets_timeline, shown))

    async def export_users(self, request: Request, caller: Caller) -> Response:
        account = caller.account
        renderer = self._user_renderer(request, account)
        return json_response(
            _time_export(request, "users", account.users_timeline, lambda i: renderer(account.users[i]))
        )

    async def export_organizations(self, request: Request, caller: Caller) -> Response:
        account = caller.account
        renderer = self._organization_renderer(request, account)
        return json_response(
            _time_export(
                request, "organizations", account.organizations_timeline, lambda i: renderer(account.organizations[i])
            )
        )

    async def export_ticket_events(self, request: Request, caller: Caller) -> Response:
        account = caller.account
        with_comments = "comment_events" in request.query_params.get("include", "").split(",")

        def shown(event_id: int) -> dict[str, Any] | None:
            event = account.event(event_id)
            if event is None:
                return None
            children = [c for c in event["child_events"] if with_comments or c["event_type"] != "Comment"]
            return {**render(event), "timestamp": event["timestamp"], "child_events": [render(c) for c in children]}

        return json_response(_time_export(request, "ticket_events", account.events_timeline, shown))


def _cursor_export(
    request: Request, key: str, timeline: Timeline, shown: Callable[[int], dict[str, Any] | None]
) -> dict[str, Any]:
    params = request.query_params
    size = _export_page_size(request)
    if "cursor" in params:
        position = decode_cursor(params["cursor"])
        if position is None:
            raise bad_request("The cursor is invalid", "InvalidValue")
    else:
        position = (_start_time(request), -1)
    if position[0] < 0:
        raise bad_request("The cursor is invalid", "InvalidValue")
    entries, more = timeline.after(position, size, _until(request))
    last: Position = (entries[-1][0], entries[-1][1]) if entries else position
    after = encode_cursor(last)
    records = [record for _, _, record_id in entries if (record := shown(record_id)) is not None]
    return {
        key: records,
        "after_cursor": after,
        "after_url": _export_url(request, cursor=after),
        "before_cursor": None,
        "before_url": None,
        "end_of_stream": not more,
    }


def _time_export(
    request: Request, key: str, timeline: Timeline, shown: Callable[[int], dict[str, Any] | None]
) -> dict[str, Any]:
    start = _start_time(request)
    until = _until(request)
    entries, more = timeline.since(start, _export_page_size(request), until)
    if not more:
        # Everything up to the lag was given: the next export may start there.
        end_time = max(until, start)
    else:
        end_time = entries[-1][0]
        if entries[0][0] == end_time:
            # A page that is one second throughout: the next starts after it, or it would repeat forever.
            end_time += 1
    records = [record for _, _, record_id in entries if (record := shown(record_id)) is not None]
    return {
        key: records,
        "next_page": _export_url(request, start_time=str(end_time)),
        "count": len(records),
        "end_of_stream": not more,
        "end_time": end_time,
    }


def _start_time(request: Request) -> int:
    raw = request.query_params.get("start_time")
    if raw is None:
        raise bad_request("start_time is required", "InvalidValue")
    try:
        start = int(raw)
    except ValueError:
        raise bad_request("start_time must be a Unix epoch time in seconds", "InvalidValue") from None
    if start > time.time() - _lag(request):
        raise too_recent_start_time()
    return max(start, 0)


def _lag(request: Request) -> int:
    sandbox: ZendeskSandbox = request.app.state.sandbox
    return sandbox.faults.export_lag_s


def _until(request: Request) -> int:
    """The latest change an export made now may include: the last minute's are left out."""
    return int(time.time()) - _lag(request)


def _export_page_size(request: Request) -> int:
    raw = request.query_params.get("per_page", str(EXPORT_PAGE_MAX))
    try:
        size = int(raw)
    except ValueError:
        size = 0
    if not 1 <= size <= EXPORT_PAGE_MAX:
        raise bad_request(f"per_page must be between 1 and {EXPORT_PAGE_MAX}", "InvalidValue")
    return size


def _export_url(request: Request, **params: str) -> str:
    kept = {name: value for name, value in request.query_params.items() if name not in ("cursor", "start_time")}
    return str(request.url.replace_query_params(**kept, **params))


def _ids(request: Request) -> list[int]:
    """The `ids` of a show_many request: at most 100, as Zendesk takes."""
    ids = [part.strip() for part in request.query_params.get("ids", "").split(",") if part.strip()]
    if len(ids) > SHOW_MANY_MAX or not all(part.isdigit() for part in ids):
        raise bad_request(f"ids must be at most {SHOW_MANY_MAX} comma-separated record ids", "InvalidValue")
    return [int(part) for part in ids]


def _record_url(request: Request, account: Account, kind: str, record_id: int) -> str:
    return f"{request.base_url}{account.subdomain}/api/v2/{kind}/{record_id}.json"


def _field_json(request: Request, account: Account, kind: str, field: FieldDef, system: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "url": _record_url(request, account, kind, field.id),
        "id": field.id,
        "type": field.type,
        "key": field.key,
        "title": field.title,
        "active": True,
        "removable": not system,
        "created_at": "2023-06-01T00:00:00Z",
        "updated_at": "2023-06-01T00:00:00Z",
    }
    if field.options:
        body["custom_field_options"] = [
            {"id": field.id * 10 + n, "name": option.replace("_", " ").title(), "value": option}
            for n, option in enumerate(field.options)
        ]
    return body


def _render_audit(audit: dict[str, Any]) -> dict[str, Any]:
    shown = render(audit)
    shown["events"] = [render(child) for child in shown.pop("child_events")]
    for key in ("ticket_id", "timestamp", "updater_id", "event_type"):
        shown.pop(key, None)
    return shown


async def _root(request: Request, key: str) -> dict[str, Any]:
    """The object under `key` in a JSON body, as every write takes it (`{"ticket": {...}}`)."""
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise ZendeskError(400, {"error": "InvalidJSON", "description": "The request body is not valid JSON"}) from None
    if not isinstance(body, dict) or not isinstance(body.get(key), dict):
        raise ZendeskError(
            400, {"error": "ParameterMissing", "description": f'The body must be a JSON object {{"{key}": {{...}}}}'}
        )
    fields: dict[str, Any] = body[key]
    return fields

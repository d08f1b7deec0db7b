"""The kit's REST writer and form encoding, against sandboxes that take bodies the way Stripe (bracket-nested
forms, POST updates, `deleted: true` answers) and Zendesk (`{"ticket": {...}}` JSON, PUT, 204) do
(shared/providers/{stripe,zendesk}.md)."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.kit.declaration import Draft, Stream, StreamContext
from connectors.kit.errors import BadInput, ProviderError
from connectors.kit.form import form_decode, form_encode
from connectors.kit.mapping import ModelMapping, Path
from connectors.kit.models import CONTACT
from connectors.kit.pagination import CursorPagination
from connectors.kit.records import RemoteRecord
from connectors.kit.writers import RestWriter, nest
from tests.connectors.kit_sessions import sandbox_session

CUSTOMER = ModelMapping(
    CONTACT,
    {"first_name": Path("name"), "email": Path("email"), "phone": Path("phone"), "job_title": Path("metadata.title")},
)


@dataclass
class Provider:
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    tickets: dict[str, dict[str, Any]] = field(default_factory=dict)
    bodies: list[tuple[str, str, str]] = field(default_factory=list)  # method, path, raw body
    ids: Any = field(default_factory=lambda: itertools.count(1))

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/customers", self.stripe_create, methods=["POST"]),
                Route("/v1/customers/{id}", self.stripe_item, methods=["POST", "DELETE"]),
                Route("/api/v2/tickets", self.zendesk_create, methods=["POST"]),
                Route("/api/v2/tickets/{id}", self.zendesk_item, methods=["PUT", "DELETE"]),
            ]
        )

    async def _body(self, request: Request) -> str:
        raw = (await request.body()).decode()
        self.bodies.append((request.method, request.url.path, raw))
        return raw

    async def stripe_create(self, request: Request) -> Response:
        if request.headers.get("content-type") != "application/x-www-form-urlencoded":
            return _stripe_error(400, "invalid_request_error", None, "Invalid request: form-encoded body expected")
        customer = {"id": f"cus_{next(self.ids)}", "object": "customer", **form_decode(await self._body(request))}
        self.customers[customer["id"]] = customer
        return JSONResponse(customer)

    async def stripe_item(self, request: Request) -> Response:
        remote_id = request.path_params["id"]
        if remote_id not in self.customers:
            return _stripe_error(404, "invalid_request_error", "resource_missing", f"No such customer: '{remote_id}'")
        if request.method == "DELETE":
            del self.customers[remote_id]
            return JSONResponse({"id": remote_id, "object": "customer", "deleted": True})
        changes = form_decode(await self._body(request))
        customer = self.customers[remote_id]
        # Stripe merges `metadata` key by key and unsets a field sent empty.
        customer["metadata"] = {**customer.get("metadata", {}), **changes.pop("metadata", {})}
        customer.update({k: (None if v == "" else v) for k, v in changes.items()})
        return JSONResponse(customer)

    async def zendesk_create(self, request: Request) -> Response:
        ticket = {"id": next(self.ids), **orjson.loads(await self._body(request))["ticket"]}
        self.tickets[str(ticket["id"])] = ticket
        return JSONResponse({"ticket": ticket}, status_code=201)

    async def zendesk_item(self, request: Request) -> Response:
        remote_id = request.path_params["id"]
        if remote_id not in self.tickets:
            return JSONResponse({"error": "RecordNotFound", "description": "Not found"}, status_code=404)
        if request.method == "DELETE":
            del self.tickets[remote_id]
            return Response(status_code=204)
        self.tickets[remote_id].update(orjson.loads(await self._body(request))["ticket"])
        return JSONResponse({"ticket": self.tickets[remote_id]})


def _stripe_error(status: int, kind: str, code: str | None, message: str) -> Response:
    return JSONResponse({"error": {"type": kind, "code": code, "message": message}}, status_code=status)


@contextlib.asynccontextmanager
async def sandbox(provider: Provider) -> AsyncIterator[Callable[[RestWriter], StreamContext]]:
    async with sandbox_session(provider.app()) as session:

        def context(writer: RestWriter) -> StreamContext:
            stream = Stream("things", writer.collection_path, CursorPagination(), mapping=writer.mapping, writer=writer)
            return StreamContext(session=session, stream=stream)

        yield context


STRIPE_CUSTOMERS = RestWriter(CUSTOMER, "/v1/customers", "/v1/customers/{id}", update_method="POST", encoding="form")


async def test_a_form_writer_creates_updates_and_deletes_as_stripe_takes_it() -> None:
    provider = Provider()
    async with sandbox(provider) as context:
        ctx = context(STRIPE_CUSTOMERS)
        created = await STRIPE_CUSTOMERS.create(
            ctx,
            Draft(
                {"first_name": "Ann", "email": "ann@example.com", "job_title": "CTO"},
                raw_fields={"preferred_locales": ["fr", "en"], "tax_exempt": "none"},
            ),
        )
        assert created == "cus_1"
        assert provider.bodies[0][2] == (
            "name=Ann&email=ann%40example.com&metadata%5Btitle%5D=CTO"
            "&preferred_locales%5B0%5D=fr&preferred_locales%5B1%5D=en&tax_exempt=none"
        )
        assert provider.customers["cus_1"]["metadata"] == {"title": "CTO"}
        current = RemoteRecord(remote_id=created, raw=provider.customers[created])
        # None clears a field: Stripe unsets what is sent empty.
        await STRIPE_CUSTOMERS.update(ctx, created, Draft({"phone": None, "job_title": "CEO"}), current)
        assert provider.customers["cus_1"]["phone"] is None
        assert provider.customers["cus_1"]["metadata"] == {"title": "CEO"}
        assert provider.bodies[-1][:2] == ("POST", "/v1/customers/cus_1")
        # Nothing to change sends nothing.
        await STRIPE_CUSTOMERS.update(ctx, created, Draft({}), current)
        assert len(provider.bodies) == 2
        await STRIPE_CUSTOMERS.delete(ctx, created)
        assert provider.customers == {}
        with pytest.raises(ProviderError) as missing:
            await STRIPE_CUSTOMERS.delete(ctx, created)
        assert missing.value.status == 404


async def test_ids_are_escaped_into_the_item_path() -> None:
    provider = Provider()
    async with sandbox(provider) as context:
        with pytest.raises(ProviderError) as refused:
            await STRIPE_CUSTOMERS.delete(context(STRIPE_CUSTOMERS), "../tickets/1")
        assert refused.value.status == 404  # the id stayed one path segment: no such customer


ZENDESK_TICKETS = RestWriter(
    CUSTOMER, "/api/v2/tickets", "/api/v2/tickets/{id}", created_id="ticket.id", update_method="PUT", envelope="ticket"
)


async def test_a_json_writer_wraps_the_record_in_its_envelope_and_reads_the_new_id_inside_the_answer() -> None:
    provider = Provider()
    async with sandbox(provider) as context:
        ctx = context(ZENDESK_TICKETS)
        created = await ZENDESK_TICKETS.create(ctx, Draft({"first_name": "Printer on fire", "job_title": "urgent"}))
        assert created == "1"
        assert orjson.loads(provider.bodies[0][2]) == {
            "ticket": {"name": "Printer on fire", "metadata": {"title": "urgent"}}
        }
        current = RemoteRecord(remote_id=created, raw=provider.tickets[created])
        await ZENDESK_TICKETS.update(ctx, created, Draft({"email": "a@b.c"}), current)
        assert provider.bodies[-1][:2] == ("PUT", "/api/v2/tickets/1") and provider.tickets["1"]["email"] == "a@b.c"
        await ZENDESK_TICKETS.delete(ctx, created)
        assert provider.tickets == {}


@dataclass(frozen=True)
class EmailOnCreateOnly:
    """A rule of Salesforce's kind: `email` goes into a field of the rule's own making, on create only."""

    members: tuple[str, ...] = ("email",)

    def apply(
        self, body: dict[str, Any], values: Mapping[str, Any], current: RemoteRecord | None, mapping: ModelMapping
    ) -> None:
        if "email" not in values:
            return
        if current is not None:
            raise BadInput("email is set on create only", field=mapping.field_name("email"))
        body["contact"] = {"address": values["email"]}


async def test_body_rules_write_the_members_they_take_and_create_defaults_fill_what_the_input_left_out() -> None:
    writer = dataclasses.replace(
        ZENDESK_TICKETS,
        rules=(EmailOnCreateOnly(),),
        create_defaults=lambda body: {"subject": f"About {body.get('name') or 'nothing'}", "name": "never used"},
    )
    provider = Provider()
    async with sandbox(provider) as context:
        ctx = context(writer)
        created = await writer.create(ctx, Draft({"first_name": "Ann", "email": "ann@example.com"}))
        assert orjson.loads(provider.bodies[0][2]) == {
            "ticket": {"name": "Ann", "contact": {"address": "ann@example.com"}, "subject": "About Ann"}
        }
        current = RemoteRecord(remote_id=created, raw=provider.tickets[created])
        with pytest.raises(BadInput) as refused:
            await writer.update(ctx, created, Draft({"email": "other@example.com"}), current)
        assert refused.value.extensions["field"] == "email" and len(provider.bodies) == 1  # nothing sent
        # Defaults are for creating only.
        await writer.update(ctx, created, Draft({"first_name": "Bo"}), current)
        assert orjson.loads(provider.bodies[-1][2]) == {"ticket": {"name": "Bo"}}


def test_form_bodies_nest_with_brackets_and_read_back_alike() -> None:
    data = {
        "metadata": {"order_id": "6735"},
        "items": [{"price": "price_1", "quantity": 2}, {"price": "price_2"}],
        "expand": ["data.customer"],
        "description": None,
        "livemode": False,
    }
    body = form_encode(data)
    assert body == (
        "metadata%5Border_id%5D=6735&items%5B0%5D%5Bprice%5D=price_1&items%5B0%5D%5Bquantity%5D=2"
        "&items%5B1%5D%5Bprice%5D=price_2&expand%5B0%5D=data.customer&description=&livemode=false"
    )
    assert form_encode({"expand": ["a", "b"]}, arrays="brackets") == "expand%5B%5D=a&expand%5B%5D=b"
    assert form_decode(body) == {
        "metadata": {"order_id": "6735"},
        "items": [{"price": "price_1", "quantity": "2"}, {"price": "price_2"}],
        "expand": ["data.customer"],
        "description": "",
        "livemode": "false",
    }
    assert form_decode("expand[]=a&expand[]=b") == {"expand": ["a", "b"]}
    for malformed in ("a]b=1", "items[5]=x", "a=1&a[b]=2"):
        with pytest.raises(BadInput):
            form_decode(malformed)


def test_dotted_fields_nest_and_a_field_written_whole_and_inside_is_refused() -> None:
    assert nest({"a.b": 1, "a.c": 2, "d": 3}) == {"a": {"b": 1, "c": 2}, "d": 3}
    with pytest.raises(BadInput):
        nest({"a": 1, "a.b": 2})
    with pytest.raises(BadInput):
        nest({"a.b": 2, "a": 1})

"""The `/v1` endpoints: each is a parameter table and what it does to the caller's account. Around every call:
the parameters read from the query (GET, DELETE) or the form body (POST; JSON is refused as Stripe refuses
it), `Idempotency-Key` replay on POST, and `expand[]` on the answer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.kit.errors import BadInput
from connectors.kit.form import form_decode
from connectors.kit.sandbox_support import json_response
from connectors.stripe.sandbox import params as p
from connectors.stripe.sandbox.account import CURRENT_REQUEST, Account
from connectors.stripe.sandbox.errors import StripeError, invalid, resource_missing
from connectors.stripe.sandbox.expand import expanded
from connectors.stripe.sandbox.gate import Caller
from connectors.stripe.sandbox.lists import embedded_page, list_page, list_spec
from connectors.stripe.sandbox.params import read_params
from connectors.stripe.sandbox.sandbox import EVENT_RETENTION_S, StripeSandbox
from connectors.stripe.sandbox.webhooks import Endpoint, check_url, new_secret

Run = Callable[[Account, str, dict[str, Any]], dict[str, Any]]  # (account, path id, params) -> body


@dataclass(frozen=True)
class Op:
    method: str
    path: str
    run: Run
    spec: Mapping[str, p.Reader] = field(default_factory=dict)
    required: tuple[str, ...] = ()


CUSTOMER = {
    "email": p.text,
    "name": p.text,
    "phone": p.text,
    "description": p.text,
    "metadata": p.metadata,
    "tax_exempt": p.choice("none", "exempt", "reverse"),
    "preferred_locales": p.strings,
}
INVOICE = {
    "customer": p.required_text,
    "currency": p.currency,
    "description": p.text,
    "footer": p.text,
    "metadata": p.metadata,
    "auto_advance": p.boolean,
    "collection_method": p.choice("charge_automatically", "send_invoice"),
    "pending_invoice_items_behavior": p.choice("exclude", "include"),
}
INVOICE_UPDATE = {name: read for name, read in INVOICE.items() if name not in ("customer", "currency")}
INVOICE_ITEM = {
    "customer": p.required_text,
    "invoice": p.text,
    "amount": p.integer,
    "unit_amount": p.integer,
    "quantity": p.positive,
    "currency": p.currency,
    "description": p.text,
    "metadata": p.metadata,
}
PAYMENT_INTENT = {
    "amount": p.integer,
    "currency": p.currency,
    "customer": p.text,
    "description": p.text,
    "metadata": p.metadata,
    "payment_method": p.text,
    "payment_method_types": p.strings,
    "confirm": p.boolean,
}
SUBSCRIPTION = {
    "customer": p.required_text,
    "items": p.each({"price": p.required_text, "quantity": p.positive, "metadata": p.metadata}, ("price",)),
    "metadata": p.metadata,
    "trial_period_days": p.integer,
    "cancel_at_period_end": p.boolean,
    "description": p.text,
}
SUBSCRIPTION_UPDATE = {
    "metadata": p.metadata,
    "cancel_at_period_end": p.boolean,
    "cancel_at": lambda name, value: None if value == "" else p.integer(name, value),
    "description": p.text,
}
WEBHOOK_ENDPOINT = {
    "url": p.required_text,
    "enabled_events": p.strings,
    "description": p.text,
    "metadata": p.metadata,
    "api_version": p.text,
    "connect": p.boolean,
}


def _listing(collection: str, url: str) -> Op:
    return Op("GET", url, lambda account, _, params: list_page(account, collection, url, params), list_spec(collection))


def _get(collection: str, url: str) -> Op:
    return Op("GET", url + "/{id}", lambda account, object_id, _: account.find(collection, object_id))


def _events(account: Account, _: str, params: dict[str, Any]) -> dict[str, Any]:
    events = account.collections["events"]
    oldest = events.first_at_or_after(account.clock() - EVENT_RETENTION_S)
    return list_page(account, "events", "/v1/events", params, oldest)


def _event(account: Account, event_id: str, _: dict[str, Any]) -> dict[str, Any]:
    events = account.collections["events"]
    position = events.position(event_id)
    if position is None or position < events.first_at_or_after(account.clock() - EVENT_RETENTION_S):
        raise resource_missing("event", event_id)
    return events.objects[event_id]


def _invoice_lines(account: Account, invoice_id: str, params: dict[str, Any]) -> dict[str, Any]:
    return embedded_page(account.find("invoices", invoice_id)["lines"], params)


def _payment_intent(account: Account, _: str, params: dict[str, Any]) -> dict[str, Any]:
    return account.create_payment_intent(params)


class StripeApi:
    def __init__(self, sandbox: StripeSandbox) -> None:
        self.sandbox = sandbox

    def ops(self) -> list[Op]:
        return [
            Op("GET", "/v1/account", lambda a, _, __: a.describe()),
            Op("GET", "/v1/accounts/{id}", self.retrieve_account),
            _listing("customers", "/v1/customers"),
            Op("POST", "/v1/customers", lambda a, _, params: a.create_customer(params), CUSTOMER),
            Op("GET", "/v1/customers/{id}", lambda a, i, _: a.customer_or_stub(i)),
            Op("POST", "/v1/customers/{id}", lambda a, i, params: a.update_customer(i, params), CUSTOMER),
            Op("DELETE", "/v1/customers/{id}", lambda a, i, _: a.delete_customer(i)),
            _listing("invoices", "/v1/invoices"),
            Op("POST", "/v1/invoices", lambda a, _, params: a.create_invoice(params), INVOICE, ("customer",)),
            _get("invoices", "/v1/invoices"),
            Op("POST", "/v1/invoices/{id}", lambda a, i, params: a.update_invoice(i, params), INVOICE_UPDATE),
            Op("DELETE", "/v1/invoices/{id}", lambda a, i, _: a.delete_invoice(i)),
            Op(
                "POST", "/v1/invoices/{id}/finalize", lambda a, i, _: a.finalize_invoice(i), {"auto_advance": p.boolean}
            ),
            Op("POST", "/v1/invoices/{id}/void", lambda a, i, _: a.void_invoice(i)),
            Op(
                "POST",
                "/v1/invoices/{id}/pay",
                lambda a, i, params: a.pay_invoice(i, params),
                {"paid_out_of_band": p.boolean, "payment_method": p.text},
            ),
            Op("GET", "/v1/invoices/{id}/lines", _invoice_lines, p.LIST),
            _listing("invoiceitems", "/v1/invoiceitems"),
            Op(
                "POST", "/v1/invoiceitems", lambda a, _, params: a.add_invoice_item(params), INVOICE_ITEM, ("customer",)
            ),
            _get("invoiceitems", "/v1/invoiceitems"),
            _listing("payment_intents", "/v1/payment_intents"),
            Op("POST", "/v1/payment_intents", _payment_intent, PAYMENT_INTENT, ("amount", "currency")),
            _get("payment_intents", "/v1/payment_intents"),
            Op(
                "POST",
                "/v1/payment_intents/{id}",
                lambda a, i, params: a.update_payment_intent(i, params),
                {"description": p.text, "metadata": p.metadata},
            ),
            Op(
                "POST",
                "/v1/payment_intents/{id}/confirm",
                lambda a, i, params: a.confirm_payment_intent(i, params),
                {"payment_method": p.text},
            ),
            Op(
                "POST",
                "/v1/payment_intents/{id}/cancel",
                lambda a, i, params: a.cancel_payment_intent(i, params.get("cancellation_reason")),
                {"cancellation_reason": p.choice("duplicate", "fraudulent", "requested_by_customer", "abandoned")},
            ),
            _listing("subscriptions", "/v1/subscriptions"),
            Op(
                "POST",
                "/v1/subscriptions",
                lambda a, _, params: a.create_subscription(params),
                SUBSCRIPTION,
                ("customer", "items"),
            ),
            _get("subscriptions", "/v1/subscriptions"),
            Op(
                "POST",
                "/v1/subscriptions/{id}",
                lambda a, i, params: a.update_subscription(i, params),
                SUBSCRIPTION_UPDATE,
            ),
            Op("DELETE", "/v1/subscriptions/{id}", lambda a, i, _: a.cancel_subscription(i)),
            _listing("products", "/v1/products"),
            _get("products", "/v1/products"),
            _listing("prices", "/v1/prices"),
            _get("prices", "/v1/prices"),
            _listing("charges", "/v1/charges"),
            _get("charges", "/v1/charges"),
            Op("GET", "/v1/events", _events, list_spec("events")),
            Op("GET", "/v1/events/{id}", _event),
            _listing("webhook_endpoints", "/v1/webhook_endpoints"),
            Op(
                "POST",
                "/v1/webhook_endpoints",
                self.create_webhook_endpoint,
                WEBHOOK_ENDPOINT,
                ("url", "enabled_events"),
            ),
            _get("webhook_endpoints", "/v1/webhook_endpoints"),
            Op("DELETE", "/v1/webhook_endpoints/{id}", self.delete_webhook_endpoint),
        ]

    def routes(self) -> list[Route]:
        return [Route(op.path, self._endpoint(op), methods=[op.method]) for op in self.ops()]

    def retrieve_account(self, account: Account, account_id: str, _: dict[str, Any]) -> dict[str, Any]:
        """An account the caller may see: its own, or (for the platform) one connected to it."""
        target = self.sandbox.accounts.get(account_id)
        platform_sees = account is self.sandbox.platform and target is not None and self.sandbox.is_connected(target)
        if target is None or (target is not account and not platform_sees):
            raise resource_missing("account", account_id)
        return target.describe()

    def create_webhook_endpoint(self, account: Account, _: str, params: dict[str, Any]) -> dict[str, Any]:
        check_url(params["url"])
        secret = new_secret()
        created = account.create_webhook_endpoint(params, secret)
        endpoint = Endpoint(
            created["id"], account.id, params["url"], params["enabled_events"], [secret], bool(params.get("connect"))
        )
        self.sandbox.webhooks.register(endpoint)
        return created

    def delete_webhook_endpoint(self, account: Account, endpoint_id: str, _: dict[str, Any]) -> dict[str, Any]:
        deleted = account.delete_webhook_endpoint(endpoint_id)
        self.sandbox.webhooks.remove(endpoint_id)
        return deleted

    def _endpoint(self, op: Op) -> Callable[[Request], Any]:
        spec = {**op.spec, "expand": p.expand}

        async def endpoint(request: Request) -> Response:
            caller: Caller = request.state.caller
            key = request.headers.get("idempotency-key") if op.method == "POST" else None
            try:
                fields = await _fields(request)
            except StripeError as refused:
                return _error(refused)
            if key is None:
                status, body = await self._run(op, spec, caller.account, request, fields)
                return Response(body, status, media_type="application/json")
            return await self._idempotent(op, spec, caller.account, request, fields, key)

        return endpoint

    async def _idempotent(
        self, op: Op, spec: Mapping[str, p.Reader], account: Account, request: Request, fields: dict[str, Any], key: str
    ) -> Response:
        store = self.sandbox.idempotency
        parameters = orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)
        try:
            saved = store.begin(account.id, key, request.url.path, parameters, request.state.request_id)
        except StripeError as refused:
            return _error(refused, {"Idempotency-Key": key})
        if saved is not None:
            assert saved.status is not None
            headers = {"Idempotency-Key": key, "Idempotent-Replayed": "true", "Original-Request": saved.request_id}
            return Response(saved.body, saved.status, media_type="application/json", headers=headers)
        try:
            status, body = await self._run(op, spec, account, request, fields, key)
        except _Refused as refused:
            store.abandon(account.id, key)
            return _error(refused.error, {"Idempotency-Key": key})
        store.finish(account.id, key, status, body)
        return Response(body, status, media_type="application/json", headers={"Idempotency-Key": key})

    async def _run(
        self,
        op: Op,
        spec: Mapping[str, p.Reader],
        account: Account,
        request: Request,
        fields: dict[str, Any],
        key: str | None = None,
    ) -> tuple[int, bytes]:
        """The endpoint's (status, body); a request refused before the endpoint ran raises _Refused when it holds an
        idempotency key (nothing is saved for it), and is answered like any error otherwise."""
        try:
            params = read_params(fields, spec, op.required)
        except StripeError as refused:
            if key is not None:
                raise _Refused(refused) from None
            return refused.status, orjson.dumps(refused.body)
        expand = params.pop("expand", [])
        latency = self.sandbox.faults.write_latency_ms
        if op.method == "POST" and latency:
            await asyncio.sleep(latency / 1000)
        token = CURRENT_REQUEST.set((request.state.request_id, key))
        try:
            with account.lock:
                body = op.run(account, request.path_params.get("id", ""), params)
                body = expanded(account, body, expand)
                return 200, orjson.dumps(body)
        except StripeError as problem:
            if problem.validation and key is not None:
                raise _Refused(problem) from None
            return problem.status, orjson.dumps(problem.body)
        finally:
            CURRENT_REQUEST.reset(token)


class _Refused(Exception):
    def __init__(self, error: StripeError) -> None:
        super().__init__(str(error))
        self.error = error


async def _fields(request: Request) -> dict[str, Any]:
    """The request's parameters: the query of a GET or DELETE, the form body of a POST (query ones beside)."""
    try:
        fields = form_decode(request.url.query)
        if request.method == "POST":
            content_type = request.headers.get("content-type", "")
            body = (await request.body()).decode("utf-8", errors="replace")
            if "json" in content_type or body.lstrip().startswith("{"):
                raise invalid(
                    f"Invalid request: unsupported Content-Type {content_type or 'application/json'}. If error "
                    "persists and you need assistance, please contact support@stripe.com."
                )
            fields.update(form_decode(body))
    except BadInput as malformed:
        raise invalid(f"Invalid request: {malformed}") from None
    return fields


def _error(problem: StripeError, headers: dict[str, str] | None = None) -> Response:
    return json_response(problem.body, problem.status, {**problem.headers, **(headers or {})} or None)

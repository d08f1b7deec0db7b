"""Writing Stripe customers, subscriptions and invoices: form-encoded POSTs, each request under its own
`Idempotency-Key` derived from the caller's (`Draft.step_key`), so a retried write is answered once by
Stripe too and two requests of one write never share a key.

- Customers are created, updated (POST to the object) and deleted as plain REST resources.
- A subscription changes its metadata and `cancelAtPeriodEnd` only; deleting one cancels it now (Stripe's
  `DELETE /v1/subscriptions/{id}`), and it stays, canceled.
- An invoice is created as a draft with its lines (`POST /v1/invoices`, then one `POST /v1/invoiceitems` per
  line, in the invoice's currency); its status moves by Stripe's actions only: OPEN finalizes a draft, VOID
  voids an open invoice. Only a draft can be deleted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson

from connectors.kit.declaration import Draft, StreamContext
from connectors.kit.errors import BadInput, ProviderError
from connectors.kit.form import form_encode
from connectors.kit.mapping import ModelMapping
from connectors.kit.models import Money
from connectors.kit.records import RemoteRecord
from connectors.kit.writers import FORM, RestWriter, nest
from connectors.stripe.mapping import CUSTOMER_MAPPING, INVOICE_MAPPING, SUBSCRIPTION_MAPPING

IDEMPOTENCY_HEADER = "Idempotency-Key"

CUSTOMER_WRITER = RestWriter(
    CUSTOMER_MAPPING,
    collection_path="/v1/customers",
    item_path="/v1/customers/{id}",
    update_method="POST",
    encoding="form",
    idempotency_header=IDEMPOTENCY_HEADER,
)


async def post_form(
    ctx: StreamContext, path: str, body: Mapping[str, Any], draft: Draft, step: str, *, method: str = "POST"
) -> dict[str, Any]:
    """One form request of a write, under the step's idempotency key (safe to send again when it has one)."""
    key = draft.step_key(step)
    headers = {"Content-Type": FORM, **({IDEMPOTENCY_HEADER: key} if key else {})}
    response = await ctx.session.request(
        method, path, content=form_encode(body).encode(), headers=headers, may_repeat=key is not None
    )
    answer = orjson.loads(response.content) if response.content else {}
    if not isinstance(answer, dict):
        raise ProviderError(f"Stripe's answer to {method} {path} is not an object")
    return answer


def _item(collection: str, remote_id: str, action: str = "") -> str:
    return f"{collection}/{quote(remote_id, safe='')}{'/' + action if action else ''}"


def _refuse_others(values: Mapping[str, Any], allowed: Sequence[str], mapping: ModelMapping, why: str) -> None:
    others = [mapping.field_name(name) for name in values if name not in allowed]
    if others:
        raise BadInput(f"{', '.join(others)} cannot be changed here: {why}", field=others[0])


def _body(mapping: ModelMapping, values: Mapping[str, Any], draft: Draft) -> dict[str, Any]:
    return nest(mapping.merge_raw_fields(mapping.provider_values(values), draft.raw_fields))


@dataclass(frozen=True)
class SubscriptionWriter:
    """Subscriptions start in Stripe (a checkout, a price); here they are annotated and cancelled."""

    mapping: ModelMapping = SUBSCRIPTION_MAPPING
    changeable: tuple[str, ...] = ("metadata", "cancel_at_period_end")

    async def create(self, ctx: StreamContext, draft: Draft) -> str:
        raise BadInput("Stripe subscriptions are started in Stripe (from a price and a customer), not here")

    async def update(self, ctx: StreamContext, remote_id: str, draft: Draft, current: RemoteRecord) -> None:
        _refuse_others(
            draft.values,
            self.changeable,
            self.mapping,
            "a subscription takes metadata and cancelAtPeriodEnd (delete it to cancel it now)",
        )
        body = _body(self.mapping, draft.values, draft)
        if body:
            await post_form(ctx, _item("/v1/subscriptions", remote_id), body, draft, "update")

    async def delete(self, ctx: StreamContext, remote_id: str) -> None:
        await ctx.session.send_json("DELETE", _item("/v1/subscriptions", remote_id))


STATUS_ACTIONS = {("draft", "OPEN"): "finalize", ("open", "VOID"): "void"}


@dataclass(frozen=True)
class InvoiceWriter:
    mapping: ModelMapping = INVOICE_MAPPING

    async def create(self, ctx: StreamContext, draft: Draft) -> str:
        values = dict(draft.values)
        customer = values.pop("customer", None)
        if not customer:
            raise BadInput("an invoice needs its customer's remote id", field="customer")
        lines = values.pop("lines", None) or []
        currency = self._currency(values.pop("currency", None), lines)
        if values.pop("status", "DRAFT") not in (None, "DRAFT"):
            raise BadInput("an invoice is created as a draft: finalize it with updateInvoice(status: OPEN)")
        _refuse_others(values, ("metadata",), self.mapping, "a new invoice takes customer, currency, lines, metadata")
        body: dict[str, Any] = {"customer": customer, **_body(self.mapping, values, draft)}
        if currency:
            body["currency"] = currency.lower()
        # A draft holds the lines given here only, never the customer's other pending items.
        body.setdefault("pending_invoice_items_behavior", "exclude")
        invoice = await post_form(ctx, "/v1/invoices", body, draft, "invoice")
        invoice_id = str(invoice.get("id") or "")
        if not invoice_id:
            raise ProviderError("Stripe's answer to an invoice create names no id")
        for index, line in enumerate(lines):
            item = {"customer": customer, "invoice": invoice_id, **self._line(line, index, currency)}
            await post_form(ctx, "/v1/invoiceitems", item, draft, f"line:{index}")
        return invoice_id

    async def update(self, ctx: StreamContext, remote_id: str, draft: Draft, current: RemoteRecord) -> None:
        values = dict(draft.values)
        status = values.pop("status", None)
        _refuse_others(values, ("metadata",), self.mapping, "an invoice changes its metadata and its status")
        body = _body(self.mapping, values, draft)
        if body:
            await post_form(ctx, _item("/v1/invoices", remote_id), body, draft, "update")
        if status is None:
            return
        now = str(current.raw.get("status") or "")
        if status == INVOICE_MAPPING.to_common(current.raw).get("status"):
            return
        action = STATUS_ACTIONS.get((now, status))
        if action is None:
            moves = ", ".join(f"{before} -> {after}" for before, after in STATUS_ACTIONS)
            raise BadInput(
                f"a {now or 'Stripe'} invoice cannot become {status} here (Stripe moves invoices by actions: "
                f"{moves}; PAID and UNCOLLECTIBLE happen in Stripe)",
                field="status",
            )
        await post_form(ctx, _item("/v1/invoices", remote_id, action), {}, draft, action)

    async def delete(self, ctx: StreamContext, remote_id: str) -> None:
        current = await ctx.session.get_json(_item("/v1/invoices", remote_id))
        if current.get("status") != "draft":
            raise BadInput(
                f"only a draft invoice can be deleted; this one is {current.get('status')}: void it with "
                "updateInvoice(status: VOID)",
                field="id",
            )
        await ctx.session.send_json("DELETE", _item("/v1/invoices", remote_id))

    def _currency(self, given: Any, lines: list[dict[str, Any]]) -> str | None:
        """The invoice's currency: as given, else its lines'; every line must be in it."""
        currency = str(given).upper() if given else None
        for index, line in enumerate(lines):
            amount = line.get("amount")
            if amount is None:
                continue
            line_currency = Money.from_common(amount).currency
            if currency is None:
                currency = line_currency
            elif line_currency != currency:
                raise BadInput(
                    f"line {index} is in {line_currency} but the invoice is in {currency}: an invoice's lines "
                    "share its currency",
                    field=f"lines.{index}.amount",
                )
        return currency

    def _line(self, line: Mapping[str, Any], index: int, currency: str | None) -> dict[str, Any]:
        """An invoice item: a price (and quantity), or an amount (the line's total) with its description; a
        total over several units is sent as their unit amount, which must then divide it exactly."""
        price, amount, quantity = line.get("price_remote_id"), line.get("amount"), line.get("quantity") or 1
        field = f"lines.{index}"
        if (price is None) == (amount is None):
            raise BadInput(f"{field} needs either an amount or a priceRemoteId", field=field)
        item: dict[str, Any] = {"description": line["description"]} if line.get("description") else {}
        if price is not None:
            return {**item, "price": price, "quantity": quantity}
        assert amount is not None and currency is not None
        minor = Money.from_common(amount).to_minor()
        if quantity == 1:
            return {**item, "amount": minor, "currency": currency.lower()}
        if quantity < 1 or minor % quantity:
            raise BadInput(
                f"{field}: an amount of {amount['amount']} {amount['currency']} is not {quantity} equal units "
                "(give quantity 1 and the total, or a total its quantity divides)",
                field=f"{field}.quantity",
            )
        return {**item, "unit_amount": minor // quantity, "quantity": quantity, "currency": currency.lower()}

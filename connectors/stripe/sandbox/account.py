"""One Stripe account's objects and what the API does to them: creates, updates and deletes that emit events
in order, invoices that move from draft to open to paid or void, payment intents that succeed, fail or are
canceled, subscriptions canceled now or at the period's end.

Every method takes parameters already read (params.py) and raises StripeError for what Stripe refuses."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from connectors.stripe.sandbox import objects
from connectors.stripe.sandbox.data import SEED_START
from connectors.stripe.sandbox.errors import StripeError, card_declined, invalid, resource_missing, state_error
from connectors.stripe.sandbox.params import check_amount, merged_metadata
from connectors.stripe.sandbox.store import Collection, IdMaker

# (request id, idempotency key) of the API call under way: every event it emits names them.
CURRENT_REQUEST: contextvars.ContextVar[tuple[str | None, str | None]] = contextvars.ContextVar(
    "stripe_sandbox_request", default=(None, None)
)

# Test payment methods (docs.stripe.com/testing): what confirming with each does.
DECLINES = {
    "pm_card_chargeDeclined": "generic_decline",
    "pm_card_chargeDeclinedInsufficientFunds": "insufficient_funds",
    "pm_card_visa_chargeDeclinedLostCard": "lost_card",
}
SUCCEEDING = {"pm_card_visa", "pm_card_mastercard", "pm_card_amex", "pm_card_jp"}

# Collection name -> (id prefix, the word Stripe's "No such ..." errors use).
KINDS = {
    "customers": ("cus_", "customer"),
    "products": ("prod_", "product"),
    "prices": ("price_", "price"),
    "invoices": ("in_", "invoice"),
    "invoiceitems": ("ii_", "invoiceitem"),
    "payment_intents": ("pi_", "payment_intent"),
    "charges": ("ch_", "charge"),
    "subscriptions": ("sub_", "subscription"),
    "events": ("evt_", "event"),
    "webhook_endpoints": ("we_", "webhook endpoint"),
}
# Ids of objects that live only inside others.
INNER_PREFIXES = ("il_", "si_")
CANCELABLE = ("requires_payment_method", "requires_capture", "requires_confirmation", "requires_action", "processing")

Clock = Callable[[], int]


def snapshot(obj: dict[str, Any]) -> dict[str, Any]:
    """A deep copy (what an event keeps): later changes to the object must not show in it."""
    copied: dict[str, Any] = orjson.loads(orjson.dumps(obj))
    return copied


def previous_attributes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The old values of what changed, as `data.previous_attributes` has them: a changed hash shows the old values
    of its changed keys only (None for a key that was not there)."""
    changed: dict[str, Any] = {}
    for key, old in before.items():
        new = after.get(key)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict) and old.get("object") != "list":
            changed[key] = {k: old.get(k) for k in old.keys() | new.keys() if old.get(k) != new.get(k)}
        else:
            changed[key] = old
    return changed


@dataclass(frozen=True)
class AccountIdentity:
    id: str  # acct_...
    secret_key: str
    publishable_key: str
    restricted_key: str  # read-only
    name: str


class Account:
    """A Stripe account's objects. `on_event` is called with each event as it is emitted (webhooks)."""

    def __init__(self, identity: AccountIdentity, clock: Clock, salt: int) -> None:
        self.identity = identity
        self.clock = clock
        self.collections = {
            name: Collection(kind, "date" if name == "invoiceitems" else "created") for name, (_, kind) in KINDS.items()
        }
        self.ids = {prefix: IdMaker(prefix, salt) for prefix, _ in KINDS.values()}
        self.ids.update({prefix: IdMaker(prefix, salt) for prefix in INNER_PREFIXES})
        self.on_event: Callable[[dict[str, Any]], None] | None = None
        self.lock = threading.RLock()
        self._adhoc_product: str | None = None

    @property
    def id(self) -> str:
        return self.identity.id

    def describe(self) -> dict[str, Any]:
        """The account object (`GET /v1/account`); it predates everything seeded in it."""
        created = SEED_START - 60 * 86_400
        email = f"billing@{self.identity.name.lower().replace(' ', '-')}.example"
        return objects.account(self.id, created, self.identity.name, email)

    def adhoc_product(self) -> str:
        """The product behind invoice items given as an amount (Stripe makes such prices inline)."""
        if self._adhoc_product is None:
            made = objects.product(self.new_id("prod_"), self.clock(), "Invoice item")
            self._adhoc_product = self.add("products", made)["id"]
        return self._adhoc_product

    def new_id(self, prefix: str) -> str:
        return self.ids[prefix].next()

    def add(self, collection: str, obj: dict[str, Any]) -> dict[str, Any]:
        return self.collections[collection].add(obj)

    def find(self, collection: str, object_id: str, param: str = "id") -> dict[str, Any]:
        found = self.collections[collection].get(object_id)
        if found is None:
            raise resource_missing(self.collections[collection].kind, object_id, param)
        return found

    def expand_target(self, collection: str, object_id: str) -> dict[str, Any]:
        """What an id expands to: the object, or a deleted customer's stub."""
        if collection == "customers":
            return self.customer_or_stub(object_id)
        return self.collections[collection].objects.get(object_id) or {"id": object_id}

    def emit(self, kind: str, obj: dict[str, Any], previous: dict[str, Any] | None = None) -> None:
        evt = objects.event(self.new_id("evt_"), self.clock(), kind, snapshot(obj), previous, CURRENT_REQUEST.get())
        self.add("events", evt)
        if self.on_event is not None:
            self.on_event(evt)

    def _changed(self, kind: str, obj: dict[str, Any], before: dict[str, Any]) -> None:
        previous = previous_attributes(before, obj)
        if previous:
            self.emit(kind, obj, previous)

    # ---- customers ------------------------------------------------------------------------------------

    def create_customer(self, params: dict[str, Any]) -> dict[str, Any]:
        fields = {**params, "metadata": merged_metadata({}, params.get("metadata", {}))}
        with self.lock:
            created = objects.customer(self.new_id("cus_"), self.clock(), fields)
            created.update({name: params[name] for name in ("tax_exempt", "preferred_locales") if name in params})
            self.add("customers", created)
            self.emit("customer.created", created)
        return created

    def update_customer(self, customer_id: str, params: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            found = self.find("customers", customer_id)
            before = snapshot(found)
            for name, value in params.items():
                found[name] = merged_metadata(found["metadata"], value) if name == "metadata" else value
            self._changed("customer.updated", found, before)
        return found

    def delete_customer(self, customer_id: str) -> dict[str, Any]:
        """Deleting a customer cancels its subscriptions at once, as Stripe does."""
        with self.lock:
            found = self.find("customers", customer_id)
            for sub in list(self.collections["subscriptions"].live()):
                if sub["customer"] == customer_id and sub["status"] != "canceled":
                    self.cancel_subscription(sub["id"])
            self.collections["customers"].delete(customer_id)
            self.emit("customer.deleted", found)
        return objects.deleted_stub(customer_id, "customer")

    def customer_or_stub(self, customer_id: str) -> dict[str, Any]:
        """What retrieving a customer answers: a deleted one is its `deleted: true` stub."""
        customers = self.collections["customers"]
        if customer_id in customers.deleted:
            return objects.deleted_stub(customer_id, "customer")
        return self.find("customers", customer_id)

    # ---- invoices ---------------------------------------------------------------------------------------

    def create_invoice(self, params: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            customer = self.find("customers", params["customer"], "customer")
            code = params.get("currency") or customer.get("currency") or "usd"
            inv = objects.invoice(
                self.new_id("in_"),
                self.clock(),
                customer,
                code,
                description=params.get("description"),
                metadata=merged_metadata({}, params.get("metadata", {})),
            )
            for name in ("auto_advance", "collection_method", "footer"):
                if name in params:
                    inv[name] = params[name]
            self.add("invoices", inv)
            self.emit("invoice.created", inv)
        return inv

    def update_invoice(self, invoice_id: str, params: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            inv = self.find("invoices", invoice_id)
            if inv["status"] != "draft" and set(params) - {"metadata", "description"}:
                raise state_error(f"You can only update the metadata of a finalized invoice ({invoice_id}).")
            before = snapshot(inv)
            for name, value in params.items():
                inv[name] = merged_metadata(inv["metadata"], value) if name == "metadata" else value
            self._changed("invoice.updated", inv, before)
        return inv

    def delete_invoice(self, invoice_id: str) -> dict[str, Any]:
        with self.lock:
            inv = self.find("invoices", invoice_id)
            if inv["status"] != "draft":
                raise state_error("You can only delete draft invoices.")
            for line in inv["lines"]["data"]:
                if line["invoice_item"]:
                    self.collections["invoiceitems"].delete(line["invoice_item"])
            self.collections["invoices"].delete(invoice_id)
            self.emit("invoice.deleted", inv)
        return objects.deleted_stub(invoice_id, "invoice")

    def add_invoice_item(self, params: dict[str, Any]) -> dict[str, Any]:
        """An invoice item, on the draft invoice it names (as a new line) or pending for the next invoice."""
        with self.lock:
            customer = self.find("customers", params["customer"], "customer")
            inv = None
            if params.get("invoice"):
                inv = self.find("invoices", params["invoice"], "invoice")
                if inv["status"] != "draft":
                    raise invalid(f"Invoice {inv['id']} is no longer editable: it is {inv['status']}.", "invoice")
                if inv["customer"] != customer["id"]:
                    raise invalid("The invoice must belong to the same customer as the invoice item.", "invoice")
            code = params.get("currency") or (inv["currency"] if inv else None) or customer.get("currency") or "usd"
            if inv is not None and code != inv["currency"]:
                raise invalid(
                    f"The currency {code} does not match the invoice's currency {inv['currency']}.", "currency"
                )
            quantity: int = params.get("quantity") or 1
            unit: int | None = params.get("unit_amount")
            amount: int | None = params.get("amount")
            if amount is None:
                if unit is None:
                    raise invalid("You must specify one of amount, unit_amount or price.", "amount")
                amount = unit * quantity
            check_amount("amount", amount, code)
            unit_amount = amount // quantity if unit is None else unit
            now = self.clock()
            adhoc = objects.price(self.new_id("price_"), now, self.adhoc_product(), code, unit_amount, None)
            adhoc["active"] = False
            item_id = self.new_id("ii_")
            line = objects.line_item(
                self.new_id("il_"),
                inv["id"] if inv else "",
                adhoc,
                quantity,
                params.get("description"),
                (now, now),
                amount=amount,
                invoice_item=item_id,
            )
            item = objects.invoice_item(item_id, now, customer["id"], inv["id"] if inv else None, line)
            item["metadata"] = merged_metadata({}, params.get("metadata", {}))
            self.add("invoiceitems", item)
            self.emit("invoiceitem.created", item)
            if inv is not None:
                before = snapshot(inv)
                inv["lines"]["data"].append(line)
                objects.total_lines(inv)
                self._changed("invoice.updated", inv, before)
        return item

    def finalize_invoice(self, invoice_id: str) -> dict[str, Any]:
        with self.lock:
            inv = self.find("invoices", invoice_id)
            if inv["status"] != "draft":
                raise state_error("This invoice is already finalized, you can't re-finalize a non-draft invoice.")
            now = self.clock()
            before = snapshot(inv)
            inv["status"] = "open"
            inv["number"] = f"{inv['customer'][4:12].upper()}-{len(self.collections['invoices']):04d}"
            inv["status_transitions"]["finalized_at"] = now
            inv["effective_at"] = now
            inv["ending_balance"] = 0
            objects.total_lines(inv)
            if inv["amount_due"] > 0:
                intent = self.create_payment_intent(
                    {"amount": inv["amount_due"], "currency": inv["currency"], "customer": inv["customer"]},
                    invoice_id=invoice_id,
                )
                inv["payment_intent"] = intent["id"]
            self._changed("invoice.updated", inv, before)
            self.emit("invoice.finalized", inv)
            if inv["amount_due"] == 0:
                self._mark_paid(inv, now)
        return inv

    def void_invoice(self, invoice_id: str) -> dict[str, Any]:
        with self.lock:
            inv = self.find("invoices", invoice_id)
            if inv["status"] != "open":
                raise state_error(f"You can only pass in open invoices. This invoice is {inv['status']}.")
            before = snapshot(inv)
            inv["status"] = "void"
            inv["status_transitions"]["voided_at"] = self.clock()
            inv["amount_remaining"] = 0
            if inv["payment_intent"]:
                self.cancel_payment_intent(inv["payment_intent"], "void_invoice")
            self._changed("invoice.updated", inv, before)
            self.emit("invoice.voided", inv)
        return inv

    def pay_invoice(self, invoice_id: str, params: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            inv = self.find("invoices", invoice_id)
            if inv["status"] != "open":
                raise state_error(
                    f"Invoice is already {inv['status']}."
                    if inv["status"] == "paid"
                    else f"You can only pay open invoices. This invoice is {inv['status']}."
                )
            if params.get("paid_out_of_band"):
                inv["paid_out_of_band"] = True
            elif inv["payment_intent"]:
                inv["attempt_count"] += 1
                inv["attempted"] = True
                method = params.get("payment_method") or "pm_card_visa"
                try:
                    self.confirm_payment_intent(inv["payment_intent"], {"payment_method": method})
                except StripeError:
                    self.emit("invoice.payment_failed", inv)
                    raise
                inv["charge"] = self.find("payment_intents", inv["payment_intent"])["latest_charge"]
            self._mark_paid(inv, self.clock())
        return inv

    def _mark_paid(self, inv: dict[str, Any], now: int) -> None:
        before = snapshot(inv)
        inv.update(status="paid", paid=True, amount_paid=inv["amount_due"], amount_remaining=0)
        inv["status_transitions"]["paid_at"] = now
        self._changed("invoice.updated", inv, before)
        self.emit("invoice.paid", inv)

    # ---- payment intents ----------------------------------------------------------------------------------

    def create_payment_intent(self, params: dict[str, Any], invoice_id: str | None = None) -> dict[str, Any]:
        with self.lock:
            if params.get("customer"):
                self.find("customers", params["customer"], "customer")
            amount = check_amount("amount", params["amount"], params["currency"])
            if amount < 1:
                raise invalid("This value must be greater than or equal to 1.", "amount")
            intent = objects.payment_intent(
                self.new_id("pi_"),
                self.clock(),
                amount,
                params["currency"],
                customer_id=params.get("customer"),
                invoice_id=invoice_id,
                description=params.get("description"),
                metadata=merged_metadata({}, params.get("metadata", {})),
            )
            if params.get("payment_method_types"):
                intent["payment_method_types"] = params["payment_method_types"]
            if params.get("payment_method"):
                intent.update(payment_method=params["payment_method"], status="requires_confirmation")
            self.add("payment_intents", intent)
            self.emit("payment_intent.created", intent)
            if params.get("confirm"):
                self.confirm_payment_intent(intent["id"], {})
        return intent

    def update_payment_intent(self, intent_id: str, params: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            intent = self.find("payment_intents", intent_id)
            if intent["status"] in ("succeeded", "canceled") and set(params) - {"metadata", "description"}:
                raise state_error(
                    f"This PaymentIntent could not be updated because it has a status of {intent['status']}."
                )
            before = snapshot(intent)
            for name, value in params.items():
                intent[name] = merged_metadata(intent["metadata"], value) if name == "metadata" else value
            self._changed("payment_intent.updated", intent, before)
        return intent

    def confirm_payment_intent(self, intent_id: str, params: dict[str, Any]) -> dict[str, Any]:
        """Confirming with a declining test card answers 402 card_error; the intent keeps the error and asks for
        another payment method."""
        with self.lock:
            intent = self.find("payment_intents", intent_id)
            if intent["status"] not in ("requires_payment_method", "requires_confirmation", "requires_action"):
                raise state_error(
                    f"You cannot confirm this PaymentIntent because it has a status of {intent['status']}."
                )
            method = params.get("payment_method") or intent["payment_method"]
            if method is None:
                raise invalid(
                    "You cannot confirm this PaymentIntent because it's missing a payment method.", "payment_method"
                )
            if method not in DECLINES and method not in SUCCEEDING:
                raise resource_missing("PaymentMethod", method, "payment_method")
            intent["payment_method"] = method
            declined = DECLINES.get(method)
            ch = objects.charge(self.new_id("ch_"), self.clock(), intent, succeeded=declined is None)
            ch["payment_method"] = method
            self.add("charges", ch)
            intent["latest_charge"] = ch["id"]
            if declined is not None:
                error = card_declined({}, declined)
                intent["status"] = "requires_payment_method"
                intent["last_payment_error"] = {**error.body["error"], "payment_method": {"id": method}}
                self.emit("charge.failed", ch)
                self.emit("payment_intent.payment_failed", intent)
                raise card_declined(snapshot(intent), declined)
            intent.update(status="succeeded", amount_received=intent["amount"], last_payment_error=None)
            self.emit("charge.succeeded", ch)
            self.emit("payment_intent.succeeded", intent)
        return intent

    def cancel_payment_intent(self, intent_id: str, reason: str | None = None) -> dict[str, Any]:
        with self.lock:
            intent = self.find("payment_intents", intent_id)
            if intent["status"] not in CANCELABLE:
                raise state_error(
                    f"You cannot cancel this PaymentIntent because it has a status of {intent['status']}. Only a "
                    f"PaymentIntent with one of the following statuses may be canceled: {', '.join(CANCELABLE)}."
                )
            intent.update(status="canceled", canceled_at=self.clock(), cancellation_reason=reason)
            self.emit("payment_intent.canceled", intent)
        return intent

    # ---- subscriptions -------------------------------------------------------------------------------------

    def create_subscription(self, params: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            customer = self.find("customers", params["customer"], "customer")
            prices = [self.find("prices", item["price"], "items[0][price]") for item in params["items"]]
            if any(p["recurring"] is None for p in prices):
                raise invalid(
                    "The price specified is set to `type=one_time` but this field only accepts prices "
                    "with `type=recurring`.",
                    "items[0][price]",
                )
            code = prices[0]["currency"]
            if any(p["currency"] != code for p in prices):
                raise invalid("All prices on a subscription must have the same currency.", "items")
            now = self.clock()
            period = (now, now + _PERIOD_S[prices[0]["recurring"]["interval"]])
            sub = objects.subscription(self.new_id("sub_"), now, customer["id"], code, period)
            sub["metadata"] = merged_metadata({}, params.get("metadata", {}))
            for item, found in zip(params["items"], prices, strict=True):
                sub_item = objects.subscription_item(
                    self.new_id("si_"), now, sub["id"], found, item.get("quantity") or 1
                )
                sub["items"]["data"].append(sub_item)
            sub["items"]["total_count"] = len(sub["items"]["data"])
            trial_days = params.get("trial_period_days")
            if trial_days:
                sub.update(status="trialing", trial_start=now, trial_end=now + trial_days * 86_400)
            if params.get("cancel_at_period_end"):
                sub.update(cancel_at_period_end=True, cancel_at=period[1], canceled_at=now)
            self.add("subscriptions", sub)
            self.emit("customer.subscription.created", sub)
        return sub

    def update_subscription(self, subscription_id: str, params: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            sub = self.find("subscriptions", subscription_id)
            if sub["status"] == "canceled" and set(params) - {"metadata", "cancellation_details"}:
                raise state_error("A canceled subscription can only update its cancellation_details and metadata.")
            before = snapshot(sub)
            for name, value in params.items():
                if name == "metadata":
                    sub["metadata"] = merged_metadata(sub["metadata"], value)
                elif name == "cancel_at_period_end":
                    self._cancel_at(sub, sub["current_period_end"] if value else None)
                elif name == "cancel_at":
                    self._cancel_at(sub, value)
                else:
                    sub[name] = value
            self._changed("customer.subscription.updated", sub, before)
        return sub

    def _cancel_at(self, sub: dict[str, Any], at: int | None) -> None:
        sub["cancel_at"] = at
        sub["cancel_at_period_end"] = at is not None and at == sub["current_period_end"]
        sub["canceled_at"] = self.clock() if at is not None else None
        sub["cancellation_details"]["reason"] = "cancellation_requested" if at is not None else None

    def cancel_subscription(self, subscription_id: str) -> dict[str, Any]:
        with self.lock:
            sub = self.find("subscriptions", subscription_id)
            if sub["status"] == "canceled":
                raise state_error(f"This subscription has already been canceled ({subscription_id}).")
            now = self.clock()
            sub.update(status="canceled", canceled_at=now, ended_at=now, cancel_at=None, cancel_at_period_end=False)
            sub["cancellation_details"]["reason"] = "cancellation_requested"
            self.emit("customer.subscription.deleted", sub)
        return sub

    # ---- webhook endpoints -------------------------------------------------------------------------------

    def create_webhook_endpoint(self, params: dict[str, Any], secret: str) -> dict[str, Any]:
        endpoint = objects.webhook_endpoint(
            self.new_id("we_"),
            self.clock(),
            params["url"],
            params["enabled_events"],
            params.get("description"),
            merged_metadata({}, params.get("metadata", {})),
        )
        self.add("webhook_endpoints", endpoint)
        return {**endpoint, "secret": secret}

    def delete_webhook_endpoint(self, endpoint_id: str) -> dict[str, Any]:
        self.find("webhook_endpoints", endpoint_id)
        self.collections["webhook_endpoints"].delete(endpoint_id)
        return objects.deleted_stub(endpoint_id, "webhook_endpoint")


_PERIOD_S = {"day": 86_400, "week": 7 * 86_400, "month": 30 * 86_400, "year": 365 * 86_400}

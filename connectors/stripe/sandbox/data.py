"""What an account is seeded with: products with prices in five currencies (USD, EUR, GBP, JPY, KWD),
customers, invoices with their lines in every status (draft, open, paid, void), the payment intents and
charges behind them (succeeded, failed, canceled), and subscriptions (active, trialing, past_due, canceled).

Seeding makes no events: Stripe keeps events 30 days and the seeded objects are older. Objects are built
oldest first, so ids and `created` both follow creation order, and a hundred thousand customers with their
invoices take seconds.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from connectors.kit.sandbox_support import DAY_MS, SEED_END_MS, SEED_START_MS, Seeder, name_pools, slug
from connectors.stripe.sandbox import objects

if TYPE_CHECKING:
    from connectors.stripe.sandbox.account import Account

SEED_START = SEED_START_MS // 1000
SEED_END = SEED_END_MS // 1000
DAY = DAY_MS // 1000
MONTH = 30 * DAY

# Currency -> (share of customers, what one US dollar of list price is in its minor units).
CURRENCY_MIX = {"usd": (0.4, 100), "eur": (0.2, 92), "gbp": (0.15, 79), "jpy": (0.15, 150), "kwd": (0.1, 310)}
CATALOGUE = (
    ("Starter plan", 9),
    ("Team plan", 49),
    ("Business plan", 199),
    ("Onboarding", 500),
    ("Support hours", 120),
)
SEGMENTS = ("smb", "mid_market", "enterprise", "startup", "nonprofit")
INVOICE_STATUSES = (("paid", 0.6), ("open", 0.15), ("void", 0.1), ("draft", 0.15))
SUBSCRIPTION_STATUSES = (("active", 0.55), ("trialing", 0.15), ("past_due", 0.15), ("canceled", 0.15))
STANDALONE_PAYMENTS = (("succeeded", 0.6), ("failed", 0.25), ("canceled", 0.15))
# The custom field every seeded customer has, where the conformance suite finds it.
SEGMENT_KEY = "segment"


@dataclass(frozen=True)
class SandboxSize:
    customers: int = 200
    invoices: int = 200
    subscriptions: int = 50
    payment_intents: int = 40


def _weighted(seeder: Seeder, table: tuple[tuple[str, float], ...]) -> str:
    draw = seeder.rng.random()
    for value, weight in table:
        draw -= weight
        if draw < 0:
            return value
    return table[-1][0]


def _in_currency(dollars: int, code: str) -> int:
    minor = dollars * CURRENCY_MIX[code][1]
    return minor - minor % 10 if code in objects.THREE_DECIMAL else minor


class _Seeding:
    def __init__(self, account: Account, seed: int, size: SandboxSize) -> None:
        self.account = account
        self.seeder = Seeder(seed)
        self.size = size
        self.recurring: dict[str, list[dict[str, Any]]] = {code: [] for code in CURRENCY_MIX}
        self.one_time: dict[str, list[dict[str, Any]]] = {code: [] for code in CURRENCY_MIX}
        self.customers: list[dict[str, Any]] = []
        self.numbers = 0

    def at(self, low: int, high: int) -> int:
        return low + int(self.seeder.rng.random() * max(1, high - low))

    def run(self) -> None:
        self.catalogue()
        self.seed_customers()
        subscriptions = self.seed_subscriptions()
        invoices = self.seed_invoices(subscriptions)
        self.seed_payments(invoices)

    def catalogue(self) -> None:
        account = self.account
        for name, dollars in CATALOGUE:
            created = SEED_START - 30 * DAY
            prod = account.add("products", objects.product(account.new_id("prod_"), created, name))
            interval = None if name in ("Onboarding", "Support hours") else "month"
            for code in CURRENCY_MIX:
                made = objects.price(
                    account.new_id("price_"), created, prod["id"], code, _in_currency(dollars, code), interval
                )
                account.add("prices", made)
                (self.one_time if interval is None else self.recurring)[code].append(made)
            prod["default_price"] = self.recurring["usd"][-1]["id"] if interval else self.one_time["usd"][-1]["id"]

    def seed_customers(self) -> None:
        pools = name_pools(7, 400)
        pick = self.seeder.pick
        codes = tuple(CURRENCY_MIX)
        shares = tuple(share for share, _ in CURRENCY_MIX.values())
        times = sorted(self.at(SEED_START, SEED_END) for _ in range(self.size.customers))
        new_id = self.account.new_id
        add = self.account.add
        for index, created in enumerate(times):
            first, last = pick(pools.first_names), pick(pools.last_names)
            company = pick(pools.companies)
            draw, code = self.seeder.rng.random(), codes[-1]
            for candidate, share in zip(codes, shares, strict=True):
                draw -= share
                if draw < 0:
                    code = candidate
                    break
            fields = {
                "email": f"{slug(first)}.{slug(last)}{index}@{slug(company)[:20] or 'example'}.example",
                "name": f"{first} {last}",
                "phone": f"+1555{index % 10_000_000:07d}" if index % 3 else None,
                "description": company,
                "currency": code,
                "metadata": {SEGMENT_KEY: pick(SEGMENTS)},
            }
            self.customers.append(add("customers", objects.customer(new_id("cus_"), created, fields)))

    def seed_subscriptions(self) -> list[dict[str, Any]]:
        account = self.account
        drafts = []
        for _ in range(self.size.subscriptions if self.customers else 0):
            customer = self.seeder.pick(self.customers)
            created = self.at(customer["created"], SEED_END)
            drafts.append((created, customer))
        made = []
        for created, customer in sorted(drafts, key=lambda draft: draft[0]):
            code = customer["currency"]
            status = _weighted(self.seeder, SUBSCRIPTION_STATUSES)
            # The current period is the month that holds the end of the seed span, or the last before canceling.
            start = created + ((SEED_END - created) // MONTH) * MONTH
            sub = objects.subscription(account.new_id("sub_"), created, customer["id"], code, (start, start + MONTH))
            sub["status"] = status
            for price_obj in self.seeder.rng.sample(self.recurring[code], 1 + int(self.seeder.rng.random() * 2)):
                quantity = 1 + int(self.seeder.rng.random() * 5)
                item = objects.subscription_item(account.new_id("si_"), created, sub["id"], price_obj, quantity)
                sub["items"]["data"].append(item)
            sub["items"]["total_count"] = len(sub["items"]["data"])
            if status == "trialing":
                sub.update(trial_start=start, trial_end=start + 14 * DAY)
            elif status == "canceled":
                ended = self.at(created, start + 1)
                sub.update(canceled_at=ended, ended_at=ended)
                sub["cancellation_details"]["reason"] = "cancellation_requested"
            elif self.seeder.rng.random() < 0.2:
                sub.update(cancel_at_period_end=True, cancel_at=start + MONTH, canceled_at=start)
                sub["cancellation_details"]["reason"] = "cancellation_requested"
            made.append(account.add("subscriptions", sub))
        return made

    def seed_invoices(self, subscriptions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One invoice of each subscription (its latest, for its current period), the rest one-off invoices."""
        drafts: list[tuple[int, dict[str, Any], dict[str, Any] | None]] = [
            (sub["current_period_start"], self.account.collections["customers"].objects[sub["customer"]], sub)
            for sub in subscriptions[: self.size.invoices]
        ]
        for _ in range(max(0, self.size.invoices - len(drafts)) if self.customers else 0):
            customer = self.seeder.pick(self.customers)
            drafts.append((self.at(customer["created"], SEED_END), customer, None))
        made = []
        for created, customer, sub in sorted(drafts, key=lambda draft: draft[0]):
            made.append(self.account.add("invoices", self._invoice(created, customer, sub)))
        return made

    def _invoice(self, created: int, customer: dict[str, Any], sub: dict[str, Any] | None) -> dict[str, Any]:
        account = self.account
        code = customer["currency"]
        inv_id = account.new_id("in_")
        inv = objects.invoice(inv_id, created, customer, code, subscription=sub["id"] if sub else None)
        lines = inv["lines"]["data"]
        if sub is not None:
            period = (sub["current_period_start"], sub["current_period_end"])
            for item in sub["items"]["data"]:
                price_obj = item["price"]
                description = (
                    f"{item['quantity']} x {account.collections['products'].objects[price_obj['product']]['name']}"
                )
                lines.append(
                    objects.line_item(
                        account.new_id("il_"),
                        inv_id,
                        price_obj,
                        item["quantity"],
                        description,
                        period,
                        subscription=sub["id"],
                        subscription_item=item["id"],
                    )
                )
            sub["latest_invoice"] = inv_id
            status = {"past_due": "open", "canceled": "void", "trialing": "paid"}.get(sub["status"], "paid")
        else:
            choices = self.one_time[code] + self.recurring[code]
            for _ in range(1 + int(self.seeder.rng.random() * 3)):
                price_obj = self.seeder.pick(choices)
                quantity = 1 + int(self.seeder.rng.random() * 3)
                name = account.collections["products"].objects[price_obj["product"]]["name"]
                lines.append(
                    objects.line_item(account.new_id("il_"), inv_id, price_obj, quantity, name, (created, created))
                )
            status = _weighted(self.seeder, INVOICE_STATUSES)
        inv["status"] = status
        objects.total_lines(inv)
        if status != "draft":
            self.numbers += 1
            inv["number"] = f"{customer['invoice_prefix']}-{self.numbers:04d}"
            inv["status_transitions"]["finalized_at"] = created + 3600
            inv["effective_at"] = created + 3600
            inv["ending_balance"] = 0
        if status == "paid":
            inv.update(paid=True, amount_paid=inv["amount_due"], amount_remaining=0, attempted=True, attempt_count=1)
            inv["status_transitions"]["paid_at"] = created + 3600
        elif status == "void":
            inv["status_transitions"]["voided_at"] = created + 2 * DAY
            inv["amount_remaining"] = 0
        return inv

    def seed_payments(self, invoices: list[dict[str, Any]]) -> None:
        """The payment intents of finalized invoices and standalone ones, with their charges, oldest first."""
        drafts: list[tuple[int, str, dict[str, Any], dict[str, Any] | None]] = []
        for inv in invoices:
            if inv["status"] != "draft" and inv["amount_due"] > 0:
                outcome = {"paid": "succeeded", "void": "canceled"}.get(inv["status"], "failed")
                customer = self.account.collections["customers"].objects[inv["customer"]]
                drafts.append((inv["status_transitions"]["finalized_at"], outcome, customer, inv))
        for _ in range(self.size.payment_intents if self.customers else 0):
            buyer = self.seeder.pick(self.customers)
            drafts.append(
                (self.at(buyer["created"], SEED_END), _weighted(self.seeder, STANDALONE_PAYMENTS), buyer, None)
            )
        charges: list[tuple[int, dict[str, Any]]] = []
        for created, outcome, payer, billed in sorted(drafts, key=lambda draft: draft[0]):
            if billed is not None:
                amount, code = billed["amount_due"], billed["currency"]
            else:
                code = payer["currency"]
                amount = _in_currency(5 + int(self.seeder.rng.random() * 300), code)
            intent = objects.payment_intent(
                self.account.new_id("pi_"),
                created,
                amount,
                code,
                customer_id=payer["id"],
                invoice_id=billed["id"] if billed else None,
                description=None if billed else "One-off purchase",
            )
            intent["payment_method"] = "pm_card_visa" if outcome == "succeeded" else "pm_card_chargeDeclined"
            self._settle(intent, outcome, created)
            if billed is not None:
                billed["payment_intent"] = intent["id"]
            self.account.add("payment_intents", intent)
            if outcome != "canceled":
                charges.append((created + 1, intent))
        for created, intent in sorted(charges, key=lambda pair: pair[0]):
            succeeded = intent["status"] == "succeeded"
            ch = self.account.add(
                "charges", objects.charge(self.account.new_id("ch_"), created, intent, succeeded=succeeded)
            )
            intent["latest_charge"] = ch["id"]
            if succeeded and intent["invoice"]:
                self.account.collections["invoices"].objects[intent["invoice"]]["charge"] = ch["id"]

    def _settle(self, intent: dict[str, Any], outcome: str, created: int) -> None:
        if outcome == "succeeded":
            intent.update(status="succeeded", amount_received=intent["amount"])
        elif outcome == "canceled":
            intent.update(
                status="canceled",
                canceled_at=created + 2 * DAY,
                cancellation_reason="void_invoice" if intent["invoice"] else "requested_by_customer",
                payment_method=None,
            )
        else:
            intent["status"] = "requires_payment_method"
            intent["last_payment_error"] = {
                "code": "card_declined",
                "decline_code": "generic_decline",
                "doc_url": "https://stripe.com/docs/error-codes/card-declined",
                "message": "Your card was declined.",
                "payment_method": {"id": intent["payment_method"]},
                "type": "card_error",
            }


def seed_account(account: Account, seed: int, size: SandboxSize) -> None:
    # Seeding allocates millions of small objects and frees none of them: the cyclic collector, which runs ever
    # more often and over an ever bigger heap, would take most of the time and find nothing.
    collecting = gc.isenabled()
    gc.disable()
    try:
        _Seeding(account, seed, size).run()
    finally:
        if collecting:
            gc.enable()

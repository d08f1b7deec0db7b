"""The common models: each defined once here.

Mappings, the GraphQL types, filters, lists and write inputs are derived from these definitions
(schema/objects.py, schema/filters.py, schema/query.py, schema/writes.py): a model added here and
mapped by a connector is in the API with no other edit.
A relation is stored in a record's common fields as the remote id (or list of remote ids)
of the related record on the same connection; an `Inverse` (a ticket's comments) is not stored but found
from the other side.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

ScalarType = type[str] | type[int] | type[float] | type[bool] | type[datetime]
# A JSON object kept as the provider sent it (Stripe's `metadata`: string keys and values), shown as JSON.
JSONObject = type[dict]  # type: ignore[type-arg]


@dataclass(frozen=True)
class EnumType:
    """A normalized state (`TicketStatus`: NEW, OPEN, ...). A record stores the member's name; the provider's
    own word is kept beside it in a plain text field (`remote_status`), and a word that maps to no member
    leaves the enum field None."""

    name: str
    members: tuple[str, ...]
    description: str = ""

    def __post_init__(self) -> None:
        bad = [m for m in self.members if not re.fullmatch(r"[A-Z][A-Z0-9_]*", m)]
        if bad or not self.members:
            raise ValueError(f"{self.name} members must be UPPER_SNAKE names, got {list(self.members)}")


# ISO 4217 minor units (the standard's "Minor unit" column) for the currencies whose exponent is not 2;
# a currency not listed has 2 decimals.
_CURRENCY_EXPONENTS = {
    **dict.fromkeys(
        ("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND", "VUV"),
        0,
    ),
    **dict.fromkeys(("XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    "CLF": 4,
    "UYW": 4,
}

# The ISO 4217 codes of money (the standard's current list without the precious metals, bond units and
# testing codes, which have no minor unit). A write names one of these; a code read from a provider is kept
# as sent even when it is not here (a code newer than this list), with 2 decimals.
_ISO_4217_CODES = """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN BWP BYN BZD
    CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP
    GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW
    KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN
    NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL
    SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES
    VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG ZWL
"""
ISO_4217_CURRENCIES = frozenset(_ISO_4217_CODES.split())

# An amount has at most this many digits in plain notation ("1234.50" has 6): far beyond any real amount
# (a 19-digit integer part and 4 decimals fit), and small enough that text like "1e999999999" can never
# be expanded into a giant string when shown.
MAX_AMOUNT_DIGITS = 40


def plain_digits(amount: Decimal) -> int:
    """How many digits `amount` has written in plain notation, without a leading "0.": 1234.50 -> 6,
    1E+3 -> 4, 0.005 -> 3 (exact: no decimal context is involved)."""
    _, digits, exponent = amount.as_tuple()
    exponent = int(exponent)
    if exponent >= 0:
        return len(digits) + exponent
    return max(len(digits), -exponent)


def decimal_places(amount: Decimal) -> int:
    """The decimals `amount` really has, trailing zeros aside: 10.50 -> 1, 10.00 -> 0, 1E+3 -> 0."""
    _, digits, exponent = amount.as_tuple()
    exponent = int(exponent)
    trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(0, -(exponent + trailing_zeros)) if any(digits) else 0


@dataclass(frozen=True)
class Money:
    """An exact amount in major units ("1234.50") and its upper-case ISO 4217 currency. Stored in a record's
    common fields as `{"amount": "1234.50", "currency": "EUR"}` (text, so no float ever touches it).
    Every conversion is integer or text arithmetic: no decimal context ever rounds an amount."""

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal) or not self.amount.is_finite():
            raise ValueError(f"a Money amount must be a finite Decimal, got {self.amount!r}")
        if plain_digits(self.amount) > MAX_AMOUNT_DIGITS:
            raise ValueError(f"a Money amount has at most {MAX_AMOUNT_DIGITS} digits")
        if not re.fullmatch(r"[A-Z]{3}", self.currency):
            raise ValueError(f"a Money currency must be an upper-case ISO 4217 code, got {self.currency!r}")

    @classmethod
    def from_minor(cls, minor_units: int, currency: str) -> Money:
        """From the integer minor units providers send (Stripe: 1050 USD is 10.50, 1050 JPY is 1050)."""
        code = currency.upper()
        # Built from text: Decimal.scaleb would round past the context's 28 digits.
        return cls(Decimal(f"{int(minor_units)}E-{currency_exponent(code)}"), code)

    @classmethod
    def from_common(cls, value: Mapping[str, Any]) -> Money:
        try:
            return cls(Decimal(str(value["amount"])), str(value["currency"]))
        except (KeyError, InvalidOperation) as error:
            raise ValueError(f"not a Money value: {value!r}") from error

    def to_common(self) -> dict[str, str]:
        return {"amount": format(self.amount, "f"), "currency": self.currency}

    @property
    def exponent(self) -> int:
        """The currency's decimals per ISO 4217 (JPY 0, EUR 2, KWD 3)."""
        return currency_exponent(self.currency)

    @property
    def is_precise_enough(self) -> bool:
        """Whether the amount fits the currency's decimals: 10.5 JPY or 1.0005 KWD do not (10.00 JPY does)."""
        return decimal_places(self.amount) <= self.exponent

    def to_minor(self) -> int:
        """In the currency's minor units (10.50 USD -> 1050, 1050 JPY -> 1050); an amount with more decimals
        than the currency has is refused, never rounded."""
        if not self.is_precise_enough:
            raise ValueError(
                f"{format(self.amount, 'f')} has more decimals than {self.currency} allows ({self.exponent})"
            )
        sign, digits, exponent = self.amount.as_tuple()
        shift = int(exponent) + self.exponent
        coefficient = int("".join(map(str, digits)) or "0")
        scale: int = 10 ** abs(shift)
        minor = coefficient * scale if shift >= 0 else coefficient // scale  # only trailing zeros drop
        return -minor if sign else minor


def minor_to_common(minor_units: int, currency: str) -> dict[str, str] | None:
    """`Money.from_minor(...).to_common()` without building the Money: the ingest's hot path (a Stripe invoice
    holds seven amounts). The same text, digit for digit; None for a currency that is not a code or an
    amount past the digit bound."""
    code = _upper_code(currency)
    if code is None:
        return None
    digits = str(abs(minor_units))
    if len(digits) > MAX_AMOUNT_DIGITS:
        return None
    exponent = currency_exponent(code)
    if exponent:
        digits = digits.rjust(exponent + 1, "0")
        digits = f"{digits[:-exponent]}.{digits[-exponent:]}"
    return {"amount": f"-{digits}" if minor_units < 0 else digits, "currency": code}


@lru_cache(maxsize=1024)
def _upper_code(currency: str) -> str | None:
    code = currency.upper()
    return code if re.fullmatch(r"[A-Z]{3}", code) else None


def currency_exponent(currency: str) -> int:
    return _CURRENCY_EXPONENTS.get(currency.upper(), 2)


def currency_problem(code: object) -> str | None:
    """Why `code` cannot be written as a currency (None when it can): it must be an upper-case ISO 4217 code."""
    if not isinstance(code, str) or not re.fullmatch(r"[A-Za-z]{3}", code):
        return f"{code!r} is not an ISO 4217 currency code (three letters, e.g. USD)"
    if code != code.upper():
        return f"{code!r} is not an upper-case ISO 4217 code: write {code.upper()!r}"
    if code not in ISO_4217_CURRENCIES:
        return f"{code!r} is not an ISO 4217 currency code"
    return None


class CurrencyCode:
    """The type of a field holding an upper-case ISO 4217 code (an invoice's `currency`): text in the API,
    filtered without regard to case ("usd" finds USD), written only as a known upper-case code."""


@dataclass(frozen=True)
class StringMap:
    """A JSON object of text keys to text values (Stripe's `metadata`), with the limits every write of it
    must keep. Declared on the model, so a write is checked before any provider is asked, in the same words
    whichever connector takes it; a key holding `[` or `]` could not be sent in the bracket form encoding
    that form-encoded APIs nest objects with."""

    max_keys: int
    max_key_length: int
    max_value_length: int
    forbidden_key_characters: str = ""

    def problem(self, value: object) -> tuple[str, str] | None:
        """(what is wrong, the path to it below the field) when `value` breaks the shape or a limit."""
        if not isinstance(value, dict):
            return f"must be a JSON object of text keys to text values, got {type(value).__name__}", ""
        if len(value) > self.max_keys:
            return f"holds {len(value)} keys; at most {self.max_keys}", ""
        for key, item in value.items():
            if not key:
                return "a key must not be empty", ""
            if len(key) > self.max_key_length:
                return f"key {key[:20]!r}... is longer than {self.max_key_length} characters", ""
            forbidden = sorted(set(key) & set(self.forbidden_key_characters))
            if forbidden:
                return f"key {key!r} must not hold {' or '.join(forbidden)}", ""
            if not isinstance(item, str):
                return f"must be text, got {type(item).__name__}", f".{key}"
            if len(item) > self.max_value_length:
                return f"is longer than {self.max_value_length} characters", f".{key}"
        return None


@dataclass(frozen=True)
class ListOf:
    """A list of plain values (`tags: [String!]!`), stored as a JSON list. Never null: a record without
    the field holds the empty list. Filterable by the value it contains."""

    item: ScalarType


@dataclass(frozen=True)
class Struct:
    """The shape of a value embedded in a record, not a model of its own (an invoice's lines): it has no
    id, no list and no change stream, and is read and written with the record that holds it."""

    name: str
    fields: tuple[Field, ...]
    description: str = ""

    def validate(self, value: object) -> bool:
        if not isinstance(value, dict) or set(value) - {f.name for f in self.fields}:
            return False
        return all(value.get(f.name) is None or _is_instance(value[f.name], f.type) for f in self.fields)


@dataclass(frozen=True)
class Embedded:
    """A list of `Struct` values stored inside the record (`lines: [InvoiceLine!]!`). Never null: a record
    without them holds the empty list."""

    struct: Struct


FieldType = ScalarType | EnumType | type[Money] | type[CurrencyCode] | ListOf | Embedded | JSONObject | StringMap


@dataclass(frozen=True)
class Field:
    name: str
    type: FieldType
    filterable: bool = False
    description: str = ""

    def __post_init__(self) -> None:
        if self.filterable and not (
            self.type in (str, bool, CurrencyCode) or isinstance(self.type, EnumType) or self.type == ListOf(str)
        ):
            raise ValueError(f"{self.name}: only text, currency, boolean, enum and list-of-text fields are filterable")

    @property
    def scalar(self) -> ScalarType | None:
        """What a mapping converts the provider's value to: enum members are text; Money is built by the
        mapping itself (`MoneyAt`), embedded values by theirs (`EachOf`), and a list or an object is taken
        as sent."""
        if isinstance(self.type, EnumType) or self.type is CurrencyCode:
            return str
        if self.type in (Money, dict) or isinstance(self.type, ListOf | Embedded | StringMap):
            return None
        return self.type  # type: ignore[return-value]

    @property
    def absent(self) -> tuple[()] | None:
        """What a record holds when the provider has no value: the empty list for a list, else None."""
        return () if isinstance(self.type, ListOf | Embedded) else None


@dataclass(frozen=True)
class Relation:
    """A relation stored on this side: the related record's remote id (a list of them when `many`).
    A `filterable` relation filters lists by that remote id (`requesterRemoteId`)."""

    name: str
    target: str
    many: bool = False
    filterable: bool = False


@dataclass(frozen=True)
class Inverse:
    """A one-to-many relation found from the other side: the `target` records whose relation `via` holds
    this record's remote id (a ticket's comments are the TicketComments whose `ticket` is the ticket).
    Nothing is stored for it on this side, so mappings and write inputs do not see it."""

    name: str
    target: str
    via: str
    description: str = ""


@dataclass(frozen=True)
class Family:
    """Models that share relations and are read as one kind (notes and tasks are both activities)."""

    name: str
    relations: tuple[Relation, ...]
    description: str = ""


@dataclass(frozen=True)
class CommonModel:
    name: str
    fields: tuple[Field, ...]
    relations: tuple[Relation, ...] = ()
    description: str = ""
    family: Family | None = None
    plural: str = ""
    """The list's name when adding an "s" is wrong (Company -> companies); "ies" after a consonant is known."""
    inverses: tuple[Inverse, ...] = ()

    def __post_init__(self) -> None:
        if self.family is not None and self.relations[: len(self.family.relations)] != self.family.relations:
            raise ValueError(f"{self.name} must start its relations with those of its family {self.family.name}")

    @property
    def snake_name(self) -> str:
        """`TicketComment` -> `ticket_comment`: how Python names one (`create_ticket_comment`)."""
        return re.sub(r"(?<!^)(?=[A-Z])", "_", self.name).lower()

    @property
    def list_name(self) -> str:
        """The plural in snake case: `TicketComment` -> `ticket_comments`, `Company` -> `companies`."""
        if self.plural:
            return self.plural
        snake = self.snake_name
        if snake.endswith("y") and snake[-2:-1] not in "aeiou":
            return snake[:-1] + "ies"
        return snake + ("es" if snake.endswith(("s", "x", "ch", "sh")) else "s")

    def field(self, name: str) -> Field:
        for field in self.fields:
            if field.name == name:
                return field
        raise KeyError(f"{self.name} has no field {name!r}")

    def relation(self, name: str) -> Relation:
        for relation in self.relations:
            if relation.name == name:
                return relation
        raise KeyError(f"{self.name} has no relation {name!r}")

    def input_name(self, member: str) -> str:
        """A member's name in write inputs: relations take remote ids (`company_remote_id`, `contact_remote_ids`)."""
        for relation in self.relations:
            if relation.name == member:
                return f"{relation.target.lower()}_remote_ids" if relation.many else f"{member}_remote_id"
        return member

    @property
    def member_names(self) -> frozenset[str]:
        return frozenset(f.name for f in self.fields) | frozenset(r.name for r in self.relations)

    @property
    def filterable_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.filterable)

    @property
    def filterable_relations(self) -> tuple[Relation, ...]:
        return tuple(r for r in self.relations if r.filterable)

    def validate(self, common: dict[str, Any]) -> None:
        """Raise TypeError when a mapped record does not fit this model (used by the conformance tests)."""
        unknown = set(common) - self.member_names
        if unknown:
            raise TypeError(f"{self.name} has no members {sorted(unknown)}")
        for field in self.fields:
            value = common.get(field.name)
            if value is not None and not _is_instance(value, field.type):
                raise TypeError(f"{self.name}.{field.name} must be {_type_name(field.type)}, got {value!r}")
        for relation in self.relations:
            value = common.get(relation.name)
            if value is None:
                continue
            if relation.many:
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise TypeError(f"{self.name}.{relation.name} must be a list of remote ids")
            elif not isinstance(value, str):
                raise TypeError(f"{self.name}.{relation.name} must be a remote id")


def graphql_name(member: str) -> str:
    """A member's name in the GraphQL API: `first_name` -> `firstName`."""
    head, *rest = member.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _type_name(expected: FieldType) -> str:
    if isinstance(expected, ListOf):
        return f"a list of {expected.item.__name__}"
    if isinstance(expected, Embedded):
        return f"a list of {expected.struct.name}"
    if isinstance(expected, StringMap):
        return "a JSON object of text values"
    return expected.name if isinstance(expected, EnumType) else expected.__name__


def _is_instance(value: object, expected: FieldType) -> bool:
    if isinstance(expected, EnumType):
        return value in expected.members
    if isinstance(expected, Embedded):
        return isinstance(value, list) and all(expected.struct.validate(item) for item in value)
    if expected is dict:
        return isinstance(value, dict)
    if isinstance(expected, StringMap):
        return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
    if expected is CurrencyCode:
        return isinstance(value, str) and re.fullmatch(r"[A-Z]{3}", value) is not None
    if isinstance(expected, ListOf):
        return isinstance(value, list) and all(_is_instance(item, expected.item) for item in value)
    if expected is Money:
        if not isinstance(value, dict) or set(value) != {"amount", "currency"} or not isinstance(value["amount"], str):
            return False
        try:
            Money.from_common(value)
        except ValueError:
            return False
        return True
    if expected is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)


CONTACT = CommonModel(
    "Contact",
    description="A person at a customer: a CRM contact (or lead).",
    fields=(
        Field("first_name", str, filterable=True),
        Field("last_name", str, filterable=True),
        Field("email", str, filterable=True),
        Field("phone", str),
        Field("job_title", str),
        Field("lifecycle_stage", str, filterable=True),
        # Salesforce keeps leads apart from contacts; both are people, so both are Contacts here.
        Field("is_lead", bool, description="True for a Salesforce lead, false for a contact."),
    ),
    relations=(Relation("company", "Company"), Relation("owner", "User")),
)

COMPANY = CommonModel(
    "Company",
    description="An organization: a CRM company or account.",
    fields=(
        Field("name", str, filterable=True),
        Field("domain", str, filterable=True),
        Field("industry", str, filterable=True),
        Field("phone", str),
        Field("city", str),
        Field("country", str),
        Field("employee_count", int),
        Field("annual_revenue", Money),
    ),
    relations=(Relation("owner", "User"),),
)

DEAL = CommonModel(
    "Deal",
    description="A sales opportunity.",
    fields=(
        Field("name", str, filterable=True),
        Field(
            "amount",
            Money,
            description="In the deal's own currency where the provider keeps one per deal, else the account's.",
        ),
        # The stage as people read it (HubSpot's stage label) and the provider's own value (its stage id).
        Field(
            "stage",
            str,
            filterable=True,
            description="The stage as the provider shows it (HubSpot: the stage's label in its pipeline).",
        ),
        Field(
            "remote_stage",
            str,
            filterable=True,
            description="The provider's own value for the stage (HubSpot: the stage id, e.g. closedwon).",
        ),
        Field("pipeline", str, filterable=True),
        Field("close_date", datetime),
    ),
    relations=(
        Relation("company", "Company"),
        Relation("contacts", "Contact", many=True),
        Relation("owner", "User"),
    ),
)

USER = CommonModel(
    "User",
    description="A user of the provider account (HubSpot owner, Salesforce user).",
    fields=(
        Field("email", str, filterable=True),
        Field("first_name", str, filterable=True),
        Field("last_name", str, filterable=True),
        Field("active", bool),
    ),
)

ACTIVITY = Family(
    "Activity",
    description="Notes and tasks: activities logged against contacts, companies and deals.",
    relations=(
        Relation("contacts", "Contact", many=True),
        Relation("companies", "Company", many=True),
        Relation("deals", "Deal", many=True),
        Relation("owner", "User"),
    ),
)

NOTE = CommonModel(
    "Note",
    description="A note logged against CRM records.",
    fields=(Field("body", str, filterable=True), Field("timestamp", datetime)),
    relations=ACTIVITY.relations,
    family=ACTIVITY,
)

TASK = CommonModel(
    "Task",
    description="A to-do in the CRM.",
    fields=(
        Field("subject", str, filterable=True),
        Field("body", str),
        Field("status", str, filterable=True),
        Field("priority", str, filterable=True),
        Field("task_type", str),
        Field("due_at", datetime),
    ),
    relations=ACTIVITY.relations,
    family=ACTIVITY,
)

TICKET_STATUS = EnumType(
    "TicketStatus",
    ("NEW", "OPEN", "PENDING", "ON_HOLD", "SOLVED", "CLOSED"),
    description="Where a ticket stands; the provider's own word is in remoteStatus.",
)

TICKET_PRIORITY = EnumType(
    "TicketPriority",
    ("LOW", "NORMAL", "HIGH", "URGENT"),
    description="How urgent a ticket is; the provider's own word is in remotePriority.",
)

TICKET = CommonModel(
    "Ticket",
    description="A support request: a Zendesk ticket, a HubSpot ticket, a Salesforce case.",
    fields=(
        Field("subject", str, filterable=True),
        Field("description", str, description="The request as the requester wrote it, as plain text."),
        Field("status", TICKET_STATUS, filterable=True),
        Field("remote_status", str, filterable=True, description="The provider's own value for the status."),
        Field("priority", TICKET_PRIORITY, filterable=True),
        Field("remote_priority", str, description="The provider's own value for the priority."),
        Field(
            "ticket_type", str, filterable=True, description="The provider's kind of ticket (question, incident, ...)."
        ),
        Field("channel", str, filterable=True, description="Where the request came in (email, web, phone, ...)."),
        Field("tags", ListOf(str), filterable=True),
        Field("due_at", datetime),
        Field("solved_at", datetime),
    ),
    relations=(
        Relation("requester", "Contact", filterable=True),
        Relation("assignee", "User", filterable=True),
        Relation("company", "Company", filterable=True),
    ),
    inverses=(Inverse("comments", "TicketComment", via="ticket"),),
)

TICKET_COMMENT = CommonModel(
    "TicketComment",
    description="A comment on a ticket, public (the requester sees it) or an internal note. Its createdAt is "
    "when it was written.",
    fields=(
        Field("body", str, description="The comment as plain text."),
        Field("html_body", str, description="The comment as HTML, where the provider has it."),
        Field("is_public", bool, filterable=True, description="False for an internal note agents alone see."),
    ),
    relations=(
        Relation("ticket", "Ticket", filterable=True),
        Relation("author_user", "User", filterable=True),
        Relation("author_contact", "Contact", filterable=True),
    ),
)

# Key-value annotations as payments providers keep them, with Stripe's limits (the provider that defines them).
METADATA = Field(
    "metadata",
    StringMap(max_keys=50, max_key_length=40, max_value_length=500, forbidden_key_characters="[]"),
    description="The provider's key-value annotations on the object (Stripe's metadata): a JSON object of "
    "text values; at most 50 keys of at most 40 characters without [ or ], values of at most 500 characters.",
)
CURRENCY = Field(
    "currency",
    CurrencyCode,
    filterable=True,
    description='The upper-case ISO 4217 code of its amounts; filters ignore case ("usd" finds USD).',
)

CUSTOMER = CommonModel(
    "Customer",
    description="Someone who pays: a Stripe customer.",
    fields=(
        Field("email", str, filterable=True),
        Field("name", str, filterable=True),
        Field("phone", str),
        Field("description", str),
        CURRENCY,
        Field(
            "balance",
            Money,
            description="Credit (negative) or debt (positive) applied to the customer's next invoice.",
        ),
        Field("delinquent", bool, filterable=True, description="True when the latest invoice went unpaid."),
        METADATA,
    ),
)

INVOICE_STATUS = EnumType(
    "InvoiceStatus",
    ("DRAFT", "OPEN", "PAID", "UNCOLLECTIBLE", "VOID"),
    description="Where an invoice stands; the provider's own word is in remoteStatus.",
)

INVOICE_LINE = Struct(
    "InvoiceLine",
    description="One line of an invoice, embedded in it.",
    fields=(
        Field("description", str),
        Field("quantity", int),
        Field("amount", Money, description="The line's total."),
        Field("price_remote_id", str, description="The provider's id of the price billed, if any."),
        Field("product_remote_id", str, description="The provider's id of the product billed, if any."),
    ),
)

INVOICE = CommonModel(
    "Invoice",
    description="A bill sent to a customer: a Stripe invoice.",
    fields=(
        Field("number", str, filterable=True),
        Field("status", INVOICE_STATUS, filterable=True),
        Field("remote_status", str, filterable=True, description="The provider's own value for the status."),
        CURRENCY,
        Field("subtotal", Money, description="Before discounts and taxes."),
        Field("total", Money),
        Field("amount_due", Money),
        Field("amount_paid", Money),
        Field("amount_remaining", Money),
        Field("due_at", datetime),
        Field("paid_at", datetime),
        Field("period_start", datetime),
        Field("period_end", datetime),
        Field("hosted_url", str, description="Where the customer sees and pays it."),
        Field("lines", Embedded(INVOICE_LINE)),
        METADATA,
    ),
    relations=(
        Relation("customer", "Customer", filterable=True),
        Relation("subscription", "BillingSubscription", filterable=True),
    ),
)

PAYMENT_STATUS = EnumType(
    "PaymentStatus",
    ("REQUIRES_ACTION", "PROCESSING", "SUCCEEDED", "FAILED", "CANCELED"),
    description="Where a payment stands; the provider's own word is in remoteStatus.",
)

PAYMENT = CommonModel(
    "Payment",
    description="An attempt to collect money: a Stripe PaymentIntent (charges and refunds stay records).",
    fields=(
        Field("amount", Money),
        Field("amount_received", Money),
        Field("amount_refunded", Money),
        CURRENCY,
        Field("status", PAYMENT_STATUS, filterable=True),
        Field("remote_status", str, filterable=True, description="The provider's own value for the status."),
        Field("method", str, filterable=True, description="How it is paid: card, sepa_debit, ..."),
        Field("description", str),
        Field("failure_message", str, description="Why the last attempt failed, as the provider says it."),
        METADATA,
    ),
    relations=(Relation("customer", "Customer", filterable=True), Relation("invoice", "Invoice", filterable=True)),
)

BILLING_SUBSCRIPTION_STATUS = EnumType(
    "BillingSubscriptionStatus",
    ("TRIALING", "ACTIVE", "PAST_DUE", "CANCELED", "UNPAID", "INCOMPLETE", "INCOMPLETE_EXPIRED", "PAUSED"),
    description="Where a subscription stands; the provider's own word is in remoteStatus.",
)

SUBSCRIPTION_ITEM = Struct(
    "SubscriptionItem",
    description="One price a subscription bills, embedded in it.",
    fields=(
        Field("price_remote_id", str),
        Field("product_remote_id", str),
        Field("quantity", int),
        Field("unit_amount", Money),
        Field("interval", str, description="How often it bills: day, week, month or year."),
    ),
)

BILLING_SUBSCRIPTION = CommonModel(
    "BillingSubscription",
    description="A customer's recurring billing: a Stripe subscription.",
    fields=(
        Field("status", BILLING_SUBSCRIPTION_STATUS, filterable=True),
        Field("remote_status", str, filterable=True, description="The provider's own value for the status."),
        CURRENCY,
        Field("current_period_start", datetime),
        Field("current_period_end", datetime),
        Field("cancel_at", datetime),
        Field("canceled_at", datetime),
        Field("cancel_at_period_end", bool, filterable=True, description="True when it ends with its current period."),
        Field("trial_end", datetime),
        Field("items", Embedded(SUBSCRIPTION_ITEM)),
        METADATA,
    ),
    relations=(Relation("customer", "Customer", filterable=True),),
)

COMMON_MODELS: dict[str, CommonModel] = {
    m.name: m
    for m in (
        CONTACT,
        COMPANY,
        DEAL,
        USER,
        NOTE,
        TASK,
        TICKET,
        TICKET_COMMENT,
        CUSTOMER,
        INVOICE,
        PAYMENT,
        BILLING_SUBSCRIPTION,
    )
}

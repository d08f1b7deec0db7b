"""A model defined only in the kit's vocabulary becomes GraphQL types with no schema code: read type, enum,
Money, filter, list field and write input. The throwaway models here are derived on their own schema and
never join the public one."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
import strawberry
from strawberry import Schema
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.tools import merge_types

from connectors.kit.errors import BadInput
from connectors.kit.mapping import EachOf, ModelMapping, MoneyAt, Path
from connectors.kit.models import (
    CUSTOMER,
    INVOICE,
    CommonModel,
    EnumType,
    Field,
    Inverse,
    ListOf,
    Money,
    Relation,
)
from resolvers.records import RecordRow, StringMatch
from schema import schema as public_schema
from schema.execution import FastPlainFieldsExecutionContext
from schema.filters import StringFilter, StringListFilter, derive_filter_type, record_query
from schema.objects import derive_object_types, graphql_enum
from schema.query import derive_list_query
from schema.relay import RecordOrder
from schema.scalars import SCALARS
from schema.writes import MoneyInput, _input_type, _values

BILL_STATUS = EnumType("BillStatus", ("DRAFT", "OPEN", "PAID"), description="Where a bill stands.")
PAYER = CommonModel("Payer", fields=(Field("name", str, filterable=True),), description="Who pays bills.")
STATUS, REMOTE_STATUS = Field("status", BILL_STATUS, filterable=True), Field("remote_status", str)
TOTAL = Field("total", Money, description="What the bill asks for.")
BILL = CommonModel("Bill", (STATUS, REMOTE_STATUS, TOTAL), (Relation("payer", "Payer"),), "A made-up model.")
MODELS = (BILL, PAYER)


def _row(common: dict[str, Any]) -> RecordRow:
    return RecordRow(1, uuid.uuid4(), "bills", "Bill", "b-1", common, "{}", None, None, None)


def _schema(rows: list[RecordRow], execution_context_class: type | None = None) -> Schema:
    object_types = derive_object_types(MODELS)
    filter_types = {model.name: derive_filter_type(model) for model in MODELS}
    bill = object_types["Bill"]

    def sample_bills() -> Any:
        return [bill.build(row) for row in rows]

    sample_bills.__annotations__ = {"return": list[bill]}  # type: ignore[valid-type]
    samples = strawberry.type(type("Samples", (), {"sample_bills": strawberry.field(resolver=sample_bills)}))
    return Schema(
        query=merge_types("Query", (derive_list_query(MODELS, object_types, filter_types), samples)),
        types=list(object_types.values()),
        scalar_overrides=SCALARS,
        execution_context_class=execution_context_class or StrawberryGraphQLCoreExecutionContext,
    )


def test_enum_money_relation_filter_and_list_are_derived() -> None:
    sdl = _schema([]).as_str()
    assert '"""Where a bill stands."""\nenum BillStatus {\n  DRAFT\n  OPEN\n  PAID\n}' in sdl
    assert "type Money {" in sdl and "amount: Decimal!" in sdl and "currency: String!" in sdl
    assert "scalar Decimal" in sdl
    assert '"""What the bill asks for."""\n  total: Money' in sdl
    assert "status: BillStatus\n  remoteStatus: String\n" in sdl
    assert "payer: Payer\n}" in sdl
    assert "status: BillStatus = null" in sdl  # in BillFilter
    paging = "first: Int = null, after: String = null, last: Int = null, before: String = null"
    assert f"bills({paging}, filter: BillFilter = null" in sdl
    assert "payers(" in sdl and "): PayerConnection!" in sdl


def test_throwaway_models_stay_out_of_the_public_schema() -> None:
    public = public_schema._schema.type_map
    assert not {"Bill", "Payer", "BillStatus", "BillFilter"} & set(public)


QUERY = "{ sampleBills { id status remoteStatus total { amount currency } } }"


@pytest.mark.parametrize("fast", [True, False], ids=["fast path", "graphql-core path"])
def test_stored_values_read_as_enum_members_and_exact_money(fast: bool) -> None:
    rows = [
        _row({"status": "PAID", "remote_status": "paid", "total": {"amount": "1234.50", "currency": "EUR"}}),
        # A provider word the enum lacks reads as null; the word stays in remoteStatus.
        _row({"status": "VOIDED", "remote_status": "voided", "total": None}),
        # Stored Money that is not Money (a float) reads as null rather than failing the page.
        _row({"status": None, "remote_status": None, "total": {"amount": 1.5, "currency": "eur"}}),
    ]
    result = _schema(rows, FastPlainFieldsExecutionContext if fast else None).execute_sync(QUERY)
    assert result.errors is None
    bills = result.data["sampleBills"]  # type: ignore[index]
    assert [(b["status"], b["remoteStatus"], b["total"]) for b in bills] == [
        ("PAID", "paid", {"amount": "1234.50", "currency": "EUR"}),
        (None, "voided", None),
        (None, None, None),
    ]


def test_an_enum_filter_matches_the_stored_member_name() -> None:
    bill_filter = derive_filter_type(BILL)
    paid = graphql_enum(BILL_STATUS).PAID  # type: ignore[attr-defined]
    query = record_query(BILL, bill_filter(status=paid), RecordOrder.UPDATED_AT_DESC, False)  # type: ignore[call-arg]
    assert query.model == "Bill"
    assert query.fields == {"status": StringMatch(eq="PAID")}


def test_write_inputs_take_enum_members_and_money() -> None:
    bill_input = _input_type(BILL)
    paid = graphql_enum(BILL_STATUS).PAID  # type: ignore[attr-defined]
    given = bill_input(status=paid, total=MoneyInput(amount=Decimal("10.5"), currency="USD"))
    assert _values(BILL, given) == {"status": "PAID", "total": {"amount": "10.5", "currency": "USD"}}
    with pytest.raises(BadInput, match="ISO 4217"):
        _values(BILL, bill_input(total=MoneyInput(amount=Decimal("1"), currency="usd")))


def test_decimal_is_text_in_and_out() -> None:
    sdl_schema = _schema([])
    decimal = sdl_schema._schema.type_map["Decimal"]
    assert decimal.serialize(Decimal("1E+3")) == "1000"  # type: ignore[attr-defined]
    assert decimal.parse_value("1234.50") == Decimal("1234.50")  # type: ignore[attr-defined]
    for bad in (12.5, "NaN", "twelve"):
        with pytest.raises(ValueError):
            decimal.parse_value(bad)  # type: ignore[attr-defined]


def test_money_from_minor_units_follows_the_currency_exponent() -> None:
    assert Money.from_minor(1050, "usd").to_common() == {"amount": "10.50", "currency": "USD"}
    assert Money.from_minor(1050, "JPY").to_common() == {"amount": "1050", "currency": "JPY"}
    assert Money.from_minor(1050, "KWD").to_common() == {"amount": "1.050", "currency": "KWD"}
    with pytest.raises(ValueError):
        Money(Decimal("Infinity"), "USD")


def test_validate_knows_enum_members_and_money() -> None:
    BILL.validate({"status": "PAID", "total": {"amount": "1.00", "currency": "EUR"}})
    with pytest.raises(TypeError, match="BillStatus"):
        BILL.validate({"status": "paid"})
    with pytest.raises(TypeError, match="Money"):
        BILL.validate({"total": {"amount": 1.0, "currency": "EUR"}})


def test_a_relation_to_a_model_not_derived_is_refused() -> None:
    with pytest.raises(ValueError, match="Payer"):
        derive_object_types((BILL,))


def test_only_text_boolean_enum_and_text_list_fields_are_filterable() -> None:
    for kind in (Money, int, datetime, ListOf(int)):
        with pytest.raises(ValueError, match="filterable"):
            Field("total", kind, filterable=True)
    for kind in (str, bool, BILL_STATUS, ListOf(str)):
        assert Field("ok", kind, filterable=True).filterable


# A board and its cards: a list of text, a boolean, a filterable relation and the inverse of it.
CARD = CommonModel(
    "Card",
    fields=(
        Field("title", str),
        Field("labels", ListOf(str), filterable=True),
        Field("done", bool, filterable=True),
    ),
    relations=(Relation("board", "Board", filterable=True), Relation("watchers", "Payer", many=True, filterable=True)),
)
BOARD = CommonModel(
    "Board",
    fields=(Field("name", str),),
    inverses=(Inverse("cards", "Card", via="board", description="The board's cards."),),
)
BOARD_MODELS = (BOARD, CARD, PAYER)


def _board_schema(rows: list[RecordRow], execution_context_class: type | None = None) -> Schema:
    object_types = derive_object_types(BOARD_MODELS)
    filter_types = {model.name: derive_filter_type(model) for model in BOARD_MODELS}
    card = object_types["Card"]

    def sample_cards() -> Any:
        return [card.build(row) for row in rows]

    sample_cards.__annotations__ = {"return": list[card]}  # type: ignore[valid-type]
    samples = strawberry.type(type("Samples", (), {"sample_cards": strawberry.field(resolver=sample_cards)}))
    return Schema(
        query=merge_types("Query", (derive_list_query(BOARD_MODELS, object_types, filter_types), samples)),
        types=list(object_types.values()),
        scalar_overrides=SCALARS,
        execution_context_class=execution_context_class or StrawberryGraphQLCoreExecutionContext,
    )


def test_lists_booleans_relation_filters_and_inverses_are_derived() -> None:
    sdl = _board_schema([]).as_str()
    assert "labels: [String!]!\n  done: Boolean\n" in sdl  # in Card
    about = "The board's cards. Oldest first, at most 100; all of them through `cards(filter: {boardRemoteId: ...})`."
    assert about in sdl
    assert "cards: [Card!]!\n}" in sdl  # in Board
    card_filter = sdl[sdl.index("input CardFilter {") :].split("}", 1)[0]
    assert "labels: StringListFilter = null" in card_filter and "done: Boolean = null" in card_filter
    assert "boardRemoteId: String = null" in card_filter and "payerRemoteIds: String = null" in card_filter
    assert "title" not in card_filter
    assert "input StringListFilter {\n  contains: String = null\n}" in sdl
    card_input = _input_type(CARD)
    given = card_input(labels=["a", "b"], board_remote_id="b-1", done=True)  # type: ignore[call-arg]
    assert _values(CARD, given) == {"labels": ["a", "b"], "board": "b-1", "done": True}
    assert not hasattr(_input_type(BOARD)(), "cards")  # an inverse is not written on the parent


def test_list_boolean_and_relation_filters_become_matches() -> None:
    card_filter = derive_filter_type(CARD)
    where = card_filter(  # type: ignore[call-arg]
        labels=StringListFilter(contains="urgent"), done=False, board_remote_id="b-1", payer_remote_ids="p-9"
    )
    query = record_query(CARD, where, RecordOrder.UPDATED_AT_DESC, False)
    assert query.fields == {
        "labels": StringMatch(holds="urgent"),
        "done": StringMatch(flag=False),
        "board": StringMatch(eq="b-1"),
        "watchers": StringMatch(holds="p-9"),
    }
    # An empty list filter filters nothing.
    assert record_query(CARD, card_filter(labels=StringListFilter()), RecordOrder.UPDATED_AT_DESC, False).fields == {}  # type: ignore[call-arg]


@pytest.mark.parametrize("fast", [True, False], ids=["fast path", "graphql-core path"])
def test_a_list_field_is_never_null(fast: bool) -> None:
    rows = [_card_row({"title": "t", "labels": ["x", "y"]}), _card_row({"title": "u"}), _card_row({"labels": None})]
    result = _board_schema(rows, FastPlainFieldsExecutionContext if fast else None).execute_sync(
        "{ sampleCards { title labels } }"
    )
    assert result.errors is None
    assert [c["labels"] for c in result.data["sampleCards"]] == [["x", "y"], [], []]  # type: ignore[index]


def test_a_list_holding_a_null_is_reported_as_graphql_core_reports_it() -> None:
    # Stored data the fast path cannot serialize takes graphql-core's path and its error.
    rows = [_card_row({"title": "t", "labels": ["x", None]})]
    fast = _board_schema(rows, FastPlainFieldsExecutionContext).execute_sync("{ sampleCards { labels } }")
    plain = _board_schema(rows).execute_sync("{ sampleCards { labels } }")
    assert fast.data == plain.data and [e.message for e in fast.errors or []] == [e.message for e in plain.errors or []]
    assert fast.errors


def _card_row(common: dict[str, Any]) -> RecordRow:
    return RecordRow(1, uuid.uuid4(), "cards", "Card", "c-1", common, "{}", None, None, None)


def test_validate_knows_lists() -> None:
    CARD.validate({"labels": ["a"], "done": True})
    with pytest.raises(TypeError, match="a list of str"):
        CARD.validate({"labels": "a"})
    with pytest.raises(TypeError, match="a list of str"):
        CARD.validate({"labels": [1]})


def test_an_inverse_must_name_one_relation_back_to_its_model() -> None:
    for via in ("nothing", "watchers"):
        board = CommonModel("Board", fields=(Field("name", str),), inverses=(Inverse("cards", "Card", via=via),))
        with pytest.raises(ValueError, match=f"Card.{via} must be one Board"):
            derive_object_types((board, CARD, PAYER))
    with pytest.raises(ValueError, match="not derived"):
        derive_object_types((BOARD, PAYER))
    # Past the limit of children shown, the children's list filtered by their parent has them all.
    unfiltered = CommonModel("Card", fields=(), relations=(Relation("board", "Board"),))
    with pytest.raises(ValueError, match=r"Card\.board must be filterable"):
        derive_object_types((BOARD, unfiltered))


def test_a_mapping_fills_an_absent_list_with_the_empty_list() -> None:
    mapping = ModelMapping(CARD, {"title": Path("name"), "labels": Path("tags")})
    assert mapping.to_common({"name": "n"})["labels"] == []
    assert mapping.to_common({"name": "n", "tags": ["a"]})["labels"] == ["a"]


STRIPE_LIKE_INVOICE = ModelMapping(
    INVOICE,
    {
        "currency": Path("currency"),
        "total": MoneyAt("total", "currency", minor_units=True),
        "lines": EachOf(
            "lines.data",
            {
                "description": Path("description"),
                "quantity": Path("quantity"),
                "amount": MoneyAt("amount", "currency", minor_units=True, currency_writable=True),
                "price_remote_id": Path("price.id", writable=False),
            },
        ),
        "customer": Path("customer"),
    },
)


def test_embedded_values_are_mapped_item_by_item_with_exact_money() -> None:
    raw = {
        "currency": "jpy",
        "total": 2100,
        "customer": "cus_1",
        "lines": {
            "data": [
                {"description": "Plan", "quantity": 2, "amount": 1050, "currency": "jpy", "price": {"id": "p_1"}},
                "not an object",
                {"description": "Fee", "amount": 1050, "currency": "kwd"},
            ]
        },
    }
    common = STRIPE_LIKE_INVOICE.to_common(raw)
    assert common["currency"] == "JPY"  # providers' lower case is the model's upper case
    assert common["total"] == {"amount": "2100", "currency": "JPY"}
    assert common["lines"] == [
        {
            "description": "Plan",
            "quantity": 2,
            "amount": {"amount": "1050", "currency": "JPY"},
            "price_remote_id": "p_1",
            "product_remote_id": None,
        },
        {
            "description": "Fee",
            "quantity": None,
            "amount": {"amount": "1.050", "currency": "KWD"},
            "price_remote_id": None,
            "product_remote_id": None,
        },
    ]
    INVOICE.validate(common)
    assert STRIPE_LIKE_INVOICE.to_common({"currency": "usd"})["lines"] == []
    assert STRIPE_LIKE_INVOICE.to_common({"lines": {"data": "oops"}})["lines"] == []


def test_embedded_values_are_written_item_by_item_naming_the_item_in_errors() -> None:
    lines = [
        {"description": "Plan", "quantity": 2, "amount": {"amount": "1050", "currency": "JPY"}},
        {"amount": {"amount": "10.50", "currency": "USD"}},
    ]
    assert STRIPE_LIKE_INVOICE.provider_values({"lines": lines}) == {
        "lines.data": [
            {"description": "Plan", "quantity": 2, "amount": 1050, "currency": "JPY"},
            {"amount": 1050, "currency": "USD"},
        ]
    }
    over_precise = [lines[0], {"amount": {"amount": "10.5", "currency": "JPY"}}]
    with pytest.raises(BadInput, match="more decimals than JPY") as refused:
        STRIPE_LIKE_INVOICE.provider_values({"lines": over_precise})
    assert refused.value.extensions["field"] == "lines[1].amount"
    with pytest.raises(BadInput, match="cannot be written") as refused:
        STRIPE_LIKE_INVOICE.provider_values({"lines": [{"price_remote_id": "p_2"}]})
    assert refused.value.extensions["field"] == "lines[0].priceRemoteId"
    assert STRIPE_LIKE_INVOICE.provider_values({"lines": None}) == {"lines.data": None}


def test_an_embedded_field_is_mapped_by_each_of_and_only_it() -> None:
    with pytest.raises(ValueError, match="embedded values are mapped with EachOf"):
        ModelMapping(INVOICE, {"lines": Path("lines")})
    with pytest.raises(ValueError, match="embedded values are mapped with EachOf"):
        ModelMapping(INVOICE, {"number": EachOf("lines", {})})
    with pytest.raises(ValueError, match=r"has no members \['colour'\]"):
        ModelMapping(INVOICE, {"lines": EachOf("lines", {"colour": Path("colour")})})


def test_currencies_filter_regardless_of_case() -> None:
    invoice_filter = derive_filter_type(INVOICE)
    query = record_query(INVOICE, invoice_filter(currency=StringFilter(eq="usd")), RecordOrder.UPDATED_AT_DESC, False)  # type: ignore[call-arg]
    assert query.fields == {"currency": StringMatch(eq="usd", ignore_case=True)}
    customer_filter = derive_filter_type(CUSTOMER)
    query = record_query(CUSTOMER, customer_filter(email=StringFilter(eq="A@x")), RecordOrder.UPDATED_AT_DESC, False)  # type: ignore[call-arg]
    assert query.fields == {"email": StringMatch(eq="A@x")}  # other text keeps its case


def test_metadata_and_currencies_validate_their_shape() -> None:
    CUSTOMER.validate({"currency": "EUR", "metadata": {"plan": "pro"}})
    with pytest.raises(TypeError, match="CurrencyCode"):
        CUSTOMER.validate({"currency": "eur"})
    with pytest.raises(TypeError, match="JSON object of text values"):
        CUSTOMER.validate({"metadata": {"seats": 3}})

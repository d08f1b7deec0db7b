"""A parser for the SOQL subset the connector uses:

    SELECT f1, f2, ... FROM Object
    [WHERE condition [AND|OR condition]...]       conditions: field op value | field [NOT] IN (v, ...)
    [ORDER BY field [ASC|DESC] [NULLS FIRST|LAST], ...]
    [LIMIT n]

Operators are = != <> < <= > >=; values are 'quoted strings' (backslash escapes), unquoted datetime
and date literals, numbers, true, false and null; parentheses group conditions. As in SOQL, AND and
OR cannot be mixed at one level without parentheses. Anything else is a `SoqlSyntaxError`, which
the API answers with MALFORMED_QUERY.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from connectors.salesforce.sandbox.timestamps import format_datetime, parse_date, parse_datetime


class SoqlSyntaxError(Exception):
    def __init__(self, detail: str, position: int) -> None:
        super().__init__(detail)
        self.detail = detail
        self.position = position


class LiteralKind(StrEnum):
    STRING = "string"
    DATETIME = "datetime"
    DATE = "date"
    NUMBER = "number"
    BOOLEAN = "boolean"
    NULL = "null"


@dataclass(frozen=True)
class FieldRef:
    name: str
    position: int


@dataclass(frozen=True)
class Literal:
    kind: LiteralKind
    value: Any  # str for strings, dates and datetimes (rendered as stored), float, bool or None
    position: int


@dataclass(frozen=True)
class Comparison:
    field: FieldRef
    operator: str  # one of = != < <= > >=
    value: Literal


@dataclass(frozen=True)
class Membership:
    field: FieldRef
    negated: bool
    values: tuple[Literal, ...]


@dataclass(frozen=True)
class Junction:
    operator: str  # AND or OR
    operands: tuple[Condition, ...]


Condition = Comparison | Membership | Junction


@dataclass(frozen=True)
class OrderItem:
    field: FieldRef
    descending: bool
    nulls_last: bool


@dataclass(frozen=True)
class SelectStatement:
    fields: tuple[FieldRef, ...]
    sobject: FieldRef
    where: Condition | None
    order_by: tuple[OrderItem, ...]
    limit: int | None


# ---- lexing -----------------------------------------------------------------------------------

KEYWORDS = frozenset(
    {"SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "ORDER", "BY", "ASC", "DESC", "NULLS", "FIRST", "LAST"}
    | {"LIMIT", "TRUE", "FALSE", "NULL"}
)


@dataclass(frozen=True)
class Token:
    kind: str  # keyword, ident, op, punct, literal, end
    text: str
    position: int
    literal: Literal | None = None


_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<malformed_datetime>\d{4}-\d{2}-\d{2}T[\w:.+-]*)
  | (?P<date>\d{4}-\d{2}-\d{2}(?![\w:]))
  | (?P<number>[+-]?\d+(?:\.\d+)?(?![\w.]))
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op>!=|<>|<=|>=|=|<|>)
  | (?P<punct>[(),])
    """,
    re.VERBOSE | re.ASCII,
)
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        if text[position] == "'":
            token, position = _string(text, position)
            tokens.append(token)
            continue
        match = _TOKEN.match(text, position)
        if match is None:
            raise SoqlSyntaxError(f"unexpected token: '{_word_at(text, position)}'", position)
        kind = match.lastgroup or ""
        raw = match.group()
        if kind == "malformed_datetime":
            raise SoqlSyntaxError(f"line 1:{position} no viable alternative at character '{raw}'", position)
        if kind == "datetime":
            ms = parse_datetime(raw)
            if ms is None:
                raise SoqlSyntaxError(f"line 1:{position} no viable alternative at character '{raw}'", position)
            tokens.append(Token("literal", raw, position, Literal(LiteralKind.DATETIME, format_datetime(ms), position)))
        elif kind == "date":
            day = parse_date(raw)
            if day is None:
                raise SoqlSyntaxError(f"line 1:{position} no viable alternative at character '{raw}'", position)
            tokens.append(Token("literal", raw, position, Literal(LiteralKind.DATE, day, position)))
        elif kind == "number":
            tokens.append(Token("literal", raw, position, Literal(LiteralKind.NUMBER, float(raw), position)))
        elif kind == "word" and raw.upper() in KEYWORDS:
            tokens.append(Token("keyword", raw.upper(), position))
        elif kind == "word":
            tokens.append(Token("ident", raw, position))
        elif kind in ("op", "punct"):
            tokens.append(Token(kind, "!=" if raw == "<>" else raw, position))
        position = match.end()
    tokens.append(Token("end", "<EOF>", len(text)))
    return tokens


def _string(text: str, start: int) -> tuple[Token, int]:
    """A quoted literal from `start` (its opening quote) to its closing quote."""
    chars: list[str] = []
    position = start + 1
    while position < len(text):
        char = text[position]
        if char == "'":
            value = "".join(chars)
            return Token("literal", text[start : position + 1], start, Literal(LiteralKind.STRING, value, start)), (
                position + 1
            )
        if char == "\\":
            escaped = text[position + 1 : position + 2]
            if escaped == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", text[position + 2 : position + 6]):
                chars.append(chr(int(text[position + 2 : position + 6], 16)))
                position += 6
                continue
            if escaped not in _ESCAPES:
                raise SoqlSyntaxError(
                    f"Invalid string literal '{text[start + 1 : position + 2]}'. "
                    f"Illegal character sequence '\\{escaped}' in string literal.",
                    position,
                )
            chars.append(_ESCAPES[escaped])
            position += 2
            continue
        chars.append(char)
        position += 1
    raise SoqlSyntaxError("unexpected token: <EOF>: unterminated string literal", start)


def _word_at(text: str, position: int) -> str:
    match = re.match(r"\S+?(?=[\s,()]|$)", text[position:])
    return match.group() if match else text[position : position + 1]


# ---- parsing ----------------------------------------------------------------------------------


def parse(text: str) -> SelectStatement:
    return _Parser(tokenize(text)).statement()


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.index = 0

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        if token.kind != "end":
            self.index += 1
        return token

    def at_keyword(self, *words: str) -> bool:
        return self.current.kind == "keyword" and self.current.text in words

    def expect_keyword(self, word: str) -> Token:
        if not self.at_keyword(word):
            raise self.unexpected()
        return self.advance()

    def expect(self, kind: str, text: str | None = None) -> Token:
        token = self.current
        if token.kind != kind or (text is not None and token.text != text):
            raise self.unexpected()
        return self.advance()

    def unexpected(self) -> SoqlSyntaxError:
        token = self.current
        return SoqlSyntaxError(f"unexpected token: {_quoted(token)}", token.position)

    def statement(self) -> SelectStatement:
        self.expect_keyword("SELECT")
        fields = [self.field()]
        while self.current.kind == "punct" and self.current.text == ",":
            self.advance()
            fields.append(self.field())
        self.expect_keyword("FROM")
        sobject = self.field()
        where = None
        if self.at_keyword("WHERE"):
            self.advance()
            where = self.condition()
        order_by: list[OrderItem] = []
        if self.at_keyword("ORDER"):
            self.advance()
            self.expect_keyword("BY")
            order_by.append(self.order_item())
            while self.current.kind == "punct" and self.current.text == ",":
                self.advance()
                order_by.append(self.order_item())
        limit = None
        if self.at_keyword("LIMIT"):
            self.advance()
            limit = self.limit()
        if self.current.kind != "end":
            raise self.unexpected()
        return SelectStatement(tuple(fields), sobject, where, tuple(order_by), limit)

    def field(self) -> FieldRef:
        token = self.expect("ident")
        if "." in token.text:
            raise SoqlSyntaxError(
                f"relationship field {token.text!r} is not supported by this sandbox; select the Id field instead",
                token.position,
            )
        return FieldRef(token.text, token.position)

    def condition(self) -> Condition:
        operands = [self.term()]
        operator: str | None = None
        while self.at_keyword("AND", "OR"):
            if operator is not None and self.current.text != operator:
                # SOQL demands parentheses wherever AND and OR meet.
                raise self.unexpected()
            operator = self.advance().text
            operands.append(self.term())
        if operator is None:
            return operands[0]
        return Junction(operator, tuple(operands))

    def term(self) -> Condition:
        if self.current.kind == "punct" and self.current.text == "(":
            self.advance()
            inner = self.condition()
            self.expect("punct", ")")
            return inner
        field = self.field()
        if self.at_keyword("NOT"):
            self.advance()
            self.expect_keyword("IN")
            return Membership(field, True, self.value_list())
        if self.at_keyword("IN"):
            self.advance()
            return Membership(field, False, self.value_list())
        operator = self.expect("op").text
        return Comparison(field, operator, self.value())

    def value_list(self) -> tuple[Literal, ...]:
        self.expect("punct", "(")
        values = [self.value()]
        while self.current.kind == "punct" and self.current.text == ",":
            self.advance()
            values.append(self.value())
        self.expect("punct", ")")
        return tuple(values)

    def value(self) -> Literal:
        token = self.current
        if token.kind == "literal" and token.literal is not None:
            self.advance()
            return token.literal
        if self.at_keyword("TRUE", "FALSE"):
            self.advance()
            return Literal(LiteralKind.BOOLEAN, token.text == "TRUE", token.position)
        if self.at_keyword("NULL"):
            self.advance()
            return Literal(LiteralKind.NULL, None, token.position)
        raise self.unexpected()

    def order_item(self) -> OrderItem:
        field = self.field()
        descending = False
        if self.at_keyword("ASC", "DESC"):
            descending = self.advance().text == "DESC"
        nulls_last = descending
        if self.at_keyword("NULLS"):
            self.advance()
            if not self.at_keyword("FIRST", "LAST"):
                raise self.unexpected()
            nulls_last = self.advance().text == "LAST"
        return OrderItem(field, descending, nulls_last)

    def limit(self) -> int:
        token = self.current
        literal = token.literal
        if literal is None or literal.kind is not LiteralKind.NUMBER or not token.text.isdigit():
            raise self.unexpected()
        self.advance()
        return int(token.text)


def _quoted(token: Token) -> str:
    return token.text if token.kind == "end" else f"'{token.text}'"


def error_message(query: str, position: int, detail: str) -> str:
    """Salesforce's query error text: the offending line, a caret under the column, then why."""
    line_start = query.rfind("\n", 0, position) + 1
    line_end = query.find("\n", position)
    line = query[line_start : len(query) if line_end == -1 else line_end]
    row = query.count("\n", 0, position) + 1
    column = position - line_start + 1
    return f"\n{line}\n{' ' * (column - 1)}^\nERROR at Row:{row}:Column:{column}\n{detail}"

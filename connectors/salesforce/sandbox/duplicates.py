"""Salesforce's standard duplicate rules, as the REST API applies them: a Contact (or Lead) saved
with the Email of another live Contact (or Lead), compared trimmed and case-insensitively, is
refused with DUPLICATES_DETECTED and nothing is written, unless the request sends
`Sforce-Duplicate-Rule-Header: allowSave=true`.

The rule looks at the record as it would be stored, so on an update it does not matter which
field the body changes; a record never matches itself. Seeded records never pass through it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connectors.salesforce.sandbox.errors import SalesforceError
from connectors.salesforce.sandbox.schema import CONTACT, LEAD, SObjectType
from connectors.salesforce.sandbox.store import Row, SObjectTable

DUPLICATE_RULE_HEADER = "sforce-duplicate-rule-header"
DUPLICATE_MESSAGE = "You're creating a duplicate record. We recommend you use an existing record instead."


@dataclass(frozen=True)
class DuplicateRule:
    sobject: SObjectType
    name: str
    match_rule: str
    field: str = "Email"


RULES: dict[str, DuplicateRule] = {
    rule.sobject.name: rule
    for rule in (
        DuplicateRule(CONTACT, "Standard_Contact_Duplicate_Rule", "Standard_Contact_Match_Rule_v1_1"),
        DuplicateRule(LEAD, "Standard_Lead_Duplicate_Rule", "Standard_Lead_Match_Rule_v1_0"),
    )
}


def allows_save(header: str | None) -> bool:
    """Whether a `Sforce-Duplicate-Rule-Header` value (`allowSave=true, runAsCurrentUser=true`, ...)
    asks to save despite a duplicate; option names and values are case-insensitive."""
    for option in (header or "").split(","):
        name, _, value = option.partition("=")
        if name.strip().lower() == "allowsave":
            return value.strip().lower() == "true"
    return False


class DuplicateRules:
    """The org's active duplicate rules and, for each, its live records by match key: built from the
    table the first time the rule runs, then kept current by every stored row (`stored`)."""

    def __init__(self, tables: dict[str, SObjectTable]) -> None:
        self.tables = tables
        self.indexes: dict[str, dict[str, set[str]]] = {}

    def check(self, sobject: SObjectType, row: Row, api_root: str) -> None:
        """Raises DUPLICATES_DETECTED when `row`, about to be stored, matches another live record."""
        rule = RULES.get(sobject.name)
        if rule is None:
            return
        key = _match_key(row[sobject.position(rule.field)])
        if key is None:
            return
        matches = sorted(self._index(rule).get(key, set()) - {row[0]})
        if matches:
            raise duplicates_detected(rule, matches, api_root)

    def stored(self, sobject: SObjectType, old: Row | None, new: Row) -> None:
        """Keep a built index current after `old` (None for a new record) was replaced by `new`."""
        rule = RULES.get(sobject.name)
        index = self.indexes.get(sobject.name) if rule else None
        if rule is None or index is None:
            return
        if old is not None:
            self._discard(index, rule, old)
        self._add(index, rule, new)

    def _index(self, rule: DuplicateRule) -> dict[str, set[str]]:
        index = self.indexes.get(rule.sobject.name)
        if index is None:
            index = self.indexes[rule.sobject.name] = {}
            for row in self.tables[rule.sobject.name].rows.values():
                self._add(index, rule, row)
        return index

    def _add(self, index: dict[str, set[str]], rule: DuplicateRule, row: Row) -> None:
        key = _match_key(row[rule.sobject.position(rule.field)])
        if key is not None and not _is_deleted(rule.sobject, row):
            index.setdefault(key, set()).add(row[0])

    def _discard(self, index: dict[str, set[str]], rule: DuplicateRule, row: Row) -> None:
        key = _match_key(row[rule.sobject.position(rule.field)])
        ids = index.get(key) if key is not None else None
        if key is not None and ids is not None:
            ids.discard(row[0])
            if not ids:
                del index[key]


def duplicates_detected(rule: DuplicateRule, matches: list[str], api_root: str) -> SalesforceError:
    sobject = rule.sobject.name
    match_records = [
        {
            "additionalInformation": [],
            "fieldDiffs": [],
            "matchConfidence": 100.0,
            "record": {"attributes": {"type": sobject, "url": f"{api_root}/sobjects/{sobject}/{match}"}, "Id": match},
        }
        for match in matches
    ]
    duplicate_result: dict[str, Any] = {
        "allowSave": False,
        "duplicateRule": rule.name,
        "duplicateRuleEntityType": sobject,
        "errorMessage": DUPLICATE_MESSAGE,
        "matchResults": [
            {
                "entityType": sobject,
                "errors": [],
                "matchEngine": "ExactMatchEngine",
                "matchRecords": match_records,
                "rule": rule.match_rule,
                "size": len(match_records),
            }
        ],
    }
    return SalesforceError(400, "DUPLICATES_DETECTED", DUPLICATE_MESSAGE, [], {"duplicateResult": duplicate_result})


def _match_key(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    return value.strip().lower() or None


def _is_deleted(sobject: SObjectType, row: Row) -> bool:
    return sobject.deleted_at is not None and bool(row[sobject.deleted_at])

"""Fields the platform computes from others on every save (read-only through the API)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connectors.salesforce.sandbox.schema import (
    CASE,
    CLOSED_CASE_STATUSES,
    CLOSED_STAGES,
    CONTACT,
    LEAD,
    OPPORTUNITY,
    TASK,
    USER,
    SObjectType,
)
from connectors.salesforce.sandbox.store import Row

# Keys every compound address carries; null here, since the org has no state and country picklists.
ADDRESS_CODE_KEYS = ("countryCode", "stateCode")


def _full_name(sobject: SObjectType) -> Callable[[Row], None]:
    first, last, name = (sobject.position(f) for f in ("FirstName", "LastName", "Name"))

    def derive(row: Row) -> None:
        row[name] = f"{row[first]} {row[last]}" if row[first] else row[last]

    return derive


def _opportunity_state() -> Callable[[Row], None]:
    stage, closed, won = (OPPORTUNITY.position(f) for f in ("StageName", "IsClosed", "IsWon"))

    def derive(row: Row) -> None:
        row[closed] = row[stage] in CLOSED_STAGES
        row[won] = row[stage] == "Closed Won"

    return derive


def _task_state() -> Callable[[Row], None]:
    status, closed = TASK.position("Status"), TASK.position("IsClosed")

    def derive(row: Row) -> None:
        row[closed] = row[status] == "Completed"

    return derive


def _case_state() -> Callable[[Row], None]:
    status, closed, closed_date, modified = (
        CASE.position(f) for f in ("Status", "IsClosed", "ClosedDate", "LastModifiedDate")
    )

    def derive(row: Row) -> None:
        # Closing stamps ClosedDate with the save's time; reopening clears it.
        row[closed] = row[status] in CLOSED_CASE_STATUSES
        row[closed_date] = (row[closed_date] or row[modified]) if row[closed] else None

    return derive


_DERIVATIONS: dict[str, Callable[[Row], None]] = {
    CONTACT.name: _full_name(CONTACT),
    LEAD.name: _full_name(LEAD),
    USER.name: _full_name(USER),
    OPPORTUNITY.name: _opportunity_state(),
    TASK.name: _task_state(),
    CASE.name: _case_state(),
}


def derive(sobject: SObjectType, row: Row) -> None:
    """Recompute the derived fields of a row that is about to be stored."""
    derivation = _DERIVATIONS.get(sobject.name)
    if derivation is not None:
        derivation(row)
    for position, components in sobject.compounds:
        row[position] = _address(row, components)


def _address(row: Row, components: tuple[tuple[str, int], ...]) -> dict[str, Any] | None:
    """A compound address as the REST API renders it: null when every component is, otherwise every
    key (sorted, as Salesforce sends them), the state and country codes null without their picklists."""
    values = {key: row[position] for key, position in components}
    if all(value is None for value in values.values()):
        return None
    return dict(sorted({**dict.fromkeys(ADDRESS_CODE_KEYS), **values}.items()))

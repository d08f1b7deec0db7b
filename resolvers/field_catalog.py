"""A connection's available fields, for the mapping picker: its field catalog (sync/cache/field_catalog.py)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Row

from connectors.kit.errors import BadInput
from connectors.kit.field_catalog import AvailableField
from connectors.kit.field_mappings import CustomFieldType, FieldSource, check_fits
from resolvers.context import Caller
from resolvers.field_mappings import require_editor
from sync.cache.field_catalog import catalog


async def connection_fields(
    caller: Caller, connection_row: Row[Any], model: str, *, refresh: bool = False
) -> list[AvailableField]:
    """The fields the connection's provider holds for `model`; none when it does not list them (a mapping to
    it is then refused saying why)."""
    require_editor(caller)
    found = await catalog(caller.store, caller.services.kit, connection_row, model, refresh=refresh)
    return list(found.fields)


def fits(available: AvailableField) -> list[CustomFieldType]:
    """The custom field types the field fills as it is, without a transform."""
    source = FieldSource(available.path, provider_kind=available.kind)
    fitting = []
    for wanted in CustomFieldType:
        try:
            check_fits(source, wanted, field_name=available.path)
        except BadInput:
            continue
        fitting.append(wanted)
    return fitting

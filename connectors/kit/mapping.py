"""Declarative mappings from a provider's raw record to a common model.

A mapping is a table: common member name -> where the value lives in the raw record.
Types come from the common model, so a mapping never restates them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from connectors.kit.convert import to_scalar
from connectors.kit.jsonpath import dig
from connectors.kit.models import CommonModel, ScalarType


@dataclass(frozen=True)
class Path:
    """A value at a dotted path in the raw record, e.g. `Path("properties.email")`."""

    path: str

    def read(self, raw: dict[str, Any], target: ScalarType | None) -> Any:
        value = dig(raw, self.path)
        return to_scalar(value, target) if target is not None else value


@dataclass(frozen=True)
class Computed:
    """A value computed from the whole raw record, for the rare field no path can express."""

    compute: Callable[[dict[str, Any]], Any]

    def read(self, raw: dict[str, Any], target: ScalarType | None) -> Any:
        value = self.compute(raw)
        return to_scalar(value, target) if target is not None else value


@dataclass(frozen=True)
class Ids:
    """Remote ids of related records: a list of objects holding an id under `key`, at `path`."""

    path: str
    key: str = "id"
    first: bool = False

    def read(self, raw: dict[str, Any], target: ScalarType | None) -> Any:
        items = dig(raw, self.path) or []
        # dict.fromkeys keeps order and drops repeats (HubSpot lists one id per association label).
        ids = list(dict.fromkeys(str(i[self.key]) for i in items if isinstance(i, dict) and i.get(self.key)))
        if self.first:
            return ids[0] if ids else None
        return ids


Source = Path | Computed | Ids


@dataclass(frozen=True)
class ModelMapping:
    model: CommonModel
    members: Mapping[str, Source]

    def __post_init__(self) -> None:
        unknown = set(self.members) - self.model.member_names
        if unknown:
            raise ValueError(f"mapping to {self.model.name} names unknown members {sorted(unknown)}")

    def to_common(self, raw: dict[str, Any]) -> dict[str, Any]:
        common: dict[str, Any] = {}
        for field in self.model.fields:
            source = self.members.get(field.name)
            common[field.name] = source.read(raw, field.type) if source is not None else None
        for relation in self.model.relations:
            source = self.members.get(relation.name)
            value = source.read(raw, None) if source is not None else None
            common[relation.name] = value if value is not None else ([] if relation.many else None)
        return common

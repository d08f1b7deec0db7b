"""Declarative mappings from a provider's raw record to a common model.

A mapping is a table: common member name -> where the value lives in the raw record.
Types come from the common model, so a mapping never restates them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from connectors.kit.convert import to_scalar
from connectors.kit.jsonpath import dig, path_parts
from connectors.kit.models import CommonModel, ScalarType


@dataclass(frozen=True)
class Path:
    """A value at a dotted path in the raw record, e.g. `Path("properties.email")`."""

    path: str

    def read(self, raw: dict[str, Any], target: ScalarType | None) -> Any:
        value: Any = raw
        for part in path_parts(self.path):
            if value.__class__ is not dict:
                return None
            value = value.get(part)
        return to_scalar(value, target) if target is not None else value


@dataclass(frozen=True)
class Computed:
    """A value computed from the whole raw record, for the rare field no path can express."""

    compute: Callable[[dict[str, Any]], Any]

    def read(self, raw: dict[str, Any], target: ScalarType | None) -> Any:
        value = self.compute(raw)
        return to_scalar(value, target) if target is not None else value


@dataclass(frozen=True)
class Constant:
    """The same value for every record of a stream, e.g. `is_lead` on a stream of leads."""

    value: Any

    def read(self, raw: dict[str, Any], target: ScalarType | None) -> Any:
        return self.value


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


Source = Path | Computed | Constant | Ids


@dataclass(frozen=True)
class ModelMapping:
    model: CommonModel
    members: Mapping[str, Source]

    def __post_init__(self) -> None:
        unknown = set(self.members) - self.model.member_names
        if unknown:
            raise ValueError(f"mapping to {self.model.name} names unknown members {sorted(unknown)}")

    @cached_property
    def _readers(self) -> tuple[tuple[str, Source | None, ScalarType | None, Any], ...]:
        """(member, source, scalar type, value when absent), in the model's order; computed once."""
        fields = tuple((f.name, self.members.get(f.name), f.type, None) for f in self.model.fields)
        relations = tuple(
            (r.name, self.members.get(r.name), None, () if r.many else None) for r in self.model.relations
        )
        return fields + relations

    def to_common(self, raw: dict[str, Any]) -> dict[str, Any]:
        common: dict[str, Any] = {}
        for name, source, target, absent in self._readers:
            value = source.read(raw, target) if source is not None else None
            common[name] = (list(absent) if absent == () else absent) if value is None else value
        return common

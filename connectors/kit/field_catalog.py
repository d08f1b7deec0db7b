"""What a provider's records of a model hold, field by field, for the mapping picker and for checking a mapping
before it is stored: `AvailableField`s, read from the provider's own metadata by each connector's
`FieldCatalog` (HubSpot's properties, Salesforce's describe, Zendesk's ticket and user fields, ...).

A catalog is bounded whatever the provider answers (`bounded`): at most MAX_CATALOG_FIELDS fields (a HubSpot
portal has about 1,000 contact properties, a Salesforce object at most 800 custom fields) and MAX_FIELD_OPTIONS
options a field (a picklist of country codes is 250); what lies beyond is left out, not an error.
"""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from connectors.kit.errors import BadInput
from connectors.kit.field_mappings import PATH_PATTERN, CustomFieldType, FieldSource, Kind, Transform, check_fits
from connectors.kit.jsonpath import dig

if TYPE_CHECKING:
    from connectors.kit.declaration import StreamContext


MAX_CATALOG_FIELDS = 5000
MAX_FIELD_OPTIONS = 500
MAX_LABEL = 255
MAX_OPTION = 255


@dataclass(frozen=True)
class AvailableField:
    """One field a mapping can read: its dotted path in the raw record (`properties.tier`), the provider's label,
    its kind, the values it may take (picklists), whether the account added it, and whether it can be written."""

    path: str
    label: str
    kind: Kind
    options: tuple[str, ...] = ()
    is_custom: bool = False
    writable: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "label": self.label,
            "kind": self.kind,
            "options": list(self.options),
            "isCustom": self.is_custom,
            "writable": self.writable,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AvailableField:
        return cls(
            path=data["path"],
            label=data.get("label") or data["path"],
            kind=data.get("kind") or "any",
            options=tuple(data.get("options") or ()),
            is_custom=bool(data.get("isCustom")),
            writable=bool(data.get("writable", True)),
        )


def bounded(fields: Sequence[AvailableField]) -> list[AvailableField]:
    """The fields a catalog keeps: paths a mapping can name (others could never be chosen), each once, with
    labels and options cut to their bounds, at most MAX_CATALOG_FIELDS of them in the provider's order."""
    kept: dict[str, AvailableField] = {}
    for found in fields:
        if len(kept) >= MAX_CATALOG_FIELDS:
            break
        if found.path in kept or not PATH_PATTERN.fullmatch(found.path):
            continue
        options = tuple(dict.fromkeys(o[:MAX_OPTION] for o in found.options if o))[:MAX_FIELD_OPTIONS]
        kept[found.path] = AvailableField(
            path=found.path,
            label=(found.label or found.path)[:MAX_LABEL],
            kind=found.kind,
            options=options,
            is_custom=found.is_custom,
            writable=found.writable,
        )
    return list(kept.values())


class FieldCatalog(Protocol):
    """Reads a model's available fields from the provider (on the stream the model is synced by)."""

    async def fields(self, ctx: StreamContext) -> list[AvailableField]: ...


@dataclass(frozen=True)
class SeenKeys:
    """A catalog for a provider with no field metadata (Stripe): the keys of one object (`metadata`) found in the
    connection's cached records of the model, each `metadata.<key>`, text, custom and writable. The cache reads
    them (sync/cache/field_catalog.py); the provider is asked nothing."""

    object_path: str
    label_prefix: str = ""

    async def fields(self, ctx: StreamContext) -> list[AvailableField]:
        return []  # nothing to ask the provider: see `from_records`

    def from_records(self, raws: Iterable[Mapping[str, Any]]) -> list[AvailableField]:
        """The keys found under `object_path`, most common first (then by name)."""
        counts: Counter[str] = Counter()
        for raw in raws:
            found = dig(raw, self.object_path)
            if isinstance(found, dict):
                counts.update(key for key in found if isinstance(key, str))
        ordered = sorted(counts, key=lambda key: (-counts[key], key))
        return [
            AvailableField(f"{self.object_path}.{key}", f"{self.label_prefix}{key}", "text", is_custom=True)
            for key in ordered
        ]


@dataclass(frozen=True)
class Catalog:
    """A model's available fields on one connection, as last read."""

    fields: tuple[AvailableField, ...] = field(default_factory=tuple)
    # Why the provider's fields are not known (its metadata refused, or it lists none for the model): every
    # mapping is then refused with this reason, since its path cannot be checked.
    unavailable: str | None = None

    def find(self, path: str) -> AvailableField | None:
        return next((f for f in self.fields if f.path == path), None)

    def nearest(self, path: str, limit: int = 5) -> list[str]:
        """The valid paths closest to a mistyped one (by path and by label), closest first."""
        paths = [f.path for f in self.fields]
        by_label = {f.label.lower(): f.path for f in self.fields}
        close = difflib.get_close_matches(path, paths, n=limit, cutoff=0.5)
        close += [by_label[k] for k in difflib.get_close_matches(path.lower(), list(by_label), n=limit, cutoff=0.6)]
        tail = path.rsplit(".", 1)[-1].lower()
        close += [p for p in paths if p.rsplit(".", 1)[-1].lower() == tail]
        return list(dict.fromkeys(close))[:limit]

    def source(
        self, path: str, transforms: Sequence[Transform], wanted: CustomFieldType, *, field_name: str
    ) -> FieldSource:
        """A checked source: the path exists at the provider and its value (after `transforms`) fits `wanted`;
        otherwise BAD_USER_INPUT naming the nearest valid choices."""
        found = self.find(path)
        if found is None and self.unavailable is not None:
            raise BadInput(
                f"{path!r} cannot be checked: {self.unavailable}; try again once the provider lists its fields",
                field="source",
                nearest=[],
            )
        if found is None:
            near = self.nearest(path)
            hint = f"; nearest: {', '.join(near)}" if near else ""
            raise BadInput(f"the provider has no field {path!r} on this model{hint}", field="source", nearest=near)
        source = FieldSource(path, tuple(transforms), provider_kind=found.kind, writable=found.writable)
        try:
            check_fits(source, wanted, field_name=field_name)
        except BadInput as refused:
            compatible = [
                f.path
                for f in self.fields
                if _fits(FieldSource(f.path, tuple(transforms), provider_kind=f.kind), wanted)
            ]
            near = [p for p in self.nearest(path, limit=20) if p in compatible][:5] or compatible[:5]
            refused.extensions["nearest"] = near
            if near:
                refused.message = f"{refused.message}; fields that fit: {', '.join(near)}"
                refused.args = (refused.message,)
            raise
        return source


def _fits(source: FieldSource, wanted: CustomFieldType) -> bool:
    try:
        check_fits(source, wanted, field_name="")
    except BadInput:
        return False
    return True

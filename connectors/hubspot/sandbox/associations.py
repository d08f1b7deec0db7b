"""Associations between records, stored in both directions as HubSpot reports them."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping

from connectors.hubspot.sandbox.schema import ASSOCIATION_TYPES, AssociationType, inverse_type, unlabeled_type

_EMPTY: Mapping[int, tuple[int, ...]] = {}


class AssociationGraph:
    """`(from type, to type) -> from id -> to id -> association type ids`.

    Type-id tuples are interned: a portal with 100,000 contacts has only a handful of distinct
    tuples, and sharing them keeps the graph small.
    """

    def __init__(self) -> None:
        self._links: dict[tuple[str, str], dict[int, dict[int, tuple[int, ...]]]] = {}
        self._interned: dict[tuple[int, ...], tuple[int, ...]] = {}

    def link(self, from_id: int, to_id: int, association_types: tuple[AssociationType, ...]) -> None:
        for (from_type, to_type), forward, backward in _expand(association_types):
            self._merge(from_type, from_id, to_type, to_id, forward)
            self._merge(to_type, to_id, from_type, from_id, backward)

    def unlink(self, from_type: str, from_id: int, to_type: str, to_id: int) -> bool:
        forward = self._links.get((from_type, to_type), {}).get(from_id, {})
        backward = self._links.get((to_type, from_type), {}).get(to_id, {})
        found = forward.pop(to_id, None) is not None
        backward.pop(from_id, None)
        return found

    def targets(self, from_type: str, from_id: int, to_type: str) -> Mapping[int, tuple[int, ...]]:
        return self._links.get((from_type, to_type), {}).get(from_id, _EMPTY)

    def _merge(self, from_type: str, from_id: int, to_type: str, to_id: int, type_ids: tuple[int, ...]) -> None:
        by_target = self._links.setdefault((from_type, to_type), {}).setdefault(from_id, {})
        current = by_target.get(to_id)
        merged = type_ids if current is None else _ordered({*current, *type_ids})
        by_target[to_id] = self._interned.setdefault(merged, merged)


def _ordered(type_ids: Iterable[int]) -> tuple[int, ...]:
    # Primary types first, as HubSpot lists them.
    return tuple(sorted(type_ids, key=lambda t: (not ASSOCIATION_TYPES[t].primary, t)))


@functools.cache
def _expand(
    association_types: tuple[AssociationType, ...],
) -> list[tuple[tuple[str, str], tuple[int, ...], tuple[int, ...]]]:
    """Per object-type pair, the type ids to store each way. A labelled association always
    comes with the unlabeled one beside it."""
    by_pair: dict[tuple[str, str], set[AssociationType]] = {}
    for association_type in association_types:
        kinds = by_pair.setdefault((association_type.from_type, association_type.to_type), set())
        kinds.add(association_type)
        if association_type.primary:
            unlabeled = unlabeled_type(association_type.from_type, association_type.to_type)
            if unlabeled is not None:
                kinds.add(unlabeled)
    return [
        (pair, _ordered(k.type_id for k in kinds), _ordered(inverse_type(k).type_id for k in kinds))
        for pair, kinds in by_pair.items()
    ]

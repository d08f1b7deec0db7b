"""Associations between records, stored in both directions as HubSpot reports them."""

from __future__ import annotations

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

    def link(self, from_id: int, to_id: int, association_types: Iterable[AssociationType]) -> None:
        for association_type in self._with_unlabeled(association_types):
            back = inverse_type(association_type)
            self._add(association_type.from_type, from_id, association_type.to_type, to_id, association_type)
            self._add(back.from_type, to_id, back.to_type, from_id, back)

    def unlink(self, from_type: str, from_id: int, to_type: str, to_id: int) -> bool:
        forward = self._links.get((from_type, to_type), {}).get(from_id, {})
        backward = self._links.get((to_type, from_type), {}).get(to_id, {})
        found = forward.pop(to_id, None) is not None
        backward.pop(from_id, None)
        return found

    def targets(self, from_type: str, from_id: int, to_type: str) -> Mapping[int, tuple[int, ...]]:
        return self._links.get((from_type, to_type), {}).get(from_id, _EMPTY)

    def _add(self, from_type: str, from_id: int, to_type: str, to_id: int, kind: AssociationType) -> None:
        by_target = self._links.setdefault((from_type, to_type), {}).setdefault(from_id, {})
        current = by_target.get(to_id, ())
        if kind.type_id in current:
            return
        # Primary types sort first, as HubSpot lists them.
        merged = tuple(sorted((*current, kind.type_id), key=lambda t: (not ASSOCIATION_TYPES[t].primary, t)))
        by_target[to_id] = self._interned.setdefault(merged, merged)

    @staticmethod
    def _with_unlabeled(association_types: Iterable[AssociationType]) -> list[AssociationType]:
        # A labelled association always comes with the unlabeled one beside it.
        result: list[AssociationType] = []
        for association_type in association_types:
            result.append(association_type)
            if association_type.primary:
                unlabeled = unlabeled_type(association_type.from_type, association_type.to_type)
                if unlabeled is not None:
                    result.append(unlabeled)
        return result

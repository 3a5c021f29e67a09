"""Re-creating records that cannot be undeleted: what a CREATE writes, and in what order.

A record archived (a CRM without undelete) or purged from the recycle bin comes back as a new record
with a new id. Its create writes only what the CRM lets a create write: the fields the snapshot's
field specs (from describe, kept in the manifest) mark createable, never the id, audit stamps or
formula values the run log's whole-row before-image also holds. A lookup to a parent that the same
plan re-creates is a placeholder, `{"ref": [object, old_id]}`, resolved from the run's id map when
the child is written; so parents are ordered before their children. On providers with associations,
a re-created record's links as the snapshot holds them are ASSOCIATE changes after every create,
each end a placeholder if it is re-created too, with every type the link had (its labels) where the
snapshot kept them. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from crmsweep.model import (
    LINK_TYPES_KEY,
    Change,
    FieldSpec,
    NotReversible,
    Op,
    Record,
    Vocabulary,
    association_object,
    placeholder,
    placeholder_target,
)

# Field specs by object, as a snapshot manifest holds them.
FieldSpecs = Mapping[str, Sequence[FieldSpec]]


class Link(NamedTuple):
    """One link a snapshot holds: its ends, and its types as the connector read them (opaque here; none
    from a snapshot that kept no types, re-made as the CRM's default link)."""

    from_id: str
    to_id: str
    types: Sequence[Mapping[str, Any]] = ()


# The snapshot's links (providers with associations): (from object, to object) -> its links.
Links = Mapping[tuple[str, str], Iterable[Link]]


def recreated_keys(
    changes: Iterable[Change], vocabulary: Vocabulary
) -> set[tuple[str, str]]:
    """(object, id key) of every record `changes` re-create (by its old id)."""
    return {(c.object, vocabulary.id_key(c.record_id)) for c in changes if c.op is Op.CREATE}


def create_values(
    object_name: str,
    before: Mapping[str, object],
    specs: FieldSpecs,
    recreated: Collection[tuple[str, str]],
    vocabulary: Vocabulary,
) -> Record:
    """What re-creating the record `before` writes: its createable fields, parents as placeholders.

    Raises NotReversible when the snapshot holds no field specs for the object (nothing then says
    what a create may write).
    """
    fields = specs.get(object_name)
    if not fields:
        raise NotReversible(
            f"{object_name} {before.get(vocabulary.id_field)} cannot be re-created: the snapshot holds no "
            f"field list for {object_name}, which says what a create may write"
        )
    # The CRM assigns these itself, whatever a describe says of them.
    system = {vocabulary.id_field, vocabulary.deleted_field, vocabulary.created_field, *vocabulary.audit_fields}
    values: Record = {}
    for spec in fields:
        if not spec.createable or spec.name in system or spec.name not in before:
            continue
        value = before[spec.name]
        if isinstance(value, str) and spec.reference_to:
            parent = next(
                (obj for obj in spec.reference_to if (obj, vocabulary.id_key(value)) in recreated), None
            )
            if parent is not None:
                values[spec.name] = placeholder(parent, value)
                continue
        values[spec.name] = value
    return values


def resolve_placeholders(values: Mapping[str, object], id_map: Mapping[str, Mapping[str, str]]) -> Record | None:
    """`values` with each placeholder replaced by the new id the run's id map holds; None if one has none."""
    resolved: Record = {}
    for name, value in values.items():
        target = placeholder_target(value)
        if target is None:
            resolved[name] = value
            continue
        new_id = id_map.get(target[0], {}).get(target[1])
        if new_id is None:
            return None
        resolved[name] = new_id
    return resolved


def parents_of(change: Change) -> list[tuple[str, str]]:
    """The (object, old id) placeholders of a CREATE change, in field order."""
    return [t for t in (placeholder_target(v) for v in change.after.values()) if t is not None]


def parents_first(changes: Sequence[Change], vocabulary: Vocabulary) -> list[Change]:
    """`changes` with every CREATE after the CREATEs of the parents it points at.

    Other changes keep their order and come first: an undelete keeps the id a re-created child may
    point at, so the parent must be back before the child is written. Creates keep their order
    within one depth (parents, then children, then grandchildren), which keeps batches long.
    Refuses records that point at each other in a cycle: no order writes both.
    """
    creates = {(c.object, vocabulary.id_key(c.record_id)): c for c in changes if c.op is Op.CREATE}
    depth: dict[tuple[str, str], int] = {}

    def depth_of(key: tuple[str, str], path: tuple[tuple[str, str], ...]) -> int:
        if key in depth:
            return depth[key]
        if key in path:
            cycle = " -> ".join(f"{o} {i}" for o, i in (*path[path.index(key):], key))
            raise NotReversible(f"records to re-create point at each other in a cycle ({cycle}): none can be first")
        parents = [(o, vocabulary.id_key(i)) for o, i in parents_of(creates[key])]
        found = 1 + max((depth_of(p, (*path, key)) for p in parents if p in creates), default=-1)
        depth[key] = found
        return found

    others = [c for c in changes if c.op is not Op.CREATE]
    ordered = sorted(
        (c for c in changes if c.op is Op.CREATE),
        key=lambda c: depth_of((c.object, vocabulary.id_key(c.record_id)), ()),
    )
    return others + ordered


def relinks(creates: Sequence[Change], links: Links, vocabulary: Vocabulary) -> list[Change]:
    """The ASSOCIATE changes that give the records `creates` re-create the links the snapshot held,
    each link once (a link read from both ends is one link), in snapshot order."""
    by_key = {(c.object, vocabulary.id_key(c.record_id)): c for c in creates if c.op is Op.CREATE}
    changes: list[Change] = []
    seen: set[frozenset[tuple[str, str]]] = set()
    for (from_object, to_object), pairs in links.items():
        for from_id, to_id, types in pairs:
            ends = ((from_object, vocabulary.id_key(from_id)), (to_object, vocabulary.id_key(to_id)))
            owner = by_key.get(ends[0]) or by_key.get(ends[1])
            if owner is None or frozenset(ends) in seen:
                continue
            seen.add(frozenset(ends))
            changes.append(Change(
                op=Op.ASSOCIATE,
                object=association_object(from_object, to_object),
                record_id=f"{from_id}->{to_id}",
                before={},
                after={"from_object": from_object, "from_id": _end(by_key, ends[0], from_id),
                       "to_object": to_object, "to_id": _end(by_key, ends[1], to_id),
                       # Every type the link had, or the key left out: the CRM's default link, as before.
                       **({LINK_TYPES_KEY: [dict(t) for t in types]} if types else {})},
                reason=f"re-link: {owner.reason}",
                pass_name=owner.pass_name,
                severity=owner.severity,
                label=owner.label,
            ))
    return changes


def _end(creates: Mapping[tuple[str, str], Change], key: tuple[str, str], record_id: str) -> object:
    """One end of a link: a placeholder for a record re-created alongside (by its create's own id)."""
    create = creates.get(key)
    return placeholder(create.object, create.record_id) if create is not None else record_id

"""The portal's write rules over the store: property checks, the portal's validation rules, email
uniqueness, stamps every write bumps, calculated properties, associations. Transport-free; the API
module shapes what this returns into HubSpot's JSON.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from crmsweep.sandbox.hubspot_schema import (
    ASSOCIATION_COUNTS,
    CLOSED_DEAL_STAGES,
    OBJECT_TYPES,
    AssociationType,
    ObjectType,
    PropertyDef,
    association_types,
    inverse_association,
)
from crmsweep.sandbox.hubspot_store import ARCHIVED, HubSpotStore, ObjectRow, table
from crmsweep.sandbox.hubspot_values import PropertyValueError, check_value, format_ts

PROPERTY_KIND = "property:"
GROUP_KIND = "group:"
OWNER_KIND = "owner"
USER_KIND = "user"
LIST_KIND = "list"
EMAIL_KIND = "email"
RULE_KIND = "rule"
LABEL_KIND = "association_label"  # the portal's custom association labels
CUSTOM_CATEGORY = "USER_DEFINED"
CUSTOM_FIRST_ID = 1000


def _label_key(from_type: str, to_type: str, type_id: int) -> str:
    return f"{from_type}:{to_type}:{type_id}"


def _custom_type(data: Mapping[str, Any]) -> AssociationType:
    return AssociationType(str(data["fromType"]), str(data["toType"]), int(data["typeId"]), str(data["label"]),
                           CUSTOM_CATEGORY)


@dataclass
class RecordFailure(Exception):
    """One record's write refused. `status` is what a single-record call answers."""

    category: str
    message: str
    status: int = 400
    details: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.message)


@dataclass(frozen=True)
class ValidationRule:
    """A portal rule the 2026-09 write validation enforces: these properties must have a value."""

    name: str
    object_type: str
    required: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "objectType": self.object_type, "requiredProperties": list(self.required)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ValidationRule:
        required = data.get("requiredProperties")
        if not isinstance(required, list) or not all(isinstance(p, str) and p for p in required):
            raise ValueError("a validation rule needs requiredProperties, a list of property names")
        target = data.get("objectType")
        if not isinstance(target, str) or target not in OBJECT_TYPES:
            raise ValueError(f"a validation rule needs objectType, one of {', '.join(OBJECT_TYPES)}")
        name = data.get("name") or f"{target} require {', '.join(required)}"
        return cls(str(name), target, tuple(required))


def _invalid(errors: Sequence[PropertyValueError]) -> RecordFailure:
    listed = ", ".join(f'{{"isValid":false,"message":"{e.message}","error":"{e.code}","name":"{e.name}"}}'
                       for e in errors)
    return RecordFailure(
        "VALIDATION_ERROR", f"Property values were not valid: [{listed}]",
        details=[{"message": e.message, "code": e.code, "context": {"propertyName": [e.name]}} for e in errors],
    )


class Portal:
    def __init__(self, store: HubSpotStore, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.clock = clock
        self._cache_lock = threading.Lock()
        self._properties: dict[str, dict[str, PropertyDef]] = {}

    # --- definitions ----------------------------------------------------------------------------

    def properties(self, type_name: str) -> dict[str, PropertyDef]:
        """The live (not archived) property definitions of an object type, by name."""
        with self._cache_lock:
            cached = self._properties.get(type_name)
        if cached is None:
            cached = {d.key: PropertyDef.from_json(d.data)
                      for d in self.store.docs(PROPERTY_KIND + type_name, archived=False)}
            with self._cache_lock:
                self._properties[type_name] = cached
        return cached

    def forget_properties(self, type_name: str) -> None:
        with self._cache_lock:
            self._properties.pop(type_name, None)

    def owner_ids(self) -> frozenset[str]:
        return frozenset(d.key for d in self.store.docs(OWNER_KIND))

    def rules(self, type_name: str) -> list[ValidationRule]:
        return [r for r in (ValidationRule.from_json(d.data) for d in self.store.docs(RULE_KIND))
                if r.object_type == type_name]

    def set_rules(self, rules: Sequence[ValidationRule]) -> None:
        with self.store.transaction():
            self.store.delete_docs(RULE_KIND)
            for rule in rules:
                self.store.put_doc(RULE_KIND, rule.name, rule.to_json())

    # --- writes (call inside store.transaction()) ------------------------------------------------

    def _checked(self, o: ObjectType, values: Mapping[str, Any]) -> dict[str, str | None]:
        defs = self.properties(o.name)
        owners = self.owner_ids() if "hubspot_owner_id" in values else frozenset()
        out: dict[str, str | None] = {}
        errors: list[PropertyValueError] = []
        for name, value in values.items():
            prop = defs.get(name)
            if prop is None:
                errors.append(PropertyValueError("PROPERTY_DOESNT_EXIST", name, f'Property "{name}" does not exist'))
                continue
            if prop.read_only or prop.calculated:
                errors.append(PropertyValueError("READ_ONLY_VALUE", name,
                                                 f"{name} is a read only property; its value cannot be set."))
                continue
            try:
                out[name] = check_value(prop, value, owner_ids=owners)
            except PropertyValueError as exc:
                errors.append(exc)
        if errors:
            raise _invalid(errors)
        return out

    def _enforce(self, o: ObjectType, properties: Mapping[str, str | None], record_id: int | None) -> None:
        for rule in self.rules(o.name):
            missing = [p for p in rule.required if not properties.get(p)]
            if missing:
                raise RecordFailure(
                    "VALIDATION_ERROR",
                    f"The portal's validation rule '{rule.name}' failed: {', '.join(missing)} must have a value",
                    details=[{"message": f"{p} is required by the validation rule '{rule.name}'",
                              "code": "VALIDATION_RULE_FAILED",
                              "context": {"propertyName": [p], "validationRule": [rule.name]}} for p in missing],
                )
        email = properties.get("email")
        if o.name == "contacts" and email:
            clash = self.store.fetch(
                f"SELECT Id FROM {table('contacts')} WHERE {ARCHIVED} = 0 AND Id != ? AND "
                "lower(json_extract(props, '$.email')) = ? LIMIT 1", (record_id or 0, email.lower()),
            )
            if clash:
                raise RecordFailure("CONFLICT", f"Contact already exists. Existing ID: {clash[0][0]}", status=409)

    def _stamp(self, o: ObjectType, properties: dict[str, str | None], now: str) -> None:
        properties[o.modified_property] = now
        if o.name == "deals":
            stage = properties.get("dealstage")
            properties["hs_is_closed"] = "true" if stage in CLOSED_DEAL_STAGES else "false"

    def create(self, o: ObjectType, values: Mapping[str, Any], now: datetime | None = None) -> ObjectRow:
        checked = self._checked(o, values)
        self._enforce(o, checked, None)
        stamp = format_ts(now or self.clock())
        (new_id,) = self.store.next_numbers(o.name, 1)
        properties: dict[str, str | None] = {k: v for k, v in checked.items() if v is not None}
        created = "createdate" if "createdate" in self.properties(o.name) else "hs_createdate"
        properties[created] = stamp
        properties["hs_object_id"] = str(new_id)
        self._stamp(o, properties, stamp)
        row = ObjectRow(o.name, new_id, False, None, stamp, stamp, properties)
        self.store.insert_objects([row])
        return row

    def update(
        self, o: ObjectType, row: ObjectRow, values: Mapping[str, Any], now: datetime | None = None
    ) -> ObjectRow:
        checked = self._checked(o, values)
        merged = dict(row.properties)
        for name, value in checked.items():
            if value is None:
                merged.pop(name, None)
            else:
                merged[name] = value
        self._enforce(o, merged, row.id)
        stamp = format_ts(now or self.clock())
        if o.name == "deals" and "closedate" not in checked and _closes_anew(row.properties.get("dealstage"),
                                                                              merged.get("dealstage")):
            merged["closedate"] = stamp
        self._stamp(o, merged, stamp)
        row.properties, row.updated_at = merged, stamp
        self.store.save_object(row)
        return row

    def archive(self, row: ObjectRow, now: datetime | None = None) -> None:
        if row.archived:
            return
        self.store.archive_object(row, format_ts(now or self.clock()))

    def restore_by_hand(self, o: ObjectType, row: ObjectRow, now: datetime | None = None) -> None:
        """What an admin's "Restore" in HubSpot's recycle bin (its UI; no public API does it, api-notes 2.4)
        does: the record is live again under its own id, its properties and associations as they were. A
        contact whose email an active contact holds cannot come back (409, as the UI refuses it)."""
        if not row.archived:
            raise RecordFailure("VALIDATION_ERROR", f"{o.name} {row.id} is not in the recycle bin")
        email = row.properties.get("email")
        if o.name == "contacts" and email:
            self._enforce(o, {"email": email}, row.id)
        stamp = format_ts(now or self.clock())
        self.store.restore(table(o.name), ARCHIVED, {str(row.id): {"archived_at": None, "updated_at": stamp}})
        row.archived, row.archived_at, row.updated_at = False, None, stamp

    # --- associations ---------------------------------------------------------------------------

    def association_types(self, from_type: str, to_type: str) -> tuple[AssociationType, ...]:
        """HubSpot's own types from `from_type` to `to_type`, then the portal's custom labels (USER_DEFINED)."""
        return association_types(from_type, to_type) + tuple(
            _custom_type(d.data) for d in self.store.docs(LABEL_KIND)
            if (d.data.get("fromType"), d.data.get("toType")) == (from_type, to_type))

    def association_type(self, from_type: str, to_type: str, type_id: int,
                         category: str | None = None) -> AssociationType | None:
        """The type `type_id` between the two, of `category` where one is named (an id is one within its category)."""
        return next((a for a in self.association_types(from_type, to_type)
                     if a.type_id == type_id and category in (None, a.category)), None)

    def inverse(self, assoc: AssociationType) -> AssociationType | None:
        """The same link seen from the other end: HubSpot's pairs (279 <-> 280), or a custom label's pair."""
        if assoc.category != CUSTOM_CATEGORY:
            return inverse_association(assoc)
        doc = self.store.doc(LABEL_KIND, _label_key(assoc.from_type, assoc.to_type, assoc.type_id))
        back = doc.data.get("inverseTypeId") if doc is not None else None
        return self.association_type(assoc.to_type, assoc.from_type, back, CUSTOM_CATEGORY) if back else None

    def create_label(self, from_type: str, to_type: str, label: str,
                     inverse_label: str | None) -> list[AssociationType]:
        """A custom label between two object types: a type id each way ("Create association labels",
        Associations v4 guide); the other end's named `inverse_label` where given. Call inside a transaction."""
        taken = [int(d.data["typeId"]) for d in self.store.docs(LABEL_KIND)]
        # Apart from HubSpot's own ids, so that a link's types stay one row each in the store.
        forward = max([CUSTOM_FIRST_ID - 1, *taken]) + 1
        pair = ((from_type, to_type, forward, label, forward + 1),
                (to_type, from_type, forward + 1, inverse_label or label, forward))
        for a, b, type_id, text, back in pair:
            self.store.put_doc(LABEL_KIND, _label_key(a, b, type_id), {
                "fromType": a, "toType": b, "typeId": type_id, "label": text, "inverseTypeId": back})
        return [AssociationType(a, b, type_id, text, CUSTOM_CATEGORY) for a, b, type_id, text, _ in pair]

    def associate(self, assoc: AssociationType, from_id: int, to_id: int) -> None:
        """Both directions of one labelled link; call inside a transaction."""
        rows = [(assoc.from_type, from_id, assoc.to_type, to_id, assoc.type_id, assoc.category)]
        inverse = self.inverse(assoc)
        if inverse is not None:
            rows.append((inverse.from_type, to_id, inverse.to_type, from_id, inverse.type_id, inverse.category))
        self.store.add_associations(rows)

    def calculated(self, type_name: str, rows: Iterable[ObjectRow], wanted: Iterable[str]) -> None:
        """Fill the association counts the caller asked for (HubSpot computes these; so do we, on read)."""
        rows = list(rows)
        for name in wanted:
            counted = ASSOCIATION_COUNTS.get((type_name, name))
            if counted is None or not rows:
                continue
            links = self.store.associations(type_name, [r.id for r in rows], counted)
            for row in rows:
                row.properties[name] = str(len({to for to, _, _ in links.get(row.id, [])}))


def _closes_anew(was: str | None, now: str | None) -> bool:
    """Whether a move from stage `was` to `now` has HubSpot set the deal's close date: "automatically set or
    updated by HubSpot when ... a user moves a deal into a closed-won or a closed-lost deal stage", from an
    open one or from the other closed kind, not closed-won to closed-won, nor back to an open stage (HubSpot's
    default deal properties, knowledge base). A close date the same write gives stands."""
    return now in CLOSED_DEAL_STAGES and now != was

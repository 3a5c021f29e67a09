"""Data-quality rules over a snapshot: which apply to a provider, and which records break them.

A rule (`concepts.QualityRule`) says what every live record of one object must have: a value in at least
one of some fields ("email or phone"), or an active owner (an owner that is a user of the snapshot whose
active flag is true, or a queue where the provider has them; an empty owner, or one the snapshot's users
lack, is "missing"). A record breaking a rule is one violation of that rule's severity, weighing
`WEIGHTS[severity]`. A rule whose object or any of whose fields the snapshot lacks is not checked at all
(checking "email or phone" on the email alone would accuse owners of gaps they do not have): it is noted.

Pure, and column-wise: only the columns the rules name (plus id, owner and the deleted flag) are read, as
typed frames, so it works at a million rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from crmsweep.cleanup.passes._guards import filled
from crmsweep.cleanup.view import SnapshotView, live_frame
from crmsweep.concepts import DataQuality, QualityRule
from crmsweep.errors import BadInput
from crmsweep.model import Vocabulary
from crmsweep.suggest import did_you_mean

WEIGHTS: Mapping[str, int] = {"critical": 10, "major": 3, "minor": 1}

# Column names of the frames built here; a rule's column is its label behind a prefix no field has.
ID, OWNER, PENALTY = "id", "owner", "penalty"
_RULE = "rule:"


@dataclass(frozen=True)
class RuleCount:
    """One rule over the snapshot: how many records it checked and how many broke it; `skipped` says why
    it checked nothing (its object or a field it names is not in the snapshot)."""

    object: str
    label: str
    severity: str
    fields: tuple[str, ...]  # () for the active-owner rule
    checked: int
    violations: int
    skipped: str | None = None


# --- which rules apply ------------------------------------------------------------------------------------


def effective_rules(
    quality: DataQuality | None,
    provider: str,
    *,
    keep_defaults: bool,
    extra: Sequence[QualityRule],
    known_objects: Sequence[str],
) -> tuple[QualityRule, ...]:
    """The provider's default rules (unless `keep_defaults` is false) with `extra` added; an extra rule with
    a default's object and label replaces it. Rules of another provider are left out. An object neither in
    `known_objects` nor among the defaults' is BadInput (a typo), naming the closest known one."""
    defaults = quality.rules if quality is not None and keep_defaults else ()
    known = [*dict.fromkeys([*known_objects, *(quality.objects if quality else ())])]
    chosen: dict[tuple[str, str], QualityRule] = {(r.object, r.label): r for r in defaults}
    for rule in extra:
        if rule.provider is not None and rule.provider != provider:
            continue
        if rule.object not in known:
            hint = did_you_mean(rule.object, known)
            raise BadInput(f"[[quality.rules]] object '{rule.object}' is not an object of this {provider} "
                           f"connection{hint}; known objects: {', '.join(sorted(known))}")
        chosen[(rule.object, rule.label)] = rule
    if not chosen:
        raise BadInput(f"no data-quality rules for {provider}: add [[quality.rules]] to the config "
                       "(or leave [quality] defaults = true)")
    return tuple(chosen.values())


def check_rule_fields(rules: Sequence[QualityRule], fields_of: Mapping[str, Sequence[str]]) -> None:
    """BadInput for a configured rule naming a field its object does not have (a backup keeps every field
    the CRM describes, so one the snapshot lacks is a typo), naming the closest field."""
    for rule in rules:
        held = fields_of.get(rule.object)
        if held is None:
            continue  # an object the snapshot lacks is a note, said when the rules are measured
        for name in rule.any_of:
            if name not in held:
                hint = did_you_mean(name, held)
                raise BadInput(f"[[quality.rules]] '{rule.label}': {rule.object} has no field '{name}'{hint}")


# --- finding defects ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectDefects:
    """One object's live records: id, owner ("" for none), penalty, and a bool column per rule checked."""

    object: str
    frame: pd.DataFrame
    rules: tuple[QualityRule, ...]


@dataclass(frozen=True)
class Owners:
    """The snapshot's users as owners: name and active flag by id."""

    names: Mapping[str, str]
    active: Mapping[str, bool]


@dataclass(frozen=True)
class Measure:
    """Everything the report is made from, for one snapshot."""

    defects: tuple[ObjectDefects, ...]
    counts: tuple[RuleCount, ...]
    owners: Owners
    notes: tuple[str, ...] = field(default=())


def rule_column(rule: QualityRule) -> str:
    return _RULE + rule.label


def _blank(series: pd.Series) -> pd.Series:
    """True where a value is missing: null, NaN, or text that shows nothing (the passes' `filled`, so a
    contact no_contact_info finds unreachable is a violation here too)."""
    return ~filled(series)


def _owners(view: SnapshotView, vocabulary: Vocabulary, quality: DataQuality | None) -> Owners | None:
    users = vocabulary.user_object
    if not view.has(users):
        return None
    held = {s.name for s in view.fields(users)}
    name_fields = [f for f in (quality.owner_name_fields if quality else ()) if f in held]
    active_field = vocabulary.user_active_field
    # Deactivated users are kept: in a CRM that archives them, an archived owner is still who owns the record.
    columns = [vocabulary.id_field, *([active_field] if active_field in held else []), *name_fields]
    frame = view.frame(users, list(dict.fromkeys(columns)))
    ids = frame[vocabulary.id_field].astype(str).tolist()
    if active_field in held:
        flags = [bool(v) for v in frame[active_field].fillna(False).tolist()]
    else:
        flags = [False] * len(ids)
    names: dict[str, str] = {}
    for position, owner_id in enumerate(ids):
        parts = [str(frame[f].iat[position]).strip() for f in name_fields if not _is_missing(frame[f].iat[position])]
        names[owner_id] = " ".join(p for p in parts if p) or owner_id
    return Owners(names=names, active=dict(zip(ids, flags, strict=True)))


def _queued(owner: pd.Series, quality: DataQuality | None) -> pd.Series:
    """True where the owner is a queue rather than a user."""
    prefixes = quality.queue_id_prefixes if quality else ()
    if not prefixes:
        return pd.Series(False, index=owner.index)
    return owner.astype(str).str.startswith(prefixes)


def is_queue(owner_id: str, quality: DataQuality | None) -> bool:
    return bool(quality and owner_id.startswith(quality.queue_id_prefixes))


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value) or value is pd.NA


def measure(
    view: SnapshotView, vocabulary: Vocabulary, rules: Sequence[QualityRule], quality: DataQuality | None
) -> Measure:
    """Every rule checked over the snapshot's live records, object by object."""
    notes: list[str] = []
    snapshot_id = view.manifest.snapshot_id
    owners = _owners(view, vocabulary, quality)
    if owners is None:
        notes.append(f"the snapshot holds no {vocabulary.user_object}: owners are named by id, and the "
                     "active-owner rules were not checked")
    by_object: dict[str, list[QualityRule]] = {}
    for rule in rules:
        by_object.setdefault(rule.object, []).append(rule)
    defects: list[ObjectDefects] = []
    counts: list[RuleCount] = []
    for obj, obj_rules in by_object.items():
        if not view.has(obj):
            notes.append(f"{obj} is not in snapshot {snapshot_id}: its rules ("
                         + ", ".join(r.label for r in obj_rules) + ") were not checked")
            counts += [_count(r, 0, 0, f"{obj} is not in the snapshot") for r in obj_rules]
            continue
        held = {s.name for s in view.fields(obj)}
        owner_field = vocabulary.owner_field if vocabulary.owner_field in held else None
        checked: list[QualityRule] = []
        skipped: dict[QualityRule, str] = {}
        for rule in obj_rules:
            missing = [f for f in rule.any_of if f not in held]
            if missing:
                skipped[rule] = f"{obj} has no {', '.join(missing)} in the snapshot"
            elif rule.active_owner and owner_field is None:
                skipped[rule] = f"{obj} has no {vocabulary.owner_field} in the snapshot"
            elif rule.active_owner and owners is None:
                skipped[rule] = f"the snapshot holds no {vocabulary.user_object}"
            else:
                checked.append(rule)
        for rule, why in skipped.items():
            notes.append(f"rule '{rule.label}' of {obj} not checked: {why}")
        fields = [f for r in checked for f in r.any_of]
        columns = list(dict.fromkeys([vocabulary.id_field, *([owner_field] if owner_field else []), *fields]))
        frame = live_frame(view, obj, columns, vocabulary.deleted_field)
        owner = (frame[owner_field].astype("string").fillna("").str.strip().astype(object)
                 if owner_field else pd.Series([""] * len(frame), dtype=object))
        result = pd.DataFrame({ID: frame[vocabulary.id_field].astype(str).to_numpy(), OWNER: owner.to_numpy()})
        penalty = pd.Series(0, index=result.index, dtype="int64")
        for rule in checked:
            if rule.active_owner:
                assert owners is not None
                active_ids = [i for i, on in owners.active.items() if on]
                broken = ~(result[OWNER].isin(active_ids) | _queued(result[OWNER], quality))
            else:
                broken = pd.Series(True, index=result.index)
                for name in rule.any_of:
                    broken &= _blank(frame[name]).to_numpy()
            result[rule_column(rule)] = broken.to_numpy(dtype=bool)
            penalty += broken.astype("int64") * WEIGHTS[rule.severity]
        result[PENALTY] = penalty.to_numpy()
        defects.append(ObjectDefects(object=obj, frame=result, rules=tuple(checked)))
        for rule in obj_rules:
            if rule in skipped:
                counts.append(_count(rule, 0, 0, skipped[rule]))
            else:
                counts.append(_count(rule, len(result), int(result[rule_column(rule)].sum())))
    return Measure(defects=tuple(defects), counts=tuple(counts), owners=owners or Owners({}, {}),
                   notes=tuple(notes))


def _count(rule: QualityRule, checked: int, violations: int, skipped: str | None = None) -> RuleCount:
    return RuleCount(object=rule.object, label=rule.label, severity=rule.severity, fields=rule.any_of,
                     checked=checked, violations=violations, skipped=skipped)



def violations_frame(found: Measure) -> pd.DataFrame:
    """One row per violation: object, record id, owner ("" for none), rule label, severity, fields."""
    parts: list[pd.DataFrame] = []
    for item in found.defects:
        for rule in item.rules:
            hit = item.frame.loc[item.frame[rule_column(rule)], [ID, OWNER]]
            if hit.empty:
                continue
            parts.append(pd.DataFrame({
                "object": item.object, "record_id": hit[ID].to_numpy(), "owner": hit[OWNER].to_numpy(),
                "rule": rule.label, "severity": rule.severity, "fields": " | ".join(rule.any_of),
            }))
    columns = ["object", "record_id", "owner", "rule", "severity", "fields"]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    return pd.concat(parts, ignore_index=True)[columns]



def owner_name_of(owner_id: str, owners: Owners, quality: DataQuality | None) -> str:
    if not owner_id:
        return "(no owner)"
    if owner_id not in owners.names and is_queue(owner_id, quality):
        return f"queue {owner_id}"
    return owners.names.get(owner_id, owner_id)

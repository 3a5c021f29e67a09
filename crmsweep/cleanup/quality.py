"""The data-quality report: which records lack what their object requires, per owner, worst first.

Pure: a snapshot view, the provider's vocabulary, the rules and the clock in; a `QualityReport` value out.
It reads only the columns the rules name (plus id, owner and the deleted flag), as typed frames, so it
works at a million rows; nothing here writes anywhere.

A rule (`concepts.QualityRule`) says what every live record of one object must have: a value in at least
one of some fields ("email or phone"), or an active owner (an owner that is a user of the snapshot whose
active flag is true; an empty owner, or one the snapshot's users lack, is "missing"). A record breaking a
rule is one violation of that rule's severity.

**Score.** Each violation weighs `WEIGHTS[severity]` (critical 10, major 3, minor 1); an owner's score is
`100 - 10 × (weighted violations / records held)`, never below 0, rounded to one decimal. So 100 means
nothing is missing, one major gap on every record is 70, and one critical gap on every record (or worse)
is 0: the score reads as "how much of a critical defect per record", whatever the number of records.

**Ranking.** Owners worst first: lowest score, then most weighted violations, then most records, then
name and id, so equal inputs always give the same order. Records without an owner form one group of
their own (`owner_id` None). An owner's worst records are those with the most weighted violations, ties
by object and id.

**Trend.** The same measure over an earlier snapshot of the connection, with the same rules: per owner
the score then and its change, and the violations that are new (a record breaking a rule it did not break
then, new records included) or fixed (the reverse, removed records included). New violations count for
the record's owner now, fixed ones for its owner then.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd

from crmsweep.cleanup.labels import record_label
from crmsweep.cleanup.view import SnapshotView, live_frame
from crmsweep.concepts import SEVERITIES, DataQuality, QualityRule
from crmsweep.errors import BadInput
from crmsweep.model import Vocabulary, canonical_datetime

REPORT_FORMAT = "crmsweep.quality/1"
WEIGHTS: Mapping[str, int] = {"critical": 10, "major": 3, "minor": 1}
# Weighted violations per record that bring a score to 0: one critical defect on every record.
_ZERO_AT = WEIGHTS["critical"]

# Column names of the frames built here; a rule's column is its label behind a prefix no field has.
_ID, _OWNER, _PENALTY = "id", "owner", "penalty"
_RULE = "rule:"


# --- the report's values --------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class WorstRecord:
    object: str
    record_id: str
    label: str  # how the record is named ("Jane Doe <jane@x.org>"), "" if its label fields are empty
    penalty: int
    lacks: tuple[str, ...]  # the labels of the rules it breaks, most severe first


@dataclass(frozen=True)
class OwnerTrend:
    score_before: float | None  # None: the owner held no records then
    score_delta: float | None
    records_before: int
    new_violations: int
    fixed_violations: int


@dataclass(frozen=True)
class OwnerQuality:
    owner_id: str | None  # None: the records that have no owner
    name: str
    active: bool | None  # None: no owner, or an owner the snapshot's users lack
    records: int
    violations: Mapping[str, int]  # by severity, every severity present
    penalty: int
    score: float
    records_with_defects: int
    worst: tuple[WorstRecord, ...]
    trend: OwnerTrend | None = None


@dataclass(frozen=True)
class Comparison:
    """The earlier snapshot a report is compared with, and the totals' change since."""

    snapshot_id: str
    finished: str
    records_before: int
    violations_before: Mapping[str, int]
    score_before: float
    score_delta: float
    new_violations: int
    fixed_violations: int


@dataclass(frozen=True)
class QualityReport:
    snapshot_id: str
    connection: str
    provider: str
    org_id: str
    snapshot_finished: str
    generated: str
    records: int
    violations: Mapping[str, int]
    penalty: int
    score: float
    rules: tuple[RuleCount, ...]
    owners: tuple[OwnerQuality, ...]  # worst first
    notes: tuple[str, ...] = ()
    compared: Comparison | None = None
    worst_per_owner: int = 5


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
            close = difflib.get_close_matches(rule.object, known, n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise BadInput(f"[[quality.rules]] object '{rule.object}' is not an object of this {provider} "
                           f"connection{hint}; known objects: {', '.join(sorted(known))}")
        chosen[(rule.object, rule.label)] = rule
    if not chosen:
        raise BadInput(f"no data-quality rules for {provider}: add [[quality.rules]] to the config "
                       "(or leave [quality] defaults = true)")
    return tuple(chosen.values())


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
    """True where a value is missing: null, NaN, or text that is empty or only spaces."""
    if series.dtype == object:
        text = series.astype("string")
        return (text.isna() | text.str.strip().eq("")).fillna(True).astype(bool)
    return series.isna().astype(bool)


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
        result = pd.DataFrame({_ID: frame[vocabulary.id_field].astype(str).to_numpy(), _OWNER: owner.to_numpy()})
        penalty = pd.Series(0, index=result.index, dtype="int64")
        for rule in checked:
            if rule.active_owner:
                assert owners is not None
                active_ids = [i for i, on in owners.active.items() if on]
                broken = ~(result[_OWNER].isin(active_ids) | _queued(result[_OWNER], quality))
            else:
                broken = pd.Series(True, index=result.index)
                for name in rule.any_of:
                    broken &= _blank(frame[name]).to_numpy()
            result[rule_column(rule)] = broken.to_numpy(dtype=bool)
            penalty += broken.astype("int64") * WEIGHTS[rule.severity]
        result[_PENALTY] = penalty.to_numpy()
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


# --- per owner ----------------------------------------------------------------------------------------------


def violations_frame(found: Measure) -> pd.DataFrame:
    """One row per violation: object, record id, owner ("" for none), rule label, severity, fields."""
    parts: list[pd.DataFrame] = []
    for item in found.defects:
        for rule in item.rules:
            hit = item.frame.loc[item.frame[rule_column(rule)], [_ID, _OWNER]]
            if hit.empty:
                continue
            parts.append(pd.DataFrame({
                "object": item.object, "record_id": hit[_ID].to_numpy(), "owner": hit[_OWNER].to_numpy(),
                "rule": rule.label, "severity": rule.severity, "fields": " | ".join(rule.any_of),
            }))
    columns = ["object", "record_id", "owner", "rule", "severity", "fields"]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    return pd.concat(parts, ignore_index=True)[columns]


def _per_record(found: Measure) -> pd.DataFrame:
    """Every live record once: object, id, owner, penalty and its violation count per severity."""
    parts: list[pd.DataFrame] = []
    for item in found.defects:
        frame = pd.DataFrame({"object": item.object, _ID: item.frame[_ID], _OWNER: item.frame[_OWNER],
                              _PENALTY: item.frame[_PENALTY]})
        for severity in SEVERITIES:
            cols = [rule_column(r) for r in item.rules if r.severity == severity]
            frame[severity] = item.frame[cols].sum(axis=1).astype("int64") if cols else 0
        parts.append(frame)
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in ("object", _ID, _OWNER, _PENALTY, *SEVERITIES)})
    return pd.concat(parts, ignore_index=True)


def score_of(penalty: int, records: int) -> float:
    """100 - 10 × weighted violations per record, at least 0 (see the module docstring)."""
    if records == 0:
        return 100.0
    return max(0.0, round(100.0 - 100.0 * penalty / (records * _ZERO_AT), 1))


def _owner_totals(records: pd.DataFrame) -> pd.DataFrame:
    grouped = records.groupby(_OWNER, sort=True)
    totals = grouped.agg(records=(_ID, "size"), penalty=(_PENALTY, "sum"),
                         **{s: (s, "sum") for s in SEVERITIES})
    totals["defective"] = records[records[_PENALTY] > 0].groupby(_OWNER).size().reindex(totals.index, fill_value=0)
    return totals


def _worst(found: Measure, records: pd.DataFrame, view: SnapshotView, vocabulary: Vocabulary,
           per_owner: int) -> dict[str, tuple[WorstRecord, ...]]:
    bad = records[records[_PENALTY] > 0].sort_values(
        [_OWNER, _PENALTY, "object", _ID], ascending=[True, False, True, True], kind="mergesort"
    )
    top = bad.groupby(_OWNER, sort=False).head(per_owner)
    frames = {item.object: item for item in found.defects}
    labels: dict[tuple[str, str], str] = {}
    for obj, ids in top.groupby("object")[_ID]:
        rows = view.record_map(str(obj), ids.tolist())
        labels |= {(str(obj), rid): record_label(vocabulary, str(obj), row) for rid, row in rows.items()}
    lacks: dict[tuple[str, str], tuple[str, ...]] = {}
    for obj, ids in top.groupby("object")[_ID]:
        item = frames[str(obj)]
        subset = item.frame[item.frame[_ID].isin(ids.tolist())].set_index(_ID)
        ordered = sorted(item.rules, key=lambda r: SEVERITIES.index(r.severity))
        for rid, flags in subset.iterrows():
            lacks[(str(obj), str(rid))] = tuple(r.label for r in ordered if bool(flags[rule_column(r)]))
    out: dict[str, list[WorstRecord]] = {}
    for obj, rid, owner, penalty in zip(top["object"], top[_ID], top[_OWNER], top[_PENALTY], strict=True):
        key = (str(obj), str(rid))
        out.setdefault(str(owner), []).append(WorstRecord(
            object=key[0], record_id=key[1], label=labels.get(key, ""), penalty=int(penalty),
            lacks=lacks.get(key, ()),
        ))
    return {owner: tuple(items) for owner, items in out.items()}


def _new_and_fixed(now: Measure, then: Measure) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The violations only `now` has, and those only `then` had (each with the owner of its snapshot)."""
    key = ["object", "record_id", "rule"]
    current, earlier = violations_frame(now), violations_frame(then)
    merged = current[[*key, "owner"]].merge(earlier[key], on=key, how="outer", indicator=True)
    new = merged[merged["_merge"] == "left_only"]
    gone = earlier[[*key, "owner"]].merge(current[key], on=key, how="left", indicator=True)
    return new, gone[gone["_merge"] == "left_only"]


def _owner_name(owner_id: str, owners: Owners, quality: DataQuality | None) -> str:
    if not owner_id:
        return "(no owner)"
    if owner_id not in owners.names and is_queue(owner_id, quality):
        return f"queue {owner_id}"
    return owners.names.get(owner_id, owner_id)


def build_report(
    view: SnapshotView,
    vocabulary: Vocabulary,
    rules: Sequence[QualityRule],
    *,
    now: datetime,
    worst: int = 5,
    earlier: SnapshotView | None = None,
    measured: Measure | None = None,
) -> QualityReport:
    """The report of `view` under `rules`, compared with `earlier` when given; `measured` is `measure` of
    `view` when the caller has it already (for the detail rows too)."""
    quality = vocabulary.concept(DataQuality)
    found = measured or measure(view, vocabulary, rules, quality)
    records = _per_record(found)
    totals = _owner_totals(records)
    worst_records = _worst(found, records, view, vocabulary, worst)
    notes = list(found.notes)

    before: dict[str, dict[str, int]] | None = None
    compared: Comparison | None = None
    new_by_owner: Mapping[str, int] = {}
    fixed_by_owner: Mapping[str, int] = {}
    if earlier is not None:
        then = measure(earlier, vocabulary, rules, quality)
        then_records = _per_record(then)
        before = {str(k): {str(c): int(v) for c, v in row.items()}
                  for k, row in _owner_totals(then_records).to_dict("index").items()}
        new, fixed = _new_and_fixed(found, then)
        new_by_owner = {str(k): int(v) for k, v in new.groupby("owner").size().items()}
        fixed_by_owner = {str(k): int(v) for k, v in fixed.groupby("owner").size().items()}
        notes += [f"in {earlier.manifest.snapshot_id}: {n}" for n in then.notes if n not in found.notes]
        score_then = score_of(int(then_records[_PENALTY].sum()), len(then_records))
        score_now = score_of(int(records[_PENALTY].sum()), len(records))
        compared = Comparison(
            snapshot_id=earlier.manifest.snapshot_id, finished=earlier.manifest.finished,
            records_before=len(then_records),
            violations_before={s: int(then_records[s].sum()) for s in SEVERITIES},
            score_before=score_then, score_delta=round(score_now - score_then, 1),
            new_violations=len(new), fixed_violations=len(fixed),
        )

    owners: list[OwnerQuality] = []
    for owner, row in totals.iterrows():
        owner_key = str(owner)
        score = score_of(int(row["penalty"]), int(row["records"]))
        trend: OwnerTrend | None = None
        if before is not None:
            was = before.get(owner_key)
            score_before = score_of(int(was["penalty"]), int(was["records"])) if was is not None else None
            trend = OwnerTrend(
                score_before=score_before,
                score_delta=round(score - score_before, 1) if score_before is not None else None,
                records_before=int(was["records"]) if was is not None else 0,
                new_violations=int(new_by_owner.get(owner_key, 0)),
                fixed_violations=int(fixed_by_owner.get(owner_key, 0)),
            )
        owners.append(OwnerQuality(
            owner_id=owner_key or None,
            name=_owner_name(owner_key, found.owners, quality),
            active=found.owners.active.get(owner_key) if owner_key else None,
            records=int(row["records"]),
            violations={s: int(row[s]) for s in SEVERITIES},
            penalty=int(row["penalty"]),
            score=score,
            records_with_defects=int(row["defective"]),
            worst=worst_records.get(owner_key, ()),
            trend=trend,
        ))
    owners.sort(key=lambda o: (o.score, -o.penalty, -o.records, o.name, o.owner_id or ""))
    manifest = view.manifest
    return QualityReport(
        snapshot_id=manifest.snapshot_id,
        connection=manifest.connection,
        provider=manifest.provider,
        org_id=manifest.org_id,
        snapshot_finished=manifest.finished,
        generated=canonical_datetime(now) or "",
        records=len(records),
        violations={s: int(records[s].sum()) if len(records) else 0 for s in SEVERITIES},
        penalty=int(records[_PENALTY].sum()) if len(records) else 0,
        score=score_of(int(records[_PENALTY].sum()) if len(records) else 0, len(records)),
        rules=found.counts,
        owners=tuple(owners),
        notes=tuple(notes),
        compared=compared,
        worst_per_owner=worst,
    )


def detail_rows(found: Measure, quality: DataQuality | None) -> pd.DataFrame:
    """Every violation of a measured snapshot, one row each, with the owner's name: what `--detail` writes."""
    rows = violations_frame(found)
    rows.insert(3, "owner_name", [_owner_name(str(o), found.owners, quality) for o in rows["owner"]])
    rows = rows.rename(columns={"owner": "owner_id"})
    return rows.sort_values(["owner_id", "object", "record_id", "rule"], kind="mergesort").reset_index(drop=True)

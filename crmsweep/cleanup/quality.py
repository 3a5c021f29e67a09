"""The data-quality report: which records lack what their object requires, per owner, worst first.

Pure: a snapshot view, the provider's vocabulary, the rules and the clock in; a `QualityReport` value out.
It reads only the columns the rules name (plus id, owner and the deleted flag), as typed frames, so it
works at a million rows; nothing here writes anywhere. The rules and what breaks them are
`quality_rules`; this module makes them a report per owner.

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
then, new records included), fixed (a record still held that no longer breaks it) or removed (they went
with a record that is no longer there: deleting a bad record is not fixing it, and a cleanup that
deletes must not read as data quality won). New violations count for the record's owner now, fixed and
removed ones for its owner then.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from crmsweep.cleanup.labels import record_label
from crmsweep.cleanup.quality_rules import (
    ID,
    OWNER,
    PENALTY,
    WEIGHTS,
    Measure,
    ObjectDefects,
    RuleCount,
    measure,
    owner_name_of,
    rule_column,
    violations_frame,
)
from crmsweep.cleanup.view import SnapshotView
from crmsweep.concepts import SEVERITIES, DataQuality, QualityRule
from crmsweep.model import Vocabulary, canonical_datetime

REPORT_FORMAT = "crmsweep.quality/1"
# Weighted violations per record that bring a score to 0: one critical defect on every record.
_ZERO_AT = WEIGHTS["critical"]


# --- the report's values --------------------------------------------------------------------------------


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
    removed_violations: int  # went with records no longer held (deleted, archived), not fixed


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
    removed_violations: int


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


# --- per owner ----------------------------------------------------------------------------------------------


def _per_record(found: Measure) -> pd.DataFrame:
    """Every live record once: object, id, owner, penalty and its violation count per severity."""
    parts: list[pd.DataFrame] = []
    for item in found.defects:
        frame = pd.DataFrame({"object": item.object, ID: item.frame[ID], OWNER: item.frame[OWNER],
                              PENALTY: item.frame[PENALTY]})
        for severity in SEVERITIES:
            cols = [rule_column(r) for r in item.rules if r.severity == severity]
            frame[severity] = item.frame[cols].sum(axis=1).astype("int64") if cols else 0
        parts.append(frame)
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in ("object", ID, OWNER, PENALTY, *SEVERITIES)})
    return pd.concat(parts, ignore_index=True)


def score_of(penalty: int, records: int) -> float:
    """100 - 10 × weighted violations per record, at least 0 (see the module docstring)."""
    if records == 0:
        return 100.0
    return max(0.0, round(100.0 - 100.0 * penalty / (records * _ZERO_AT), 1))


def _owner_totals(records: pd.DataFrame) -> pd.DataFrame:
    grouped = records.groupby(OWNER, sort=True)
    totals = grouped.agg(records=(ID, "size"), penalty=(PENALTY, "sum"),
                         **{s: (s, "sum") for s in SEVERITIES})
    totals["defective"] = records[records[PENALTY] > 0].groupby(OWNER).size().reindex(totals.index, fill_value=0)
    return totals


def _worst(found: Measure, records: pd.DataFrame, view: SnapshotView, vocabulary: Vocabulary,
           per_owner: int) -> dict[str, tuple[WorstRecord, ...]]:
    bad = records[records[PENALTY] > 0].sort_values(
        [OWNER, PENALTY, "object", ID], ascending=[True, False, True, True], kind="mergesort"
    )
    top = bad.groupby(OWNER, sort=False).head(per_owner)
    frames = {item.object: item for item in found.defects}
    labels: dict[tuple[str, str], str] = {}
    for obj, ids in top.groupby("object")[ID]:
        rows = view.record_map(str(obj), ids.tolist())
        labels |= {(str(obj), rid): record_label(vocabulary, str(obj), row) for rid, row in rows.items()}
    lacks: dict[tuple[str, str], tuple[str, ...]] = {}
    for obj, ids in top.groupby("object")[ID]:
        item = frames[str(obj)]
        subset = item.frame[item.frame[ID].isin(ids.tolist())].set_index(ID)
        ordered = sorted(item.rules, key=lambda r: SEVERITIES.index(r.severity))
        for rid, flags in subset.iterrows():
            lacks[(str(obj), str(rid))] = tuple(r.label for r in ordered if bool(flags[rule_column(r)]))
    out: dict[str, list[WorstRecord]] = {}
    for obj, rid, owner, penalty in zip(top["object"], top[ID], top[OWNER], top[PENALTY], strict=True):
        key = (str(obj), str(rid))
        out.setdefault(str(owner), []).append(WorstRecord(
            object=key[0], record_id=key[1], label=labels.get(key, ""), penalty=int(penalty),
            lacks=lacks.get(key, ()),
        ))
    return {owner: tuple(items) for owner, items in out.items()}


def _checked(found: Measure) -> set[tuple[str, str]]:
    return {(item.object, rule.label) for item in found.defects for rule in item.rules}


def _only(found: Measure, pairs: set[tuple[str, str]]) -> Measure:
    """`found` cut to the (object, rule) `pairs`: its records of other objects dropped, its penalties those of
    the rules kept. What one snapshot checked and the other did not (an object a `backup --object` left
    out, an active-owner rule without the owners) is no trend: neither fixed, nor removed, nor new."""
    kept: list[ObjectDefects] = []
    for item in found.defects:
        rules = tuple(r for r in item.rules if (item.object, r.label) in pairs)
        if not rules:
            continue
        frame = item.frame[[ID, OWNER, *(rule_column(r) for r in rules)]].copy()
        frame[PENALTY] = sum((frame[rule_column(r)].astype("int64") * WEIGHTS[r.severity] for r in rules),
                             start=pd.Series(0, index=frame.index, dtype="int64"))
        kept.append(ObjectDefects(object=item.object, frame=frame, rules=rules))
    return Measure(defects=tuple(kept), counts=found.counts, owners=found.owners, notes=found.notes)


def _new_fixed_removed(
    now: Measure, then: Measure, held: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The violations only `now` has; those only `then` had on records `held` now (fixed); and those
    only `then` had on records no longer held (removed). Each with the owner of its snapshot."""
    key = ["object", "record_id", "rule"]
    current, earlier = violations_frame(now), violations_frame(then)
    merged = current[[*key, "owner"]].merge(earlier[key], on=key, how="outer", indicator=True)
    new = merged[merged["_merge"] == "left_only"]
    gone = earlier[[*key, "owner"]].merge(current[key], on=key, how="left", indicator=True)
    gone = gone[gone["_merge"] == "left_only"].drop(columns="_merge")
    records = held[["object", ID]].rename(columns={ID: "record_id"}).drop_duplicates()
    located = gone.merge(records, on=["object", "record_id"], how="left", indicator=True)
    return new, located[located["_merge"] == "both"], located[located["_merge"] == "left_only"]


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
    removed_by_owner: Mapping[str, int] = {}
    now_totals: dict[str, tuple[int, int]] = {}  # owner -> (penalty, records) over what both checked
    if earlier is not None:
        measured_then = measure(earlier, vocabulary, rules, quality)
        both = _checked(found) & _checked(measured_then)
        then = _only(measured_then, both)
        then_records = _per_record(then)
        before = {str(k): {str(c): int(v) for c, v in row.items()}
                  for k, row in _owner_totals(then_records).to_dict("index").items()}
        new, fixed, removed = _new_fixed_removed(_only(found, both), then, records)
        if both != _checked(found) | _checked(measured_then):
            notes.append(f"compared with {earlier.manifest.snapshot_id} only on the rules both snapshots "
                         "checked: what one of them lacks is neither fixed, removed nor new")
        new_by_owner = {str(k): int(v) for k, v in new.groupby("owner").size().items()}
        fixed_by_owner = {str(k): int(v) for k, v in fixed.groupby("owner").size().items()}
        removed_by_owner = {str(k): int(v) for k, v in removed.groupby("owner").size().items()}
        notes += [f"in {earlier.manifest.snapshot_id}: {n}" for n in measured_then.notes if n not in found.notes]
        score_then = score_of(int(then_records[PENALTY].sum()), len(then_records))
        # The change of score over what both checked, as the counts are: not a rule one of them could not check.
        comparable = _per_record(_only(found, both))
        score_now = score_of(int(comparable[PENALTY].sum()), len(comparable))
        now_totals = {str(k): (int(row["penalty"]), int(row["records"]))
                      for k, row in _owner_totals(comparable).iterrows()}
        compared = Comparison(
            snapshot_id=earlier.manifest.snapshot_id, finished=earlier.manifest.finished,
            records_before=len(then_records),
            violations_before={s: int(then_records[s].sum()) for s in SEVERITIES},
            score_before=score_then, score_delta=round(score_now - score_then, 1),
            new_violations=len(new), fixed_violations=len(fixed), removed_violations=len(removed),
        )

    owners: list[OwnerQuality] = []
    for owner, row in totals.iterrows():
        owner_key = str(owner)
        score = score_of(int(row["penalty"]), int(row["records"]))
        trend: OwnerTrend | None = None
        if before is not None:
            was = before.get(owner_key)
            score_before = score_of(int(was["penalty"]), int(was["records"])) if was is not None else None
            mine = now_totals.get(owner_key)
            compared_score = score_of(*mine) if mine is not None else score
            trend = OwnerTrend(
                score_before=score_before,
                score_delta=round(compared_score - score_before, 1) if score_before is not None else None,
                records_before=int(was["records"]) if was is not None else 0,
                new_violations=int(new_by_owner.get(owner_key, 0)),
                fixed_violations=int(fixed_by_owner.get(owner_key, 0)),
                removed_violations=int(removed_by_owner.get(owner_key, 0)),
            )
        owners.append(OwnerQuality(
            owner_id=owner_key or None,
            name=owner_name_of(owner_key, found.owners, quality),
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
        penalty=int(records[PENALTY].sum()) if len(records) else 0,
        score=score_of(int(records[PENALTY].sum()) if len(records) else 0, len(records)),
        rules=found.counts,
        owners=tuple(owners),
        notes=tuple(notes),
        compared=compared,
        worst_per_owner=worst,
    )


def detail_rows(found: Measure, quality: DataQuality | None) -> pd.DataFrame:
    """Every violation of a measured snapshot, one row each, with the owner's name: what `--detail` writes."""
    rows = violations_frame(found)
    rows.insert(3, "owner_name", [owner_name_of(str(o), found.owners, quality) for o in rows["owner"]])
    rows = rows.rename(columns={"owner": "owner_id"})
    return rows.sort_values(["owner_id", "object", "record_id", "rule"], kind="mergesort").reset_index(drop=True)

"""What the scan decides for a pass's changes at once answers exactly as the per-change code it stands in for:
protections (`Protections.apply` against `hold_reason`), the claim of records (`scan._claim` against one
change at a time), labels of a block against `record_label`, `Change.many` against `Change(...)` and
`validate_all` against `validate` (issue 7: the same changes, held-back counts and notes, byte for byte)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmsweep.backup.row_block import RowBlock
from crmsweep.cleanup import scan
from crmsweep.cleanup.labels import labels_of, record_label
from crmsweep.cleanup.passes import PassContext, propose, propose_all
from crmsweep.cleanup.protect import Protections
from crmsweep.model import (
    LINK_KEYS,
    Change,
    FieldKind,
    NotReversible,
    Op,
    PlanFormatError,
    Severity,
    canonical_datetime,
    validate_all,
)
from crmsweep.providers.salesforce import SALESFORCE_VOCABULARY as VOCAB

NOW = datetime(2026, 3, 15, 12, 0, 0, 250_000, tzinfo=UTC)
SINCE = NOW - timedelta(days=30)


def _text(moment: datetime) -> str:
    return canonical_datetime(moment) or ""



RUNNING = "005000000000001"  # 15 characters: its 18-character spelling is the same user
# Created values as a before-image may hold them: canonical (on, and a millisecond either side of, the
# threshold), date-only, naive, offset, empty, blank, not a date, canonical but for one character.
CREATED: list[str | None] = [
    _text(SINCE), _text(SINCE + timedelta(milliseconds=1)), _text(SINCE - timedelta(milliseconds=1)), _text(NOW),
    "1970-01-01T00:00:00.000Z",
    "2026-03-01", "2026-02-13", "2026-02-14T12:00:00", "2026-02-13T12:00:00.250+0000", "2026-03-01T00:00:00+05:00",
    None, "", _text(NOW) + "\n", _text(SINCE) + "\n", _text(SINCE + timedelta(milliseconds=1)) + " ",
    "٢٠٢٦-03-01T00:00:00.000Z", "2026-03-01t00:00:00.000z", "9999-12-31T23:59:59.999Z",
    "2026-13-01T00:00:00.000Z",  # canonical in shape: compared as text, never parsed (so never refused)
]
GARBAGE = ["soon", "2026-02-30", "\x00", "é"]  # not dates: both ways refuse them, if asked
IDS = ["003000000000001", "003000000000001AAA", RUNNING, f"{RUNNING}AAA", f"{RUNNING}AA", "005000000000002",
       "003A", "003é", "003000000000001AA\n"]
OBJECTS = ["Contact", "contact", "Lead", "CONTRACT", "Order", "Account"]


def _block(rows: list[dict[str, Any]], created_kind: FieldKind) -> RowBlock:
    table = pa.table({"Id": pa.array([r["Id"] for r in rows], pa.string()),
                      "CreatedDate": pa.array([r["CreatedDate"] for r in rows], pa.string())})
    return RowBlock(table, {"Id": FieldKind.STRING, "CreatedDate": created_kind})


def _changes(picks: list[tuple[str, str, Any]], cuts: list[int], dicts: list[bool]) -> list[Change]:
    """Changes of these (object, id, created), their before-images in blocks of consecutive picks (a new
    block at each cut) or, where `dicts` says, plain dicts."""
    befores: list[Any] = []
    start = 0
    for stop in sorted({*(c for c in cuts if 0 < c < len(picks)), len(picks)}):
        rows = [{"Id": rid, "CreatedDate": created} for _, rid, created in picks[start:stop]]
        block = _block(rows, FieldKind.STRING)
        befores += [dict(rows[at]) if dicts[(start + at) % len(dicts)] else block.record(at) for at in range(len(rows))]
        start = stop
    return [Change(Op.DELETE, obj, rid, before, {}, reason="r", pass_name="p")
            for (obj, rid, _), before in zip(picks, befores, strict=True)]


def _one_at_a_time(protections: Protections, changes: list[Change]) -> tuple[list[Change], dict[str, int]]:
    kept: list[Change] = []
    held: dict[str, int] = {}
    for change in changes:
        reason = protections.hold_reason(change)
        if reason is None:
            kept.append(change)
        else:
            held[reason] = held.get(reason, 0) + 1
    return kept, held


PICK = st.tuples(st.sampled_from(OBJECTS), st.sampled_from(IDS), st.sampled_from(CREATED + GARBAGE))


@settings(max_examples=500, deadline=None)
@given(picks=st.lists(PICK, max_size=14), cuts=st.lists(st.integers(0, 14), max_size=3),
       dicts=st.lists(st.booleans(), min_size=1, max_size=4), days=st.sampled_from([0, 1, 30, 20000]),
       ids=st.lists(st.sampled_from(IDS), max_size=2), objects=st.lists(st.sampled_from(OBJECTS), max_size=2),
       running=st.sampled_from([None, RUNNING, f"{RUNNING}AAA"]), naive=st.booleans())
def test_protections_of_a_batch_are_each_changes_hold_reason(
    picks: list[tuple[str, str, Any]], cuts: list[int], dicts: list[bool], days: int, ids: list[str],
    objects: list[str], running: str | None, naive: bool,
) -> None:
    now = NOW.replace(tzinfo=None) if naive else NOW
    protections = Protections(VOCAB, now, recent_days=days, objects=tuple(objects), ids=tuple(ids),
                              running_user_id=running)
    changes = _changes(picks, cuts, dicts)
    try:
        expected_kept, expected_held = _one_at_a_time(protections, changes)
    except (ValueError, TypeError) as exc:  # not a date, or a naive clock against an aware date: both refuse
        with pytest.raises(type(exc)) as caught:
            protections.apply(changes)
        assert str(caught.value) == str(exc)
        return
    kept, held = protections.apply(changes)
    assert [id(c) for c in kept] == [id(c) for c in expected_kept]
    assert list(held.items()) == list(expected_held.items())  # in the same order: the plan header keeps it


@pytest.mark.parametrize("garbage", GARBAGE)
def test_a_created_value_that_is_no_date_is_refused_only_where_the_rule_asks(garbage: str) -> None:
    protections = Protections(VOCAB, NOW, recent_days=30, ids=("003000000000001",))
    picks = [("Contact", "003000000000002", CREATED[0]), ("Contract", "800000000000001", garbage),
             ("Contact", "003000000000001AAA", garbage)]
    held_first = _changes(picks, [], [False])
    assert protections.apply(held_first) == _one_at_a_time(protections, held_first)
    asked = _changes([*picks, ("Contact", "003000000000003", garbage)], [], [False])
    with pytest.raises(ValueError) as one:
        _one_at_a_time(protections, asked)
    with pytest.raises(ValueError) as batch:
        protections.apply(asked)
    assert str(batch.value) == str(one.value)


def test_a_created_column_stored_as_datetimes_is_held_as_its_text_says() -> None:
    protections = Protections(VOCAB, NOW, recent_days=30)
    moments = [SINCE - timedelta(milliseconds=1), SINCE, SINCE + timedelta(milliseconds=1), None]
    table = pa.table({"Id": [f"00300000000000{at}" for at in range(len(moments))],
                      "CreatedDate": pa.array(moments, pa.timestamp("ms", tz="UTC"))})
    block = RowBlock(table, {"Id": FieldKind.STRING, "CreatedDate": FieldKind.DATETIME})
    changes = [Change(Op.DELETE, "Contact", str(r.get("Id")), r, {}, reason="r", pass_name="p")
               for r in block.records()]
    kept, held = protections.apply(changes)
    assert [c.record_id for c in kept] == ["003000000000000", "003000000000001", "003000000000003"]
    assert held == {"created in the last 30 days": 1}
    assert (kept, held) == _one_at_a_time(protections, changes)


def _claimed_one_at_a_time(claimed: dict[tuple[str, str], str], name: str,
                           kept: list[Change]) -> tuple[list[Change], dict[str, int]]:
    taken_by: dict[str, int] = {}
    new: list[Change] = []
    for change in kept:
        key = (change.object, change.record_id)
        if key in claimed:
            taken_by[claimed[key]] = taken_by.get(claimed[key], 0) + 1
            continue
        claimed[key] = name
        new.append(change)
    return new, taken_by


@settings(max_examples=300, deadline=None)
@given(passes=st.lists(st.lists(st.tuples(st.sampled_from(["Contact", "Lead", "contact"]),
                                          st.sampled_from(["003A", "003B", "003C", "003a", ""])), max_size=6),
                       max_size=5))
def test_the_records_a_pass_claims_are_the_ones_a_change_at_a_time_claims(
    passes: list[list[tuple[str, str]]],
) -> None:
    claimed: dict[str, list[tuple[str, set[str]]]] = {}
    plain: dict[tuple[str, str], str] = {}
    for at, picks in enumerate(passes):
        kept = [Change(Op.DELETE, obj, rid, {"Id": rid}, {}, reason="r", pass_name=f"p{at}") for obj, rid in picks]
        new, taken_by = scan._claim(claimed, f"p{at}", kept)
        expected_new, expected_taken = _claimed_one_at_a_time(plain, f"p{at}", kept)
        assert [id(c) for c in new] == [id(c) for c in expected_new]
        assert list(taken_by.items()) == list(expected_taken.items())


LABEL_TEXTS = ["Jane Doe", "", " ", "\t\n", None, "Zoë Ångström", "李小龙", "😀 emoji", "line\nbreak", "tab\there",
               "esc\x1b[2J", "bidi\u202eevil", "zero\u200bwidth", "x" * 5000, '"quoted" \\back', " padded "]


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.tuples(st.sampled_from(LABEL_TEXTS), st.sampled_from(LABEL_TEXTS)), max_size=8),
       picks=st.lists(st.integers(0, 7), max_size=8), drop=st.sampled_from([None, "Name", "Email"]))
def test_labels_of_a_block_are_each_records_label(rows: list[tuple[str | None, str | None]], picks: list[int],
                                                  drop: str | None) -> None:
    columns = {"Id": [f"003{at}" for at in range(len(rows))], "Name": [r[0] for r in rows],
               "Email": [r[1] for r in rows]}
    table = pa.table({name: pa.array(values, pa.string()) for name, values in columns.items() if name != drop})
    block = RowBlock(table, dict.fromkeys(table.column_names, FieldKind.STRING))
    records = [block.record(at) for at in picks if at < len(rows)]
    expected = [record_label(VOCAB, "Contact", dict(r.record())) for r in records]
    assert labels_of(VOCAB, "Contact", records) == expected
    assert [record_label(VOCAB, "Contact", r) for r in records] == expected


def _fields(at: int) -> dict[str, Any]:
    return {"op": Op.ARCHIVE, "object": "Contact", "record_id": f"003{at}", "before": {"Id": f"003{at}"},
            "after": {}, "reason": f"why {at}", "pass_name": "p", "severity": Severity.MINOR,
            "fingerprint": None if at % 2 else f"fp{at}", "label": f"label {at}"}


def test_changes_made_together_are_the_changes_made_one_by_one() -> None:
    count = 5
    each = ("record_id", "before", "after", "reason", "fingerprint", "label")
    made = Change.many(count, same={k: v for k, v in _fields(0).items() if k not in each},
                       each={k: [_fields(at)[k] for at in range(count)] for k in each})
    assert made == [Change(**_fields(at)) for at in range(count)]
    assert len({id(c.after) for c in made}) == count  # one `after` each: writing one changes no other
    with pytest.raises(TypeError):  # a field left out, or set twice, or one `after` shared by all
        Change.many(count, same={"op": Op.ARCHIVE}, each={"record_id": ["003"] * count})
    with pytest.raises(TypeError):
        Change.many(count, same={k: v for k, v in _fields(0).items() if k != "record_id"},
                    each={"record_id": ["003"] * count, "label": [""] * count})
    with pytest.raises(ValueError):
        Change.many(count, same={k: v for k, v in _fields(0).items() if k not in each},
                    each={k: [_fields(at)[k] for at in range(count - 1)] for k in each})


BAD = [Change(Op.DELETE, "Contact", "003E", {}, {}, reason="r", pass_name="p"),
       Change(Op.UPDATE, "Contact", "003U", {"Id": "003U"}, {}, reason="r", pass_name="p"),
       Change(Op.UPDATE, "Contact", "003M", {"Id": "003M"}, {"Email": "x"}, reason="r", pass_name="p"),
       Change(Op.ASSOCIATE, "link", "", {}, {"from_object": "Contact"}, reason="r", pass_name="p"),
       Change(Op.ARCHIVE, "Contact", "003R", {}, {}, reason="r", pass_name="p")]
GOOD = [Change(Op.DELETE, "Contact", "003G", {"Id": "003G"}, {}, reason="r", pass_name="p"),
        Change(Op.UPDATE, "Contact", "003V", {"Id": "003V", "Email": "a"}, {"Email": "b"}, reason="r", pass_name="p"),
        Change(Op.UNDELETE, "Contact", "003N", {}, {}, reason="r", pass_name="p"),
        Change(Op.CREATE, "Contact", "", {}, {"LastName": "x"}, reason="r", pass_name="p"),
        Change(Op.ASSOCIATE, "link", "", {}, dict.fromkeys(LINK_KEYS, "x"), reason="r", pass_name="p"),
        Change(Op.ARCHIVE, "Contact", "003H", {"Id": "003H"}, {}, reason="r", pass_name="p")]


@settings(max_examples=300, deadline=None)
@given(picks=st.lists(st.sampled_from(GOOD + BAD), max_size=8))
def test_changes_validated_together_refuse_the_first_change_validate_refuses(picks: list[Change]) -> None:
    first: Exception | None = None
    for change in picks:
        try:
            change.validate()
        except (NotReversible, PlanFormatError) as exc:
            first = exc
            break
    if first is None:
        validate_all(picks)
        return
    with pytest.raises(type(first)) as caught:
        validate_all(picks)
    assert str(caught.value) == str(first)


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.tuples(st.sampled_from(LABEL_TEXTS), st.sampled_from([None, "", "2026-01-01T00:00:00.000Z"])),
                     min_size=1, max_size=6),
       picks=st.lists(st.integers(0, 5), max_size=6), as_dicts=st.booleans(),
       afters=st.one_of(st.none(), st.lists(st.sampled_from([None, {}, {"StageName": "Closed Lost"}]),
                                            min_size=6, max_size=6)))
def test_changes_proposed_together_are_the_changes_proposed_one_by_one(
    rows: list[tuple[str | None, str | None]], picks: list[int], as_dicts: bool, afters: list[Any] | None,
) -> None:
    table = pa.table({"Id": [f"006{at}" for at in range(len(rows))],
                      "Name": pa.array([r[0] for r in rows], pa.string()),
                      "SystemModstamp": pa.array([r[1] for r in rows], pa.string())})
    block = RowBlock(table, dict.fromkeys(table.column_names, FieldKind.STRING))
    chosen = [at for at in picks if at < len(rows)]
    befores: list[Any] = [block.row_dict(at) if as_dicts else block.record(at) for at in chosen]
    reasons = [f"why {at}\n" for at in chosen]
    ctx = PassContext(view=cast(Any, None), vocabulary=VOCAB, now=NOW, settings={})
    written = None if afters is None else afters[:len(chosen)]
    together = propose_all(ctx, "p", Op.UPDATE, "Opportunity", befores, reasons=reasons, severity=Severity.MAJOR,
                           afters=written)
    one_by_one = [propose(ctx, "p", Op.UPDATE, "Opportunity", before, reason=reason, severity=Severity.MAJOR,
                          after=None if written is None else written[at])
                  for at, (before, reason) in enumerate(zip(befores, reasons, strict=True))]
    assert together == one_by_one
    assert [type(c.record_id) for c in together] == [str] * len(chosen)
    if written is None:  # one `after` each, as `propose` makes: writing one changes no other
        assert len({id(c.after) for c in together}) == len(chosen)

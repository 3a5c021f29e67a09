"""A plan's changes written a field at a time (crmsweep/plan_text.py) are the encoders' bytes: the same
file, the same digest, for every shape of change (issue 7: plans stay byte-identical; old plans verify)."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmsweep import model, plan_text
from crmsweep.backup.row_block import RowBlock
from crmsweep.backup.snapshot_values import ARROW_TYPES
from crmsweep.model import Change, FieldKind, Op, Plan, PlanFile, PlanHeader, Severity, canonical_json
from tests.test_row_block import CONTROLS, WORD, tables

FLOATS = [1e16, 0.1, -0.0, 0.0, 5e-324, 1.7976931348623157e308, 123456789.0]
VALUE = st.one_of(st.none(), WORD, st.booleans(), st.sampled_from([0, 1, -1, 10**30, -(10**30), *FLOATS]),
                  st.integers(), st.floats(allow_nan=False, allow_infinity=False))
# What a change of another shape holds where a text goes: written by the encoders, change by change.
NOT_TEXT = st.sampled_from([None, 7, 1.5, True, ["a"], {"k": "v"}])


def _header() -> PlanHeader:
    return PlanHeader(plan_id="p1", created="2026-06-01T00:00:00.000Z", tool_version="t", provider="p",
                      org_id="00D", connection="c", source={"kind": "snapshot", "id": "s1"})


@st.composite
def changes(draw: Any, odd: bool = True) -> list[Change]:
    """Changes whose texts are any of the awkward ones, their before-images rows of two blocks and dicts
    (interleaved), `after` empty, alike or each its own; some (with `odd`) of another shape."""
    images: list[Any] = []
    for table, kinds in (draw(tables()), draw(tables())):
        block = RowBlock(table, kinds)
        images += [block.record(row) for row in range(len(block))]
    dicts = st.dictionaries(WORD, VALUE, max_size=4)
    count = draw(st.integers(0, 10))
    made = []
    shared = draw(st.lists(WORD, min_size=3, max_size=3))  # texts many changes share, as a pass's do
    for _ in range(count):
        before = draw(st.sampled_from(images)) if images and draw(st.booleans()) else draw(dicts)
        texts = [draw(st.one_of(WORD, st.sampled_from(shared))) for _ in range(5)]
        after = draw(st.one_of(st.just({}), st.just({"IsActive": False}), dicts))
        fingerprint: Any = draw(st.one_of(st.none(), WORD))
        if odd and draw(st.integers(0, 5)) == 0:
            where = draw(st.sampled_from(["record_id", "label", "reason", "object", "fingerprint", "after"]))
            # The texts changes share are told apart by value: a change of another shape holds a hashable one.
            value = draw(NOT_TEXT if where not in ("reason", "object") else NOT_TEXT.filter(_hashable))
            if where == "fingerprint":
                fingerprint = value
            elif where == "after":
                after = value
            else:
                texts[["record_id", "label", "reason", "object"].index(where)] = value
        record_id, label, reason, obj, name = texts
        made.append(Change(op=draw(st.sampled_from(list(Op))), object=obj, record_id=record_id, before=before,
                           after=after, reason=reason, pass_name=name, severity=draw(st.sampled_from(list(Severity))),
                           fingerprint=fingerprint, label=label))
    return made


def _reads_back(change: Change) -> bool:
    return (all(type(text) is str for text in (change.record_id, change.label, change.reason, change.object))
            and type(change.fingerprint) in (str, type(None)) and type(change.after) is dict)


def _hashable(value: Any) -> bool:
    return not isinstance(value, list | dict)


def _reference(batch: list[Change]) -> tuple[bytes, bytes]:
    """The lines and canonical texts of the changes by the encoders alone, each change by itself."""
    texts = [model._encoded_change_texts(c.to_dict(), canonical_json(c.before_record())) for c in batch]
    assert [canonical for _, canonical in texts] == [canonical_json(c.to_dict()) for c in batch]
    return ",\n    ".join(line for line, _ in texts).encode(), ",".join(c for _, c in texts).encode()


def _reference_file(plan: Plan) -> str:
    """A plan file as `write_json` lays it out, its changes' lines by the encoders."""
    lines = _reference(list(plan.changes))[0].decode()
    digest = "sha256:" + hashlib.sha256(canonical_json(plan.body()).encode()).hexdigest()
    return ('{\n  "format": "crmsweep.plan/1",\n  "changes": [' + (f"\n    {lines}\n  ]," if plan.changes else "],")
            + '\n  "header": ' + model._header_text(plan.header.to_dict())
            + f',\n  "digest": {json.dumps(digest)}\n}}\n')


@settings(max_examples=150, deadline=None)
@given(batch=changes())
def test_a_batch_written_a_field_at_a_time_is_the_encoders_bytes(batch: list[Change]) -> None:
    lines, canonicals = plan_text.joined_texts(batch)
    assert (bytes(lines or b""), bytes(canonicals)) == _reference(batch)
    assert plan_text.joined_texts(batch, lines=False) == (None, canonicals)


@settings(max_examples=40, deadline=None)
@given(batch=changes(odd=False))
def test_changes_of_the_plain_shape_are_never_written_one_by_one(batch: list[Change]) -> None:
    # Else the test above would hold of the per-change writer alone.
    assert _joined_without("_batch_texts", batch) == _reference(batch)


def _joined_without(writer: str, batch: list[Change]) -> tuple[bytes, bytes]:
    """`joined_texts(batch)` with `writer` (a slower path of plan_text's) refused if called."""
    def refused(_changes: Any) -> Any:
        raise AssertionError(f"{writer} called")

    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(plan_text, writer, refused)
        lines, canonicals = plan_text.joined_texts(batch)
    return bytes(lines or b""), bytes(canonicals)


@settings(max_examples=40, deadline=None)
@given(batch=changes(), size=st.integers(1, 4))
def test_a_plan_file_in_batches_is_the_encoders_file_and_reads_back(batch: list[Change], size: int) -> None:
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(model, "_BATCH", size)  # batches of 1 up to more than one batch, starting mid-block
        plan = Plan(header=_header(), changes=tuple(batch))
        out = io.BytesIO()
        digest = plan.write_json(out)
        again = Plan(header=_header(), changes=tuple(batch)).digest  # hashed alone, not while writing
    text = out.getvalue().decode()
    assert text == _reference_file(plan)
    assert digest == again == "sha256:" + hashlib.sha256(canonical_json(plan.body()).encode()).hexdigest()
    if all(_reads_back(change) for change in batch):  # a change of another shape reads back as texts
        parsed = PlanFile.parse(text)
        assert parsed.digest == parsed.plan.digest == digest


def test_an_empty_plan_and_a_plan_of_one_change() -> None:
    block = RowBlock(pa.table({"Id": ["003"], "When": pa.array([datetime(1970, 1, 1, tzinfo=UTC)],
                                                               ARROW_TYPES[FieldKind.DATETIME])}),
                     {"Id": FieldKind.STRING, "When": FieldKind.DATETIME})
    one = Change(Op.DELETE, "Contact", "003", block.record(0), {}, reason="r", pass_name="p", label="é")
    for plan in (Plan(header=_header(), changes=()), Plan(header=_header(), changes=(one,))):
        text = plan.to_json()
        assert text == _reference_file(plan)
        assert PlanFile.parse(text).plan.digest == plan.digest
    lines, canonicals = plan_text.joined_texts([])
    assert lines is not None and (bytes(lines), bytes(canonicals)) == (b"", b"")


@pytest.mark.parametrize("where", ["record_id", "label", "reason", "fingerprint", "after", "before"])
def test_a_value_no_plan_can_hold_fails_as_the_encoders_do(where: str) -> None:
    values: dict[str, Any] = {"record_id": "003", "label": "l", "reason": "r", "fingerprint": None, "after": {},
                              "before": {"Id": "003"}}
    for bad, error in (("a\ud800b", UnicodeEncodeError), (float("nan"), ValueError)):
        if isinstance(bad, float) and where not in ("after", "before"):
            continue
        changed = {**values, where: {"x": bad} if where in ("after", "before") else bad}
        batch = [Change(Op.UPDATE, "Contact", **{k: v for k, v in values.items()}, pass_name="p"),
                 Change(Op.UPDATE, "Contact", **changed, pass_name="p")]
        with pytest.raises(error):
            _reference(batch)
        with pytest.raises(error):
            plan_text.joined_texts(batch)


def test_every_control_character_in_a_change_is_the_encoders() -> None:
    batch = [Change(Op.DELETE, "Contact", f"003{c}", {"Id": c}, {}, reason=f"r{c}", pass_name="p",
                    fingerprint=c, label=c * 3) for c in [*CONTROLS, '"', "\\", "\\n", "😀", " ", ""]]
    lines, canonicals = plan_text.joined_texts(batch)
    assert (bytes(lines or b""), bytes(canonicals)) == _reference(batch)


@pytest.mark.parametrize("fingerprints", ["none", "all", "some"])
@pytest.mark.parametrize("afters", ["empty", "alike", "each"])
@pytest.mark.parametrize("groups", [1, 3])
@pytest.mark.parametrize("odd_at", [None, 0, -1])
def test_fields_a_batch_has_alike_folded_into_its_fixed_text_are_the_encoders(
        fingerprints: str, afters: str, groups: int, odd_at: int | None) -> None:
    # A batch's op, object, pass, severity and `after` alike in every change (or not), fingerprints never,
    # always or sometimes null, a change of another shape first or last (its separator cut after it).
    block = RowBlock(pa.table({"Id": [f"003{n}" for n in range(8)],
                               "Note": ["é\n", None, '"', "", "\\", " ", "x", "\x01"],
                               "Gone": pa.array([None] * 8, pa.string()), "On": [True] * 8}),
                     {"Id": FieldKind.STRING, "Note": FieldKind.STRING, "Gone": FieldKind.STRING,
                      "On": FieldKind.BOOL})
    batch = []
    for n in range(8):
        fingerprint = {"none": None, "all": f"2021-0{n + 1}-01", "some": None if n % 2 else '"q"'}[fingerprints]
        after: Any = {"empty": {}, "alike": {"StageName": "Closed Lost", "Amount": -0.0},
                      "each": {"n": n} if n % 3 else {}}[afters]
        op, severity = [(Op.DELETE, Severity.MINOR), (Op.UPDATE, Severity.MAJOR),
                        (Op.DELETE, Severity.INFO)][n % groups]
        batch.append(Change(op, ["Contact", "Lead", "Contact"][n % groups], f"003{n}", block.record(n), dict(after),
                            reason=f"why {n}\t", pass_name="p", severity=severity, fingerprint=fingerprint,
                            label=["Amy <a@x>", "", "😀"][n % 3]))
    if odd_at is not None:
        batch[odd_at] = Change(Op.DELETE, "Contact", 7, {"Id": "7"}, {}, reason="r", pass_name="p")  # type: ignore[arg-type]
    lines, canonicals = plan_text.joined_texts(batch)
    assert (bytes(lines or b""), bytes(canonicals)) == _reference(batch)


def test_a_batch_where_one_block_ends_and_the_next_begins_is_encoded_by_its_blocks() -> None:
    kinds = {"Id": FieldKind.STRING, "Note": FieldKind.STRING}
    first = RowBlock(pa.table({"Id": ["1", "2", "3"], "Note": ['"', None, "é"]}), kinds)
    second = RowBlock(pa.table({"Id": ["4", "5"], "Note": ["\\", "\n"], "Extra": [1.5, None]}),
                      {**kinds, "Extra": FieldKind.FLOAT})
    images = [*first.records(), *second.records()]
    batch = [Change(Op.DELETE, "Contact", str(n), image, {}, reason="r", pass_name="p")
             for n, image in enumerate(images)]
    assert _joined_without("_before_texts", batch) == _reference(batch)  # not row by row
    # A dict among them, and runs interleaved past the most: row by row, the same bytes.
    mixed = [*batch[:2], Change(Op.DELETE, "Contact", "d", {"Id": "d"}, {}, reason="r", pass_name="p"), *batch[2:]]
    interleaved = [batch[n % 2 * 3 + n // 2 % 2] for n in range(20)]
    for other in (mixed, interleaved):
        lines, canonicals = plan_text.joined_texts(other)
        assert (bytes(lines or b""), bytes(canonicals)) == _reference(other)

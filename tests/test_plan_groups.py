"""Large runs of changes of one kind are written as columnar groups (format crmsweep.plan/2): the same changes
read back, under the same digest, and a byte of a group edited is refused as an edited line is."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pyarrow as pa
import pytest

from crmsweep import model
from crmsweep.backup.row_block import RowBlock
from crmsweep.cleanup.plan_auth import signed_json
from crmsweep.cleanup.plan_checks import load_plan
from crmsweep.errors import SafetyRefusal
from crmsweep.model import (
    PLAN_FORMAT,
    PLAN_FORMAT_COLUMNS,
    Change,
    FieldKind,
    Op,
    Plan,
    PlanFile,
    PlanFormatError,
    PlanHeader,
    Severity,
    canonical_json,
)

HEADER = PlanHeader(plan_id="p1", created="2026-06-01T00:00:00.000Z", tool_version="t", provider="salesforce",
                    org_id="00D", connection="c", source={"kind": "snapshot", "id": "s1"})
KINDS = {"Id": FieldKind.STRING, "Name": FieldKind.STRING, "N": FieldKind.INT, "F": FieldKind.FLOAT,
         "B": FieldKind.BOOL, "Note": FieldKind.STRING}


def changes() -> list[Change]:
    """Seven changes: a run of four deletes of one block, then two updates of it, then a dict before-image."""
    block = RowBlock(pa.table({
        "Id": ["a", "b", "c", "d", "e", "f"], "Name": ['x"y', None, "é\n", "z\\", "w", "v"],
        "N": [1, None, 3, 10**15, -2, 0], "F": [1.5, 0.0, -0.0, 1e16, None, 0.1],
        "B": [True, False, None, True, True, False],
        "Note": [None] * 6}), KINDS)
    made = [Change(Op.DELETE, "Contact", rid, block.record(at), {}, reason=f"stale {at}", pass_name="stale_contacts",
                   severity=Severity.MINOR, fingerprint=None if at == 1 else f"fp{at}", label=f"L {at}")
            for at, rid in enumerate("abcd")]
    made += [Change(Op.UPDATE, "Contact", rid, block.record(at), {"Name": None, "N": 7}, reason="bounced",
                    pass_name="bounced_emails", severity=Severity.MAJOR, fingerprint="fp", label="")
             for at, rid in ((4, "e"), (5, "f"))]
    made.append(Change(Op.DELETE, "Contact", "g", {"Id": "g", "Name": "dict"}, {}, reason="stale",
                       pass_name="stale_contacts", severity=Severity.MINOR))
    return made


@pytest.fixture
def grouped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model, "_GROUP_LEAST", 2)
    monkeypatch.setattr(model, "_BATCH", 4)  # batches: the four deletes; the two updates and the dict one


def test_a_run_of_one_kind_is_a_group_that_reads_back_as_the_same_changes_under_the_same_digest(grouped: None) -> None:
    plan = Plan(header=HEADER, changes=tuple(changes()))
    text = plan.to_json()
    doc = json.loads(text)
    assert doc["format"] == PLAN_FORMAT_COLUMNS
    group = doc["changes"][0]
    assert group["count"] == 4 and group["record_id"] == ["a", "b", "c", "d"]
    assert group["before"]["Name"] == ['x"y', None, "é\n", "z\\"] and list(group["before"]) == sorted(KINDS)
    # The second batch is of two kinds and a dict: a change a line, as before.
    assert [item.get("record_id") for item in doc["changes"][1:]] == ["e", "f", "g"]
    parsed = PlanFile.parse(text)
    assert [c.to_dict() for c in parsed.plan.changes] == [c.to_dict() for c in plan.changes]
    body = "sha256:" + hashlib.sha256(canonical_json(plan.body()).encode()).hexdigest()
    assert parsed.digest == parsed.plan.digest == plan.digest == body


def test_a_plan_without_a_large_run_is_the_format_1_file_byte_for_byte(monkeypatch: pytest.MonkeyPatch) -> None:
    plan = Plan(header=HEADER, changes=tuple(changes()))
    text = plan.to_json()
    assert json.loads(text)["format"] == PLAN_FORMAT
    monkeypatch.setattr(model, "_GROUP_LEAST", 2)
    monkeypatch.setattr(model, "_BATCH", 4)
    grouped = Plan(header=HEADER, changes=tuple(changes())).to_json()
    assert grouped != text and PlanFile.parse(grouped).digest == PlanFile.parse(text).digest


@pytest.mark.parametrize(("before", "after"), [
    ('"record_id": ["a", "b"', '"record_id": ["a", "B"'),
    ('"Name": ["x\\"y", null', '"Name": ["x\\"y", "forged"'),
    ('"N": [1, null, 3', '"N": [1, null, 4'),
    ('"F": [1.5, 0.0, -0.0', '"F": [1.5, 0.0, 0.0'),
    ('"fingerprint": ["fp0", null', '"fingerprint": ["fp0", "fp1"'),
    ('"reason": ["stale 0"', '"reason": ["edited"'),
    ('"label": ["L 0"', '"label": ["L 9"'),
    ('"after": [{}, {}', '"after": [{"Name": null}, {}'),
    ('"op": "delete", "object": "Contact", "pass"', '"op": "archive", "object": "Contact", "pass"'),
])
def test_any_value_of_a_group_edited_is_refused_as_a_digest_mismatch(
        grouped: None, tmp_path: Path, before: str, after: str) -> None:
    from crmsweep.paths import Home

    home = Home(tmp_path / "home")
    text = signed_json(Plan(header=HEADER, changes=tuple(changes())), home)
    path = tmp_path / "plan.json"
    path.write_text(text, encoding="utf-8")
    assert load_plan(path, home)[1] == text
    assert text.count(before) == 1
    path.write_text(text.replace(before, after), encoding="utf-8")
    with pytest.raises(SafetyRefusal, match=r"digest mismatch"):
        load_plan(path, home)


@pytest.mark.parametrize(("before", "after", "message"), [
    ('"count": 4', '"count": 5', "must list 5 values"),
    ('"record_id": ["a", "b", "c", "d"]', '"record_id": ["a", "b", "c"]', "record_id must list 4 values"),
    ('"B": [true, false, null, true]', '"B": [true, false, null]', "B must list 4 values"),
    ('"label": ["L 0"', '"label": [7', "of the wrong kind"),
    ('"severity": "minor",\n', '"severity": "dire",\n', "severity 'dire'"),
    ('"crmsweep.plan/2"', '"crmsweep.plan/1"', "malformed change"),
])
def test_a_malformed_group_is_not_a_plan(grouped: None, before: str, after: str, message: str) -> None:
    out = io.BytesIO()
    Plan(header=HEADER, changes=tuple(changes())).write_json(out)
    text = out.getvalue().decode()
    assert text.count(before) == 1
    with pytest.raises(PlanFormatError, match=message):
        PlanFile._parse(text.replace(before, after))

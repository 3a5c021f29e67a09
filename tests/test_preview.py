"""Preview: golden files of fixed plans (CRMSWEEP_UPDATE_GOLDEN=1 rewrites them) and the JSON summary."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from crmsweep.cleanup.preview import change_line, format_value, listed_changes, render_preview, summarize
from crmsweep.model import Change, Op, Plan, PlanHeader, Severity
from tests.test_passes import make_view, uid
from tests.test_scan import scan

GOLDEN = Path(__file__).parent / "snapshots" / "preview"
PLAN_ID = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"


def check_golden(name: str, text: str, folder: Path = GOLDEN) -> None:
    """`text` equals the golden file `name` (".txt" added when it has no suffix) under `folder`."""
    path = folder / (name if "." in name else f"{name}.txt")
    if os.environ.get("CRMSWEEP_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no golden file {path}; run with CRMSWEEP_UPDATE_GOLDEN=1 to write it"
    assert text == path.read_text(encoding="utf-8")


def fixed(plan: Plan) -> Plan:
    return plan.with_header(plan_id=PLAN_ID, tool_version="0.1.0")


def scanned_plan() -> Plan:
    return fixed(scan(protect_ids=[uid(6)]).plan)


def mixed_plan() -> Plan:
    header = PlanHeader(
        plan_id=PLAN_ID,
        created="2026-03-16T09:00:00.000Z",
        tool_version="0.1.0",
        provider="fake",
        org_id="00DFAKE000000000AA",
        connection="sandbox-salesforce",
        source={"kind": "run", "id": "20260315T130000Z-run1"},
        rollback_of="20260315T130000Z-run1",
    )
    base = Change(
        op=Op.UPDATE,
        object="Account",
        record_id="001000000000000001",
        before={"Id": "001000000000000001", "Description": "x" * 60, "Rating": None, "Employees": 12, "Active": True},
        after={"Description": "A short one\nwith a newline", "Rating": "Hot", "Employees": 15, "Active": False},
        reason="fix fields",
        pass_name="hand",
        severity=Severity.INFO,
        label='Acme "Global" Ltd',
    )
    archived = Change(
        op=Op.ARCHIVE,
        object="Note",
        record_id="002000000000000001",
        before={"Id": "002000000000000001", "Title": "old"},
        after={},
        reason="",
        pass_name="hand",
    )
    changes = [base, archived, archived.inverse(), base.inverse(), Change.from_dict({**base.to_dict(), "pass": ""})]
    return Plan.build(header, changes)


def test_preview_of_a_scan() -> None:
    check_golden("scan", render_preview(scanned_plan()))


def test_preview_with_a_limit_and_a_skipped_pass() -> None:
    view = make_view(only=["Contact", "Lead", "Opportunity", "OpportunityContactRole"])
    plan = fixed(scan(view).plan)
    check_golden("scan_limit_2", render_preview(plan, limit=2))
    zero = render_preview(plan, limit=0)
    assert "… and 6 more" in zero and "… and 1 more" in zero and "\n- " not in zero


def test_preview_of_a_rollback() -> None:
    plan = fixed(scan().plan)
    inverse = Plan.build(
        PlanHeader(
            plan_id=PLAN_ID,
            created="2026-03-16T09:00:00.000Z",
            tool_version="0.1.0",
            provider=plan.header.provider,
            org_id=plan.header.org_id,
            connection=plan.header.connection,
            source={"kind": "run", "id": "20260315T130000Z-run1"},
            passes=plan.header.passes,
            rollback_of="20260315T130000Z-run1",
        ),
        [c.inverse(fingerprint="2026-03-15T13:00:00.000Z") for c in plan.changes],
    )
    check_golden("rollback", render_preview(inverse))


def test_preview_of_mixed_ops_and_values() -> None:
    check_golden("mixed", render_preview(mixed_plan()))


def test_preview_of_an_empty_plan() -> None:
    plan = fixed(scan(make_view(only=["Opportunity"])).plan)
    check_golden("empty", render_preview(plan))


def test_change_lines_start_with_their_mark_and_nothing_else_does() -> None:
    text = render_preview(mixed_plan()) + render_preview(scanned_plan())
    marks = {"-": 0, "~": 0, "+": 0}
    for line in text.splitlines():
        if line[:1] in marks:
            marks[line[:1]] += 1
    # Exactly one marked line per change: no header, count or note line starts with a mark.
    assert marks == {"-": 8, "~": 6, "+": 1}
    assert sum(marks.values()) == len(mixed_plan().changes) + len(scanned_plan().changes)


def test_value_format() -> None:
    assert [format_value(v) for v in (True, False, None, 3, 2.5)] == ["true", "false", "null", "3", "2.5"]
    assert format_value("x" * 41) == '"' + "x" * 39 + '…"'
    assert format_value("x" * 40) == '"' + "x" * 40 + '"'
    assert format_value('say "hi"\n') == '"say \\"hi\\"\\n"'
    assert format_value("\x1b[2K\u202e") == '"\\u001b[2K\\u202e"'
    deactivate = scanned_plan().changes[-2]
    assert change_line(deactivate) == (
        '~ User 005000000000000003 "Never In <never@x.org>"  '
        "IsActive: true → false  never logged in (created 2025-05-01)"
    )


def test_summarize() -> None:
    plan = scanned_plan()
    assert summarize(plan) == {
        "plan": PLAN_ID,
        "digest": plan.digest,
        "provider": "fake",
        "org_id": "00DFAKE000000000AA",
        "connection": "sandbox-salesforce",
        "created": "2026-03-15T12:00:00.000Z",
        "tool_version": "0.1.0",
        "changes": 10,
        "by_op": {"delete": 7, "deactivate": 3},
        "by_pass": {
            "stale_contacts": {"Contact": {"delete": 6}, "Lead": {"delete": 1}},
            "inactive_users": {"User": {"deactivate": 3}},
        },
        "held_back": {
            "stale_contacts": {"on an open opportunity": 3},
            "inactive_users": {"listed in [protect] ids": 1},
        },
        "op_words": {},
        "rollback_of": None,
        "source": dict(plan.header.source),
        "notes": list(plan.header.notes),
        "review": [],
    }


def test_summarize_names_the_crm_s_words_beside_the_signed_ops_and_what_a_rollback_undoes() -> None:
    # A HubSpot delete of a marketing email archives it: the keys stay the plan's ops, `op_words` says so.
    plan = scanned_plan()
    emails = [replace(c, object="marketing_emails") for c in plan.changes if c.op is Op.DELETE]
    header = replace(plan.header, provider="hubspot", rollback_of="run-1")
    found = summarize(Plan(header, (*emails, *(c for c in plan.changes if c.op is not Op.DELETE))))
    assert found["by_op"] == {"delete": 7, "deactivate": 3}
    assert found["by_pass"]["stale_contacts"] == {"marketing_emails": {"delete": 7}}
    assert found["op_words"] == {"marketing_emails": {"delete": "archive"}}
    assert found["rollback_of"] == "run-1"


def test_the_json_lists_each_change_the_text_shows_with_what_it_writes() -> None:
    plan = scanned_plan()
    listed = listed_changes(plan)
    assert listed["not_listed"] == 0
    # In the preview's order (by pass, then object), every change once, and what each writes before and after.
    assert [(c["pass"], c["object"], c["record_id"]) for c in listed["listed"]] == [
        (c.pass_name, c.object, c.record_id)
        for name in ("stale_contacts", "inactive_users") for obj in ("Contact", "Lead", "User")
        for c in plan.changes if c.pass_name == name and c.object == obj]
    deactivate = next(c for c in listed["listed"] if c["op"] == "deactivate")
    assert deactivate == {
        "pass": "inactive_users", "object": "User", "record_id": deactivate["record_id"],
        "label": deactivate["label"], "op": "deactivate", "op_word": "deactivate", "severity": "major",
        "reason": deactivate["reason"], "writes": {"IsActive": {"before": True, "after": False}}}
    assert change_line(next(c for c in plan.changes if c.record_id == deactivate["record_id"])).startswith(
        f'~ User {deactivate["record_id"]} "{deactivate["label"]}"  IsActive: true → false')
    delete = next(c for c in listed["listed"] if c["op"] == "delete")
    assert delete["writes"] == {} and delete["reason"].startswith("stale")
    # --limit lists as many an object as the text shows, and counts the rest.
    capped = listed_changes(plan, limit=1)
    assert [(c["pass"], c["object"]) for c in capped["listed"]] == [
        ("stale_contacts", "Contact"), ("stale_contacts", "Lead"), ("inactive_users", "User")]
    assert capped["not_listed"] == len(plan.changes) - 3
    shown = render_preview(plan, limit=1)
    assert all(f" {c['record_id']} " in shown for c in capped["listed"])


def test_a_create_lists_no_before_and_a_link_its_two_ends() -> None:
    plan = scanned_plan()
    made = Change(Op.CREATE, "Contact", "003NEW", {}, {"LastName": "Lee"}, reason="re-create", pass_name="hand")
    link = Change(Op.ASSOCIATE, "contacts_to_companies", "1-2", {"x": 1},
                  {"from_object": "contacts", "from_id": "1", "to_object": "companies", "to_id": "2"},
                  reason="relink", pass_name="hand")
    listed = listed_changes(Plan(plan.header, (made, link)))["listed"]
    assert listed[0]["writes"] == {"LastName": {"before": None, "after": "Lee"}}
    assert listed[1]["writes"]["to_id"] == {"before": None, "after": "2"}


def test_negative_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="limit"):
        render_preview(scanned_plan(), limit=-1)


def test_a_name_in_parts_is_one_name_then_the_rest_in_brackets() -> None:
    from crmsweep.cleanup.labels import record_label
    from crmsweep.providers.hubspot import HUBSPOT_VOCABULARY

    record = {"firstname": "Noah", "lastname": "Mensah", "email": "noah@x.org"}
    assert record_label(HUBSPOT_VOCABULARY, "contacts", record) == "Noah Mensah <noah@x.org>"
    assert record_label(HUBSPOT_VOCABULARY, "contacts", {**record, "firstname": None}) == "Mensah <noah@x.org>"
    assert record_label(HUBSPOT_VOCABULARY, "contacts", {"email": "noah@x.org"}) == "<noah@x.org>"


def test_the_printed_preview_colours_each_line_by_its_op_as_a_print_per_line_would(tmp_path: Path) -> None:
    """`print_preview` prints lines of one colour a few dozen at a time: the bytes a terminal gets are exactly
    those of one `print` per line, for runs longer than a call's share, and for a text with control codes."""
    import io

    from rich.console import Console

    from crmsweep.commands.plan import _LINES_A_CALL, print_preview

    plan = scanned_plan()
    one = plan.changes[0]
    many = [replace(one, record_id=f"003{n:015d}", label=f"n\x1b[31m{n}\r\x07") for n in range(2 * _LINES_A_CALL + 7)]
    plan = Plan.build(plan.header, [*plan.changes, *many])
    text = render_preview(plan)
    colours = {"-": "red", "~": "yellow", "+": "green"}

    def console() -> Console:
        return Console(file=io.StringIO(), force_terminal=True, color_system="standard", width=80, highlight=False,
                       soft_wrap=True, markup=False, emoji=False)

    expected, printed = console(), console()
    for line in text.splitlines():
        stripped = line.lstrip()
        colour = colours.get(stripped[:1]) if stripped[1:2] == " " else None
        expected.print(line, style=colour, markup=False, highlight=False)
    print_preview(plan, console=printed)
    got = printed.file.getvalue()  # type: ignore[attr-defined]
    assert got == expected.file.getvalue()  # type: ignore[attr-defined]
    assert got.count("\x1b[31m") >= len(many) and "\x07" not in got


def test_a_custom_field_s_removal_is_said_in_the_crm_s_word_on_its_line_as_in_the_counts() -> None:
    # The counts said "CustomField: 4 delete" and each line "archive" (Salesforce deletes a field; crmsweep's op
    # is an archive, since the CRM's undelete does not give it back).
    from crmsweep.providers.salesforce import SALESFORCE_VOCABULARY

    change = Change(op=Op.ARCHIVE, object="CustomField", record_id="00N000000000001",
                    before={"Id": "00N000000000001"}, after={}, reason="unused", pass_name="unused_custom_fields",
                    label="Contact.Colour__c")
    line = '- CustomField 00N000000000001 "Contact.Colour__c"  delete  unused'
    assert change_line(change, SALESFORCE_VOCABULARY) == line
    other = '- contacts 00N000000000001 "Contact.Colour__c"  archive  unused'
    assert change_line(replace(change, object="contacts")) == other

"""The plan file as written: one change per line, streamed, digest unchanged, older indented plans still read."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import IO

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmsweep.cleanup.plan_auth import Trust, plan_key, signature_with, signed_json, trust_of, write_signed
from crmsweep.model import (
    PLAN_FORMAT,
    Change,
    Op,
    Plan,
    PlanFile,
    PlanHeader,
    ReviewItem,
    Severity,
    canonical_json,
    sha256_text,
)
from crmsweep.paths import Home, replace_private_file_with

HEADER = PlanHeader(
    plan_id="p1", created="2026-11-24T00:00:00.000Z", tool_version="0.1.0", provider="salesforce",
    org_id="00D000000000001AAA", connection="prod", source={"kind": "snapshot", "id": "s1"},
    passes=("stale_contacts", "duplicates"), held_back={"stale_contacts": {"on an open opportunity": 2}},
    notes=("stale_contacts: 2 Contact records have no dates", "a note with \"quotes\", a newline\n and é"),
    pass_settings={"stale_contacts": {"years": 3, "objects": [], "action": "delete"}},
    review=(ReviewItem("duplicates", "Contact", ("003A", "003B"), "same email", 0.9, ("Jane", "Jane D.")),),
)


def contact(n: int, **values: object) -> dict[str, object]:
    # Describe order, not alphabetical: the file must keep `after` in its own order.
    return {"Id": f"003{n:015d}", "LastName": f"Doe {n}", "Email": f"jane{n}@x.org", "Score": n * 1.5,
            "IsActive": n % 2 == 0, "CreatedDate": "2019-01-01T00:00:00.000Z", **values}


def changes(count: int) -> list[Change]:
    made: list[Change] = []
    for n in range(count):
        before = contact(n)
        if n % 3 == 0:
            made.append(Change(Op.UPDATE, "Contact", str(before["Id"]), before, {"Score": None, "Email": None},
                               reason=f"bounced {n}", pass_name="bounced_emails", severity=Severity.MAJOR,
                               fingerprint="2020-01-01T00:00:00.000Z", label=f"Doe {n} <jane{n}@x.org>"))
        elif n % 3 == 1:
            made.append(Change(Op.CREATE, "Contact", "", {}, {"LastName": "Zed", "Email": "z@x.org", "Age": 3},
                               reason="undo archive", pass_name="stale_contacts"))
        else:
            made.append(Change(Op.DELETE, "Contact", str(before["Id"]), before, {}, reason="stale: 2019-01-01",
                               pass_name="stale_contacts", severity=Severity.MINOR, label="Doe"))
    return made


def old_indented_text(plan: Plan, signature: str | None) -> str:
    """What crmsweep wrote before plans were streamed: the whole document indented by json.dumps."""
    doc: dict[str, object] = {"format": PLAN_FORMAT, **plan.body(), "digest": sha256_text(canonical_json(plan.body()))}
    if signature is not None:
        doc["signature"] = signature
    return json.dumps(doc, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


@pytest.mark.parametrize("count", [0, 1, 511, 512, 513, 1300])
def test_the_digest_is_still_the_sha256_of_the_canonical_body(count: int) -> None:
    # Counts around the batch size: the pieces are hashed in batches of 512 changes.
    plan = Plan.build(HEADER, changes(count))
    expected = sha256_text(canonical_json(plan.body()))
    assert plan.digest == expected
    fresh = Plan.build(HEADER, changes(count))
    assert fresh.write_json(io.BytesIO()) == expected and fresh.digest == expected


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False), st.text(),
)


@settings(max_examples=60)
@given(st.dictionaries(st.text(min_size=1), scalars, max_size=6), st.dictionaries(st.text(min_size=1), scalars,
       min_size=1, max_size=4), st.text())
def test_any_values_round_trip_through_the_file_under_the_same_digest(
    before: dict[str, object], after: dict[str, object], reason: str
) -> None:
    image = {**contact(1), **before, **{k: None for k in after}}
    plan = Plan.build(HEADER, [
        Change(Op.UPDATE, "Contact", "003", image, after, reason=reason, pass_name="p"),
        Change(Op.DELETE, "Contact", "004", image, {}, reason=reason, pass_name="p", fingerprint=reason),
    ])
    parsed, claimed = Plan.from_json(plan.to_json())
    assert parsed == plan
    assert claimed == parsed.digest == sha256_text(canonical_json(plan.body()))
    assert list(parsed.changes[0].after) == list(after)


def test_the_file_holds_the_header_a_key_a_line_and_one_change_per_line() -> None:
    plan = Plan.build(HEADER, changes(7))
    text = plan.to_json(signature="hmac-sha256:00")
    lines = text.splitlines()
    start = lines.index('  "changes": [')
    change_lines = lines[start + 1 : start + 8]
    assert lines[start + 8] == "  ],"
    for line, made in zip(change_lines, plan.changes, strict=True):
        parsed = json.loads(line.strip().rstrip(","))
        assert parsed == made.to_dict()
        # The change's own key order, and `after` in the order the pass wrote it (the preview lists it so).
        assert list(parsed) == list(made.to_dict()) and list(parsed["after"]) == list(made.after)
        assert line.startswith('    {"op": ')
    assert lines[-3:] == [f'  "digest": "{plan.digest}",', '  "signature": "hmac-sha256:00"', "}"]
    assert '    "notes": [' in lines and '      "a note with \\"quotes\\", a newline\\n and é"' in lines
    assert json.loads(text)["header"] == HEADER.to_dict()


def test_an_empty_plan_is_a_valid_file() -> None:
    plan = Plan.build(HEADER, [])
    text = plan.to_json()
    assert json.loads(text)["changes"] == []
    assert Plan.from_json(text) == (plan, plan.digest)


def test_a_plan_written_indented_before_still_loads_and_verifies(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    plan = Plan.build(HEADER, changes(20))
    old = old_indented_text(plan, signature_with(plan_key(home), plan))
    parsed = PlanFile.parse(old)
    assert parsed.plan == plan and parsed.digest == plan.digest
    assert trust_of(parsed, home) is Trust.SIGNED
    # And an edit to the old file is still caught.
    edited = PlanFile.parse(old.replace('"reason": "stale: 2019-01-01"', '"reason": "stale: 2025-01-01"', 1))
    assert trust_of(edited, home) is Trust.EDITED


def test_a_streamed_signed_plan_is_the_signed_text_and_verifies(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    written = io.BytesIO()
    write_signed(Plan.build(HEADER, changes(600)), written, home)
    text = written.getvalue().decode("utf-8")
    assert text == signed_json(Plan.build(HEADER, changes(600)), home)
    parsed = PlanFile.parse(text)
    assert trust_of(parsed, home) is Trust.SIGNED
    other = Home(tmp_path / "other")
    plan_key(other)
    assert trust_of(parsed, other) is Trust.FOREIGN


def test_a_failed_streamed_write_leaves_the_old_file_and_no_leftover(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    replace_private_file_with(path, lambda handle: handle.write(b"old"))

    def half_then_fail(handle: IO[bytes]) -> None:
        handle.write(b"half of a plan")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        replace_private_file_with(path, half_then_fail)
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.json"]
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_value_that_is_the_before_image_stand_in_is_written_as_itself() -> None:
    from crmsweep import model

    odd = model._STAND_IN_VALUE
    plan = Plan.build(HEADER, [Change(Op.UPDATE, "Contact", "003", {**contact(1), "Title": odd}, {"Title": odd},
                                      reason=odd, pass_name="p", label=odd)])
    parsed, claimed = Plan.from_json(plan.to_json())
    assert parsed == plan and parsed.changes[0].before["Title"] == odd
    assert claimed == sha256_text(canonical_json(plan.body()))


def test_a_text_parsed_again_is_not_parsed_twice_and_a_changed_byte_is(monkeypatch: pytest.MonkeyPatch) -> None:
    text = Plan.build(HEADER, changes(3)).to_json(signature="sig")
    parses: list[str] = []
    real = PlanFile._parse

    def counted(text: str) -> PlanFile:
        parses.append(text)
        return real(text)

    monkeypatch.setattr(PlanFile, "_parse", staticmethod(counted))
    first = PlanFile.parse(text)
    assert PlanFile.parse(text) is first and len(parses) == 1
    # One byte differs (a reason's letter): parsed anew, the new value read, the digest claim kept apart.
    edited = text.replace("bounced 0", "Bounced 0", 1)
    assert edited != text
    again = PlanFile.parse(edited)
    assert len(parses) == 2
    assert (again.plan.changes[0].reason, first.plan.changes[0].reason) == ("Bounced 0", "bounced 0")
    assert again.plan.digest != first.plan.digest and again.digest == first.digest

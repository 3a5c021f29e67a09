"""A hard-bounced address cleared by bounced_emails, and put back by a rollback, comes back with its bounce.
Salesforce keeps a bounce on a contact or lead "until the email address is updated" (Bounce Management): the
write that clears the address clears the bounce date and reason with it. A clear that wrote the address
alone let the CRM drop the bounce unseen by the preview, and its undo, writing the address alone, brought
the bad address back looking deliverable: no bounce alert for the reps, and no candidate for the next scan."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crmsweep import api
from crmsweep.sandbox.server import RunningSandbox
from tests.test_apply_live import CONNECTION, other_admin, sobject, yes

FIELDS = ("Email", "EmailBouncedDate", "EmailBouncedReason", "HasOptedOutOfEmail")


def people_state(sf: Any, ids: list[str]) -> dict[str, tuple[Any, ...]]:
    quoted = ", ".join(f"'{i}'" for i in ids)
    found: dict[str, tuple[Any, ...]] = {}
    for obj in ("Contact", "Lead"):
        rows = sf.query_all(f"SELECT Id, {', '.join(FIELDS)} FROM {obj} WHERE Id IN ({quoted})")["records"]
        found.update({r["Id"]: tuple(r[f] for f in FIELDS) for r in rows})
    return found


def test_the_sandbox_clears_a_bounce_when_the_address_changes_unless_the_write_sets_it(
    sandbox: RunningSandbox,
) -> None:
    sf = other_admin(sandbox)
    row = sf.query("SELECT Id, Email, EmailBouncedDate, EmailBouncedReason FROM Contact "
                   "WHERE EmailBouncedDate != null AND Email != null LIMIT 1")["records"][0]
    contact = sobject(sf, "Contact")
    contact.update(row["Id"], {"Phone": "+1 555 0100"})  # the address untouched: the bounce stays
    assert people_state(sf, [row["Id"]])[row["Id"]][:3] == (row["Email"], row["EmailBouncedDate"],
                                                            row["EmailBouncedReason"])
    contact.update(row["Id"], {"Email": None})
    assert people_state(sf, [row["Id"]])[row["Id"]][:3] == (None, None, None)
    contact.update(row["Id"], {"Email": row["Email"], "EmailBouncedDate": row["EmailBouncedDate"],
                               "EmailBouncedReason": row["EmailBouncedReason"]})
    assert people_state(sf, [row["Id"]])[row["Id"]][:3] == (row["Email"], row["EmailBouncedDate"],
                                                            row["EmailBouncedReason"])


def test_a_rollback_of_a_cleared_bounce_restores_the_address_and_its_bounce(
    sandbox: RunningSandbox, ws: api.Workspace, tmp_path: Path
) -> None:
    sf = other_admin(sandbox)
    plan = api.scan(ws, CONNECTION, tmp_path / "plan.json", passes=["bounced_emails"]).result.plan
    cleared = [c.record_id for c in plan.changes]
    assert len(cleared) >= 3, "the seed plants hard-bounced contacts and leads"
    before = people_state(sf, cleared)
    assert all(state[1] is not None for state in before.values())
    # The preview shows everything the clear changes, the CRM's own consequences included.
    shown = {c.record_id: c.after for c in plan.changes}[cleared[0]]
    assert shown["Email"] is None and shown["EmailBouncedDate"] is None and "EmailBouncedReason" in shown

    applied = api.apply(ws, tmp_path / "plan.json", confirm=yes).report
    assert applied is not None and applied.failed == 0
    assert {state[:3] for state in people_state(sf, cleared).values()} == {(None, None, None)}

    undone = api.rollback(ws, applied.run_id, confirm=yes).report

    assert undone is not None and undone.failed == 0 and not undone.skipped_items
    assert people_state(sf, cleared) == before

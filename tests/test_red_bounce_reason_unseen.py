"""red: a snapshot without EmailBouncedReason (hidden from the API user by field-level security, or not backed up)
gets a bounced_emails clear that writes the address and the bounce date empty, and the reason not at all. Salesforce
empties the reason with the address all the same ('until the email address is updated'), so the apply drops it
unseen by the preview and the rollback, with no value of it to write, brings the address back without it. As
stale_open_deals says so of the fields the CRM sets with a stage, the plan must say so."""

from __future__ import annotations

from tests.record_orgs import SF, run_pass
from tests.test_pass_bounced_emails import NAME, salesforce


def test_a_clear_that_cannot_show_the_bounce_field_the_crm_empties_says_so() -> None:
    org = salesforce()
    for obj in ("Contact", "Lead"):
        org.fields[obj] = [f for f in org.fields[obj] if f.name != "EmailBouncedReason"]
        for row in org.rows[obj]:
            row.pop("EmailBouncedReason", None)
    out = run_pass(NAME, org.view(), SF)
    assert out.changes and all("EmailBouncedReason" not in c.after for c in out.changes)
    said = " ".join([*out.notes, out.skipped or ""])
    assert "EmailBouncedReason" in said, (
        "Salesforce empties EmailBouncedReason with the address, and neither the preview nor the rollback knows "
        f"its value; the pass said only: {out.notes!r}")

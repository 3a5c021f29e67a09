"""red: a snapshot without EmailBouncedReason (hidden from the API user by field-level security, or not backed up)
gets a bounced_emails clear that writes the address and the bounce date empty, and the reason not at all. Salesforce
empties the reason with the address all the same ('until the email address is updated'), so the apply drops it
unseen by the preview and the rollback, with no value of it to write, brings the address back without it. As
stale_open_deals says so of the fields the CRM sets with a stage, the plan must say so.

Since the reason tells a soft bounce from a hard one, a Salesforce snapshot without it is not judged at all
(tests/test_pass_bounced_emails.py); the note still serves a CRM whose bounce fields record hard bounces only (no
`reason_field`), as below."""

from __future__ import annotations

from dataclasses import replace

from crmsweep.concepts import EmailBounces
from tests.record_orgs import SF, run_pass
from tests.test_pass_bounced_emails import NAME, salesforce

HARD_ONLY = replace(SF, concepts=tuple(replace(c, reason_field=None) if isinstance(c, EmailBounces) else c
                                       for c in SF.concepts))


def test_a_clear_that_cannot_show_the_bounce_field_the_crm_empties_says_so() -> None:
    org = salesforce()
    for obj in ("Contact", "Lead"):
        org.without(obj, "EmailBouncedReason")
    out = run_pass(NAME, org.view(), HARD_ONLY)
    assert out.changes and all("EmailBouncedReason" not in c.after for c in out.changes)
    assert out.notes == [
        "the snapshot lacks Contact EmailBouncedReason, which the CRM empties itself with the address: the preview "
        "does not show it go and a rollback cannot put back its old value; back up with a user who can read it to "
        "have both",
        "1 converted Lead record left alone (IsConverted true)",
        "the snapshot lacks Lead EmailBouncedReason, which the CRM empties itself with the address: the preview "
        "does not show it go and a rollback cannot put back its old value; back up with a user who can read it to "
        "have both"]
    assert run_pass(NAME, org.view(), SF).notes == [f"{obj} was not judged: the snapshot lacks EmailBouncedReason"
                                                    for obj in ("Contact", "Lead")]

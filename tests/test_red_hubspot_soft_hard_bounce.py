"""red: on HubSpot, bounced_emails clears every contact with a hard-bounce reason. HubSpot files security-filter
refusals (content, spam, policy) among its hard bounces (knowledge base, "Email bounce types": a valid contact blocked
by a strict security filter, to be allow-listed and then unbounced), and the seed plants full mailboxes there too
(`BOUNCES` in crmsweep/sandbox/hubspot_seed.py: MAILBOX_FULL "552 5.2.2", SPAM "554 5.7.1", OTHER "550 5.7.606 banned
sender"): the pass clears good addresses, as it did Salesforce's soft bounces. The server's reply is in
hs_email_hard_bounce_reason; judged as on Salesforce, only the unknown user would be cleared."""

from __future__ import annotations

from tests.record_orgs import HS, hs_org, ids, run_pass

NAME = "bounced_emails"


def test_hubspot_keeps_a_contact_whose_hard_bounce_reason_is_a_spam_or_policy_refusal() -> None:
    org = hs_org()
    org.add("contacts", "301", email="gone@example.com", hs_email_hard_bounce_reason_enum="UNKNOWN_USER",
            hs_email_hard_bounce_reason="550 5.1.1 mailbox does not exist", hs_email_bad_address=True)
    org.add("contacts", "302", email="fine@example.com", hs_email_hard_bounce_reason_enum="SPAM",
            hs_email_hard_bounce_reason="554 5.7.1 message rejected as spam")
    org.add("contacts", "303", email="full@example.com", hs_email_hard_bounce_reason_enum="MAILBOX_FULL",
            hs_email_hard_bounce_reason="552 5.2.2 mailbox full")
    out = run_pass(NAME, org.view(), HS)
    assert ids(out) == ["301"]
    assert out.held_back == {
        'soft bounce, the address may still work (hs_email_hard_bounce_reason says "spam")': 1,
        'soft bounce, the address may still work (hs_email_hard_bounce_reason says "mailbox full")': 1}

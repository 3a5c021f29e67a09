"""bounced_emails on hand-built Salesforce and HubSpot snapshots: clear (with opt-out where the CRM has
one) or delete, exact ids and writes, hold-backs, the live re-check and the plan's provenance."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest

from crmsweep.cleanup.live_check import ApplyTimeRules, LiveChecker
from crmsweep.cleanup.passes import PASSES, validate_settings
from crmsweep.cleanup.provenance import scan_plan_problems
from crmsweep.errors import BadInput
from crmsweep.model import Op, Record
from tests.fake_connector import FakeConnector
from tests.record_orgs import HS, NOW, SF, Org, hs_org, ids, recheck, run_pass, scan, sf_org

NAME = "bounced_emails"
BOUNCED = "2025-11-02T10:00:00.000Z"


def salesforce() -> Org:
    org = sf_org()
    org.add("Contact", "003B1", Name="Bounced", Email="gone@example.com", EmailBouncedDate=BOUNCED,
            EmailBouncedReason="550 5.1.1 mailbox unavailable", HasOptedOutOfEmail=False)
    org.add("Contact", "003B2", Name="Fine", Email="fine@example.com", HasOptedOutOfEmail=False)
    org.add("Contact", "003B3", Name="Cleared Already", Email=None, EmailBouncedDate=BOUNCED)
    org.add("Contact", "003B4", Name="Opted Out", Email="out@example.com", EmailBouncedDate=BOUNCED,
            HasOptedOutOfEmail=True)
    org.add("Contact", "003B5", Name="On Open Deal", Email="deal@example.com", EmailBouncedDate=BOUNCED,
            HasOptedOutOfEmail=False)
    org.add("Contact", "003B6", Name="Reason Only", Email="r@example.com", EmailBouncedReason="bounced",
            HasOptedOutOfEmail=False)  # no bounce date: not a hard bounce by the rule
    org.add("Lead", "00QB1", Name="Lead Bounced", Email="lead@example.com", EmailBouncedDate=BOUNCED,
            HasOptedOutOfEmail=None)
    org.add("Lead", "00QB2", Name="Converted", Email="conv@example.com", EmailBouncedDate=BOUNCED,
            IsConverted=True)
    org.add("Opportunity", "006O1", Name="Open", IsClosed=False, StageName="Prospecting")
    org.add("OpportunityContactRole", "00KR1", ContactId="003B5", OpportunityId="006O1")
    return org


def hubspot() -> Org:
    org = hs_org()
    org.add("contacts", "201", email="bad@example.com", hs_email_hard_bounce_reason_enum="UNKNOWN_USER",
            hs_email_hard_bounce_reason="550 5.1.1 mailbox does not exist")
    org.add("contacts", "202", email="bad2@example.com", hs_email_bad_address=True)
    org.add("contacts", "203", email="ok@example.com", hs_email_bad_address=False)
    org.add("contacts", "204", email=None, hs_email_bad_address=True)
    org.add("contacts", "205", email="ticket@example.com", hs_email_bad_address=True)
    org.add("tickets", "40001", subject="Open", hs_pipeline_stage="2")
    org.tie("contacts_to_tickets", "205", "40001")
    return org


def test_salesforce_clears_and_opts_out_exactly_the_bounced_addresses() -> None:
    out = run_pass(NAME, salesforce().view(), SF)
    assert [(c.record_id, c.op, c.after) for c in out.changes] == [
        # The bounce the CRM drops with the address is written empty too: shown, and put back by an undo.
        ("003B1", Op.UPDATE, {"Email": None, "EmailBouncedDate": None, "EmailBouncedReason": None,
                              "HasOptedOutOfEmail": True}),
        ("003B4", Op.UPDATE, {"Email": None, "EmailBouncedDate": None}),  # already opted out: not written again
        # A clear removes nobody: no guard.
        ("003B5", Op.UPDATE, {"Email": None, "EmailBouncedDate": None, "HasOptedOutOfEmail": True}),
        ("00QB1", Op.UPDATE, {"Email": None, "EmailBouncedDate": None, "HasOptedOutOfEmail": True}),
    ]
    assert out.changes[0].reason == ("address hard-bounced (EmailBouncedDate 2025-11-02; EmailBouncedReason 550 "
                                     "5.1.1 mailbox unavailable): address cleared, opted out")
    assert out.notes == ["1 converted Lead record left alone (IsConverted true)"] and out.held_back == {}


def test_hubspot_clears_and_says_it_cannot_opt_out() -> None:
    out = run_pass(NAME, hubspot().view(), HS)
    assert [(c.record_id, c.after) for c in out.changes] == [
        ("201", {"email": None}), ("202", {"email": None}), ("205", {"email": None})]
    assert out.changes[0].reason == ("address hard-bounced (hs_email_hard_bounce_reason_enum UNKNOWN_USER; "
                                     "hs_email_hard_bounce_reason 550 5.1.1 mailbox does not exist): address cleared")
    assert len(out.notes) == 1 and out.notes[0].startswith("HubSpot has no opt-out the API may write")


def test_delete_removes_the_bounced_people_but_not_those_on_an_open_deal_or_case() -> None:
    out = run_pass(NAME, salesforce().view(), SF, action="delete")
    assert [(c.record_id, c.op) for c in out.changes] == [("003B1", Op.DELETE), ("003B4", Op.DELETE),
                                                          ("00QB1", Op.DELETE)]
    assert out.held_back == {"on an open opportunity": 1}
    out = run_pass(NAME, hubspot().view(), HS, action="delete")
    assert [(c.record_id, c.op) for c in out.changes] == [("201", Op.ARCHIVE), ("202", Op.ARCHIVE)]
    assert out.held_back == {"on an open ticket": 1} and out.notes == []


def test_action_must_be_a_known_word() -> None:
    with pytest.raises(BadInput) as caught:
        validate_settings(NAME, {"action": "merge"})
    assert str(caught.value) == "[passes.bounced_emails] action must be one of: clear, delete; not 'merge'"


def test_skips_and_notes_where_the_snapshot_lacks_what_it_reads() -> None:
    org = salesforce().without("Lead", "EmailBouncedDate")
    out = run_pass(NAME, org.view(), SF)
    assert ids(out) == ["003B1", "003B4", "003B5"]
    assert out.notes == ["Lead was not judged: the snapshot lacks EmailBouncedDate"]
    result = scan(salesforce().view(["Opportunity"]), SF, [NAME])
    assert result.skipped == {NAME: "no Contact or Lead object in the snapshot"}
    vocab = replace(SF, concepts=(), absent_concepts={"EmailBounces": "this CRM records no bounces"})
    assert scan(salesforce().view(), vocab, [NAME]).skipped == {NAME: "this CRM records no bounces"}


def test_protections_hold_back_a_recent_person() -> None:
    org = salesforce()
    org.rows["Contact"][0]["CreatedDate"] = "2026-03-10T00:00:00.000Z"
    result = scan(org.view(), SF, [NAME])
    assert ids(result) == ["003B4", "003B5", "00QB1"]
    assert result.held_back[NAME] == {"created in the last 30 days": 1}


def test_the_live_re_check_refuses_an_address_fixed_or_gone() -> None:
    change = run_pass(NAME, salesforce().view(), SF).changes[0]
    live = {"Email": "gone@example.com", "EmailBouncedDate": BOUNCED}
    assert recheck(change, SF, live) is None
    assert recheck(change, SF, {**live, "EmailBouncedDate": None}) == (
        "the address no longer shows a hard bounce (EmailBouncedDate empty)")
    assert recheck(change, SF, {**live, "Email": None}) == "no address left to clear"
    removal = run_pass(NAME, salesforce().view(), SF, action="delete").changes[0]
    deal = {"links0": [{"ContactId": "003B1", "OpportunityId": "006O7"}], "deals0": []}
    assert recheck(removal, SF, live, deal) == "now on an open opportunity (006O7)"
    hs_change = run_pass(NAME, hubspot().view(), HS).changes[1]
    assert recheck(hs_change, HS, {"email": "bad2@example.com", "hs_email_bad_address": "true"}) is None
    assert recheck(hs_change, HS, {"email": "bad2@example.com", "hs_email_bad_address": "false"}) == (
        "the address no longer shows a hard bounce (hs_email_hard_bounce_reason_enum, hs_email_bad_address empty)")


def test_the_plan_passes_provenance_and_a_forged_write_does_not() -> None:
    plan = scan(salesforce().view(), SF, [NAME]).plan
    assert scan_plan_problems(plan, SF) == []
    first = plan.changes[0]
    forged = [
        replace(first, after={"Email": "attacker@example.com"}),
        replace(first, after={"Email": None, "Phone": None}),
        replace(first, after={"Email": None, "HasOptedOutOfEmail": False}),
    ]
    problems = scan_plan_problems(replace(plan, changes=tuple(forged)), SF)
    declared = ('pass bounced_emails writes Email=null, EmailBouncedDate=null, EmailBouncedReason=null, '
                'HasOptedOutOfEmail=true, not ')
    assert [p.split(": ", 1)[1] for p in problems] == [
        declared + '{"Email":"attacker@example.com"}',
        declared + '{"Email":null,"Phone":null}',
        declared + '{"Email":null,"HasOptedOutOfEmail":false}',
    ]
    hs_plan = scan(hubspot().view(), HS, [NAME], settings={NAME: {"action": "delete"}}).plan
    assert hs_plan.changes and scan_plan_problems(hs_plan, HS) == []
    forged_hs = [replace(hs_plan.changes[0], op=Op.UPDATE, after={"email": None, "hs_email_optout": True})]
    assert [p.split(": ", 1)[1] for p in scan_plan_problems(replace(hs_plan, changes=tuple(forged_hs)), HS)] == [
        'pass bounced_emails writes email=null, not {"email":null,"hs_email_optout":true}']


class _StrictConnector(FakeConnector):
    """Refuses reads of objects the org lacks, as the CRMs do (an org without cases: INVALID_TYPE)."""

    def read_related(self, object_name: str, field: str, values: Sequence[str], fields: Sequence[str]) -> list[Record]:
        if object_name not in self._fields:
            raise AssertionError(f"read of {object_name}, which the org does not have")
        return super().read_related(object_name, field, values, fields)


def test_apply_re_checks_a_removal_on_an_org_without_cases_and_one_put_on_an_open_case() -> None:
    org = salesforce()
    plan = scan(org.view(), SF, [NAME], settings={NAME: {"action": "delete"}}).plan
    removals = [c for c in plan.changes if c.record_id in ("003B1", "003B4")]
    without_cases = {o: org.fields[o] for o in org.fields if o != "Case"}
    connector = _StrictConnector(without_cases, {o: org.rows[o] for o in without_cases}, vocabulary=SF)
    # The field names are the org's (apply takes them from its snapshot, else a describe): no Case here.
    checker = LiveChecker(connector, ApplyTimeRules(), plan.header.pass_settings, NOW,
                          lambda obj: {f.name for f in connector.fields(obj)})
    live = {c.record_id: dict(c.before) for c in removals}
    assert checker.verdicts(removals, live) == [None, None]
    rows = {o: org.rows[o] for o in org.fields}
    rows["Case"] = [{"Id": "500N1", "ContactId": "003B4", "IsClosed": False}]
    # An object the org lacks (it has no events) is one the describe does not know, as on a CRM.
    strict = _StrictConnector(dict(org.fields), rows, vocabulary=SF)
    checker = LiveChecker(strict, ApplyTimeRules(), plan.header.pass_settings, NOW,
                          lambda obj: {f.name for f in strict.fields(obj)})
    assert checker.verdicts(removals, live) == [None, ("no longer qualifies", "now on an open case (500N1)")]


# The remote server's reply, as Salesforce keeps it in EmailBouncedReason, and what the pass makes of it with the
# default soft_reasons: None for a hard bounce (a bad address: cleared), else the hold-back reason.
SOFT = "soft bounce, the address may still work (EmailBouncedReason {})"
TRANSIENT = "has a transient SMTP code (4xx or 4.x.x)"
REPLIES = {
    "003H1": ("550 5.1.1 <003H1@Example.com>: Recipient address rejected: User unknown", None),  # its own
    "003H2": ("550 5.1.0 Address rejected", None),
    "003H3": ("550 No such user here", None),
    "003H4": ("550-5.1.1 The email account that you tried to reach does not exist", None),
    # Salesforce records a bounce only once its own bounce handling took the reply as one: no reason, still hard.
    "003H5": ("", None),
    "003H6": (None, None),
    "003S1": ("552 5.2.2 Mailbox full", SOFT.format('says "mailbox full"')),
    "003S2": ("552-5.2.2 The email account that you tried to reach is over quota", SOFT.format('says "over quota"')),
    "003S3": ("554 5.7.1 Message rejected as SPAM", SOFT.format('says "spam"')),
    "003S4": ("421 4.7.0 Temporarily deferred", SOFT.format('says "temporarily"')),
    "003S5": ("550 5.7.26 Unauthenticated email is not accepted from this domain", SOFT.format('says "5.7."')),
    "003S6": ("450 Requested mail action not taken: mailbox unavailable",
              SOFT.format("has a transient SMTP code (4xx or 4.x.x)")),
    "003S7": ("smtp; 451 4.3.0 Mail server error", SOFT.format("has a transient SMTP code (4xx or 4.x.x)")),
    "003S8": ("550 4.4.7 Message expired", SOFT.format("has a transient SMTP code (4xx or 4.x.x)")),
}


def replies_org() -> Org:
    org = sf_org()
    for rid, (reason, _) in REPLIES.items():
        org.add("Contact", rid, Name=rid, Email=f"{rid}@example.com", EmailBouncedDate=BOUNCED,
                EmailBouncedReason=reason, HasOptedOutOfEmail=False)
    # An address at a mail host with 4 in its name, and a 5.x.x code that is not 4.x.x: hard all the same.
    org.add("Contact", "003H7", Name="Host", Email="h@mx4.4.example.com", EmailBouncedDate=BOUNCED,
            EmailBouncedReason="550 5.1.1 <h@mx4.4.example.com> unknown; relay 10.4.4.4", HasOptedOutOfEmail=False)
    # Soft bounces that are no candidates at all, so not held back either: no address left, a converted lead.
    org.add("Contact", "003N1", Name="No Address", Email=None, EmailBouncedDate=BOUNCED,
            EmailBouncedReason="552 5.2.2 Mailbox full")
    org.add("Lead", "00QN1", Name="Converted", Email="c@example.com", EmailBouncedDate=BOUNCED,
            EmailBouncedReason="452 4.2.2 over quota", IsConverted=True)
    return org


def test_salesforce_holds_back_soft_and_policy_bounces_and_clears_the_hard_ones() -> None:
    out = run_pass(NAME, replies_org().view(), SF)
    assert ids(out) == ["003H1", "003H2", "003H3", "003H4", "003H5", "003H6", "003H7"]
    held: dict[str, int] = {}
    for _, why in REPLIES.values():
        if why is not None:
            held[why] = held.get(why, 0) + 1
    assert out.held_back == held
    # Each hold-back reason lists its people by id.
    assert out.notes == ["1 converted Lead record left alone (IsConverted true)",
                         'held back, ' + SOFT.format('says "mailbox full"') + ': Contact 003S1',
                         'held back, ' + SOFT.format('says "over quota"') + ': Contact 003S2',
                         'held back, ' + SOFT.format('says "spam"') + ': Contact 003S3',
                         'held back, ' + SOFT.format('says "temporarily"') + ': Contact 003S4',
                         'held back, ' + SOFT.format('says "5.7."') + ': Contact 003S5',
                         "held back, " + SOFT.format(TRANSIENT) + ": Contact 003S6, 003S7, 003S8"]
    # The same on a removal: a soft-bounced person is not deleted either.
    out = run_pass(NAME, replies_org().view(), SF, action="delete")
    assert ids(out) == ["003H1", "003H2", "003H3", "003H4", "003H5", "003H6", "003H7"]
    assert out.held_back == held


def test_the_scan_holds_soft_bounces_back_and_counts_them_by_reason() -> None:
    result = scan(replies_org().view(), SF, [NAME])
    assert ids(result) == ["003H1", "003H2", "003H3", "003H4", "003H5", "003H6", "003H7"]
    assert sum(result.held_back[NAME].values()) == 8
    assert result.held_back[NAME][SOFT.format("has a transient SMTP code (4xx or 4.x.x)")] == 3


def test_soft_reasons_add_words_and_never_drop_a_built_in_one() -> None:
    # An admin's own word holds back its bounces; the built-in words and codes still hold back theirs.
    out = run_pass(NAME, replies_org().view(), SF, soft_reasons=["NO SUCH user", "(.*)"])
    assert ids(out) == ["003H1", "003H2", "003H4", "003H5", "003H6", "003H7"]
    assert out.held_back[SOFT.format('says "NO SUCH user"')] == 1 and sum(out.held_back.values()) == 9
    # A list that once replaced the built-in words (a config of before): it only adds to them.
    out = run_pass(NAME, replies_org().view(), SF, soft_reasons=["blocked"])
    assert ids(out) == ["003H1", "003H2", "003H3", "003H4", "003H5", "003H6", "003H7"]
    assert out.held_back[SOFT.format('says "mailbox full"')] == 1


def test_soft_reasons_must_be_words() -> None:
    with pytest.raises(BadInput) as caught:
        validate_settings(NAME, {"soft_reasons": ["mailbox full", "  "]})
    assert str(caught.value) == ("[passes.bounced_emails] soft_reasons holds an empty entry, which every reason "
                                 "contains: remove it")
    with pytest.raises(BadInput) as caught:
        validate_settings(NAME, {"soft_reasons": "mailbox full"})
    assert str(caught.value) == "[passes.bounced_emails] soft_reasons must be a list of strings, not 'mailbox full'"


def test_the_live_re_check_judges_the_reason_as_the_scan_does() -> None:
    out = run_pass(NAME, replies_org().view(), SF)
    change = out.changes[0]
    live = {"Email": change.before["Email"], "EmailBouncedDate": BOUNCED}
    # Each reply the scan would have held back refuses the change at apply, with the scan's words.
    for reason, why in REPLIES.values():
        verdict = recheck(change, SF, {**live, "EmailBouncedReason": reason})
        if why is None:
            assert verdict is None, reason
        else:
            assert verdict == "the bounce now reads as soft" + why.removeprefix(
                "soft bounce, the address may still work"), reason
    # With the settings the plan was scanned with.
    assert recheck(change, SF, {**live, "EmailBouncedReason": "550 No such user here"},
                   soft_reasons=["no such user"]) == (
        'the bounce now reads as soft (EmailBouncedReason says "no such user")')
    # A plan scanned before soft_reasons existed is re-checked with the defaults.
    assert recheck(change, SF, {**live, "EmailBouncedReason": "552 5.2.2 Mailbox full"}) is not None


def test_a_snapshot_without_the_reason_cannot_tell_soft_from_hard_and_is_not_judged() -> None:
    org = replies_org().without("Contact", "EmailBouncedReason")
    out = run_pass(NAME, org.view(), SF)
    assert out.changes == [] and out.held_back == {}
    assert out.notes == ["Contact was not judged: the snapshot lacks EmailBouncedReason",
                         "1 converted Lead record left alone (IsConverted true)"]


def test_the_example_config_shows_the_default_soft_reasons() -> None:
    from pathlib import Path

    from crmsweep.cleanup.passes import PASSES
    from crmsweep.config import load_config

    example = load_config(Path(__file__).resolve().parent.parent / "config.example.toml")
    assert example.passes[NAME]["soft_reasons"] == PASSES[NAME].defaults["soft_reasons"]


# HubSpot files spam and policy refusals, and full mailboxes, among its hard bounces; its reply text is judged as
# Salesforce's is, but a contact HubSpot flags as a bad address is hard whatever the reply reads.
HS_SOFT = "soft bounce, the address may still work (hs_email_hard_bounce_reason {})"
HS_REPLY = "hs_email_hard_bounce_reason"


# Contact id: its address, hard-bounce reason (enum, reply text) and bad-address flag.
HS_BOUNCES: dict[str, tuple[str | None, str | None, str | None, bool | None]] = {
    "311": ("flagged@example.com", "MAILBOX_FULL", "552 5.2.2 mailbox full", True),  # flagged: hard all the same
    "312": ("full@example.com", "MAILBOX_FULL", "552 5.2.2 mailbox full", None),
    "313": ("policy@example.com", "OTHER", "550 5.7.606 access denied, banned sender", False),
    "314": ("noreply@example.com", "UNKNOWN_USER", None, None),
    "315": ("unknown@example.com", "UNKNOWN_USER", "550 5.1.1 mailbox does not exist", None),
    "316": ("bad@example.com", None, None, True),  # flagged with no reason at all: a bounce, and a hard one
    # A soft reply on a contact with no address left is no candidate, so no hold-back either.
    "317": (None, "SPAM", "554 5.7.1 message rejected as spam", None),
}


def hubspot_replies() -> Org:
    org = hs_org()
    for rid, (email, enum, reply, bad) in HS_BOUNCES.items():
        org.add("contacts", rid, email=email, hs_email_hard_bounce_reason_enum=enum, hs_email_hard_bounce_reason=reply,
                hs_email_bad_address=bad)
    return org


def test_hubspot_judges_the_reply_but_a_bad_address_flag_stays_hard() -> None:
    held = {HS_SOFT.format('says "mailbox full"'): 1, HS_SOFT.format('says "5.7."'): 1}
    for action, op in (("clear", Op.UPDATE), ("delete", Op.ARCHIVE)):
        out = run_pass(NAME, hubspot_replies().view(), HS, action=action)
        assert [(c.record_id, c.op) for c in out.changes] == [("311", op), ("314", op), ("315", op), ("316", op)]
        assert out.held_back == held, action
    result = scan(hubspot_replies().view(), HS, [NAME])
    assert ids(result) == ["311", "314", "315", "316"] and result.held_back[NAME] == held


def test_the_hubspot_live_re_check_judges_the_reply_unless_the_address_is_flagged_bad() -> None:
    flagged, _, unknown, _ = run_pass(NAME, hubspot_replies().view(), HS).changes
    full = {"email": "flagged@example.com", "hs_email_hard_bounce_reason_enum": "MAILBOX_FULL",
            HS_REPLY: "552 5.2.2 mailbox full"}
    assert recheck(flagged, HS, {**full, "hs_email_bad_address": "true"}) is None
    assert recheck(flagged, HS, {**full, "hs_email_bad_address": "false"}) == (
        'the bounce now reads as soft (hs_email_hard_bounce_reason says "mailbox full")')
    live = {"email": "unknown@example.com", "hs_email_hard_bounce_reason_enum": "UNKNOWN_USER"}
    assert recheck(unknown, HS, {**live, HS_REPLY: "550 5.1.1 mailbox does not exist"}) is None
    assert recheck(unknown, HS, {**live, HS_REPLY: "554 5.7.1 message rejected as spam"}) == (
        'the bounce now reads as soft (hs_email_hard_bounce_reason says "spam")')
    # Apply reads the reply and the flag to judge so; the backup takes the reply for the scan.
    spec = PASSES[NAME]
    assert spec.live_check is not None
    assert {HS_REPLY, "hs_email_bad_address"} <= set(spec.live_check.needs(HS, "contacts").fields)
    assert [(r.object, r.fields) for r in spec.reads(HS) if r.object == "contacts"] == [
        ("contacts", ("id", "email", "hs_email_hard_bounce_reason_enum", "hs_email_bad_address", HS_REPLY))]


def test_a_hubspot_snapshot_without_the_reply_is_not_judged() -> None:
    org = hubspot_replies().without("contacts", HS_REPLY)
    out = run_pass(NAME, org.view(), HS)
    assert out.changes == [] and out.held_back == {}
    assert out.notes == ["contacts was not judged: the snapshot lacks hs_email_hard_bounce_reason"]


# Replies the built-in judgement once read as hard though they say the failure passes, and hard ones that stay hard:
# the exact verdict of soft_bounce for each.
VERDICTS = {
    "Remote host said: 451 Temporary local problem - please try later": 'says "temporary"',
    "host mx.example.com said: 421 Service not available, closing channel": TRANSIENT,
    "452 4.2.2 mailbox full": 'says "mailbox full"',
    "Greylisted for 5 minutes": 'says "greylist"',
    "550 5.7.0 rate limited": 'says "rate limit"',
    "Diagnostic-Code: smtp; 450 mailbox busy": TRANSIENT,
    "reply: 421-4.7.0 Try again in a while": TRANSIENT,
    "550 5.1.1 user unknown": None,
    "550 No such user here": None,
    "550 5.1.1 Recipient address rejected: check the address and try again": None,  # "try again" alone: hard
    "550 5.1.1 unknown; relay 10.4.4.4 port 25": None,
    "5504 not a code": None,
}


@pytest.mark.parametrize("reply", sorted(VERDICTS))
def test_soft_bounce_reads_each_reply_exactly(reply: str) -> None:
    from crmsweep.cleanup.passes.bounced_emails import soft_bounce

    assert soft_bounce(reply) == VERDICTS[reply]


def test_a_bounce_that_names_another_address_holds_the_person_back_at_scan_and_at_apply() -> None:
    org = sf_org()
    org.add("Contact", "003A1", Name="Moved", Email="new@example.com", EmailBouncedDate=BOUNCED,
            EmailBouncedReason="550 5.1.1 <old@example.com>: user unknown", HasOptedOutOfEmail=False)
    org.add("Contact", "003A2", Name="Same", Email="Same@Example.com", EmailBouncedDate=BOUNCED,
            EmailBouncedReason="550 5.1.1 <same@example.COM>: user unknown", HasOptedOutOfEmail=False)
    out = run_pass(NAME, org.view(), SF)
    other = "the bounce names another address, not the one now held (EmailBouncedReason)"
    assert ids(out) == ["003A2"] and out.held_back == {other: 1}
    assert out.notes == [f"held back, {other}: Contact 003A1"]
    live = {"Email": "Same@Example.com", "EmailBouncedDate": BOUNCED,
            "EmailBouncedReason": "550 5.1.1 <same@example.com>: user unknown"}
    assert recheck(out.changes[0], SF, live) is None
    assert recheck(out.changes[0], SF, {**live, "EmailBouncedReason": "550 5.1.1 <old@example.com>: unknown"}) == other
    # HubSpot's bad-address flag does not make a bounce of another address hard.
    hs = hs_org()
    hs.add("contacts", "401", email="new@example.com", hs_email_hard_bounce_reason_enum="UNKNOWN_USER",
           hs_email_hard_bounce_reason="550 5.1.1 <old@example.com> unknown", hs_email_bad_address=True)
    out = run_pass(NAME, hs.view(), HS)
    assert out.changes == [] and out.held_back == {other.replace("EmailBouncedReason", HS_REPLY): 1}


def test_a_plan_scanned_with_a_replacing_list_holds_back_the_built_in_soft_bounces_at_apply() -> None:
    change = run_pass(NAME, replies_org().view(), SF).changes[0]
    live = {"Email": change.before["Email"], "EmailBouncedDate": BOUNCED,
            "EmailBouncedReason": "552 5.2.2 Mailbox full"}
    assert recheck(change, SF, live, soft_reasons=["blocked"]) == (
        'the bounce now reads as soft (EmailBouncedReason says "mailbox full")')

"""A deterministic, realistically messy HubSpot portal for the sandbox, the twin of `seed.py`'s org.

`records` is the number of contacts; the rest scales from it:

| object / document        | count                                   |
|--------------------------|-----------------------------------------|
| owners (= users)         | max(8, records // 100)                  |
| companies                | max(10, records // 5)                   |
| contacts                 | records (duplicate twins included)      |
| deals                    | max(10, records // 4)                   |
| tasks                    | max(10, records // 2)                   |
| tickets                  | max(5, records // 20)                   |
| notes / calls            | max(5, records // 10) / max(5, records // 20), each on a contact |
| lists                    | 12 (4 dynamic, with property filters)   |
| marketing emails         | 15, each sent to a list                 |
| campaigns                | 6                                       |

The mess, planted by slicing a seeded shuffle (`seed._slices`), so counts are exact (`PlantedCounts`):
deactivated owners (max(2, 25% of owners): archived owners, `userId` null, not in the users list)
who still own contacts, companies, deals and at least two open tasks each; stale contacts (10%
with only old activity, 10% with none, all created and last modified 3+ years ago); hard-bounced
contacts (5%: `hs_email_hard_bounce_reason_enum`, the reason text, `hs_email_bounce`; every third a bad
address, `hs_email_bad_address` true, the others drawn from all of `BOUNCES`, refusals included); contacts
without email or phone (4%); duplicate contact pairs (1%: same name and phone with another email,
or the twin's email among the original's `hs_additional_emails`); duplicate company pairs (same
domain); companies without contacts (10%); open deals past their closedate (15%); two stale
contacts on open deals (which the stale pass must protect); unused custom properties (3 on
contacts, 2 on companies, 1 on deals: defined, never filled); unused lists (5: empty, untouched
for over a year) and one deleted list (restorable); old marketing emails (6: not updated for two
years) and one archived email.

Then `hubspot_seed_assets.plant` fills what the cleanup passes read beyond that (states, tickets on
companies, campaigns, list filters, the lists emails are sent to), keeps the filler clear of every
pass's cut-off, plants each pass's candidates, held-back ones and near-misses, and works out the ids
each pass must propose (`PortalData.planted`, written to `planted.json` beside the state).

Everything comes from one `random.Random(seed)` and the anchor time: the same (records, seed,
anchor) gives the same ids and values.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from crmsweep.sandbox.hubspot_portal import (
    EMAIL_KIND,
    GROUP_KIND,
    LIST_KIND,
    OWNER_KIND,
    PROPERTY_KIND,
    USER_KIND,
)
from crmsweep.sandbox.hubspot_schema import (
    DEFAULT_PROPERTIES,
    ENUM,
    NUMBER,
    OBJECT_TYPES,
    PROPERTY_GROUPS,
    STRING,
    AssociationType,
    PropertyDef,
    association_types,
    default_group,
    inverse_association,
)
from crmsweep.sandbox.hubspot_store import HubSpotStore, ObjectRow
from crmsweep.sandbox.hubspot_values import format_ts
from crmsweep.sandbox.planted import record_planted
from crmsweep.sandbox.seed import _slices
from crmsweep.sandbox.seed_words import CITIES, COMPANY_SUFFIXES, COMPANY_WORDS, FIRST_NAMES, LAST_NAMES, email_for

STALE_DAYS = 3 * 365  # stale contacts were created and last touched at least this long ago
ID_START = {"contacts": 101, "companies": 5_001, "deals": 9_001, "tasks": 20_001, "tickets": 40_001, "notes": 50_001,
            "calls": 55_001}
OWNER_ID_BASE = 71_000_000
USER_ID_BASE = 9_100_000
CUSTOM_PROPERTIES: dict[str, tuple[tuple[PropertyDef, bool], ...]] = {  # (definition, used)
    "contacts": (
        (PropertyDef("preferred_language", "Preferred language", ENUM, hubspot_defined=False,
                     options=("en", "de", "fr", "es", "ja")), True),
        (PropertyDef("customer_tier", "Customer tier", ENUM, hubspot_defined=False, options=("gold", "silver",
                                                                                            "bronze")), True),
        (PropertyDef("legacy_fax_number", "Fax (legacy import)", STRING, hubspot_defined=False), False),
        (PropertyDef("trade_show_2019", "Trade show 2019 badge", STRING, hubspot_defined=False), False),
        (PropertyDef("old_region_code", "Region code (old)", STRING, hubspot_defined=False), False),
    ),
    "companies": (
        (PropertyDef("account_tier", "Account tier", ENUM, hubspot_defined=False, options=("strategic", "core",
                                                                                          "long_tail")), True),
        (PropertyDef("legacy_erp_id", "ERP id (legacy)", STRING, hubspot_defined=False), False),
        (PropertyDef("sic_code_2015", "SIC code (2015)", NUMBER, hubspot_defined=False), False),
    ),
    "deals": (
        (PropertyDef("deal_source", "Deal source", ENUM, hubspot_defined=False,
                     options=("inbound", "outbound", "partner")), True),
        (PropertyDef("old_forecast_category", "Forecast category (old)", STRING, hubspot_defined=False), False),
    ),
}
BAD_ADDRESS = ("UNKNOWN_USER", "550 5.1.1 mailbox does not exist")
# Refusals HubSpot files among its hard bounces though the address may be good (knowledge base, "Email bounce
# types"): bounced_emails holds them back by their reply.
REFUSALS = (("MAILBOX_FULL", "552 5.2.2 mailbox full"), ("SPAM", "554 5.7.1 message rejected as spam"),
            ("OTHER", "550 5.7.606 access denied, banned sender"))
BOUNCES = (BAD_ADDRESS, *REFUSALS)
OPEN_STAGES = ("appointmentscheduled", "qualifiedtobuy", "presentationscheduled", "decisionmakerboughtin",
               "contractsent")
OPEN_TASK_STATUSES = ("NOT_STARTED", "IN_PROGRESS", "WAITING", "DEFERRED")
INDUSTRIES = ("COMPUTER_SOFTWARE", "MACHINERY", "RETAIL", "FINANCIAL_SERVICES", "HOSPITAL_HEALTH_CARE",
              "EDUCATION_MANAGEMENT")
LIST_NAMES = ("Newsletter subscribers", "Webinar attendees 2021", "Trade show leads 2019", "Customers EMEA",
              "Churn risk", "Q3 2020 campaign", "Imported from spreadsheet", "Test list (do not use)",
              "Enterprise prospects", "Event follow-up 2018", "Partners", "Old nurture track")


@dataclass
class PlantedCounts:
    """How much of each kind of mess the seed planted: exact, for tests and the docs."""

    owners: int = 0
    deactivated_owners: int = 0
    companies: int = 0
    contacts: int = 0
    deals: int = 0
    tasks: int = 0
    tickets: int = 0
    notes: int = 0
    calls: int = 0
    stale_contacts: int = 0
    stale_contacts_on_open_deals: int = 0
    bounced_contacts: int = 0
    unreachable_contacts: int = 0
    duplicate_contact_pairs: int = 0
    duplicate_company_pairs: int = 0
    companies_without_contacts: int = 0
    deals_open_past_close: int = 0
    open_tasks_of_deactivated_owners: int = 0
    records_of_deactivated_owners: int = 0
    unused_custom_properties: dict[str, int] = field(default_factory=dict)
    unused_lists: int = 0
    deleted_lists: int = 0
    old_marketing_emails: int = 0
    archived_marketing_emails: int = 0
    ids: dict[str, list[int]] = field(default_factory=dict)  # planted record ids by kind of mess


@dataclass
class PortalData:
    anchor: datetime
    portal_id: int
    objects: list[ObjectRow] = field(default_factory=list)
    associations: list[tuple[str, int, str, int, int, str]] = field(default_factory=list)
    docs: list[tuple[str, str, dict[str, Any], bool]] = field(default_factory=list)  # kind, key, data, archived
    counts: PlantedCounts = field(default_factory=PlantedCounts)
    next_ids: dict[str, int] = field(default_factory=dict)
    planted: dict[str, dict[str, Any]] = field(default_factory=dict)  # per pass, for planted.json


class _Gen:
    def __init__(self, seed: int, anchor: datetime) -> None:
        self.r = random.Random(seed)
        self.anchor = anchor.replace(microsecond=anchor.microsecond // 1000 * 1000)
        self.next = dict(ID_START)

    def ago(self, low_days: float, high_days: float) -> datetime:
        return self.anchor - timedelta(seconds=self.r.uniform(low_days, high_days) * 86400)

    def between(self, start: datetime, end: datetime) -> datetime:
        return start if end <= start else start + (end - start) * self.r.random()

    def new_id(self, kind: str) -> int:
        value = self.next[kind]
        self.next[kind] = value + 1
        return value

    def phone(self) -> str:
        a, b, c = self.r.randint(201, 989), self.r.randint(200, 999), self.r.randint(0, 9999)
        return self.r.choice((f"({a}) {b}-{c:04d}", f"+1 {a} {b} {c:04d}", f"+44 20 7{b} {c:04d}"))


def _row(kind: str, record_id: int, created: datetime, modified: datetime, props: dict[str, Any]) -> ObjectRow:
    o = OBJECT_TYPES[kind]
    created_name = "createdate" if kind in ("contacts", "companies", "deals", "tickets") else "hs_createdate"
    stamp_c, stamp_m = format_ts(created), format_ts(max(created, modified))
    values = {k: v for k, v in props.items() if v is not None}
    values.update({created_name: stamp_c, o.modified_property: stamp_m, "hs_object_id": str(record_id)})
    return ObjectRow(kind, record_id, False, None, stamp_c, stamp_m, values)


def link(data: PortalData, from_type: str, from_id: int, to_type: str, to_id: int, *, primary: bool = False) -> None:
    types: Sequence[AssociationType] = association_types(from_type, to_type)
    for assoc in types:
        if assoc.label is None or (primary and assoc.label == "Primary"):
            inverse = inverse_association(assoc)
            data.associations.append((from_type, from_id, to_type, to_id, assoc.type_id, assoc.category))
            if inverse is not None:
                data.associations.append((to_type, to_id, from_type, from_id, inverse.type_id, inverse.category))


def _definitions(data: PortalData, created: str) -> None:
    for name, o in OBJECT_TYPES.items():
        for group, label in PROPERTY_GROUPS[name]:
            data.docs.append((GROUP_KIND + name, group, {"name": group, "label": label, "displayOrder": -1,
                                                         "archived": False}, False))
        customs = [p for p, _ in CUSTOM_PROPERTIES.get(name, ())]
        for prop in (*DEFAULT_PROPERTIES[name], *customs):
            definition = prop.to_json(o, created)
            definition["groupName"] = default_group(name, prop)
            data.docs.append((PROPERTY_KIND + name, prop.name, definition, False))
        if name in CUSTOM_PROPERTIES:
            data.counts.unused_custom_properties[name] = sum(not used for _, used in CUSTOM_PROPERTIES[name])


def generate(records: int, seed: int, anchor: datetime) -> PortalData:
    """The whole portal. Pure: no I/O; the same inputs give the same output."""
    if records < 1:
        raise ValueError("records (the number of contacts) must be at least 1")
    g = _Gen(seed, anchor)
    r = g.r
    data = PortalData(anchor=g.anchor, portal_id=40_000_000 + seed % 1_000_000)
    counts = data.counts
    _definitions(data, format_ts(g.anchor - timedelta(days=2200)))

    # --- owners and users ------------------------------------------------------------------------
    n_owners = max(8, records // 100)
    n_off = max(2, round(n_owners * 0.25))
    owner_ids: list[str] = []
    off_owners: list[str] = []
    for i in range(n_owners):
        first, last = r.choice(FIRST_NAMES), r.choice(LAST_NAMES)
        email = email_for(first, last, "acme.example").replace("@", f"{i}@")
        owner_id, user_id = str(OWNER_ID_BASE + i + 1), USER_ID_BASE + i + 1
        off = i >= n_owners - n_off
        created = g.ago(200, 2200)
        owner = {"id": owner_id, "email": email, "firstName": first, "lastName": last, "type": "PERSON",
                 "userId": None if off else user_id, "userIdIncludingInactive": user_id,
                 "createdAt": format_ts(created), "updatedAt": format_ts(g.between(created, g.ago(30, 400))),
                 "archived": off, "teams": [{"id": "1001", "name": "Sales", "primary": True}]}
        data.docs.append((OWNER_KIND, owner_id, owner, off))
        if not off:
            data.docs.append((USER_KIND, str(user_id), {
                "id": str(user_id), "email": email, "firstName": first, "lastName": last,
                "roleIds": ["2001"], "primaryTeamId": "1001", "secondaryTeamIds": [], "superAdmin": i == 0,
            }, False))
        (off_owners if off else owner_ids).append(owner_id)
    all_owners = owner_ids + off_owners
    counts.owners, counts.deactivated_owners = n_owners, n_off
    counts.ids["deactivated_owners"] = [int(o) for o in off_owners]

    # --- companies -------------------------------------------------------------------------------
    n_companies = max(10, records // 5)
    n_company_pairs = max(1, n_companies // 50)
    co_slices = _slices(r, n_companies - n_company_pairs, (("no_contacts", 0.10, 1), ("dup", 0, n_company_pairs)))
    companies: list[ObjectRow] = []
    for i in range(n_companies - n_company_pairs):
        city, _, country = r.choice(CITIES)
        word = r.choice(COMPANY_WORDS)
        created = g.ago(30, 2500)
        row = _row("companies", g.new_id("companies"), created, g.between(created, g.anchor), {
            "name": f"{word} {r.choice(COMPANY_SUFFIXES)}", "domain": f"{word.lower().replace(' ', '')}{i}.example",
            "city": city, "country": country, "industry": r.choice(INDUSTRIES),
            "phone": g.phone() if r.random() < 0.8 else None, "hubspot_owner_id": r.choice(all_owners),
            "numberofemployees": str(r.choice((5, 12, 50, 120, 800, 4500))),
            "account_tier": r.choice(("strategic", "core", "long_tail", None)),
        })
        companies.append(row)
    for i in sorted(co_slices["dup"]):
        source = companies[i]
        created = g.ago(1, 600)
        twin = _row("companies", g.new_id("companies"), created, g.between(created, g.anchor), {
            **{k: v for k, v in source.properties.items() if k in ("name", "domain", "city", "country")},
            "hubspot_owner_id": r.choice(owner_ids),
        })
        companies.append(twin)
    no_contact_companies = {companies[i].id for i in co_slices["no_contacts"]}
    # twins have no contacts of their own either; they are counted as duplicates, not as "without contacts"
    twins = {c.id for c in companies[n_companies - n_company_pairs:]}
    linkable = [c for c in companies if c.id not in no_contact_companies and c.id not in twins]
    counts.companies, counts.duplicate_company_pairs = n_companies, n_company_pairs
    counts.ids["duplicate_companies"] = sorted(twins)

    # --- contacts --------------------------------------------------------------------------------
    n_pairs = max(2, records // 100) if records >= 20 else 0
    n_base = records - n_pairs
    c_slices = _slices(r, n_base, (
        ("stale_old_activity", 0.10, 3), ("stale_no_activity", 0.10, 3), ("bounced", 0.05, 3),
        ("unreachable", 0.04, 3), ("dup_source", n_pairs / n_base if n_base else 0, n_pairs),
    ))
    stale = c_slices["stale_old_activity"] | c_slices["stale_no_activity"]
    contacts: list[ObjectRow] = []
    contact_company: dict[int, int] = {}
    bounced = 0
    for i in range(n_base):
        # The first contacts cover every linkable company once, so only the planted ones stay empty.
        company = linkable[i] if i < len(linkable) else r.choice(linkable) if r.random() > 0.03 else None
        first, last = r.choice(FIRST_NAMES), r.choice(LAST_NAMES)
        domain = company.properties["domain"] if company else "mail.example"
        props: dict[str, Any] = {
            "firstname": first, "lastname": last, "email": email_for(first, last, str(domain)).replace(
                "@", f"{i}@"),
            "phone": g.phone() if r.random() < 0.75 else None,
            "mobilephone": g.phone() if r.random() < 0.4 else None,
            "city": r.choice(CITIES)[0], "jobtitle": r.choice(("CEO", "CFO", "VP Sales", "Buyer", "Engineer", None)),
            "company": company.properties["name"] if company else None,
            "hubspot_owner_id": r.choice(all_owners),
            "lifecyclestage": r.choice(("lead", "marketingqualifiedlead", "customer", "opportunity", "subscriber")),
            "preferred_language": r.choice(("en", "de", "fr", None)),
            "customer_tier": r.choice(("gold", "silver", None, None)),
        }
        if i in stale:
            created = g.ago(1800, 3000)
            modified = g.between(created, g.ago(STALE_DAYS + 5, STALE_DAYS + 60))
            if i in c_slices["stale_old_activity"]:
                last_touch = g.between(created, modified)
                props["notes_last_updated"] = format_ts(last_touch)
                props["notes_last_contacted"] = format_ts(last_touch)
                props["hs_email_last_open_date"] = format_ts(g.between(created, last_touch))
        else:
            created = g.ago(1, 1000)
            modified = g.between(created, g.anchor)
            if r.random() < 0.85:
                props["notes_last_updated"] = format_ts(g.between(created, g.anchor))
                props["hs_last_sales_activity_timestamp"] = props["notes_last_updated"]
        if i in c_slices["bounced"]:
            reason, text = r.choice(BOUNCES)
            # Every third a bad address whatever the draw, so that even a small portal has some to clear beside
            # the refusals held back; drawn all the same, which leaves the rest of the portal as it was seeded.
            if bounced % 3 == 0:
                reason, text = BAD_ADDRESS
            bounced += 1
            props.update(hs_email_hard_bounce_reason_enum=reason, hs_email_hard_bounce_reason=text,
                         hs_email_bounce="1", hs_email_bad_address="true" if reason == "UNKNOWN_USER" else None)
        if i in c_slices["unreachable"]:
            props["email"] = props["phone"] = props["mobilephone"] = None
        row = _row("contacts", g.new_id("contacts"), created, modified, props)
        contacts.append(row)
        if company is not None:
            contact_company[row.id] = company.id
    dup_twins = []
    for n, i in enumerate(sorted(c_slices["dup_source"])):
        source = contacts[i]
        props = {k: v for k, v in source.properties.items()
                 if k in ("firstname", "lastname", "phone", "company", "city", "jobtitle", "hubspot_owner_id")}
        props["email"] = email_for(str(source.properties.get("firstname")), str(source.properties.get("lastname")),
                                   "mail.example").replace("@", f".{n}@")
        if n % 2 == 0:  # same name and phone, another address
            props["phone"] = source.properties["phone"] = source.properties.get("phone") or g.phone()
        else:  # the twin's address is one the original already lists as its own
            source.properties["hs_additional_emails"] = props["email"]
            props["phone"] = g.phone()
        created = g.ago(1, 600)
        twin = _row("contacts", g.new_id("contacts"), created, g.between(created, g.anchor), props)
        contacts.append(twin)
        dup_twins.append(twin.id)
        if source.id in contact_company:
            contact_company[twin.id] = contact_company[source.id]
    stale_ids = sorted(contacts[i].id for i in stale)
    counts.contacts, counts.duplicate_contact_pairs = records, n_pairs
    counts.stale_contacts = len(stale_ids)
    counts.bounced_contacts = len(c_slices["bounced"])
    counts.unreachable_contacts = len(c_slices["unreachable"])
    counts.ids.update(stale_contacts=stale_ids,
                      bounced_contacts=sorted(contacts[i].id for i in c_slices["bounced"]),
                      unreachable_contacts=sorted(contacts[i].id for i in c_slices["unreachable"]),
                      duplicate_contacts=dup_twins)
    for contact_id, company_id in contact_company.items():
        link(data, "contacts", contact_id, "companies", company_id, primary=True)
    # A duplicate company shares a contact with its original (linked, not primary), as duplicates do.
    originals = companies[: n_companies - n_company_pairs]
    first_contact: dict[int, int] = {}
    for contact_id, company_id in contact_company.items():
        first_contact.setdefault(company_id, contact_id)
    for source_index, twin in zip(sorted(co_slices["dup"]), companies[n_companies - n_company_pairs:], strict=True):
        shared = first_contact.get(originals[source_index].id)
        if shared is not None:
            link(data, "contacts", shared, "companies", twin.id)
    linked = {company for _, _, to_type, company, _, _ in data.associations if to_type == "companies"}
    empty = sorted(c.id for c in companies if c.id not in linked)
    counts.companies_without_contacts = len(empty)
    counts.ids["companies_without_contacts"] = empty

    # --- deals -----------------------------------------------------------------------------------
    n_deals = max(10, records // 4)
    d_slices = _slices(r, n_deals, (("past_close", 0.15, 2), ("closed", 0.30, 2)))
    deals: list[ObjectRow] = []
    open_deals: list[ObjectRow] = []
    stale_set = set(stale_ids)
    live_contacts = [c for c in contacts if c.id not in stale_set]
    for i in range(n_deals):
        created = g.ago(20, 900)
        if i in d_slices["closed"]:
            stage, close = r.choice(("closedwon", "closedlost")), g.between(created, g.anchor)
        elif i in d_slices["past_close"]:
            stage, close = r.choice(OPEN_STAGES), g.ago(10, 400)
        else:
            stage, close = r.choice(OPEN_STAGES), g.anchor + timedelta(days=r.uniform(5, 200))
        company = r.choice(linkable)
        row = _row("deals", g.new_id("deals"), created, g.between(created, g.anchor), {
            "dealname": f"{company.properties['name']} - {r.choice(('Renewal', 'New business', 'Upsell'))}",
            "amount": str(r.choice((1200, 5000, 18000, 75000, 250000))), "pipeline": "default",
            "dealstage": stage, "closedate": format_ts(max(close, created)),
            "hs_is_closed": "true" if stage in ("closedwon", "closedlost") else "false",
            "hubspot_owner_id": r.choice(all_owners), "deal_source": r.choice(("inbound", "outbound", "partner")),
        })
        deals.append(row)
        if stage not in ("closedwon", "closedlost"):
            open_deals.append(row)
        link(data, "deals", row.id, "companies", company.id, primary=True)
        for contact in r.sample(live_contacts, k=min(len(live_contacts), r.randint(1, 2))):
            link(data, "contacts", contact.id, "deals", row.id)
    protected = stale_ids[:2]
    for contact_id, deal in zip(protected, open_deals, strict=False):
        link(data, "contacts", contact_id, "deals", deal.id)
    counts.deals, counts.deals_open_past_close = n_deals, len(d_slices["past_close"])
    counts.stale_contacts_on_open_deals = min(len(protected), len(open_deals))
    counts.ids["deals_open_past_close"] = sorted(deals[i].id for i in d_slices["past_close"])
    counts.ids["stale_contacts_on_open_deals"] = protected[: counts.stale_contacts_on_open_deals]

    # --- tasks and tickets -----------------------------------------------------------------------
    n_tasks = max(10, records // 2)
    tasks: list[ObjectRow] = []
    for _ in range(n_tasks):
        created = g.ago(1, 900)
        done = r.random() < 0.6
        contact = r.choice(contacts)
        row = _row("tasks", g.new_id("tasks"), created, g.between(created, g.anchor), {
            "hs_task_subject": r.choice(("Call", "Send quote", "Follow up", "Demo", "Renewal discussion")),
            "hs_task_status": "COMPLETED" if done else r.choice(OPEN_TASK_STATUSES),
            "hs_task_priority": r.choice(("LOW", "MEDIUM", "HIGH")), "hs_task_type": r.choice(("TODO", "CALL")),
            "hs_timestamp": format_ts(g.between(created, g.anchor + timedelta(days=30))),
            "hubspot_owner_id": r.choice(owner_ids),
        })
        tasks.append(row)
        link(data, "contacts", contact.id, "tasks", row.id)
    # Every deactivated owner keeps records and at least two open tasks: the inactive-owner pass's work.
    for n, owner_id in enumerate(off_owners):
        for task in tasks[2 * n : 2 * n + 2]:
            task.properties["hubspot_owner_id"] = owner_id
            if task.properties["hs_task_status"] == "COMPLETED":
                task.properties["hs_task_status"] = r.choice(OPEN_TASK_STATUSES)
        for pool in (contacts, companies, deals):
            pool[n % len(pool)].properties["hubspot_owner_id"] = owner_id
    off_set = set(off_owners)
    counts.tasks = n_tasks
    counts.open_tasks_of_deactivated_owners = sum(
        t.properties.get("hubspot_owner_id") in off_set and t.properties["hs_task_status"] != "COMPLETED"
        for t in tasks
    )
    counts.records_of_deactivated_owners = sum(
        row.properties.get("hubspot_owner_id") in off_set for row in (*contacts, *companies, *deals))
    n_tickets = max(5, records // 20)
    tickets = []
    for _ in range(n_tickets):
        created = g.ago(1, 400)
        tickets.append(_row("tickets", g.new_id("tickets"), created, g.between(created, g.anchor), {
            "subject": r.choice(("Login problem", "Invoice question", "Feature request", "Bug report")),
            "hs_pipeline": "0", "hs_pipeline_stage": r.choice(("1", "2", "3", "4")),
            "hs_ticket_priority": r.choice(("LOW", "MEDIUM", "HIGH")), "hubspot_owner_id": r.choice(owner_ids),
        }))
    counts.tickets = n_tickets
    engagements: list[ObjectRow] = []
    for kind, share in (("notes", 10), ("calls", 20)):
        for _ in range(max(5, records // share)):
            created = g.ago(1, 900)
            props = ({"hs_note_body": r.choice(("Left a voicemail.", "Asked for a quote.", "Prefers email."))}
                     if kind == "notes" else
                     {"hs_call_title": "Call", "hs_call_duration": str(r.randint(30, 1800) * 1000)})
            row = _row(kind, g.new_id(kind), created, created, {
                **props, "hs_timestamp": format_ts(created), "hubspot_owner_id": r.choice(owner_ids)})
            engagements.append(row)
            link(data, "contacts", r.choice(contacts).id, kind, row.id)
    counts.notes, counts.calls = (sum(e.type == kind for e in engagements) for kind in ("notes", "calls"))
    data.objects = [*companies, *contacts, *deals, *tasks, *tickets, *engagements]

    # --- lists and marketing emails --------------------------------------------------------------
    for n, name in enumerate(LIST_NAMES):
        unused, deleted = n in (1, 2, 5, 7, 9), n == 11
        created = g.ago(800, 2000) if unused else g.ago(30, 700)
        updated = g.between(created, g.ago(400, 800)) if unused else g.between(created, g.anchor)
        doc: dict[str, Any] = {"listId": str(n + 1), "name": name, "objectTypeId": "0-1",
               "processingType": "MANUAL" if n % 3 else "DYNAMIC", "processingStatus": "COMPLETE",
               "listVersion": 1 + n % 4, "size": 0 if unused else r.randint(5, max(6, records // 10)),
               "createdAt": format_ts(created), "updatedAt": format_ts(updated),
               "filtersUpdatedAt": format_ts(updated), "createdById": str(USER_ID_BASE + 1),
               "updatedById": str(USER_ID_BASE + 1)}
        if deleted:
            doc["deletedAt"] = format_ts(g.ago(5, 20))
        data.docs.append((LIST_KIND, str(n + 1), doc, deleted))
    counts.unused_lists, counts.deleted_lists = 5, 1
    counts.ids["unused_lists"] = [2, 3, 6, 8, 10]
    for n in range(15):
        old, archived = n < 6, n == 14
        created = g.ago(900, 2000) if old else g.ago(10, 600)
        updated = g.between(created, g.ago(731, 900)) if old else g.between(created, g.anchor)
        published = n % 2 == 0
        mail: dict[str, Any] = {"id": str(100_000 + n), "name": f"{'Newsletter' if n % 3 else 'Promo'} #{n + 1}",
               "subject": f"News from Acme ({n + 1})", "type": "BATCH_EMAIL",
               "state": "PUBLISHED" if published else "DRAFT", "isPublished": published,
               "createdAt": format_ts(created), "updatedAt": format_ts(updated), "archived": archived,
               "isTransactional": False, "language": "en"}
        if published:
            mail["publishedAt"] = format_ts(g.between(created, updated))
        if archived:
            mail["deletedAt"] = format_ts(g.ago(5, 30))
        data.docs.append((EMAIL_KIND, mail["id"], mail, archived))
    counts.old_marketing_emails, counts.archived_marketing_emails = 6, 1
    data.next_ids = g.next
    from crmsweep.sandbox.hubspot_seed_assets import plant  # it builds on this module's portal

    data.planted = plant(data, seed)
    return data


def seed_store(store: HubSpotStore, *, records: int, seed: int, anchor: datetime) -> PortalData:
    data = generate(records, seed, anchor)
    with store.transaction():
        store.insert_objects(data.objects)
        store.add_associations(data.associations)
        for kind, key, doc, archived in data.docs:
            store.put_doc(kind, key, doc, archived=archived)
        # Records created later continue each type's sequence; types the seed leaves empty start high.
        store.set_sequences({**{kind: 60_001 for kind in OBJECT_TYPES}, **data.next_ids,
                             LIST_KIND: len(LIST_NAMES) + 1})
    record_planted(store.path.parent, data.planted)
    store.set_meta({"seeded": "1", "portal_id": str(data.portal_id), "anchor": format_ts(data.anchor),
                    "records": str(records), "seed": str(seed)})
    return data

"""A deterministic, realistically messy Salesforce org for the sandbox.

`records` is the number of Contacts; the other objects scale from it, with minimums so a small org
still has every kind of mess:

| object                  | rows                     |
|-------------------------|--------------------------|
| User                    | max(8, records // 100)   |
| Account                 | max(10, records // 5)    |
| Contact                 | records                  |
| Lead                    | max(10, records // 2)    |
| Opportunity             | max(10, records // 4)    |
| OpportunityContactRole  | about 1.5 per opportunity (most have one or more) |
| Task                    | records                  |
| Event                   | none                     |
| Case                    | max(6, records // 50) plus planted ones |
| Campaign, Contract, Order, Quote, Invoice, EmailTemplate, Report, Dashboard, files | a few each, fixed |

The mess is planted by slicing a seeded permutation, so counts are exact rather than only likely:
stale contacts and leads (~20%, both "old last activity" and "no activity, untouched for years"),
bounces (~5%, about half of them soft: a full mailbox or a spam rejection), contacts with no email
or phone (~4%), missing cities (~10%, plus the contacts of one or two owners who never fill it in),
duplicate pairs (~2% of contacts: same email in another case, or same name on the same account),
accounts without contacts (~10%), departed (inactive) users who still own records and open tasks,
active users who have not logged in for months or ever, open opportunities past their close date,
converted leads, overdue open tasks.

`seed_cleanup.py` then adds the objects the other cleanup passes read, plants held-back candidates
and near-misses, keeps filler from qualifying by chance (unique emails, account names and domains),
and `seed_candidates.py` reads off the rows what each pass must find: `planted.json` in the state
folder (`planted.py`).

Everything is derived from one `random.Random(seed)` and the anchor time (the org's creation), so
the same (seed, records, anchor) gives the same ids and values.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from crmsweep.sandbox import ids
from crmsweep.sandbox.activity import (
    ACTIVITY_OBJECTS,
    HISTORY_COLUMN,
    TRACKED,
    account_of,
    activity_date,
    latest,
    linked_ids,
)
from crmsweep.sandbox.planted import record_planted
from crmsweep.sandbox.rules import calculated, format_datetime
from crmsweep.sandbox.salesforce_store import SalesforceStore, hidden_columns
from crmsweep.sandbox.schema import OBJECTS, SObject
from crmsweep.sandbox.seed_cleanup import plant_cleanup
from crmsweep.sandbox.seed_words import (
    CITIES,
    COMPANY_SUFFIXES,
    COMPANY_WORDS,
    FIRST_NAMES,
    FORECAST_CATEGORY,
    HARD_BOUNCES,
    LAST_NAMES,
    PROBABILITY,
    SINGLE_NAMES,
    SOFT_BOUNCES,
    email_for,
)

ORG_NAME = "Acme Sandbox"
API_USERNAME = "integration@acme.sandbox"

INDUSTRIES = ("Technology", "Manufacturing", "Retail", "Finance", "Healthcare", "Education")
TITLES = ("CEO", "CFO", "VP Sales", "Head of IT", "Buyer", "Office Manager", "Engineer", "Analyst", None)
BOUNCE_REASONS = (*HARD_BOUNCES, *SOFT_BOUNCES)  # about half of the random bounces are soft
DESCRIPTIONS = (
    "Met at the \"Cloud Expo\" booth, asked about pricing, integrations, and SSO.",
    "Prefers email.\nDo not call before 10am.",
    "Referred by Dana, \"very interested\" in the enterprise plan, budget approved Q3.",
    "Old contact from the 2017 migration; data, may be stale.",
    "Asked us to use her personal number, see notes, thanks!",
)
SUBJECTS = ("Call", "Send quote", "Follow up", "Email", "Demo", "Renewal discussion", "Send contract")
OPEN_STAGES = ("Prospecting", "Qualification", "Proposal/Price Quote", "Negotiation/Review")
LEAD_OPEN_STATUSES = ("Open - Not Contacted", "Working - Contacted")
OPEN_TASK_STATUSES = ("Not Started", "In Progress", "Waiting on someone else", "Deferred")


@dataclass
class OrgData:
    """The generated rows per object name (dicts by field name), plus the id sequence used."""

    anchor: datetime
    org_id: str
    api_user_id: str
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    sequences: dict[str, int] = field(default_factory=dict)
    planted: dict[str, dict[str, list[Any]]] = field(default_factory=dict)  # per pass, see planted.py


class _Gen:
    def __init__(self, records: int, seed: int, anchor: datetime) -> None:
        self.r = random.Random(seed)
        self.records = records
        self.anchor = anchor.replace(microsecond=anchor.microsecond // 1000 * 1000)
        self.pod = ids.pod_for_seed(seed)
        self.sequences: dict[str, int] = {}

    def new_id(self, obj: SObject) -> str:
        number = self.sequences.get(obj.key_prefix, 0) + 1
        self.sequences[obj.key_prefix] = number
        return ids.make_id(obj.key_prefix, self.pod, number)

    def ago(self, low_days: float, high_days: float) -> datetime:
        return self.anchor - timedelta(seconds=self.r.uniform(low_days, high_days) * 86400)

    def between(self, start: datetime, end: datetime) -> datetime:
        if end <= start:
            return start
        return start + (end - start) * self.r.random()

    def audit(self, row: dict[str, Any], created: datetime, modified: datetime, by: str) -> None:
        modified = max(created, min(modified, self.anchor))
        row["CreatedDate"] = format_datetime(created)
        row["CreatedById"] = by
        row["LastModifiedDate"] = format_datetime(modified)
        row["LastModifiedById"] = by
        row["SystemModstamp"] = format_datetime(modified)

    def person(self) -> tuple[str | None, str]:
        if self.r.random() < 0.04:
            return None, self.r.choice(SINGLE_NAMES)
        return self.r.choice(FIRST_NAMES), self.r.choice(LAST_NAMES)

    def phone(self) -> str:
        a, b, c = self.r.randint(201, 989), self.r.randint(200, 999), self.r.randint(0, 9999)
        return self.r.choice(
            (f"({a}) {b}-{c:04d}", f"+1 {a} {b} {c:04d}", f"{a}.{b}.{c:04d}", f"+44 20 7{b} {c:04d}",
             f"+49 30 {b}{c:04d}")
        )


def _slices(r: random.Random, count: int, shares: Sequence[tuple[str, float, int]]) -> dict[str, set[int]]:
    """Disjoint index sets: for each (name, share, minimum), that many indices of a seeded permutation."""
    order = list(range(count))
    r.shuffle(order)
    out: dict[str, set[int]] = {}
    position = 0
    for name, share, minimum in shares:
        size = min(max(round(count * share), minimum), count - position)
        out[name] = set(order[position : position + size])
        position += size
    return out


def generate(records: int, seed: int, anchor: datetime) -> OrgData:
    """The whole org as rows. Pure: no I/O, same inputs give the same output."""
    if records < 1:
        raise ValueError("records (the number of contacts) must be at least 1")
    g = _Gen(records, seed, anchor)
    r = g.r
    org_id = g.new_id(OBJECTS["Organization"])
    api_user = g.new_id(OBJECTS["User"])
    data = OrgData(anchor=g.anchor, org_id=org_id, api_user_id=api_user)
    tables = data.tables

    org = {"Id": org_id, "Name": ORG_NAME, "OrganizationType": "Developer Edition", "InstanceName": "CRMSWEEP1",
           "IsSandbox": 1}
    g.audit(org, g.ago(2000, 2000), g.ago(30, 30), api_user)
    tables["Organization"] = [org]

    # --- users -------------------------------------------------------------------------------------
    n_users = max(8, records // 100)
    n_inactive = max(2, round(n_users * 0.25))
    n_stale_login = 3 if n_users >= 12 else 2
    kinds = ["api", *["inactive"] * n_inactive, *["stale_login"] * n_stale_login, "never"]
    kinds += ["active"] * (n_users - len(kinds))
    users: list[dict[str, Any]] = []
    first: str | None
    for i, kind in enumerate(kinds):
        uid = api_user if kind == "api" else g.new_id(OBJECTS["User"])
        if kind == "api":
            first, last, username = "Integration", "User", API_USERNAME
        else:
            first_opt, last = g.person()
            first = first_opt or ""
            username = email_for(first_opt, last, "acme.example").replace("@", f"{i}@")
        created = g.ago(400, 700) if kind == "never" else g.ago(180, 2200)
        login: datetime | None = {
            "api": g.anchor - timedelta(minutes=5),
            "active": g.ago(0, 30),
            "inactive": g.ago(200, 900),
            "stale_login": g.ago(121, 400),
            "never": None,
        }[kind]
        if login is not None:
            login = max(login, created)
        row: dict[str, Any] = {
            "Id": uid, "Username": username, "FirstName": first or None, "LastName": last,
            "Email": username if kind == "api" else email_for(first or None, last, "acme.example"),
            "Title": "Integration" if kind == "api" else r.choice(("Account Executive", "SDR", "Sales Manager",
                                                                   "Support Rep", "Marketing Ops")),
            "Department": r.choice(("Sales", "Marketing", "Support")), "IsActive": int(kind != "inactive"),
            "UserType": "Standard", "ManagerId": None,
            "LastLoginDate": format_datetime(login) if login else None,
        }
        row.update(calculated("User", row))
        g.audit(row, created, login or created, api_user)
        users.append(row)
    tables["User"] = users
    owners = [u["Id"] for u in users if u["Id"] != api_user]
    inactive_owners = [u["Id"] for u in users if not u["IsActive"]]
    active_owners = [u["Id"] for u in users if u["IsActive"] and u["Id"] != api_user]
    empty_city_owners = set(active_owners[: 2 if n_users >= 20 else 1])

    # --- accounts ----------------------------------------------------------------------------------
    n_accounts = max(10, records // 5)
    acc_slices = _slices(r, n_accounts, (("no_contacts", 0.10, 1), ("no_city", 0.08, 1)))
    accounts: list[dict[str, Any]] = []
    for i in range(n_accounts):
        city, state, country = r.choice(CITIES)
        word = r.choice(COMPANY_WORDS)
        name = f"{word} {r.choice(COMPANY_SUFFIXES)}" if r.random() < 0.7 else f"{word} {r.choice(CITIES)[0]}"
        created = g.ago(30, 2500)
        row = {
            "Id": g.new_id(OBJECTS["Account"]), "IsDeleted": 0, "Name": name,
            "Type": r.choice(("Prospect", "Customer", "Customer", "Partner", "Other")),
            "Industry": r.choice(INDUSTRIES),
            "BillingCity": None if i in acc_slices["no_city"] else city, "BillingState": state,
            "BillingCountry": country, "Phone": g.phone() if r.random() < 0.8 else None,
            "Website": f"https://www.{word.lower().replace(' ', '')}.example",
            "NumberOfEmployees": r.choice((5, 12, 50, 120, 800, 4500, None)),
            "AnnualRevenue": r.choice((None, 250000.0, 1200000.0, 9800000.0, 125000000.0)),
            "OwnerId": r.choice(owners), "LastActivityDate": g.ago(0, 900).date().isoformat(),
        }
        g.audit(row, created, g.between(created, g.anchor), api_user)
        accounts.append(row)
    tables["Account"] = accounts
    no_contact_accounts = {accounts[i]["Id"] for i in acc_slices["no_contacts"]}
    contact_accounts = [a for a in accounts if a["Id"] not in no_contact_accounts]

    # --- contacts ----------------------------------------------------------------------------------
    # Twins are part of the `records` contacts: `n_base` originals, then one twin per pair.
    n_pairs = max(2, records // 100) if records >= 20 else 0
    n_base = records - n_pairs
    c_slices = _slices(r, n_base, (
        ("stale_old_activity", 0.10, 3), ("stale_no_activity", 0.10, 3), ("bounced", 0.05, 3),
        ("unreachable", 0.04, 3), ("no_city", 0.10, 3), ("dup_source", n_pairs / n_base, n_pairs),
    ))
    stale = c_slices["stale_old_activity"] | c_slices["stale_no_activity"]
    dup_sources = sorted(c_slices["dup_source"])
    contacts: list[dict[str, Any]] = []
    for i in range(n_base):
        account = r.choice(contact_accounts) if r.random() > 0.03 else None
        first, last = g.person()
        domain = (account["Website"].removeprefix("https://www.") if account else "mail.example")
        city, state, country = r.choice(CITIES)
        owner = account["OwnerId"] if account and r.random() < 0.7 else r.choice(owners)
        if i in c_slices["stale_old_activity"]:
            created = g.ago(1800, 3000)
            activity: date | None = g.ago(1150, 1800).date()
            modified = g.between(created, g.anchor)
        elif i in c_slices["stale_no_activity"]:
            created = g.ago(1800, 3000)
            activity = None
            modified = g.between(created, g.ago(1150, 1150))
        else:
            created = g.ago(1, 1000)
            activity = g.ago(0, 700).date() if r.random() < 0.85 else None
            modified = g.between(created, g.anchor)
        if activity is not None and activity < created.date():
            activity = created.date()
        email: str | None = email_for(first, last, domain)
        row = {
            "Id": g.new_id(OBJECTS["Contact"]), "IsDeleted": 0, "AccountId": account["Id"] if account else None,
            "FirstName": first, "LastName": last, "Title": r.choice(TITLES), "Email": email,
            "Phone": g.phone() if r.random() < 0.75 else None,
            "MobilePhone": g.phone() if r.random() < 0.4 else None,
            "MailingCity": city, "MailingState": state, "MailingCountry": country,
            "LeadSource": r.choice((*OBJECTS["Contact"].field("LeadSource").picklist, None)),  # type: ignore[union-attr]
            "HasOptedOutOfEmail": int(r.random() < 0.05), "EmailBouncedReason": None, "EmailBouncedDate": None,
            "Description": r.choice(DESCRIPTIONS) if r.random() < 0.3 else None, "OwnerId": owner,
            "LastActivityDate": activity.isoformat() if activity else None,
        }
        if i in c_slices["bounced"]:
            row["EmailBouncedDate"] = format_datetime(max(g.ago(1, 700), created))
            row["EmailBouncedReason"] = r.choice(BOUNCE_REASONS).format(email=email)
        if i in c_slices["unreachable"]:
            row["Email"] = row["Phone"] = row["MobilePhone"] = None
        if i in c_slices["no_city"] or (owner in empty_city_owners and r.random() < 0.9):
            row["MailingCity"] = None
        row.update(calculated("Contact", row))
        g.audit(row, created, modified, api_user)
        contacts.append(row)
    # Duplicate pairs: half share an email in another letter case, half a name on the same account.
    for n, i in enumerate(dup_sources):
        source = contacts[i]
        twin = dict(source)
        twin["Id"] = g.new_id(OBJECTS["Contact"])
        if n % 2 == 0 and source["Email"]:
            local, _, domain = source["Email"].partition("@")
            twin["Email"] = f"{local.title()}@{domain.upper()}"
        else:
            twin["Email"] = email_for(source["FirstName"], source["LastName"], "mail.example")
            twin["Phone"] = g.phone()
        created = g.ago(1, 600)
        g.audit(twin, created, g.between(created, g.anchor), api_user)
        twin.update(calculated("Contact", twin))
        contacts.append(twin)
    tables["Contact"] = contacts

    # --- leads -------------------------------------------------------------------------------------
    n_leads = max(10, records // 2)
    l_slices = _slices(r, n_leads, (
        ("stale_old_activity", 0.10, 2), ("stale_no_activity", 0.10, 2), ("bounced", 0.05, 2),
        ("converted", 0.10, 2), ("no_city", 0.10, 1),
    ))
    leads: list[dict[str, Any]] = []
    for i in range(n_leads):
        first, last = g.person()
        company = f"{r.choice(COMPANY_WORDS)} {r.choice(COMPANY_SUFFIXES)}"
        city, state, country = r.choice(CITIES)
        if i in l_slices["stale_old_activity"]:
            created, activity = g.ago(1300, 2800), g.ago(1150, 1300).date()
            modified = g.between(created, g.anchor)
        elif i in l_slices["stale_no_activity"]:
            created, activity = g.ago(1300, 2800), None
            modified = g.between(created, g.ago(1150, 1150))
        else:
            created = g.ago(1, 900)
            activity = g.ago(0, 600).date() if r.random() < 0.6 else None
            modified = g.between(created, g.anchor)
        if activity is not None and activity < created.date():
            activity = created.date()
        converted = i in l_slices["converted"]
        email = email_for(first, last, company.split()[0].lower() + ".example")
        row = {
            "Id": g.new_id(OBJECTS["Lead"]), "IsDeleted": 0, "FirstName": first, "LastName": last, "Company": company,
            "Title": r.choice(TITLES), "Email": email if r.random() < 0.9 else None,
            "Phone": g.phone() if r.random() < 0.7 else None, "MobilePhone": g.phone() if r.random() < 0.3 else None,
            "City": None if i in l_slices["no_city"] else city, "State": state, "Country": country,
            "Status": "Closed - Converted" if converted else r.choice((*LEAD_OPEN_STATUSES, "Closed - Not Converted")),
            "LeadSource": r.choice(("Web", "Phone Inquiry", "Partner Referral", "Trade Show", None)),
            "IsConverted": int(converted), "HasOptedOutOfEmail": int(r.random() < 0.05),
            "EmailBouncedReason": None, "EmailBouncedDate": None, "OwnerId": r.choice(owners),
            "LastActivityDate": activity.isoformat() if activity else None,
        }
        if i in l_slices["bounced"]:
            row["Email"] = email
            row["EmailBouncedDate"] = format_datetime(max(g.ago(1, 700), created))
            row["EmailBouncedReason"] = r.choice(BOUNCE_REASONS).format(email=email)
        row.update(calculated("Lead", row))
        g.audit(row, created, modified, api_user)
        leads.append(row)
    tables["Lead"] = leads

    # --- opportunities and contact roles ------------------------------------------------------------
    n_opps = max(10, records // 4)
    o_slices = _slices(r, n_opps, (("past_due_old", 0.07, 2), ("past_due", 0.08, 2), ("open_future", 0.35, 3)))
    contacts_by_account: dict[str, list[dict[str, Any]]] = {}
    for c in contacts:
        if c["AccountId"]:
            contacts_by_account.setdefault(c["AccountId"], []).append(c)
    opps: list[dict[str, Any]] = []
    roles: list[dict[str, Any]] = []
    role_names = ("Decision Maker", "Evaluator", "Influencer", "Other")

    def add_role(opp: dict[str, Any], contact_id: str, primary: bool) -> None:
        role = {"Id": g.new_id(OBJECTS["OpportunityContactRole"]), "IsDeleted": 0, "OpportunityId": opp["Id"],
                "ContactId": contact_id, "Role": r.choice(role_names), "IsPrimary": int(primary)}
        created = datetime.fromisoformat(opp["CreatedDate"])
        g.audit(role, created, g.between(created, g.anchor), api_user)
        roles.append(role)

    for i in range(n_opps):
        account = r.choice(contact_accounts)
        created = g.ago(30, 1500)
        if i in o_slices["past_due_old"]:
            stage, close = r.choice(OPEN_STAGES), g.ago(370, 900).date()
        elif i in o_slices["past_due"]:
            stage, close = r.choice(OPEN_STAGES), g.ago(1, 300).date()
        elif i in o_slices["open_future"]:
            stage, close = r.choice(OPEN_STAGES), (g.anchor + timedelta(days=r.randint(1, 300))).date()
        else:
            stage, close = r.choice(("Closed Won", "Closed Lost")), g.ago(1, 1400).date()
        if close < created.date() and stage in ("Closed Won", "Closed Lost"):
            created = datetime.combine(close, created.timetz()) - timedelta(days=r.randint(10, 120))
        row = {
            "Id": g.new_id(OBJECTS["Opportunity"]), "IsDeleted": 0, "AccountId": account["Id"],
            "Name": f"{account['Name']} - {r.choice(('Renewal', 'New Business', 'Upsell', 'Pilot'))}",
            "StageName": stage, "Amount": float(r.randrange(1000, 250000, 500)), "Probability": PROBABILITY[stage],
            "ForecastCategoryName": FORECAST_CATEGORY[stage],
            "CloseDate": close.isoformat(), "OwnerId": account["OwnerId"],
            "LastActivityDate": g.ago(0, 800).date().isoformat() if r.random() < 0.7 else None,
        }
        row.update(calculated("Opportunity", row))
        g.audit(row, created, g.between(created, g.anchor), api_user)
        opps.append(row)
        people = contacts_by_account.get(account["Id"], [])
        if people and r.random() < 0.85:
            for n, person in enumerate(r.sample(people, min(len(people), r.randint(1, 2)))):
                add_role(opp=row, contact_id=person["Id"], primary=n == 0)
    # Stale contacts on open opportunities: a cleanup must leave these alone.
    open_opps = [o for o in opps if not o["IsClosed"]]
    stale_ids = [contacts[i]["Id"] for i in sorted(stale)]
    for contact_id in stale_ids[: max(3, len(stale_ids) // 10)]:
        add_role(opp=r.choice(open_opps), contact_id=contact_id, primary=False)
    tables["Opportunity"] = opps
    tables["OpportunityContactRole"] = roles

    # --- tasks -------------------------------------------------------------------------------------
    accounts_by_id = {a["Id"]: a for a in accounts}
    contacts_by_id = {c["Id"]: c for c in contacts}
    opps_by_id = {o["Id"]: o for o in opps}
    activity_by_id = {row["Id"]: row["LastActivityDate"] for row in (*contacts, *leads)}
    opps_by_account: dict[str, list[str]] = {}
    for o in opps:
        opps_by_account.setdefault(o["AccountId"], []).append(o["Id"])
    tasks: list[dict[str, Any]] = []
    n_tasks = records
    t_slices = _slices(r, n_tasks, (("open_inactive_owner", 0.05, 3), ("open_overdue", 0.15, 3), ("open", 0.15, 2)))
    for i in range(n_tasks):
        pick = r.random()
        who: str | None = None
        what: str | None = None
        if pick < 0.6:
            contact = r.choice(contacts)
            who = contact["Id"]
            if contact["AccountId"] and r.random() < 0.6:
                choices = [contact["AccountId"], *opps_by_account.get(contact["AccountId"], [])]
                what = r.choice(choices)
        elif pick < 0.85:
            who = r.choice(leads)["Id"]
        else:
            what = r.choice(accounts)["Id"]
        owner = r.choice(owners)
        created = g.ago(1, 1200)
        if i in t_slices["open_inactive_owner"]:
            status, owner = r.choice(OPEN_TASK_STATUSES), r.choice(inactive_owners)
            due = g.ago(-30, 300).date()
        elif i in t_slices["open_overdue"]:
            status, due = r.choice(OPEN_TASK_STATUSES), g.ago(1, 400).date()
        elif i in t_slices["open"]:
            status, due = r.choice(OPEN_TASK_STATUSES), (g.anchor + timedelta(days=r.randint(1, 60))).date()
        else:
            status, due = "Completed", g.ago(1, 1200).date()
        if what in accounts_by_id and r.random() < 0.5:
            owner = accounts_by_id[what]["OwnerId"]
        if status == "Completed" and who is not None:
            # A closed task sets its contact's or lead's last activity: keep the planted dates true.
            planted = activity_by_id[who]
            if planted is None:
                who = None
            else:
                due = min(due, date.fromisoformat(planted))
        row = {
            "Id": g.new_id(OBJECTS["Task"]), "IsDeleted": 0, "WhoId": who, "WhatId": what,
            "Subject": r.choice(SUBJECTS), "Status": status, "Priority": r.choice(("High", "Normal", "Normal", "Low")),
            "ActivityDate": due.isoformat(), "Description": r.choice(DESCRIPTIONS) if r.random() < 0.2 else None,
            "OwnerId": owner,
        }
        row.update(calculated("Task", row))
        g.audit(row, created, g.between(created, g.anchor), api_user)
        row["CompletedDateTime"] = row["LastModifiedDate"] if row["IsClosed"] else None
        row["AccountId"] = account_of(
            "Account" if what in accounts_by_id else "Opportunity" if what else None,
            what if what in accounts_by_id else opps_by_id[what]["AccountId"] if what else None,
            "Contact" if who in contacts_by_id else None,
            contacts_by_id[who]["AccountId"] if who in contacts_by_id else None,
        )
        tasks.append(row)
    tables["Task"] = tasks
    _settle_activity_dates(tables)
    data.planted = plant_cleanup(g, data, seed).passes
    data.sequences = dict(g.sequences)
    return data


def _settle_activity_dates(tables: dict[str, list[dict[str, Any]]]) -> None:
    """Each planted LastActivityDate is the history the org has no activity rows for; the value the
    API shows is what the platform would compute from that and the seeded activities."""
    latest_by_id: dict[str, str | None] = {}
    for name in ACTIVITY_OBJECTS:
        for row in tables.get(name, []):
            when = activity_date(name, row)
            for linked in linked_ids(row):
                latest_by_id[linked] = latest(latest_by_id.get(linked), when)
    for name in TRACKED:
        for row in tables[name]:
            row[HISTORY_COLUMN] = row["LastActivityDate"]
            row["LastActivityDate"] = latest(row["LastActivityDate"], latest_by_id.get(row["Id"]))


def table_rows(obj: SObject, rows: Sequence[dict[str, Any]]) -> tuple[list[str], list[tuple[Any, ...]]]:
    columns = [f.name for f in obj.fields] + hidden_columns(obj)
    return columns, [tuple(row.get(c) for c in columns) for row in rows]


def seed_store(store: SalesforceStore, *, records: int, seed: int, anchor: datetime) -> OrgData:
    """Generate the org and write it in one transaction, with what later starts need to know."""
    data = generate(records, seed, anchor)
    with store.transaction():
        for name, rows in data.tables.items():
            columns, values = table_rows(OBJECTS[name], rows)
            store.insert_rows(OBJECTS[name], columns, values)
        store.set_sequences({prefix: last + 1 for prefix, last in data.sequences.items()})
        store.set_meta(
            {
                "anchor": format_datetime(data.anchor),
                "seed": str(seed),
                "records": str(records),
                "org_id": data.org_id,
                "api_user_id": data.api_user_id,
                "pod": ids.pod_for_seed(seed),
                "seeded": "1",
            }
        )
    record_planted(store.path.parent, data.planted)
    return data

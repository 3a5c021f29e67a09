"""The part of the seeded org the cleanup passes read beyond people and deals: reports, dashboards,
email templates, campaigns, cases, contracts/orders/quotes/invoices and files, and for each pass
the records planted as true candidates, held-back ones and near-misses (`planted.json`).

Runs after `seed.generate` has built the people, accounts, deals and tasks, with its own random
stream so the rows that existed before it are unchanged. Filler rows here never qualify for any
pass with default settings: filler reports ran in the last two months, filler templates were used
lately, filler campaigns are current, filler files are young or attached to a contract.
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from crmsweep.sandbox.activity import HISTORY_COLUMN, TRACKED, latest
from crmsweep.sandbox.rules import AUTO_NUMBER_DIGITS, calculated, format_datetime
from crmsweep.sandbox.salesforce_store import report_definition_json
from crmsweep.sandbox.schema import OBJECTS
from crmsweep.sandbox.seed_candidates import Outcome, data_candidates
from crmsweep.sandbox.seed_words import (
    CITIES,
    COMPANY_SUFFIXES,
    COMPANY_WORDS,
    FORECAST_CATEGORY,
    LAST_NAMES,
    PLANTED_HARD_BOUNCES,
    PLANTED_SOFT_BOUNCES,
    PROBABILITY,
    email_for,
)

if TYPE_CHECKING:
    from crmsweep.sandbox.seed import OrgData, _Gen

PUBLIC_REPORTS = "Public Reports"
CONTACT_COLUMNS = ("FIRST_NAME", "LAST_NAME", "EMAIL", "ACCOUNT.NAME", "PHONE1")
OPPORTUNITY_COLUMNS = ("OPPORTUNITY_NAME", "ACCOUNT_NAME", "STAGE_NAME", "AMOUNT", "CLOSE_DATE")
LEAD_COLUMNS = ("FIRST_NAME", "LAST_NAME", "COMPANY", "LEAD_SOURCE", "STATUS")
REPORT_TYPES = {
    "ContactList": ("Contacts & Accounts", CONTACT_COLUMNS),
    "Opportunity": ("Opportunities", OPPORTUNITY_COLUMNS),
    "LeadList": ("Leads", LEAD_COLUMNS),
}


@dataclass
class Planted:
    """Per pass: proposed, held and near-miss ids, in the order they were planted."""

    passes: dict[str, dict[str, list[Any]]] = field(default_factory=dict)

    def add(self, pass_name: str, kind: str, *record_ids: str) -> None:
        entry = self.passes.setdefault(pass_name, {"proposed": [], "held": [], "near_misses": []})
        entry[kind].extend(record_ids)


class _Planter:
    def __init__(self, g: _Gen, data: OrgData, seed: int) -> None:
        self.g = g
        self.data = data
        self.r = random.Random(f"crmsweep-cleanup-{seed}")
        self.anchor = g.anchor
        self.planted = Planted()
        # Owners who logged in lately: no pass deactivates them, so what they own stays put.
        recent_login = format_datetime(self.anchor - timedelta(days=60))
        self.active_owners = [u["Id"] for u in data.tables["User"] if u["IsActive"] and u["Id"] != data.api_user_id
                              and (u["LastLoginDate"] or "") > recent_login]
        self.contracts: list[dict[str, Any]] = []
        self.pool: list[dict[str, Any]] | None = None  # filler contacts `person` may make into planted ones
        self.used: set[str] = set()
        self.numbers: dict[str, int] = {}

    def days_ago(self, days: float) -> datetime:
        return self.anchor - timedelta(days=days)

    def row(self, object_name: str, created: datetime, modified: datetime | None = None,
            **values: Any) -> dict[str, Any]:
        """A new row of `object_name`, audited as the integration user, added to its table."""
        obj = OBJECTS[object_name]
        row: dict[str, Any] = {"Id": self.g.new_id(obj), **values}
        if obj.has_is_deleted:
            row.setdefault("IsDeleted", 0)
        self.g.audit(row, created, modified or created, self.data.api_user_id)
        if object_name in TRACKED:
            row.setdefault(HISTORY_COLUMN, row.get("LastActivityDate"))
        if obj.field("CreatedDate") is None:  # ContentDocumentLink keeps only its modstamp
            for name in ("CreatedDate", "CreatedById", "LastModifiedDate", "LastModifiedById"):
                row.pop(name)
        self.data.tables.setdefault(object_name, []).append(row)
        return row

    # --- reports and dashboards (stale_reports: days = 365) ---------------------------------------

    def reports(self) -> None:
        def report(name: str, kind: str, created_days: float, run_days: float | None,
                   viewed_days: float | None = None, folder: str | None = None) -> str:
            created = self.days_ago(created_days)
            developer = "".join(ch if ch.isalnum() else "_" for ch in name).strip("_")
            row = self.row(
                "Report", created, created + (self.days_ago(0) - created) * 0.1,
                Name=name[:40], DeveloperName=developer[:80],
                FolderName=PUBLIC_REPORTS if folder is None else "My Personal Custom Reports",
                Format=self.r.choice(("Tabular", "Summary", "Matrix")), Description=None,
                LastRunDate=None if run_days is None else format_datetime(self.days_ago(run_days)),
                LastViewedDate=None if viewed_days is None else format_datetime(self.days_ago(viewed_days)),
                LastReferencedDate=None if viewed_days is None else format_datetime(self.days_ago(viewed_days)),
                OwnerId=folder or self.data.org_id,
            )
            label, columns = REPORT_TYPES[kind]
            row["_report_metadata"] = report_definition_json(kind, label, columns)
            return str(row["Id"])

        def dashboard(title: str, created_days: float, refreshed_days: float | None,
                      viewed_days: float | None = None) -> str:
            created = self.days_ago(created_days)
            row = self.row(
                "Dashboard", created, created + timedelta(days=1),
                Title=title, DeveloperName="".join(ch if ch.isalnum() else "_" for ch in title).strip("_"),
                FolderName="Company Dashboards", FolderId=self.data.org_id, Type="SpecifiedUser",
                RunningUserId=self.data.api_user_id,
                LastRefreshDate=None if refreshed_days is None else format_datetime(self.days_ago(refreshed_days)),
                LastViewedDate=None if viewed_days is None else format_datetime(self.days_ago(viewed_days)),
                LastReferencedDate=None if viewed_days is None else format_datetime(self.days_ago(viewed_days)),
            )
            return str(row["Id"])

        plant = self.planted.add
        plant("stale_reports", "proposed",
              report("Pipeline by Stage FY2019", "Opportunity", 1400, 700, viewed_days=650),
              report("Lead Source Q3 2021 (copy)", "LeadList", 800, None),
              # Looked at last week by the API user, never run for two years: LastViewedDate does not count.
              report("Contacts Missing Email", "ContactList", 1000, 730, viewed_days=6),
              dashboard("Sales Overview 2020", 1300, 900),
              dashboard("Trade Show Leads (never refreshed)", 500, None))
        plant("stale_reports", "near_misses",
              report("Open Pipeline", "Opportunity", 1500, 25),
              report("New Leads This Quarter", "LeadList", 100, None),  # never run, but younger than a year
              report("Renewals Due", "Opportunity", 900, 300),
              report("My Open Contacts", "ContactList", 700, 40, folder=self.r.choice(self.active_owners)),
              dashboard("Weekly Pipeline", 1100, 8, viewed_days=2))
        for n in range(6):  # filler: reports the team runs every week or so
            kind = self.r.choice(sorted(REPORT_TYPES))
            report(f"{REPORT_TYPES[kind][0]} by Owner #{n + 1}", kind, self.r.uniform(60, 1500), self.r.uniform(0, 60))


    # --- filler that must not qualify by accident -------------------------------------------------

    def tidy_filler(self) -> None:
        """Leads the seed left with no email and no phone get a phone (only planted people lack all
        three), and accounts get names and web domains of their own (the duplicates pass matches on both)."""
        for lead in self.data.tables["Lead"]:
            if not (lead["Email"] or lead["Phone"] or lead["MobilePhone"] or lead["IsConverted"]):
                lead["Phone"] = self.g.phone()
        self.tidy_people()
        cores = [(w, c[0]) for w in COMPANY_WORDS for c in CITIES]
        self.r.shuffle(cores)
        for n, account in enumerate(self.data.tables["Account"]):
            word, city = cores[n % len(cores)]
            core = f"{word} {city}" if n < len(cores) else f"{word} {city} {n // len(cores) + 1}"
            account["Name"] = f"{core} {self.r.choice(COMPANY_SUFFIXES)}" if self.r.random() < 0.6 else core
            slug = "".join(ch for ch in unicodedata.normalize("NFKD", core.lower()) if ch.isalnum() or ch == " ")
            account["Website"] = f"https://www.{slug.replace(' ', '-')}.example"

    def tidy_people(self) -> None:
        """Filler people who share an email, or a name at one company, by chance become someone else;
        the planted duplicate pairs (the last contacts `seed.generate` made, and their sources) stay."""
        contacts, leads = self.data.tables["Contact"], self.data.tables["Lead"]
        records = len(contacts)
        n_pairs = max(2, records // 100) if records >= 20 else 0
        twins = contacts[records - n_pairs:]
        twin_keys = {(t["FirstName"], t["LastName"], t["AccountId"]) for t in twins}
        sources = [c for c in contacts[: records - n_pairs]
                   if (c["FirstName"], c["LastName"], c["AccountId"]) in twin_keys]
        planted = {id(row) for row in (*twins, *sources)}
        self.used.update(row["Id"] for row in (*twins, *sources))  # never made into other planted people
        emails = {str(c["Email"]).lower() for c in sources if c["Email"]}
        names: set[tuple[str, str]] = {(str(c["Name"]).lower(), str(c["AccountId"])) for c in sources}
        for row in (*contacts, *leads):
            if id(row) in planted:
                continue
            company = row.get("AccountId") if "AccountId" in row else str(row["Company"]).lower()
            attempts = 0
            while company and (str(row["Name"]).lower(), company) in names:
                attempts += 1  # a crowded company runs out of names: then a number tells them apart
                row["LastName"] = self.r.choice(LAST_NAMES) if attempts < 20 else f"{row['LastName']} {attempts}"
                row["Name"] = " ".join(p for p in (row["FirstName"], row["LastName"]) if p)
                if row["Email"]:
                    row["Email"] = email_for(row["FirstName"], row["LastName"], row["Email"].partition("@")[2])
            names.add((str(row["Name"]).lower(), str(company)))
            if not row["Email"]:
                continue
            local, _, domain = str(row["Email"]).partition("@")
            n = 1
            while row["Email"].lower() in emails:
                n += 1
                row["Email"] = f"{local}{n}@{domain}"
            emails.add(row["Email"].lower())
            if row.get("EmailBouncedReason") and local + "@" in row["EmailBouncedReason"]:
                row["EmailBouncedReason"] = row["EmailBouncedReason"].replace(f"{local}@{domain}", row["Email"])

    def peopled_accounts(self) -> list[str]:
        """Accounts some filler contact no pass removes is on: what is linked to them stays linked."""
        return sorted({str(c["AccountId"]) for c in self.safe_contacts()} or
                      {str(c["AccountId"]) for c in self.data.tables["Contact"] if c["AccountId"]})

    def safe_contacts(self) -> list[dict[str, Any]]:
        """Filler contacts no pass touches: reachable, not bounced, active lately, on an account, not new,
        not one of a duplicate pair (`used` holds those and the contacts already made into planted ones)."""
        cutoff = (self.anchor - timedelta(days=400)).date().isoformat()
        old = format_datetime(self.anchor - timedelta(days=60))
        return [c for c in self.data.tables["Contact"]
                if c["Id"] not in self.used and c["Email"] and c["Phone"] and not c["EmailBouncedDate"]
                and c["AccountId"] and (c["LastActivityDate"] or "") > cutoff and c["CreatedDate"] < old]

    # --- people, deals and tasks: the planted ones the random slices do not cover -----------------

    def person(self, created_days: float, *, pick: Callable[[dict[str, Any]], bool] | None = None,
               **values: Any) -> dict[str, Any] | None:
        """A filler contact made into a planted one (the org keeps `records` contacts): fresh contact
        details, dates and owner, then `values`. Taken preferably from contacts on no deal and with no
        task (with `pick`, the last the pool holds that `pick` takes, if any); None when the org is too
        small to spare one."""
        if self.pool is None:
            on_deals = {r["ContactId"] for r in self.data.tables["OpportunityContactRole"]}
            with_tasks = {t["WhoId"] for t in self.data.tables["Task"]}
            self.pool = sorted(self.safe_contacts(), key=lambda c: (c["Id"] not in on_deals, c["Id"] not in with_tasks))
        if not self.pool:
            return None
        at = next((n for n in range(len(self.pool) - 1, -1, -1) if pick(self.pool[n])), -1) if pick else -1
        row = self.pool.pop(at)
        self.used.add(row["Id"])
        created = self.days_ago(created_days)
        activity = (self.anchor - timedelta(days=min(created_days, 20))).date().isoformat()
        row.update({
            "LastName": f"{row['LastName']}-{self.r.randint(100, 999)}", "Email": None, "Phone": None,
            "MobilePhone": None, "HasOptedOutOfEmail": 0, "EmailBouncedReason": None, "EmailBouncedDate": None,
            "OwnerId": self.r.choice(self.active_owners), "LastActivityDate": activity, HISTORY_COLUMN: activity,
            **values,
        })
        row.update(calculated("Contact", row))
        self.g.audit(row, created, created, self.data.api_user_id)
        return row

    def plant_person(self, pass_name: str, kind: str, created_days: float, *,
                     pick: Callable[[dict[str, Any]], bool] | None = None, **values: Any) -> dict[str, Any] | None:
        row = self.person(created_days, pick=pick, **values)
        if row is not None:
            self.planted.add(pass_name, kind, row["Id"])
        return row

    def people(self) -> None:
        phone = self.g.phone
        last_seen = (self.anchor - timedelta(days=1000)).date().isoformat()  # under three years
        history: dict[str, Any] = {HISTORY_COLUMN: last_seen}
        self.plant_person("stale_contacts", "near_misses", 2000, Email="still.around@mail.example",
                          LastActivityDate=last_seen, **history)
        if len(self.active_owners) > 1:  # a user last seen 80 days ago is not idle for 90
            user_id = self.active_owners.pop()
            user = next(u for u in self.data.tables["User"] if u["Id"] == user_id)
            user["LastLoginDate"] = format_datetime(max(self.days_ago(80), datetime.fromisoformat(user["CreatedDate"])))
            self.planted.add("inactive_users", "near_misses", user_id)
        self.plant_person("no_contact_info", "near_misses", 200, MobilePhone=phone())
        self.plant_person("no_contact_info", "near_misses", 300, Phone=phone())
        if (unreachable_on_case := self.plant_person("no_contact_info", "held", 250)) is not None:
            self.case(unreachable_on_case, "Working")
        bounced_at = format_datetime(self.days_ago(40))
        self.plant_person("bounced_emails", "held", 10, Email="bounce.recent@mail.example",
                          EmailBouncedDate=bounced_at, EmailBouncedReason="550 5.1.1 mailbox does not exist")
        self.plant_person("bounced_emails", "near_misses", 400, Phone=phone(), EmailBouncedDate=bounced_at,
                          EmailBouncedReason="552 5.2.2 mailbox full")
        self.plant_person("bounced_emails", "near_misses", 400, Email="opted.out@mail.example", HasOptedOutOfEmail=1)

    def bounces(self) -> None:
        """Bounces whose reply a cleanup must read: a hard one in plain words and one with no reply at all
        (proposed), soft ones only their 4xx code or their words tell apart (held back, the address kept).
        Planted last, so the org the earlier steps made stays as it was."""
        bounced_at = format_datetime(self.days_ago(90))
        # On closed deals only: removing this person (action "delete") takes contact roles along.
        closed = {o["Id"] for o in self.data.tables["Opportunity"] if o["IsClosed"]}
        deals: dict[str, set[str]] = {}
        for role in self.data.tables["OpportunityContactRole"]:
            deals.setdefault(role["ContactId"], set()).add(role["OpportunityId"])
        self.plant_person("bounced_emails", "proposed", 600, Email="no.such.user@mail.example",
                          EmailBouncedDate=bounced_at, EmailBouncedReason=PLANTED_HARD_BOUNCES[0],
                          pick=lambda c: bool(deals.get(c["Id"])) and deals[c["Id"]] <= closed)
        self.plant_person("bounced_emails", "proposed", 600, Email="no.reply@mail.example", EmailBouncedDate=bounced_at)
        for n, reply in enumerate(PLANTED_SOFT_BOUNCES):
            self.plant_person("bounced_emails", "held", 600, Email=f"soft.bounce{n + 1}@mail.example",
                              EmailBouncedDate=bounced_at, EmailBouncedReason=reply)

    def deals_and_tasks(self) -> None:
        plant = self.planted.add
        account = self.r.choice(self.peopled_accounts())
        late = self.opportunity(account, 10, "Qualification", 120)
        plant("stale_open_deals", "held", late["Id"])
        plant("stale_open_deals", "near_misses",
              self.opportunity(account, 200, "Negotiation/Review", 10)["Id"],
              self.opportunity(account, 900, "Closed Lost", 700)["Id"])
        inactive = [u["Id"] for u in self.data.tables["User"] if not u["IsActive"]]
        held_task = self.task(5, inactive[0], "Not Started", 20, what=account)
        plant("orphaned_tasks", "held", held_task["Id"])
        plant("orphaned_tasks", "near_misses",
              self.task(300, self.active_owners[0], "In Progress", 300, what=account)["Id"],
              self.task(300, inactive[-1], "Completed", 200, what=account)["Id"])

    def opportunity(self, account: str, created_days: float, stage: str, close_days: float) -> dict[str, Any]:
        owner = self.r.choice(self.active_owners)
        values: dict[str, Any] = {
            "AccountId": account, "Name": f"Planted {stage} {self.r.randint(1000, 9999)}", "StageName": stage,
            "Amount": 12000.0, "Probability": PROBABILITY[stage], "ForecastCategoryName": FORECAST_CATEGORY[stage],
            "CloseDate": self.days_ago(close_days).date().isoformat(), "OwnerId": owner, "LastActivityDate": None,
        }
        values.update(calculated("Opportunity", values))
        return self.row("Opportunity", self.days_ago(created_days), None, **values)

    def task(self, created_days: float, owner: str, status: str, due_days: float, *, what: str) -> dict[str, Any]:
        values: dict[str, Any] = {
            "WhoId": None, "WhatId": what, "AccountId": what, "Subject": "Follow up", "Status": status,
            "Priority": "Normal", "ActivityDate": self.days_ago(due_days).date().isoformat(), "Description": None,
            "OwnerId": owner,
        }
        values.update(calculated("Task", values))
        row = self.row("Task", self.days_ago(created_days), None, **values)
        row["CompletedDateTime"] = row["LastModifiedDate"] if row["IsClosed"] else None
        if row["IsClosed"]:  # a closed task is its account's activity, as the platform counts it
            account = next(a for a in self.data.tables["Account"] if a["Id"] == what)
            account["LastActivityDate"] = latest(account["LastActivityDate"], row["ActivityDate"])
        return row

    def case(self, contact: dict[str, Any], status: str, *, account: str | None = None) -> dict[str, Any]:
        values: dict[str, Any] = {
            "ContactId": contact["Id"] if contact else None, "AccountId": account or contact.get("AccountId"),
            "Subject": self.r.choice(("Cannot log in", "Invoice question", "Feature request", "Outage report")),
            "Status": status, "Priority": self.r.choice(("High", "Medium", "Low")),
            "Origin": self.r.choice(("Phone", "Email", "Web")), "OwnerId": self.r.choice(self.active_owners),
        }
        values.update(calculated("Case", values))
        created = self.days_ago(self.r.uniform(40, 400))
        values["ClosedDate"] = format_datetime(created + timedelta(days=3)) if values["IsClosed"] else None
        return self.row("Case", created, created + timedelta(days=3), **values)

    def cases(self) -> None:
        """Filler cases, on contacts no pass removes (their accounts keep people)."""
        safe = self.safe_contacts()
        for contact in self.r.sample(safe, min(len(safe), max(6, len(self.data.tables["Contact"]) // 50))):
            self.case(contact, self.r.choice(("New", "Working", "Closed", "Closed", "Closed")))

    # --- accounts (empty_accounts) and what protects them -----------------------------------------

    def account(self, name: str, created_days: float) -> dict[str, Any]:
        slug = "".join(ch for ch in name.lower() if ch.isalnum() or ch == " ").replace(" ", "-")
        values: dict[str, Any] = {
            "Name": name, "Type": "Prospect", "Industry": "Technology", "BillingCity": "Austin",
            "BillingState": "TX", "BillingCountry": "United States", "Phone": None,
            "Website": f"https://www.{slug}.example", "NumberOfEmployees": 50, "AnnualRevenue": None,
            "OwnerId": self.r.choice(self.active_owners), "LastActivityDate": None,
        }
        return self.row("Account", self.days_ago(created_days), None, **values)

    def accounts(self) -> None:
        plant = self.planted.add
        self.account("Planted Recent Prospect", 12)  # held: created in the last 30 days
        with_case = self.account("Planted Support Only Ltd", 500)
        self.case({}, "Escalated", account=with_case["Id"])
        with_deal = self.account("Planted Pipeline Only GmbH", 500)
        self.opportunity(with_deal["Id"], 200, "Prospecting", -60)
        contracted = self.account("Planted Contract Holder AG", 700)
        self.never_touch(contracted["Id"])
        plant("empty_accounts", "held", contracted["Id"])  # empty, but tied to a contract: the pass holds it back
        # A pair the duplicates pass must group: one company entered twice, with and without the comma.
        twins = [self.account("Planted Twin Industries, Inc.", 300), self.account("Planted Twin Industries Inc", 200)]
        twins[1]["Website"] = twins[0]["Website"]
        for twin in twins:  # they keep a contact each (where the org can spare one): not empty accounts
            email = f"buyer{self.r.randint(10, 99)}@{twin['Id'].lower()}.example"
            if self.person(200, AccountId=twin["Id"], Email=email) is not None:
                plant("empty_accounts", "near_misses", twin["Id"])

    def never_touch(self, account: str) -> None:
        """A contract, order, quote and invoice on `account` (only the contract for a planted account)."""
        start = self.days_ago(400).date().isoformat()
        contract = self.row("Contract", self.days_ago(420), None, AccountId=account, Status="Activated",
                            StartDate=start, ContractTerm=24, OwnerId=self.r.choice(self.active_owners),
                            ContractNumber=self.number("Contract"))
        self.contracts.append(contract)

    def number(self, object_name: str) -> str:
        self.numbers[object_name] = self.numbers.get(object_name, 0) + 1
        return f"{self.numbers[object_name]:0{AUTO_NUMBER_DIGITS}d}"

    def orders_quotes_invoices(self) -> None:
        """Filler never-touch records on accounts that keep their people."""
        safe = self.safe_contacts()
        opportunities = {o["AccountId"]: o for o in self.data.tables["Opportunity"]}
        for contact in self.r.sample(safe, min(len(safe), 4)):
            account = contact["AccountId"]
            self.never_touch(account)
            owner = self.r.choice(self.active_owners)
            created = self.days_ago(self.r.uniform(60, 500))
            self.row("Order", created, None, AccountId=account, Status="Activated",
                     EffectiveDate=created.date().isoformat(), ContractId=self.contracts[-1]["Id"], OwnerId=owner,
                     OrderNumber=self.number("Order"))
            self.row("Invoice", created, None, AccountId=account, Status="Posted",
                     InvoiceDate=created.date().isoformat(), DueDate=(created + timedelta(days=30)).date().isoformat(),
                     TotalAmount=4800.0, OwnerId=owner, InvoiceNumber=self.number("Invoice"))
            deal = opportunities.get(account)
            if deal is not None:
                self.row("Quote", created, None, Name=f"{deal['Name']} quote", OpportunityId=deal["Id"],
                         AccountId=account, Status="Accepted",
                         ExpirationDate=(created + timedelta(days=30)).date().isoformat())

    # --- campaigns (finished_campaigns) -----------------------------------------------------------

    def campaign(self, name: str, created_days: float, status: str, start_days: float, end_days: float | None,
                 active: bool) -> str:
        created = self.days_ago(created_days)
        return str(self.row(
            "Campaign", created, created + timedelta(days=1), Name=name,
            Type=self.r.choice(("Conference", "Webinar", "Email")), Status=status,
            StartDate=self.days_ago(start_days).date().isoformat(),
            EndDate=None if end_days is None else self.days_ago(end_days).date().isoformat(),
            IsActive=int(active), OwnerId=self.r.choice(self.active_owners),
        )["Id"])

    def campaigns(self) -> None:
        plant = self.planted.add
        plant("finished_campaigns", "proposed",
              self.campaign("Spring Webinar Series 2025", 500, "In Progress", 480, 400, True),
              self.campaign("Partner Summit", 200, "Completed", 150, -30, True),
              self.campaign("Holiday Email Blast", 90, "Planned", 80, 60, True))
        plant("finished_campaigns", "held", self.campaign("Flash Sale", 10, "Completed", 9, 2, True))
        plant("finished_campaigns", "near_misses",
              self.campaign("Always-on Nurture", 400, "In Progress", 390, -300, True),
              self.campaign("Trade Show 2023", 900, "Completed", 800, 790, False),
              self.campaign("Newsletter", 300, "In Progress", 290, None, True))
        for n in range(4):  # filler: current campaigns
            self.campaign(f"Regional Roadshow {n + 1}", self.r.uniform(40, 300), "In Progress",
                          self.r.uniform(10, 30), -self.r.uniform(30, 200), True)

    # --- email templates (stale_templates: days = 365) --------------------------------------------

    def template(self, name: str, created_days: float, used_days: float | None, times: int | None,
                 active: bool = True) -> str:
        created = self.days_ago(created_days)
        developer = "".join(ch if ch.isalnum() else "_" for ch in name).strip("_")
        return str(self.row(
            "EmailTemplate", created, created + timedelta(days=2), Name=name, DeveloperName=developer,
            IsActive=int(active), TimesUsed=times,
            LastUsedDate=None if used_days is None else format_datetime(self.days_ago(used_days)),
            FolderId=self.data.org_id, FolderName="Unfiled Public Email Templates",
            OwnerId=self.r.choice(self.active_owners), TemplateType=self.r.choice(("text", "html")),
            Subject=f"{name}: {{!Contact.FirstName}}", Body="Hello {!Contact.FirstName},\n\nBest regards",
        )["Id"])

    def templates(self) -> None:
        plant = self.planted.add
        plant("stale_templates", "proposed",
              self.template("Webinar Invite 2022", 1200, 800, 140),
              self.template("Welcome (old brand)", 700, None, 0),
              self.template("Price Increase Notice", 600, None, None))
        plant("stale_templates", "near_misses",
              self.template("Meeting Follow-up", 1000, 20, 512),
              self.template("Quarterly Check-in", 100, None, 0),  # never used, but younger than a year
              self.template("Legacy Renewal Reminder", 1500, 1300, 40, active=False))
        for n in range(5):  # filler: templates the team sends every week or so
            self.template(f"Sales Outreach Step {n + 1}", self.r.uniform(60, 1500), self.r.uniform(0, 60),
                          self.r.randint(5, 900))

    # --- files (old_files: years = 2) -----------------------------------------------------------

    def file(self, title: str, created_days: float, linked: Sequence[str]) -> str:
        created = self.days_ago(created_days)
        owner = self.r.choice(self.active_owners)
        extension, file_type = self.r.choice((("pdf", "PDF"), ("docx", "WORD_X"), ("png", "PNG"), ("xlsx", "EXCEL_X")))
        document = self.row("ContentDocument", created, created, Title=title, FileType=file_type,
                            FileExtension=extension, ContentSize=self.r.randint(2_000, 4_000_000), Description=None,
                            OwnerId=owner)
        # Every file is linked to its owner (the owner's library) and to what it was shared with.
        for entity, share in ((owner, "I"), *((e, "V") for e in linked)):
            self.row("ContentDocumentLink", created, None, ContentDocumentId=document["Id"], LinkedEntityId=entity,
                     ShareType=share, Visibility="AllUsers")
        return str(document["Id"])

    def files(self) -> None:
        plant = self.planted.add
        accounts = self.peopled_accounts()
        contract = self.contracts[0]
        plant("old_files", "proposed",
              self.file("Pricing 2021", 1100, [accounts[0]]),
              self.file("Scan 0001", 900, []),
              self.file("Kickoff deck", 800, accounts[1:3]))
        # Old, but attached to a contract: the pass holds it back and counts it.
        plant("old_files", "held", self.file("Signed MSA", 1000, [contract["Id"], contract["AccountId"]]))
        plant("old_files", "near_misses",
              self.file("Roadmap", 600, [accounts[0]]),  # younger than two years
              self.file("Org chart", 700, []))
        for n in range(6):  # filler: files from the last year
            self.file(f"Meeting notes {n + 1}", self.r.uniform(1, 360), [self.r.choice(accounts)])


    # --- what the people, deals and tasks plant, read off the rows ---------------------------------

    def settle(self) -> None:
        """Record what the passes over people, users, tasks, deals and accounts must find. Open tasks
        about people the earlier passes remove lose that link first (the removal would take them)."""
        tables, anchor, user = self.data.tables, self.anchor, self.data.api_user_id
        found = data_candidates(tables, anchor, user)
        removed = {i for name in ("stale_contacts", "no_contact_info") for i in _outcome(found[name]).proposed}
        deal_accounts = {o["Id"]: o["AccountId"] for o in tables["Opportunity"]}
        for task in tables["Task"]:
            if not task["IsClosed"] and task["WhoId"] in removed:
                task["WhoId"] = None
                task["AccountId"] = _task_account(task, deal_accounts)
        found = data_candidates(tables, anchor, user)
        for name, result in found.items():
            entry = self.planted.passes.setdefault(name, {"proposed": [], "held": [], "near_misses": []})
            if isinstance(result, Outcome):
                for kind, got in (("proposed", result.proposed), ("held", result.held)):
                    if not set(entry[kind]) <= set(got):
                        raise AssertionError(f"seed: planted {kind} of {name} do not qualify so: "
                                             f"{sorted(set(entry[kind]) - set(got))}")
                entry["proposed"], entry["held"] = result.proposed, result.held
            else:
                entry["groups"] = [list(g) for g in result]
                entry["proposed"] = []
        for name, entry in self.planted.passes.items():
            wrong = set(entry["near_misses"]) & set(entry["proposed"] + entry["held"])
            if wrong:
                raise AssertionError(f"seed: near-misses of {name} qualify: {sorted(wrong)}")


def _outcome(result: Outcome | list[list[str]]) -> Outcome:
    assert isinstance(result, Outcome)
    return result


def _task_account(task: dict[str, Any], deal_accounts: dict[str, str]) -> str | None:
    """Task.AccountId once the task is about no person: its WhatId's account, if any."""
    what = task.get("WhatId")
    if not what:
        return None
    if str(what).startswith(OBJECTS["Account"].key_prefix):
        return str(what)
    return deal_accounts.get(str(what))


def plant_cleanup(g: _Gen, data: OrgData, seed: int) -> Planted:
    """Add the cleanup objects to `data.tables` and say what was planted for each pass."""
    planter = _Planter(g, data, seed)
    planter.tidy_filler()
    planter.people()
    planter.cases()
    planter.accounts()
    planter.orders_quotes_invoices()
    planter.deals_and_tasks()
    planter.campaigns()
    planter.templates()
    planter.files()
    planter.reports()
    planter.bounces()
    planter.settle()
    return planter.planted


"""Which seeded Salesforce records each cleanup pass must propose or hold back, by the rules table of
issue 7 with default settings and the default `[protect] recent_days`, read off the generated rows.

The seed plants its mess by slicing a shuffle, and random filler could still fall into a rule (an
open task given to a departed owner, a deal two quarters late): reading the answer off the rows
means `planted.json` says what the org holds, not what the seeder meant to put there. Passes run
in order over the org as the earlier ones leave it, so people removed by `stale_contacts` are gone
for `no_contact_info`, users deactivated by `inactive_users` make their open tasks orphaned, and an
account is empty once its contacts are removed. Pure: rows in, ids out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from crmsweep.sandbox.rules import parse_datetime
from crmsweep.sandbox.seed_words import PLANTED_SOFT_BOUNCES, SOFT_BOUNCES

Rows = Mapping[str, Sequence[Mapping[str, Any]]]
RECENT_DAYS = 30  # crmsweep.config ProtectSettings.recent_days
STALE_YEARS = 3
IDLE_LOGIN_DAYS = 90
OVERDUE_TASK_DAYS = 365
LATE_DEAL_DAYS = 90
PEOPLE = ("Contact", "Lead")
NEVER_TOUCH = ("Contract", "Order", "Quote", "Invoice")


@dataclass
class Outcome:
    proposed: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)

    def add(self, record_id: str, held: bool) -> None:
        (self.held if held else self.proposed).append(record_id)


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def _day(value: object) -> date | None:
    return date.fromisoformat(str(value)[:10]) if value else None


class Candidates:
    def __init__(self, tables: Rows, anchor: datetime, running_user: str) -> None:
        self.t = tables
        self.anchor = anchor
        self.today = anchor.date()
        self.running_user = running_user
        self.removed: set[str] = set()
        self.deactivated: set[str] = set()
        self.changed_tasks: set[str] = set()  # the tasks orphaned_tasks proposes to change

    def rows(self, name: str) -> Iterable[Mapping[str, Any]]:
        return (r for r in self.t.get(name, ()) if not r.get("IsDeleted"))

    def recent(self, row: Mapping[str, Any]) -> bool:
        created = row.get("CreatedDate")
        return bool(created) and parse_datetime(str(created)) > self.anchor - timedelta(days=RECENT_DAYS)

    def open_deal_people(self) -> set[str]:
        open_deals = {o["Id"] for o in self.rows("Opportunity") if not o["IsClosed"]}
        return {r["ContactId"] for r in self.rows("OpportunityContactRole") if r["OpportunityId"] in open_deals}

    def open_case_records(self, field_name: str) -> set[str]:
        return {c[field_name] for c in self.rows("Case") if not c["IsClosed"] and c.get(field_name)}

    def people(self) -> Iterable[tuple[str, Mapping[str, Any]]]:
        return ((name, row) for name in PEOPLE for row in self.rows(name) if row["Id"] not in self.removed)

    # --- the passes, in their order -------------------------------------------------------------

    def stale_contacts(self) -> Outcome:
        cutoff = _years_before(self.today, STALE_YEARS)
        on_deal = self.open_deal_people()
        out = Outcome()
        for _, row in self.people():
            last = _day(row.get("LastActivityDate") or row.get("LastModifiedDate") or row.get("CreatedDate"))
            if last is not None and last < cutoff:
                out.add(row["Id"], self.recent(row) or row["Id"] in on_deal)
        self.removed.update(out.proposed)
        return out

    def no_contact_info(self) -> Outcome:
        guarded = self.open_deal_people() | self.open_case_records("ContactId")
        out = Outcome()
        for name, row in self.people():
            if name == "Lead" and row.get("IsConverted"):
                continue
            if not any(row.get(f) for f in ("Email", "Phone", "MobilePhone")):
                out.add(row["Id"], self.recent(row) or row["Id"] in guarded)
        self.removed.update(out.proposed)
        return out

    def bounced_emails(self) -> Outcome:
        """A soft bounce (the seed wrote one of its soft replies) is held back: its address is good. So is one
        whose reply names another address than the person's (the seed renamed a person whose address bounced)."""
        soft = {*SOFT_BOUNCES, *PLANTED_SOFT_BOUNCES}
        out = Outcome()
        for _, row in self.people():
            if row.get("EmailBouncedDate") and row.get("Email"):
                reply = str(row.get("EmailBouncedReason") or "")
                other = "@" in reply and f"<{row['Email']}>".lower() not in reply.lower()
                out.add(row["Id"], self.recent(row) or reply in soft or other)
        return out

    def duplicate_groups(self) -> list[list[str]]:
        """People sharing a normalised email, or a name at the same company; accounts sharing a name
        (letters and digits, any case) or a web domain. Exact keys only: fuzzy matches are the pass's."""
        accounts = {a["Id"]: a["Name"] for a in self.rows("Account")}
        keys: dict[tuple[str, str], list[str]] = {}
        for name, row in self.people():
            if row.get("Email"):
                keys.setdefault(("email", str(row["Email"]).strip().lower()), []).append(row["Id"])
            company = accounts.get(row.get("AccountId") or "") if name == "Contact" else row.get("Company")
            if company and row.get("Name"):
                key = f"{str(row['Name']).strip().lower()}|{str(company).strip().lower()}"
                keys.setdefault(("name", key), []).append(row["Id"])
        for account in self.rows("Account"):
            name = "".join(ch for ch in str(account["Name"]).lower() if ch.isalnum())
            keys.setdefault(("account", name), []).append(account["Id"])
            if account.get("Website"):
                host = str(account["Website"]).lower().split("//")[-1].removeprefix("www.").rstrip("/")
                keys.setdefault(("domain", host), []).append(account["Id"])
        return _components([ids for ids in keys.values() if len(ids) > 1])

    def inactive_users(self) -> Outcome:
        cutoff = self.anchor - timedelta(days=IDLE_LOGIN_DAYS)
        out = Outcome()
        for user in self.rows("User"):
            if not user["IsActive"]:
                continue
            login = user.get("LastLoginDate") or None
            idle = parse_datetime(str(login)) < cutoff if login else parse_datetime(str(user["CreatedDate"])) < cutoff
            if idle:
                out.add(user["Id"], user["Id"] == self.running_user or self.recent(user))
        self.deactivated.update(out.proposed)
        return out

    def orphaned_tasks(self) -> Outcome:
        inactive = {u["Id"] for u in self.rows("User") if not u["IsActive"]} | self.deactivated
        overdue = self.today - timedelta(days=OVERDUE_TASK_DAYS)
        out = Outcome()
        for task in self.rows("Task"):
            if task["IsClosed"]:
                continue
            due = _day(task.get("ActivityDate"))
            if task["OwnerId"] in inactive or (due is not None and due < overdue):
                out.add(task["Id"], self.recent(task))
        self.changed_tasks = set(out.proposed)
        return out

    def stale_open_deals(self) -> Outcome:
        late = self.today - timedelta(days=LATE_DEAL_DAYS)
        out = Outcome()
        for deal in self.rows("Opportunity"):
            close = _day(deal.get("CloseDate"))
            if not deal["IsClosed"] and close is not None and close < late:
                out.add(deal["Id"], self.recent(deal))
        return out

    def empty_accounts(self) -> Outcome:
        with_people = {c["AccountId"] for c in self.rows("Contact") if c["Id"] not in self.removed}
        bound = {r.get("AccountId") for name in NEVER_TOUCH for r in self.rows(name)}
        open_deals = {o["AccountId"] for o in self.rows("Opportunity") if not o["IsClosed"]}
        # Any case holds an account back, open or closed (its history goes with the account), and so
        # does a never-touch record: the pass counts those in held_back, so they are held, not skipped.
        with_cases = {c["AccountId"] for c in self.rows("Case") if c.get("AccountId")}
        # Deleting an account deletes its tasks: one whose task orphaned_tasks changes is kept.
        tasks = self.rows("Task")
        with_changed_tasks = {t["WhatId"] for t in tasks if t["Id"] in self.changed_tasks and t.get("WhatId")}
        guarded = open_deals | with_cases | bound | with_changed_tasks
        out = Outcome()
        for account in self.rows("Account"):
            if account["Id"] in with_people:
                continue
            out.add(account["Id"], self.recent(account) or account["Id"] in guarded)
        return out


def _components(groups: Sequence[Sequence[str]]) -> list[list[str]]:
    """Merge overlapping groups (a person in two keys joins them), each sorted, in order of first id."""
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for group in groups:
        for other in group[1:]:
            parent[root(other)] = root(group[0])
    merged: dict[str, list[str]] = {}
    for x in parent:
        merged.setdefault(root(x), []).append(x)
    return sorted((sorted(g) for g in merged.values()), key=lambda g: g[0])


def data_candidates(tables: Rows, anchor: datetime, running_user: str) -> dict[str, Outcome | list[list[str]]]:
    """Per pass reading people, users, tasks, deals and accounts: what it proposes and holds back."""
    c = Candidates(tables, anchor, running_user)
    found: dict[str, Outcome | list[list[str]]] = {}
    found["stale_contacts"] = c.stale_contacts()
    found["no_contact_info"] = c.no_contact_info()
    found["bounced_emails"] = c.bounced_emails()
    found["duplicates"] = c.duplicate_groups()
    found["inactive_users"] = c.inactive_users()
    found["orphaned_tasks"] = c.orphaned_tasks()
    found["stale_open_deals"] = c.stale_open_deals()
    found["empty_accounts"] = c.empty_accounts()
    return found

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
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from crmsweep.sandbox.rules import format_datetime
from crmsweep.sandbox.salesforce_store import report_definition_json
from crmsweep.sandbox.schema import OBJECTS

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

    passes: dict[str, dict[str, list[str]]] = field(default_factory=dict)

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
        self.active_owners = [u["Id"] for u in data.tables["User"] if u["IsActive"] and u["Id"] != data.api_user_id]

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


def plant_cleanup(g: _Gen, data: OrgData, seed: int) -> Planted:
    """Add the cleanup objects to `data.tables` and say what was planted for each pass."""
    planter = _Planter(g, data, seed)
    planter.reports()
    return planter.planted


"""The org's custom fields, their uses (MetadataComponentDependency) and what unused_custom_fields must propose.

Planted after the main seed (seed.py), through the Tooling module's own writes:
- unused, the true candidates: Contact.Favourite_Colour__c, Contact.Legacy_Id__c, Account.Old_Rating__c
  (a number) and Lead.Fax_Opt_In__c (a checkbox: false everywhere, so never filled);
- held back: Opportunity.Forecast_Notes__c (an Apex class uses it), Account.Region_Code__c (a page layout
  shows it), Account.Segment__c (only a report shows it, which MetadataComponentDependency cannot see),
  Contact.acme_pkg__Score__c (a managed package's field), Contact.Campaign_Tag__c (created five days ago:
  the recent-records protection);
- near misses: Contact.Partner_Code__c, filled on exactly one contact (one no pass removes: see
  `_steady_contact`), and Contact.Tier__c, filled on every other contact (and used by an Apex class);
and records the candidates in `planted.json` (see planted.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from crmsweep.sandbox import rules
from crmsweep.sandbox import salesforce_tooling as tooling
from crmsweep.sandbox.planted import planted_ids, record_planted
from crmsweep.sandbox.salesforce_store import SalesforceStore

PASS = "unused_custom_fields"
PARTNER_CODE = "PRT-0042"
# FullName, Metadata, days since created, namespace (managed), outcome: proposed / held / None
FIELDS: tuple[tuple[str, dict[str, object], int, str | None, str | None], ...] = (
    ("Contact.Favourite_Colour__c", {"type": "Text", "label": "Favourite colour", "length": 40}, 900, None,
     "proposed"),
    ("Contact.Legacy_Id__c", {"type": "Text", "label": "Legacy id", "length": 18}, 1500, None, "proposed"),
    ("Account.Old_Rating__c", {"type": "Number", "label": "Old rating", "precision": 3, "scale": 0}, 1200, None,
     "proposed"),
    ("Lead.Fax_Opt_In__c", {"type": "Checkbox", "label": "Fax opt-in", "defaultValue": "false"}, 1100, None,
     "proposed"),
    ("Opportunity.Forecast_Notes__c", {"type": "TextArea", "label": "Forecast notes"}, 800, None, "held"),
    ("Account.Region_Code__c", {"type": "Text", "label": "Region code", "length": 10}, 700, None, "held"),
    ("Contact.acme_pkg__Score__c", {"type": "Number", "label": "Score", "precision": 5, "scale": 2}, 600,
     "acme_pkg", "held"),
    ("Contact.Campaign_Tag__c", {"type": "Text", "label": "Campaign tag", "length": 30}, 5, None, "held"),
    ("Account.Segment__c", {"type": "Text", "label": "Segment", "length": 40}, 800, None, "held"),
    ("Contact.Partner_Code__c", {"type": "Text", "label": "Partner code", "length": 20}, 900, None, None),
    ("Contact.Tier__c", {"type": "Picklist", "label": "Tier", "valueSet": {"valueSetDefinition": {"value": [
        {"fullName": "Gold"}, {"fullName": "Silver"}, {"fullName": "Bronze"}]}}}, 1000, None, None),
)
# (using component type, name, the field it uses)
USES = (("ApexClass", "ForecastSync", "Opportunity.Forecast_Notes__c"),
        ("Layout", "Account-Account Layout", "Account.Region_Code__c"),
        ("ApexClass", "TierCalculator", "Contact.Tier__c"))


def _steady_contact(store: SalesforceStore, anchor: datetime) -> str | None:
    """The first contact no cleanup pass would remove or flag: reachable (email and phone), not bounced,
    active within the year, created over 60 days ago, sharing no email, phone or name with another, and
    planted for no pass by the other seed modules."""
    recent = (anchor - timedelta(days=365)).date().isoformat()
    settled = rules.format_datetime(anchor - timedelta(days=60))
    # Uniqueness by GROUP BY over the whole table (one pass each), not a correlated COUNT per contact,
    # which is quadratic: 55 s at 10k contacts, hours at 1M. A name is keyed injectively (the first
    # name's length, or N for none, then both names) so a missing first name matches only another
    # missing one, as `IS` does.
    name_key = ('CASE WHEN {t}"FirstName" IS NULL THEN \'N\' '
                'ELSE length({t}"FirstName") || \':\' || {t}"FirstName" END || \'|\' || {t}"LastName"')
    rows = store.fetch(
        'SELECT c."Id" FROM "Contact" c WHERE c."IsDeleted" = 0 AND c."Email" IS NOT NULL AND c."Phone" IS NOT NULL '
        'AND c."EmailBouncedDate" IS NULL AND c."LastActivityDate" >= ? AND c."CreatedDate" < ? '
        'AND c."LastName" IS NOT NULL '
        'AND lower(c."Email") IN (SELECT lower("Email") FROM "Contact" WHERE "Email" IS NOT NULL '
        'GROUP BY lower("Email") HAVING COUNT(*) = 1) '
        'AND c."Phone" IN (SELECT "Phone" FROM "Contact" WHERE "Phone" IS NOT NULL '
        'GROUP BY "Phone" HAVING COUNT(*) = 1) '
        f'AND {name_key.format(t="c.")} IN (SELECT {name_key.format(t="")} FROM "Contact" WHERE "LastName" IS NOT NULL '
        f'GROUP BY {name_key.format(t="")} HAVING COUNT(*) = 1) '
        'ORDER BY c."Id"', (recent, settled))
    taken = planted_ids(store.path.parent)
    for (contact_id,) in rows:
        if str(contact_id) not in taken:
            return str(contact_id)
    return None  # a seed too small to hold one: the near miss is left out


def _recent_report(store: SalesforceStore, anchor: datetime) -> str | None:
    """A live report run in the last month (so no stale-reports pass removes the use planted on it)."""
    since = rules.format_datetime(anchor - timedelta(days=30))
    rows = store.fetch('SELECT "Id" FROM "Report" WHERE "IsDeleted" = 0 AND "LastRunDate" >= ? ORDER BY "Id"',
                       (since,))
    taken = planted_ids(store.path.parent)
    found = [str(r[0]) for r in rows if str(r[0]) not in taken] or [str(r[0]) for r in rows]
    return found[0] if found else None  # a seed too small to hold one: that use is left out


def plant(store: SalesforceStore, anchor: datetime) -> None:
    made: dict[str, str] = {}
    outcome: dict[str, list[str]] = {"proposed": [], "held": []}
    for full_name, metadata, days, namespace, planted in FIELDS:
        field_id = tooling.create_field(store, {"FullName": full_name, "Metadata": metadata}, anchor,
                                        namespace=namespace, managed="installed" if namespace else "unmanaged")
        stamp = rules.format_datetime(anchor - timedelta(days=days))
        with store.transaction():
            store.set_values("CustomField", field_id, {"CreatedDate": stamp, "LastModifiedDate": stamp})
        made[full_name] = field_id
        if planted:
            outcome[planted].append(field_id)
    tooling.add_dependencies(store, [
        {"MetadataComponentId": f"01p{n:015d}", "MetadataComponentName": name, "MetadataComponentType": kind,
         "RefMetadataComponentId": made[used], "RefMetadataComponentName": used.partition(".")[2].removesuffix("__c"),
         "RefMetadataComponentType": "CustomField"}
        for n, (kind, name, used) in enumerate(USES, start=1)
    ] + [{"MetadataComponentId": "01p000000000000009", "MetadataComponentName": "TierCalculatorTest",
          "MetadataComponentType": "ApexClass", "RefMetadataComponentId": "01p000000000000003",
          "RefMetadataComponentName": "TierCalculator", "RefMetadataComponentType": "ApexClass"}])
    report = _recent_report(store, anchor)
    steady = _steady_contact(store, anchor)
    with store.transaction() as db:
        # Seeded history: the values were written long ago (no stamp moves).
        if steady is not None:
            db.execute('UPDATE "Contact" SET "Partner_Code__c" = ? WHERE "Id" = ?', (PARTNER_CODE, steady))
        if report is not None:
            store.add_report_columns(report, ["Account.Segment__c"])
        db.execute('UPDATE "Contact" SET "Tier__c" = CASE rowid % 3 WHEN 0 THEN \'Gold\' WHEN 1 THEN \'Silver\' '
                   "ELSE 'Bronze' END WHERE rowid % 2 = 0")
    record_planted(store.path.parent, {PASS: {
        # Without a steady contact (a tiny seed) Partner_Code__c stays empty: a true candidate.
        "proposed": sorted([*outcome["proposed"], *([] if steady else [made["Contact.Partner_Code__c"]])]),
        "held": sorted(outcome["held"]),
        "near_misses": sorted(made[f] for f in ("Contact.Partner_Code__c", "Contact.Tier__c")
                              if steady or f != "Contact.Partner_Code__c"),
    }})

"""The portal's custom properties the unused-fields pass must judge, its forms, and what it must propose.

Planted on top of the main seed (hubspot_seed.py already defines six unused custom properties, three
on contacts, two on companies, one on deals: the true candidates), this module adds:
- three forms naming the properties they ask for, one of them a custom property nobody filled
  (`webinar_topic`: referenced, so held back);
- `crm_sync_lock`, empty but not archivable (held back: HubSpot refuses to archive it);
- `new_campaign_code`, empty but created five days ago (held back by the recent-records protection);
- `partner_code`, filled on exactly one contact (a near miss: filled on one record), which a scan with
  `max_fill` raised removes (the end-to-end test puts its value back). The contact is one no pass removes
  (see `_steady_contact`), so that on the seed it stays filled after the earlier passes too;
and records the candidates in `planted.json` in the state folder (see `planted.py`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from crmsweep.sandbox.hubspot_forms import FORM_KIND
from crmsweep.sandbox.hubspot_portal import PROPERTY_KIND
from crmsweep.sandbox.hubspot_schema import OBJECT_TYPES, STRING, PropertyDef
from crmsweep.sandbox.hubspot_seed import CUSTOM_PROPERTIES, PortalData
from crmsweep.sandbox.hubspot_store import HubSpotStore, ObjectRow
from crmsweep.sandbox.hubspot_values import format_ts
from crmsweep.sandbox.planted import planted_ids, record_planted

PASS = "unused_custom_fields"
FILLED_ONCE = "partner_code"
PARTNER_CODE = "PRT-0042"
# (definition, days since created, held back or None)
EXTRA_PROPERTIES: tuple[tuple[PropertyDef, int], ...] = (
    (PropertyDef("webinar_topic", "Webinar topic", STRING, hubspot_defined=False), 900),
    (PropertyDef("crm_sync_lock", "CRM sync lock", STRING, hubspot_defined=False, archivable=False), 900),
    (PropertyDef("new_campaign_code", "New campaign code", STRING, hubspot_defined=False), 5),
    (PropertyDef(FILLED_ONCE, "Partner code", STRING, hubspot_defined=False), 900),
)
FORMS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("Contact us", "b2f0c1de-0001-4a8e-9b1f-00000000c0a1", ("email", "firstname", "lastname", "phone")),
    ("Webinar sign-up", "b2f0c1de-0002-4a8e-9b1f-00000000c0a2", ("email", "firstname", "webinar_topic",
                                                                 "preferred_language")),
    ("Newsletter", "b2f0c1de-0003-4a8e-9b1f-00000000c0a3", ("email",)),
)


def _form(name: str, form_id: str, fields: tuple[str, ...], created: str) -> dict[str, Any]:
    return {
        "id": form_id, "name": name, "formType": "hubspot", "createdAt": created, "updatedAt": created,
        "archived": False,
        "fieldGroups": [{"groupType": "default_group", "richTextType": "text", "fields": [
            {"objectTypeId": OBJECT_TYPES["contacts"].type_id, "name": f, "label": f.replace("_", " ").title(),
             "required": f == "email", "hidden": False, "fieldType": "email" if f == "email" else "single_line_text"}
            for f in fields]}],
        "configuration": {"language": "en", "archivable": True, "editable": True},
    }


def _steady_contact(data: PortalData, taken: set[str]) -> ObjectRow | None:
    """The first contact no cleanup pass would remove or flag: reachable (email and phone), not bounced,
    active within the year, created over 60 days ago, sharing no email, phone or name with another, and
    planted for no pass by the other seed modules (`taken`)."""
    contacts = [o for o in data.objects if o.type == "contacts"]

    def key(o: ObjectRow, *names: str) -> tuple[str, ...]:
        return tuple(str(o.properties.get(n) or "").strip().lower() for n in names)

    seen: dict[tuple[str, ...], int] = {}
    for o in contacts:
        for k in (key(o, "email"), key(o, "phone"), key(o, "firstname", "lastname")):
            seen[k] = seen.get(k, 0) + 1
    recent = format_ts(data.anchor - timedelta(days=365))
    settled = format_ts(data.anchor - timedelta(days=60))
    for o in sorted(contacts, key=lambda o: o.id):
        p = o.properties
        if not (p.get("email") and p.get("phone")) or any(
                p.get(n) for n in ("hs_email_hard_bounce_reason_enum", "hs_email_bad_address", "hs_email_quarantined")):
            continue
        if str(p.get("lastmodifieddate")) < recent or str(p.get("notes_last_updated") or "") < recent:
            continue
        if o.created_at > settled or str(o.id) in taken:
            continue
        if all(seen[k] == 1 for k in (key(o, "email"), key(o, "phone"), key(o, "firstname", "lastname"))):
            return o
    return None  # a seed too small to hold one: the near miss is left out


def plant(store: HubSpotStore, data: PortalData) -> None:
    anchor = data.anchor
    contacts = OBJECT_TYPES["contacts"]
    with store.transaction():
        for prop, days in EXTRA_PROPERTIES:
            created = format_ts(anchor - timedelta(days=days))
            store.put_doc(PROPERTY_KIND + "contacts", prop.name, prop.to_json(contacts, created))
        for name, form_id, fields in FORMS:
            store.put_doc(FORM_KIND, form_id, _form(name, form_id, fields, format_ts(anchor - timedelta(days=400))))
        # Seeded history: the value was written long ago, so no stamp moves.
        steady = _steady_contact(data, planted_ids(store.path.parent))
        row = store.get_object("contacts", steady.id) if steady is not None else None
        if row is not None:
            row.properties[FILLED_ONCE] = PARTNER_CODE
            store.save_object(row)
    unused = [f"{o}.{p.name}" for o, props in CUSTOM_PROPERTIES.items() for p, used in props if not used]
    # Without a steady contact (a tiny seed) partner_code stays empty: a true candidate, not a near miss.
    near = [f"contacts.{FILLED_ONCE}"] if row is not None else []
    record_planted(store.path.parent, {PASS: {
        "proposed": sorted([*unused, *([] if row is not None else [f"contacts.{FILLED_ONCE}"])]),
        "held": sorted(f"contacts.{p.name}" for p, _ in EXTRA_PROPERTIES if p.name != FILLED_ONCE),
        "near_misses": [*near, "contacts.customer_tier"],
    }})

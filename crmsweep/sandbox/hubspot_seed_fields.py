"""The portal's custom properties the unused-fields pass must judge, its forms, and what it must propose.

Planted on top of the main seed (hubspot_seed.py already defines six unused custom properties, three
on contacts, two on companies, one on deals: the true candidates), this module adds:
- three forms naming the properties they ask for, one of them a custom property nobody filled
  (`webinar_topic`: referenced, so held back);
- `crm_sync_lock`, empty but not archivable (held back: HubSpot refuses to archive it);
- `new_campaign_code`, empty but created five days ago (held back by the recent-records protection);
- `partner_code`, filled on exactly one contact made for it (a near miss: filled on one record), which
  a scan with `max_fill` raised removes (the end-to-end test puts its value back);
and records the candidates in `planted.json` in the state folder (see `planted.py`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from crmsweep.sandbox.hubspot_forms import FORM_KIND
from crmsweep.sandbox.hubspot_portal import PROPERTY_KIND
from crmsweep.sandbox.hubspot_schema import OBJECT_TYPES, STRING, PropertyDef
from crmsweep.sandbox.hubspot_seed import CUSTOM_PROPERTIES, _row
from crmsweep.sandbox.hubspot_store import HubSpotStore
from crmsweep.sandbox.hubspot_values import format_ts
from crmsweep.sandbox.planted import record_planted

PASS = "unused_custom_fields"
FILLED_ONCE = "partner_code"
PARTNER_CONTACT = {"firstname": "Parveen", "lastname": "Okonkwo-Lindqvist", "email": "parveen.okonkwo@partner.example",
                   "phone": "+1 415 555 0142", "city": "Portland", "state": "Oregon", "jobtitle": "Partner manager",
                   "lifecyclestage": "customer", FILLED_ONCE: "PRT-0042"}
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


def plant(store: HubSpotStore, anchor: datetime) -> None:
    contacts = OBJECT_TYPES["contacts"]
    with store.transaction():
        for prop, days in EXTRA_PROPERTIES:
            created = format_ts(anchor - timedelta(days=days))
            store.put_doc(PROPERTY_KIND + "contacts", prop.name, prop.to_json(contacts, created))
        for name, form_id, fields in FORMS:
            store.put_doc(FORM_KIND, form_id, _form(name, form_id, fields, format_ts(anchor - timedelta(days=400))))
        record_id = store.next_numbers("contacts", 1)[0]
        store.insert_objects([_row("contacts", record_id, anchor - timedelta(days=400),
                                   anchor - timedelta(days=200), dict(PARTNER_CONTACT))])
    unused = [f"{o}.{p.name}" for o, props in CUSTOM_PROPERTIES.items() for p, used in props if not used]
    record_planted(store.path.parent, PASS, proposed=sorted(unused),
                   held=sorted(f"contacts.{p.name}" for p, _ in EXTRA_PROPERTIES if p.name != FILLED_ONCE))

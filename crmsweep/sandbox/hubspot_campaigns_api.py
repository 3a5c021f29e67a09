"""Marketing campaigns (marketing v3) as the sandbox serves them: list, read and partial update.

Shapes from HubSpot's reference for `/marketing/v3/campaigns`: a campaign is `{id (a UUID),
properties, createdAt, updatedAt, businessUnits}`. `properties=` names what comes back; a property
with no value is left out, and without `properties=` the map is empty (as documented). A PATCH sets
the values given, "" clears one; a read-only or unknown property is a 400 (the v3 reference; the
dated 2026 versions ignore them instead). The values of `hs_campaign_status` are UNCONFIRMED in the
docs: the sandbox takes the ones the campaign screens show.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from crmsweep.sandbox.hubspot_http import HubSpotError, allow, int_param, json_object, multi, paging
from crmsweep.sandbox.hubspot_store import Doc
from crmsweep.sandbox.hubspot_values import format_ts
from crmsweep.sandbox.provider_api import Request, Response, json_response

if TYPE_CHECKING:
    from crmsweep.sandbox.hubspot_api import HubSpotApi

CAMPAIGN_KIND = "campaign"
PAGE_DEFAULT = 50
PAGE_MAX = 100
STATUSES = ("planned", "in_progress", "active", "paused", "completed")
# Writable campaign properties and what each takes; the rest of a campaign's properties are read-only.
WRITABLE: dict[str, str] = {
    "hs_name": "text", "hs_start_date": "date", "hs_end_date": "date", "hs_campaign_status": "status",
    "hs_notes": "text", "hs_audience": "text", "hs_currency_code": "text", "hs_owner": "text",
    "hs_color_hex": "text",
}
READ_ONLY = ("hs_object_id", "hs_created_by_user_id", "hs_budget_items_sum_amount", "hs_spend_items_sum_amount")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def route(api: HubSpotApi, request: Request, rest: list[str]) -> Response:
    method = request.method
    if not rest:
        allow(method, "GET")
        return _page(api, request)
    if len(rest) != 1:
        raise HubSpotError(404, "OBJECT_NOT_FOUND", f"Resource not found: {request.path}")
    allow(method, "GET", "PATCH")
    doc = api.store.doc(CAMPAIGN_KIND, rest[0])
    if doc is None:
        raise HubSpotError(404, "OBJECT_NOT_FOUND", f"Campaign {rest[0]} does not exist")
    if method == "GET":
        return json_response(200, _shown(doc.data, multi(request, "properties")))
    changes = json_object(request).get("properties")
    if not isinstance(changes, dict):
        raise HubSpotError(400, "VALIDATION_ERROR", "Invalid input JSON: properties must be an object")
    values = _checked(changes)
    held = dict(doc.data.get("properties") or {})
    for name, value in values.items():
        if value == "":
            held.pop(name, None)
        else:
            held[name] = value
    doc.data["properties"] = held
    doc.data["updatedAt"] = format_ts(api.clock())
    with api.store.transaction():
        api.store.put_doc(CAMPAIGN_KIND, doc.key, doc.data)
    return json_response(200, _shown(doc.data, list(values)))


def _page(api: HubSpotApi, request: Request) -> Response:
    docs: list[Doc] = api.store.docs(CAMPAIGN_KIND)
    name = (request.param("name") or "").lower()
    if name:
        docs = [d for d in docs if name in str((d.data.get("properties") or {}).get("hs_name", "")).lower()]
    limit = min(int_param(request, "limit", PAGE_DEFAULT, low=1), PAGE_MAX)
    after = int_param(request, "after", 0)
    window = docs[after : after + limit]
    more = after + limit if after + limit < len(docs) else None
    wanted = multi(request, "properties")
    return json_response(200, {"total": len(docs), "results": [_shown(d.data, wanted) for d in window],
                               **paging(more)})


def _shown(data: dict[str, Any], wanted: list[str]) -> dict[str, Any]:
    held = data.get("properties") or {}
    properties = {n: held[n] for n in wanted if held.get(n) not in (None, "")}
    return {**{k: v for k, v in data.items() if k != "properties"}, "properties": properties}


def _checked(changes: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    errors: list[str] = []
    for name, value in changes.items():
        kind = WRITABLE.get(name)
        if kind is None:
            errors.append(f"{name} is a read-only property" if name in READ_ONLY else f"Property {name} does not "
                          "exist")
            continue
        text = "" if value is None else str(value)
        if text and kind == "date" and not _DATE.fullmatch(text):
            errors.append(f"{name} must be a date (YYYY-MM-DD), not {text!r}")
        elif text and kind == "status" and text not in STATUSES:
            errors.append(f"{name} must be one of {', '.join(STATUSES)}, not {text!r}")
        else:
            out[name] = text
    if errors:
        raise HubSpotError(400, "VALIDATION_ERROR", "; ".join(errors))
    return out

"""Marketing forms (v3) and the property endpoints beyond the v3 definitions: the 2027-03 beta restore.

Forms: `GET /marketing/v3/forms/` pages of at most 50 (`limit`, `after`, `archived`), and
`GET /marketing/v3/forms/{id}`. Each form names the properties it asks for in `fieldGroups[].fields[]`
(`objectTypeId`, `name`), which is how a backup learns that a property is in use.

Archiving a property (`DELETE /crm/v3/properties/{objectType}/{name}`, in hubspot_portal_api.py) also
clears its values from every record here: the notes leave open whether values survive an archive and a
restore, and the pessimistic choice is the one that makes a rollback put the values back itself. The
records' modified stamps do not move (it is a change of schema, not a write to a record).

`POST /crm/schemas/2027-03-beta/objects/{objectTypeId}/properties/batch/restore` `{"inputs": [{"name"}]}`
brings archived properties back under their names (the definitions only): 200 with `results` (the
definitions) and, for a name that is not archived, an error entry (207), as HubSpot's batch endpoints do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crmsweep.sandbox.hubspot_http import (
    HubSpotError,
    allow,
    batch_inputs,
    batch_times,
    flag,
    int_param,
    object_or_400,
    paging,
)
from crmsweep.sandbox.hubspot_portal import PROPERTY_KIND
from crmsweep.sandbox.hubspot_schema import ObjectType
from crmsweep.sandbox.hubspot_store import table
from crmsweep.sandbox.hubspot_values import format_ts
from crmsweep.sandbox.provider_api import Request, Response, json_response
from crmsweep.sandbox.store import quote

if TYPE_CHECKING:
    from crmsweep.sandbox.hubspot_api import HubSpotApi

FORM_KIND = "form"
FORM_PAGE_MAX = 50
RESTORE_PATH = ["crm", "schemas", "2027-03-beta", "objects"]


def route(api: HubSpotApi, request: Request, parts: list[str]) -> Response | None:
    """The answer for a forms or beta-restore path; None for any other path."""
    if parts[:3] == ["marketing", "v3", "forms"]:
        allow(request.method, "GET")
        return _forms(api, request, parts[3] if len(parts) == 4 else None)
    if parts[:4] == RESTORE_PATH and parts[5:] == ["properties", "batch", "restore"] and len(parts) == 8:
        allow(request.method, "POST")
        return _restore(api, request, object_or_400(parts[4]))
    return None


def _forms(api: HubSpotApi, request: Request, form_id: str | None) -> Response:
    archived = flag(request, "archived")
    if form_id is not None:
        doc = api.store.doc(FORM_KIND, form_id)
        if doc is None or doc.archived != archived:
            raise HubSpotError(404, "OBJECT_NOT_FOUND", f"Form {form_id} does not exist")
        return json_response(200, doc.data)
    limit = min(int_param(request, "limit", 20, low=1), FORM_PAGE_MAX)
    after = int_param(request, "after", 0)
    docs = api.store.docs(FORM_KIND, archived=archived)
    window = docs[after : after + limit]
    following = after + limit if after + limit < len(docs) else None
    return json_response(200, {"results": [d.data for d in window], **paging(following)})


def _restore(api: HubSpotApi, request: Request, o: ObjectType) -> Response:
    started = api.clock()
    _body, inputs = batch_inputs(request)
    kind = PROPERTY_KIND + o.name
    results: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    with api.store.transaction():
        for item in inputs:
            name = str(item.get("name") or "")
            doc = api.store.doc(kind, name)
            if doc is None or not doc.archived:
                errors.append({"status": "error", "category": "OBJECT_NOT_FOUND",
                               "message": f"No archived property {name} for object type {o.name}",
                               "context": {"names": [name]}})
                continue
            doc.data.update(archived=False, updatedAt=format_ts(api.clock()))
            doc.data.pop("archivedAt", None)
            api.store.put_doc(kind, name, doc.data, archived=False)
            results.append(doc.data)
    api.portal.forget_properties(o.name)
    body: dict[str, Any] = {"status": "COMPLETE", "results": results, **batch_times(started, api.clock)}
    if errors:
        body["errors"] = errors
        body["numErrors"] = len(errors)
    return json_response(207 if errors else 200, body)


def clear_values(api: HubSpotApi, o: ObjectType, name: str) -> None:
    """Drop an archived property's values from every record of its type (see the module docstring);
    call inside the archive's transaction."""
    path = f'$."{name}"'
    with api.store.transaction() as db:
        db.execute(f"UPDATE {quote(table(o.name))} SET props = json_remove(props, ?) "
                   "WHERE json_type(props, ?) IS NOT NULL", (path, path))

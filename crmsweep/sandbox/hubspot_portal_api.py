"""The portal's non-record endpoints: property definitions and groups, owners, users, lists,
marketing emails, campaigns (`hubspot_campaigns_api`), v4 associations, account usage and the deal
pipeline. Called by `HubSpotApi._route` with the path already split; shapes from api-notes §2.5,
§3.3-3.5.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from crmsweep.sandbox import hubspot_campaigns_api as campaigns_api
from crmsweep.sandbox import hubspot_forms
from crmsweep.sandbox.hubspot_http import (
    HubSpotError,
    allow,
    batch_inputs,
    batch_times,
    flag,
    int_param,
    json_body,
    json_object,
    multi,
    object_or_400,
    paging,
)
from crmsweep.sandbox.hubspot_portal import (
    EMAIL_KIND,
    GROUP_KIND,
    LIST_KIND,
    OWNER_KIND,
    PROPERTY_KIND,
    USER_KIND,
)
from crmsweep.sandbox.hubspot_schema import (
    CLOSED_DEAL_STAGES,
    DEFAULT_PROPERTIES,
    OBJECT_TYPES,
    STRING,
    ObjectType,
    PropertyDef,
    default_association,
    object_type,
)
from crmsweep.sandbox.hubspot_store import Doc
from crmsweep.sandbox.hubspot_values import format_ts, parse_ts
from crmsweep.sandbox.provider_api import Request, Response, json_response

if TYPE_CHECKING:
    from crmsweep.sandbox.hubspot_api import HubSpotApi

ASSOC_READ_MAX = 1000
ASSOC_CREATE_MAX = 2000
ASSOC_PAGE = 500
OWNER_PAGE_MAX = 500
LIST_SEARCH_MAX = 500


def route(api: HubSpotApi, request: Request, parts: list[str]) -> Response:
    method = request.method
    forms = hubspot_forms.route(api, request, parts)
    if forms is not None:
        return forms
    head = parts[:3]
    if head == ["crm", "v3", "properties"] and len(parts) >= 4:
        return _properties(api, request, object_or_400(parts[3]), parts[4:])
    if head == ["crm", "v3", "owners"]:
        allow(method, "GET")
        return _owners(api, request, parts[3] if len(parts) == 4 else None)
    if head == ["settings", "v3", "users"]:
        allow(method, "GET")
        return _users(api, request, parts[3] if len(parts) == 4 else None)
    if head == ["crm", "v3", "lists"]:
        return _lists(api, request, parts[3:])
    if head == ["marketing", "v3", "emails"]:
        return _emails(api, request, parts[3:])
    if head == ["marketing", "v3", "campaigns"]:
        return campaigns_api.route(api, request, parts[3:])
    if head == ["crm", "v4", "associations"] and len(parts) >= 6:
        return _v4_batch(api, request, object_or_400(parts[3]), object_or_400(parts[4]), parts[5:])
    if head == ["crm", "v4", "objects"] and len(parts) >= 6 and parts[5] == "associations":
        return _v4_record(api, request, object_or_400(parts[3]), parts[4], parts[6:])
    if parts == ["account-info", "v3", "api-usage", "daily", "private-apps"]:
        allow(method, "GET")
        now = api.clock()
        return json_response(200, {"results": [{
            "name": "private-apps-api-calls-daily", "usageLimit": api.daily,
            "currentUsage": api.store.api_used(), "collectedAt": format_ts(now), "fetchStatus": "SUCCESS",
            "resetsAt": format_ts(now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)),
        }]})
    if parts == ["account-info", "v3", "details"]:
        allow(method, "GET")
        return json_response(200, {"portalId": int(api.store.portal_id or 0), "accountType": "SANDBOX",
                                   "timeZone": "UTC", "companyCurrency": "USD", "uiDomain": "app.hubspot.com",
                                   "dataHostingLocation": "na1"})
    if parts[:4] == ["crm", "v3", "pipelines", "deals"]:
        allow(method, "GET")
        return json_response(200, {"results": [_deal_pipeline()]} if len(parts) == 4 else _deal_pipeline())
    raise HubSpotError(404, "OBJECT_NOT_FOUND", f"Resource not found: {request.path}")


def _deal_pipeline() -> dict[str, Any]:
    stages = DEFAULT_PROPERTIES["deals"]
    options = next(p.options for p in stages if p.name == "dealstage")
    return {"id": "default", "label": "Sales Pipeline", "displayOrder": 0, "archived": False, "stages": [
        {"id": s, "label": s.title(), "displayOrder": i, "archived": False,
         "metadata": {"isClosed": str(s in CLOSED_DEAL_STAGES).lower(),
                      "probability": "1.0" if s == "closedwon" else "0.0" if s == "closedlost" else "0.5"}}
        for i, s in enumerate(options)
    ]}


def _page_docs(docs: Sequence[Doc], after: int, limit: int) -> tuple[list[Doc], int | None]:
    window = docs[after : after + limit]
    return list(window), after + limit if after + limit < len(docs) else None


# --- properties ------------------------------------------------------------------------------------


def _properties(api: HubSpotApi, request: Request, o: ObjectType, rest: list[str]) -> Response:
    method = request.method
    kind = PROPERTY_KIND + o.name
    if rest and rest[0] == "groups":
        if len(rest) == 1:
            allow(method, "GET", "POST")
            if method == "GET":
                return json_response(200, {"results": [d.data for d in api.store.docs(GROUP_KIND + o.name,
                                                                                      archived=False)]})
            data = json_object(request)
            name = str(data.get("name") or "")
            if not name or api.store.doc(GROUP_KIND + o.name, name) is not None:
                raise HubSpotError(409 if name else 400, "CONFLICT" if name else "VALIDATION_ERROR",
                                   f"A property group named '{name}' already exists" if name else "name is required")
            group = {"name": name, "label": str(data.get("label") or name),
                     "displayOrder": int(data.get("displayOrder", -1)), "archived": False}
            with api.store.transaction():
                api.store.put_doc(GROUP_KIND + o.name, name, group)
            return json_response(201, group)
        raise HubSpotError(404, "OBJECT_NOT_FOUND", "Property group not found")
    archived = flag(request, "archived")
    if not rest:
        allow(method, "GET", "POST")
        if method == "GET":
            return json_response(200, {"results": [d.data for d in api.store.docs(kind, archived=archived)]})
        return _create_property(api, o, json_object(request))
    if len(rest) != 1:
        raise HubSpotError(404, "OBJECT_NOT_FOUND", "Property not found")
    allow(method, "GET", "PATCH", "DELETE")
    doc = api.store.doc(kind, rest[0])
    if doc is None or (method == "GET" and doc.archived != archived) or (method != "GET" and doc.archived):
        raise HubSpotError(404, "OBJECT_NOT_FOUND", f"Unable to find property {rest[0]} for object type {o.name}")
    if method == "GET":
        return json_response(200, doc.data)
    if method == "DELETE":
        if doc.data.get("hubspotDefined"):
            raise HubSpotError(400, "VALIDATION_ERROR", f"{rest[0]} is a HubSpot-defined property and cannot be "
                               "archived")
        if not (doc.data.get("modificationMetadata") or {}).get("archivable", True):
            raise HubSpotError(400, "VALIDATION_ERROR", f"{rest[0]} cannot be archived: it is not archivable")
        doc.data.update(archived=True, archivedAt=format_ts(api.clock()))
        with api.store.transaction():
            api.store.put_doc(kind, doc.key, doc.data, archived=True)
            hubspot_forms.clear_values(api, o, doc.key)
        api.portal.forget_properties(o.name)
        return Response(204)
    changes = json_object(request)
    if doc.data.get("hubspotDefined"):
        raise HubSpotError(400, "VALIDATION_ERROR", f"{rest[0]} is a HubSpot-defined property; it cannot be changed")
    for key in ("label", "description", "groupName", "options", "displayOrder", "hidden", "formField"):
        if key in changes:
            doc.data[key] = changes[key]
    doc.data["updatedAt"] = format_ts(api.clock())
    with api.store.transaction():
        api.store.put_doc(kind, doc.key, doc.data)
    api.portal.forget_properties(o.name)
    return json_response(200, doc.data)


def _create_property(api: HubSpotApi, o: ObjectType, data: dict[str, Any]) -> Response:
    name = data.get("name")
    if not isinstance(name, str) or not name or not name.replace("_", "").isalnum() or name != name.lower():
        raise HubSpotError(400, "VALIDATION_ERROR", "name is required: lower-case letters, digits and underscores")
    kind = PROPERTY_KIND + o.name
    existing = api.store.doc(kind, name)
    if existing is not None:
        state = "an archived" if existing.archived else "a"
        raise HubSpotError(409, "OBJECT_ALREADY_EXISTS", f"A property named '{name}' already exists ({state} "
                           "property)")
    if api.store.doc(GROUP_KIND + o.name, str(data.get("groupName") or o.primary_group)) is None:
        raise HubSpotError(400, "VALIDATION_ERROR", f"Property group {data.get('groupName')} does not exist")
    options = data.get("options") or []
    prop = PropertyDef(name, str(data.get("label") or name), str(data.get("type") or STRING),
                       str(data.get("groupName") or o.primary_group), hubspot_defined=False,
                       options=tuple(str(x.get("value")) for x in options if isinstance(x, dict)))
    definition = prop.to_json(o, format_ts(api.clock()))
    definition["fieldType"] = str(data.get("fieldType") or definition["fieldType"])
    definition["options"] = options
    with api.store.transaction():
        api.store.put_doc(kind, name, definition)
    api.portal.forget_properties(o.name)
    return json_response(201, definition)


# --- owners and users ------------------------------------------------------------------------------


def _owners(api: HubSpotApi, request: Request, owner_id: str | None) -> Response:
    archived = flag(request, "archived")
    if owner_id is not None:
        id_property = request.param("idProperty") or "id"
        if id_property not in ("id", "userId", "userIdIncludingInactive"):
            raise HubSpotError(400, "VALIDATION_ERROR", "idProperty must be id, userId or userIdIncludingInactive")
        found = next((d for d in api.store.docs(OWNER_KIND) if str(d.data.get(id_property)) == owner_id), None)
        if found is None or found.archived != archived:
            raise HubSpotError(404, "OBJECT_NOT_FOUND", f"Owner {owner_id} not found")
        return json_response(200, found.data)
    email = (request.param("email") or "").lower()
    docs = [d for d in api.store.docs(OWNER_KIND, archived=archived)
            if not email or str(d.data.get("email", "")).lower() == email]
    limit = min(int_param(request, "limit", 100, low=1), OWNER_PAGE_MAX)
    page, more = _page_docs(docs, int_param(request, "after", 0), limit)
    return json_response(200, {"results": [d.data for d in page], **paging(more)})


def _users(api: HubSpotApi, request: Request, user_id: str | None) -> Response:
    docs = api.store.docs(USER_KIND)
    if user_id is not None:
        by_email = (request.param("idProperty") or "USER_ID").upper() == "EMAIL"
        found = next((d for d in docs if (str(d.data.get("email", "")).lower() == user_id.lower() if by_email
                                          else d.key == user_id)), None)
        if found is None:
            raise HubSpotError(404, "OBJECT_NOT_FOUND", f"User {user_id} not found")
        return json_response(200, found.data)
    limit = min(int_param(request, "limit", 100, low=1), 100)
    page, more = _page_docs(docs, int_param(request, "after", 0), limit)
    return json_response(200, {"results": [d.data for d in page], **paging(more)})


# --- lists -----------------------------------------------------------------------------------------


def _lists(api: HubSpotApi, request: Request, rest: list[str]) -> Response:
    method = request.method
    if not rest:
        allow(method, "GET", "POST")
        if method == "GET":
            wanted = set(multi(request, "listIds"))
            filters = flag(request, "includeFilters")
            return json_response(200, {"lists": [_list_json(d, filters) for d in api.store.docs(LIST_KIND,
                                                                                              archived=False)
                                                 if d.key in wanted]})
        return _create_list(api, json_object(request))
    if rest == ["search"]:
        allow(method, "POST")
        body = json_object(request)
        query = str(body.get("query") or "").lower()
        offset, count = body.get("offset") or 0, body.get("count") or 20
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (offset, count)):
            raise HubSpotError(400, "VALIDATION_ERROR", "offset and count must be integers >= 0")
        count = min(count, LIST_SEARCH_MAX)
        types = set(body.get("processingTypes") or ())
        ids = set(str(i) for i in body.get("listIds") or ())
        docs = [d for d in api.store.docs(LIST_KIND, archived=False)
                if query in str(d.data.get("name", "")).lower()
                and (not types or d.data.get("processingType") in types) and (not ids or d.key in ids)]
        page = docs[offset : offset + count]
        return json_response(200, {"lists": [{k: v for k, v in _list_json(d, False).items() if k != "size"}
                                             | {"additionalProperties": {"hs_list_size": str(d.data.get("size", 0))}}
                                             for d in page],
                                   "hasMore": offset + count < len(docs), "offset": offset + len(page),
                                   "total": len(docs)})
    doc = api.store.doc(LIST_KIND, rest[0])
    if doc is None:
        raise HubSpotError(404, "OBJECT_NOT_FOUND", f"List {rest[0]} does not exist")
    if rest[1:] == ["restore"]:
        allow(method, "PUT")
        if not doc.archived:
            raise HubSpotError(400, "VALIDATION_ERROR", f"List {rest[0]} is not deleted")
        doc.data.pop("deletedAt", None)
        doc.data["updatedAt"] = format_ts(api.clock())
        with api.store.transaction():
            api.store.put_doc(LIST_KIND, doc.key, doc.data, archived=False)
        return Response(204)
    if len(rest) != 1 or (doc.archived and method != "GET"):
        raise HubSpotError(404, "OBJECT_NOT_FOUND", f"List {rest[0]} does not exist")
    allow(method, "GET", "DELETE")
    if method == "GET":
        # A deleted list, restorable for 90 days, is still answered, with its deletedAt (the field is in
        # the list's documented shape; whether GET answers it is UNCONFIRMED).
        return json_response(200, {"list": _list_json(doc, flag(request, "includeFilters"))})
    doc.data["deletedAt"] = format_ts(api.clock())
    with api.store.transaction():
        api.store.put_doc(LIST_KIND, doc.key, doc.data, archived=True)
    return Response(204)


def _list_json(doc: Doc, include_filters: bool) -> dict[str, Any]:
    """A list as answered: its filter branch only when asked for (`includeFilters`), as documented."""
    return doc.data if include_filters else {k: v for k, v in doc.data.items() if k != "filterBranch"}


def _create_list(api: HubSpotApi, data: dict[str, Any]) -> Response:
    name, type_id = data.get("name"), str(data.get("objectTypeId") or "")
    processing = str(data.get("processingType") or "")
    if not isinstance(name, str) or not name or object_type(type_id) is None or processing not in (
            "MANUAL", "DYNAMIC", "SNAPSHOT"):
        raise HubSpotError(400, "VALIDATION_ERROR", "name, objectTypeId and processingType are required")
    if any(d.data.get("name") == name for d in api.store.docs(LIST_KIND, archived=False)):
        raise HubSpotError(400, "VALIDATION_ERROR", f"A list named '{name}' already exists")
    stamp = format_ts(api.clock())
    with api.store.transaction():
        (list_id,) = api.store.next_numbers(LIST_KIND, 1)
        doc = {"listId": str(list_id), "name": name, "objectTypeId": type_id, "processingType": processing,
               "processingStatus": "COMPLETE", "listVersion": 1, "size": 0, "createdAt": stamp,
               "updatedAt": stamp, "filtersUpdatedAt": stamp, "createdById": "1", "updatedById": "1"}
        api.store.put_doc(LIST_KIND, str(list_id), doc)
    return json_response(200, {"list": doc})


# --- marketing emails ------------------------------------------------------------------------------


def _emails(api: HubSpotApi, request: Request, rest: list[str]) -> Response:
    method = request.method
    archived = flag(request, "archived")
    if not rest:
        allow(method, "GET")
        docs = api.store.docs(EMAIL_KIND, archived=archived)
        for param, key, before in (("updatedBefore", "updatedAt", True), ("updatedAfter", "updatedAt", False),
                                   ("createdBefore", "createdAt", True), ("createdAfter", "createdAt", False)):
            raw = request.param(param)
            if raw:
                moment = parse_ts(raw)
                if moment is None:
                    raise HubSpotError(400, "VALIDATION_ERROR", f"{param} is not a datetime: {raw}")
                bound = format_ts(moment)
                docs = [d for d in docs if (str(d.data.get(key)) < bound) == before]
        if request.param("isPublished") is not None:
            published = flag(request, "isPublished")
            docs = [d for d in docs if bool(d.data.get("isPublished")) == published]
        limit = min(int_param(request, "limit", 10, low=1), 100)
        page, more = _page_docs(docs, int_param(request, "after", 0), limit)
        return json_response(200, {"total": len(docs), "results": [d.data for d in page], **paging(more)})
    doc = api.store.doc(EMAIL_KIND, rest[0])
    if doc is None or len(rest) != 1:
        raise HubSpotError(404, "OBJECT_NOT_FOUND", f"Email {rest[0]} does not exist")
    allow(method, "GET", "PATCH", "DELETE")
    if method == "GET":
        if doc.archived != archived:
            raise HubSpotError(404, "OBJECT_NOT_FOUND", f"Email {rest[0]} does not exist")
        return json_response(200, doc.data)
    stamp = format_ts(api.clock())
    if method == "DELETE":
        if doc.archived:
            raise HubSpotError(404, "OBJECT_NOT_FOUND", f"Email {rest[0]} does not exist")
        doc.data.update(archived=True, deletedAt=stamp, updatedAt=stamp)
    else:
        changes = json_object(request)
        for key in ("name", "subject", "archived"):
            if key in changes:
                doc.data[key] = changes[key]
        if doc.data.get("archived") is False:
            doc.data.pop("deletedAt", None)
        doc.data["updatedAt"] = stamp
    with api.store.transaction():
        api.store.put_doc(EMAIL_KIND, doc.key, doc.data, archived=bool(doc.data.get("archived")))
    return Response(204) if method == "DELETE" else json_response(200, doc.data)


# --- associations v4 -------------------------------------------------------------------------------


def _types_json(api: HubSpotApi, pairs: Sequence[tuple[int, str]], from_type: str,
                to_type: str) -> list[dict[str, Any]]:
    labels = {(a.category, a.type_id): a.label for a in api.portal.association_types(from_type, to_type)}
    return [{"category": category, "typeId": type_id, "label": labels.get((category, type_id))}
            for type_id, category in pairs]


def _links(api: HubSpotApi, o: ObjectType, ids: Sequence[int], target: ObjectType) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    for from_id, links in api.store.associations(o.name, ids, target.name).items():
        grouped: dict[int, list[tuple[int, str]]] = {}
        for to_id, type_id, category in links:
            grouped.setdefault(to_id, []).append((type_id, category))
        out[from_id] = [{"toObjectId": to_id, "associationTypes": _types_json(api, types, o.name, target.name)}
                        for to_id, types in grouped.items()]
    return out


def _v4_batch(api: HubSpotApi, request: Request, o: ObjectType, target: ObjectType, rest: list[str]) -> Response:
    method = request.method
    if rest == ["labels"]:
        allow(method, "GET", "POST")
        if method == "POST":
            return _create_label(api, request, o, target)
        return json_response(200, {"results": [{"category": a.category, "typeId": a.type_id, "label": a.label}
                                               for a in api.portal.association_types(o.name, target.name)]})
    if len(rest) < 2 or rest[0] != "batch":
        raise HubSpotError(404, "OBJECT_NOT_FOUND", f"Resource not found: {request.path}")
    allow(method, "POST")
    action = "/".join(rest[1:])
    started = api.clock()
    if action == "read":
        _, inputs = batch_inputs(request, ASSOC_READ_MAX)
        ids = [int(str(i.get("id"))) for i in inputs if str(i.get("id", "")).isdigit()]
        links = _links(api, o, ids, target)
        found = [{"from": {"id": str(i)}, "to": links[i]} for i in dict.fromkeys(ids) if i in links]
        return json_response(200, {"status": "COMPLETE", "results": found, **batch_times(started, api.clock)})
    if action in ("create", "associate/default"):
        _, inputs = batch_inputs(request, ASSOC_CREATE_MAX)
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        with api.store.transaction():
            for item in inputs:
                from_id = str((item.get("from") or {}).get("id", ""))
                to_id = str((item.get("to") or {}).get("id", ""))
                specs = item.get("types") if action == "create" else None
                problem = _associate(api, o, from_id, target, to_id, specs, default=action != "create")
                if problem is not None:
                    errors.append({"status": "error", "category": "VALIDATION_ERROR", "message": problem,
                                   "context": {"fromId": [from_id], "toId": [to_id]}})
                    continue
                results.append({"fromObjectTypeId": o.type_id, "fromObjectId": int(from_id),
                                "toObjectTypeId": target.type_id, "toObjectId": int(to_id),
                                "labels": _labels_of(api, o, target, specs)})
        body: dict[str, Any] = {"status": "COMPLETE", "results": results, **batch_times(started, api.clock)}
        if errors:
            body["numErrors"] = len(errors)
            body["errors"] = errors
        return json_response(207 if errors else 201, body)
    if action in ("archive", "labels/archive"):
        _, inputs = batch_inputs(request, ASSOC_CREATE_MAX)
        with api.store.transaction():
            for item in inputs:
                from_id = str((item.get("from") or {}).get("id", ""))
                tos = item.get("to") if action == "archive" else [item.get("to")]
                for to in tos if isinstance(tos, list) else []:
                    to_id = str((to or {}).get("id", ""))
                    if from_id.isdigit() and to_id.isdigit():
                        type_ids = None if action == "archive" else _with_inverses(api, o, target, item.get("types"))
                        api.store.remove_associations(o.name, int(from_id), target.name, int(to_id), type_ids)
        return Response(204)
    raise HubSpotError(404, "OBJECT_NOT_FOUND", f"Resource not found: {request.path}")


def _create_label(api: HubSpotApi, request: Request, o: ObjectType, target: ObjectType) -> Response:
    """A custom (USER_DEFINED) label between two object types, answered with its type id each way."""
    body = json_object(request)
    label, name = body.get("label"), body.get("name")
    if not isinstance(label, str) or not label.strip() or not isinstance(name, str) or not name.strip():
        raise HubSpotError(400, "VALIDATION_ERROR", "label and name are required")
    inverse = body.get("inverseLabel")
    taken = {a.label for a in api.portal.association_types(o.name, target.name) if a.label}
    if label in taken:
        raise HubSpotError(409, "CONFLICT",
                           f"an association label {label} already exists from {o.name} to {target.name}")
    with api.store.transaction():
        made = api.portal.create_label(o.name, target.name, label, inverse if isinstance(inverse, str) else None)
    return json_response(200, {"results": [{"category": a.category, "typeId": a.type_id, "label": a.label}
                                           for a in made]})


def _with_inverses(api: HubSpotApi, o: ObjectType, target: ObjectType, specs: object) -> list[int]:
    """The type ids a labels/archive names, and the same links' ids seen from the other end."""
    wanted = {int(t["associationTypeId"]) for t in specs if isinstance(t, dict)
              and isinstance(t.get("associationTypeId"), int)} if isinstance(specs, list) else set()
    found = [a for a in api.portal.association_types(o.name, target.name) if a.type_id in wanted]
    return sorted(wanted | {i.type_id for a in found if (i := api.portal.inverse(a)) is not None})


def _labels_of(api: HubSpotApi, o: ObjectType, target: ObjectType, specs: object) -> list[str]:
    """The labels of the types a labelled create names, as its answer lists them (an unlabelled type has none)."""
    named = {s.get("associationTypeId") for s in specs if isinstance(s, dict)} if isinstance(specs, list) else set()
    return [a.label for a in api.portal.association_types(o.name, target.name) if a.label and a.type_id in named]


def _associate(api: HubSpotApi, o: ObjectType, from_id: str, target: ObjectType, to_id: str,
               specs: object, *, default: bool) -> str | None:
    """Link two live records (both directions); a message if it cannot be done."""
    if not from_id.isdigit() or not to_id.isdigit():
        return "from.id and to.id must be record ids"
    for kind, raw in ((o, from_id), (target, to_id)):
        row = api.store.get_object(kind.name, int(raw))
        if row is None or row.archived:
            return f"{kind.singular.upper()}={raw} is not valid"
    if default:
        chosen = default_association(o.name, target.name)
        if chosen is None:
            return f"{o.name} and {target.name} cannot be associated"
        api.portal.associate(chosen, int(from_id), int(to_id))
        return None
    if not isinstance(specs, list) or not specs:
        return "types must list at least one associationTypeId"
    for spec in specs:
        type_id = spec.get("associationTypeId") if isinstance(spec, dict) else None
        assoc = None
        # A type id is one within its category (HUBSPOT_DEFINED 1 is not USER_DEFINED 1): where a
        # category is named, it must be the type's.
        category = spec.get("associationCategory") if isinstance(spec, dict) else None
        if isinstance(type_id, int):
            assoc = api.portal.association_type(o.name, target.name, type_id, category)
        if assoc is None:
            return f"{category or ''} {type_id} is not a valid association type from {o.name} to {target.name}".strip()
    for spec in specs:
        assoc = api.portal.association_type(o.name, target.name, spec["associationTypeId"],
                                            spec.get("associationCategory"))
        assert assoc is not None
        api.portal.associate(assoc, int(from_id), int(to_id))
    return None


def _v4_record(api: HubSpotApi, request: Request, o: ObjectType, raw_id: str, rest: list[str]) -> Response:
    method = request.method
    if not raw_id.isdigit():
        raise HubSpotError(400, "VALIDATION_ERROR", f"{raw_id} is not a record id")
    if len(rest) == 1:
        allow(method, "GET")
        target = object_or_400(rest[0])
        links = _links(api, o, [int(raw_id)], target).get(int(raw_id), [])
        after, limit = int_param(request, "after", 0), min(int_param(request, "limit", ASSOC_PAGE, low=1), ASSOC_PAGE)
        page = links[after : after + limit]
        return json_response(200, {"results": page, **paging(after + limit if after + limit < len(links) else None)})
    if len(rest) == 3 and rest[0] == "default":
        allow(method, "PUT")
        target = object_or_400(rest[1])
        problem = _associate(api, o, raw_id, target, rest[2], None, default=True)
        if problem is not None:
            raise HubSpotError(400, "VALIDATION_ERROR", problem)
        chosen = default_association(o.name, target.name)
        assert chosen is not None
        return json_response(200, {"status": "COMPLETE", "results": [{
            "from": {"id": raw_id}, "to": {"id": rest[2]},
            "associationSpec": {"associationCategory": chosen.category, "associationTypeId": chosen.type_id}}]})
    if len(rest) == 2:
        allow(method, "PUT", "DELETE")
        target = object_or_400(rest[0])
        if not rest[1].isdigit():
            raise HubSpotError(400, "VALIDATION_ERROR", f"{rest[1]} is not a record id")
        if method == "DELETE":
            with api.store.transaction():
                api.store.remove_associations(o.name, int(raw_id), target.name, int(rest[1]))
            return Response(204)
        specs = json_body(request)
        with api.store.transaction():
            # A labelled PUT replaces the link's labels: drop the old ones first.
            api.store.remove_associations(o.name, int(raw_id), target.name, int(rest[1]))
            problem = _associate(api, o, raw_id, target, rest[1], specs, default=False)
            if problem is not None:
                raise HubSpotError(400, "VALIDATION_ERROR", problem)
        return json_response(201, {"fromObjectTypeId": o.type_id, "fromObjectId": int(raw_id),
                                   "toObjectTypeId": target.type_id, "toObjectId": int(rest[1]),
                                   "labels": _labels_of(api, o, target, specs)})
    raise HubSpotError(404, "OBJECT_NOT_FOUND", f"Resource not found: {request.path}")


__all__ = ["OBJECT_TYPES", "route"]

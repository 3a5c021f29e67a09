"""The HubSpot CRM API over the sandbox core, as hubspot-api-client 12 calls it.

A `provider_api.ProviderApi`: the core does TLS, the bearer-token check, faults, latency, the
daily call count and the admin endpoint; this module answers. Quirks kept (api-notes §1.9, §2):
trailing slashes on collection paths, `archived=True/False` capitalised, repeated `properties=`
(comma-joined accepted too), list pages of at most 100 by `after`, search pages of at most 200 and
never past 10,000 results (400), batches of at most 100 inputs (v4 association reads 1,000, creates
2,000), 207 for partial batch results, the ten-secondly and search windows with their headers and
429 bodies. Error bodies are HubSpot's `{"status":"error","message","correlationId","category"}`.

Test and benchmark settings are served under `/__sandbox-hubspot/` (the sandbox token, not counted):
`rate-limits` ({"tier", "tenSecondly", "searchPerSecond"}) and `validation-rules` (a list of
{"name", "objectType", "requiredProperties"}), both kept in the state; and `recycle-bin/restore`
({"objectType", "ids"}), what an admin does in HubSpot's UI and no public API can: archived records live
again under their own ids.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from crmsweep.sandbox import hubspot_portal_api as portal_api
from crmsweep.sandbox import hubspot_seed, hubspot_seed_fields
from crmsweep.sandbox.faults import FaultRule
from crmsweep.sandbox.hubspot_http import (
    HubSpotError,
    allow,
    batch_inputs,
    batch_times,
    flag,
    hs_error,
    int_param,
    json_body,
    json_object,
    multi,
    object_or_400,
    paging,
)
from crmsweep.sandbox.hubspot_limits import (
    DAILY,
    SEARCH_META,
    TEN_SECONDLY,
    TEN_SECONDLY_META,
    RateLimits,
    rate_limit_body,
    tier_limits,
)
from crmsweep.sandbox.hubspot_portal import Portal, RecordFailure, ValidationRule
from crmsweep.sandbox.hubspot_schema import DEFAULT_TIER, OBJECT_TYPES, TIERS, ObjectType, Tier, object_type
from crmsweep.sandbox.hubspot_search import SearchError, compile_search
from crmsweep.sandbox.hubspot_store import SELECT_COLUMNS, HubSpotStore, ObjectRow, table
from crmsweep.sandbox.planted import forget_planted
from crmsweep.sandbox.provider_api import (
    INTERNAL,
    ApiContext,
    Call,
    Endpoint,
    Request,
    Response,
    json_response,
)
from crmsweep.sandbox.store import Store, quote, utc_now

LIST_PAGE_MAX = 100
SEARCH_PAGE_MAX = 200
SEARCH_RESULT_CAP = 10_000
HISTORY_PAGE_MAX = 50  # list pages and batch reads that ask for propertiesWithHistory (api-notes §1.9, 2026)
ADMIN_PREFIX = "/__sandbox-hubspot/"
DEFAULT_PROPERTIES = {
    "contacts": ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"),
    "companies": ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
    "deals": ("amount", "closedate", "createdate", "dealname", "dealstage", "hs_lastmodifieddate", "hs_object_id",
              "pipeline"),
}
_GATEWAY_PAGE = "<html><head><title>{0}</title></head><body><h1>{0}</h1></body></html>"
_CORE_CATEGORIES = {"URI_TOO_LONG": "URI_TOO_LONG", "BAD_REQUEST": "VALIDATION_ERROR", "NOT_FOUND": "OBJECT_NOT_FOUND",
                    INTERNAL: "INTERNAL_ERROR"}


def _is_search(request: Request) -> bool:
    path = request.path.rstrip("/")
    return request.method == "POST" and path.startswith("/crm/v3/") and path.endswith("/search")


class HubSpotApi:
    def __init__(self, context: ApiContext, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        if not isinstance(context.store, HubSpotStore):
            raise TypeError("the HubSpot API needs the store its sandbox provider opened")
        self.store = context.store
        self.faults = context.faults
        self.daily = context.api_limit
        self.clock = context.clock
        self.portal = Portal(self.store, self.clock)
        tier = TIERS[DEFAULT_TIER]
        self.limits = RateLimits(int(self.store.meta(TEN_SECONDLY_META) or tier.ten_secondly),
                                 int(self.store.meta(SEARCH_META) or tier.search_per_second), clock=monotonic)

    # --- the core's questions ------------------------------------------------------------------

    def credential(self, request: Request) -> str | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return token.strip() if scheme.lower() == "bearer" else None

    def endpoint(self, request: Request) -> Endpoint:
        path = request.path.rstrip("/") or "/"
        if path.startswith(ADMIN_PREFIX.rstrip("/")):
            return Endpoint("hubspot admin", counted=False, admin=True)
        return Endpoint(_endpoint_name(request.method, path))

    def unauthorized(self, request: Request) -> Response:
        return hs_error(401, "INVALID_AUTHENTICATION",
                        "Authentication credentials not found. This API supports OAuth 2.0 authentication and you "
                        "can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview")

    def render_fault(self, rule: FaultRule, request: Request) -> Response:
        if rule.kind == "limit":  # an injected or a real spent allowance
            self.limits.count_daily_refusal()
            return json_response(429, rate_limit_body(DAILY))
        if rule.kind == "expired":
            return hs_error(401, "EXPIRED_AUTHENTICATION", "The OAuth token used to make this call expired")
        if rule.status == 429:
            return json_response(429, rate_limit_body(TEN_SECONDLY), {"Retry-After": "1"})
        if rule.status in (502, 503, 504, 521, 523, 524):
            return Response(rule.status, _GATEWAY_PAGE.format(rule.status).encode(), {"Content-Type": "text/html"})
        return hs_error(rule.status, "INTERNAL_ERROR" if rule.status >= 500 else "VALIDATION_ERROR",
                        "internal error" if rule.status >= 500 else "injected error")

    def render_error(self, status: int, code: str, message: str) -> Response:
        return hs_error(status, _CORE_CATEGORIES.get(code, code), message)

    def admit(self, request: Request, endpoint: Endpoint) -> Response | None:
        search = _is_search(request)
        refusal = self.limits.admit(search=search)
        if refusal is None:
            return None
        headers = {} if search else self.limits.headers(self.store.api_used(), self.daily)
        return json_response(429, rate_limit_body(refusal.policy),
                             {**headers, "Retry-After": str(refusal.retry_after)})

    def decorate(self, request: Request | None, response: Response, call: Call | None) -> None:
        if request is None or call is None or not call.used or _is_search(request):
            return  # search answers reportedly carry no rate-limit headers (api-notes §4.2)
        response.headers.update(self.limits.headers(call.used, call.limit))

    def stats(self) -> dict[str, Any]:
        return {"rate_limited": dict(self.limits.refused)}

    def route(self, request: Request, call: Call) -> Response:
        path = request.path.rstrip("/") or "/"
        try:
            if path.startswith(ADMIN_PREFIX.rstrip("/")):
                return self._admin(request, path)
            return self._route(request, path)
        except HubSpotError as exc:
            return hs_error(exc.status, exc.category, exc.message, exc.errors, **exc.extra)
        except RecordFailure as exc:
            return hs_error(exc.status, exc.category, exc.message, exc.details)

    # --- test and benchmark settings -----------------------------------------------------------

    def _admin(self, request: Request, path: str) -> Response:
        allow(request.method, "POST")
        data = json_body(request)
        try:
            if path == ADMIN_PREFIX + "rate-limits" and isinstance(data, dict):
                current = Tier("current", self.limits.window.limit, self.daily, self.limits.search.limit)
                chosen = tier_limits(data, current)
                self.store.set_meta({TEN_SECONDLY_META: str(chosen.ten_secondly),
                                     SEARCH_META: str(chosen.search_per_second)})
                self.limits.configure(chosen.ten_secondly, chosen.search_per_second)
                return json_response(200, {"tenSecondly": chosen.ten_secondly,
                                           "searchPerSecond": chosen.search_per_second, "daily": self.daily})
            if path == ADMIN_PREFIX + "validation-rules" and isinstance(data, list):
                rules = [ValidationRule.from_json(r) if isinstance(r, dict) else ValidationRule.from_json({})
                         for r in data]
                self.portal.set_rules(rules)
                return json_response(200, {"rules": [r.to_json() for r in rules]})
            if path == ADMIN_PREFIX + "recycle-bin/restore" and isinstance(data, dict):
                return self._restore_by_hand(data)
        except ValueError as exc:
            raise HubSpotError(400, "VALIDATION_ERROR", str(exc)) from None
        raise HubSpotError(400, "VALIDATION_ERROR", "POST rate-limits {tier, tenSecondly, searchPerSecond}, "
                           "validation-rules [{name, objectType, requiredProperties}] or "
                           "recycle-bin/restore {objectType, ids}")

    def _restore_by_hand(self, data: dict[str, Any]) -> Response:
        """An admin restoring archived records from HubSpot's recycle bin in its UI (no public API does):
        {"objectType", "ids"} -> {"restored": [ids]}; all or nothing."""
        o = object_or_400(str(data.get("objectType", "")))
        ids = data.get("ids")
        if not isinstance(ids, list) or not ids:
            raise ValueError("ids must be a non-empty list of record ids")
        with self.store.transaction():
            rows = self.store.get_objects(o.name, [int(i) for i in ids])
            missing = [str(i) for i in ids if int(i) not in rows]
            if missing:
                raise HubSpotError(404, "OBJECT_NOT_FOUND", f"no {o.name} record {missing[0]} in the portal")
            for row in rows.values():
                self.portal.restore_by_hand(o, row)
        return json_response(200, {"restored": [str(i) for i in ids]})

    # --- routing -------------------------------------------------------------------------------

    def _route(self, request: Request, path: str) -> Response:
        parts = path.strip("/").split("/")
        method = request.method
        if parts[:3] == ["crm", "v3", "objects"] and len(parts) >= 4:
            o = object_or_400(parts[3])
            rest = parts[4:]
            if not rest:
                allow(method, "GET", "POST")
                return self._list(request, o) if method == "GET" else self._create_one(request, o)
            if rest == ["search"]:
                allow(method, "POST")
                return self._search(request, o)
            if rest == ["gdpr-delete"] and o.name == "contacts":
                allow(method, "POST")
                return self._gdpr_delete(request, o)
            if len(rest) == 2 and rest[0] == "batch":
                allow(method, "POST")
                return self._batch(request, o, rest[1])
            if len(rest) == 1:
                allow(method, "GET", "PATCH", "DELETE")
                return self._one(request, o, rest[0])
        return portal_api.route(self, request, parts)

    # --- records -------------------------------------------------------------------------------

    def record_json(self, o: ObjectType, row: ObjectRow, names: Sequence[str] | None) -> dict[str, Any]:
        wanted = names if names else DEFAULT_PROPERTIES.get(o.name, ("hs_object_id",))
        defs = self.portal.properties(o.name)
        properties = {n: row.properties.get(n) for n in wanted if n in defs}
        data: dict[str, Any] = {"id": str(row.id), "properties": properties, "createdAt": row.created_at,
                                "updatedAt": row.updated_at, "archived": row.archived}
        if row.archived:
            data["archivedAt"] = row.archived_at
        return data

    def records_json(
        self, o: ObjectType, rows: Sequence[ObjectRow], names: Sequence[str] | None
    ) -> list[dict[str, Any]]:
        self.portal.calculated(o.name, rows, names or ())
        return [self.record_json(o, r, names) for r in rows]

    def _list(self, request: Request, o: ObjectType) -> Response:
        history = multi(request, "propertiesWithHistory")
        page_max = HISTORY_PAGE_MAX if history else LIST_PAGE_MAX
        limit = min(int_param(request, "limit", 10, low=1), page_max)  # above the maximum: clamped (UNCONFIRMED)
        after = int_param(request, "after", 0)
        archived = flag(request, "archived")
        rows = self.store.list_page(o.name, archived=archived, after=after, limit=limit + 1)
        more = rows[limit].id if len(rows) > limit else None
        names = multi(request, "properties")
        results = self.records_json(o, rows[:limit], names)
        associated = multi(request, "associations")
        if associated:
            self._inline_associations(o, rows[:limit], associated, results)
        _add_history(rows[:limit], results, history)
        return json_response(200, {"results": results, **paging(more)})

    def _inline_associations(self, o: ObjectType, rows: Sequence[ObjectRow], targets: Sequence[str],
                             results: list[dict[str, Any]]) -> None:
        for target_name in targets:
            target = object_type(target_name)
            if target is None:
                continue
            links = self.store.associations(o.name, [r.id for r in rows], target.name)
            labels = {a.type_id: a for a in self.portal.association_types(o.name, target.name)}
            for row, result in zip(rows, results, strict=True):
                found = links.get(row.id)
                if not found:
                    continue
                key = f"{o.singular}_to_{target.singular}"
                result.setdefault("associations", {})[target.name] = {"results": [
                    {"id": str(to), "type": key if labels.get(t) is None or labels[t].label is None
                     else f"{key}_{labels[t].label}".lower()} for to, t, _ in found
                ]}

    def _one(self, request: Request, o: ObjectType, raw_id: str) -> Response:
        row = self._find(o, raw_id, request.param("idProperty"), archived=flag(request, "archived"))
        if request.method == "GET":
            return json_response(200, self.records_json(o, [row], multi(request, "properties"))[0])
        if request.method == "DELETE":
            with self.store.transaction():
                self.portal.archive(row)
            return Response(204)
        data = json_object(request)
        values = data.get("properties")
        if not isinstance(values, dict):
            raise HubSpotError(400, "VALIDATION_ERROR", "Invalid input JSON: properties must be an object")
        with self.store.transaction():
            updated = self.portal.update(o, row, values)
        return json_response(200, self.record_json(o, updated, _written(o, values)))

    def _find(self, o: ObjectType, raw_id: str, id_property: str | None, *, archived: bool = False) -> ObjectRow:
        row = self._lookup(o, raw_id, id_property)
        if row is None or row.archived != archived:
            raise HubSpotError(404, "OBJECT_NOT_FOUND", "Object not found.  objectId are usually numeric.",
                               context={"id": [raw_id]})
        return row

    def _lookup(self, o: ObjectType, raw_id: str, id_property: str | None) -> ObjectRow | None:
        if id_property and id_property != "hs_object_id":
            if id_property not in self.portal.properties(o.name):
                raise HubSpotError(400, "VALIDATION_ERROR", f"Property {id_property} does not exist")
            return self.store.find_by(o.name, id_property, raw_id)
        if not raw_id.isdigit():
            return None
        return self.store.get_object(o.name, int(raw_id))

    def _create_one(self, request: Request, o: ObjectType) -> Response:
        data = json_object(request)
        values = data.get("properties") or {}
        if not isinstance(values, dict):
            raise HubSpotError(400, "VALIDATION_ERROR", "Invalid input JSON: properties must be an object")
        with self.store.transaction():
            row = self.portal.create(o, values)
            self._create_associations(o, row.id, data.get("associations"))
        return json_response(201, self.record_json(o, row, sorted(row.properties)))

    def _create_associations(self, o: ObjectType, from_id: int, associations: object) -> None:
        if not associations:
            return
        if not isinstance(associations, list):
            raise RecordFailure("VALIDATION_ERROR", "associations must be a list")
        for item in associations:
            to_id = str(((item or {}).get("to") or {}).get("id", "")) if isinstance(item, dict) else ""
            types = item.get("types") if isinstance(item, dict) else None
            if not to_id.isdigit() or not isinstance(types, list) or not types:
                raise RecordFailure("VALIDATION_ERROR", "Each association needs to.id and types")
            for spec in types:
                type_id = int((spec or {}).get("associationTypeId", -1)) if isinstance(spec, dict) else -1
                assoc = next((a for target in OBJECT_TYPES
                              if (a := self.portal.association_type(o.name, target, type_id)) is not None), None)
                if assoc is None:
                    raise RecordFailure("VALIDATION_ERROR", f"{type_id} is not a valid association type id "
                                        f"from {o.name}")
                target_row = self.store.get_object(assoc.to_type, int(to_id))
                if target_row is None or target_row.archived:
                    raise RecordFailure("VALIDATION_ERROR", f"The association target {assoc.to_type} {to_id} "
                                        "does not exist")
                self.portal.associate(assoc, from_id, int(to_id))

    def _gdpr_delete(self, request: Request, o: ObjectType) -> Response:
        data = json_object(request)
        object_id = str(data.get("objectId") or "")
        row = self._lookup(o, object_id, data.get("idProperty"))
        if row is not None:
            with self.store.transaction():
                self.store.delete_object(o.name, row.id)
        return Response(204)

    # --- batch ---------------------------------------------------------------------------------

    def _batch(self, request: Request, o: ObjectType, action: str) -> Response:
        started = self.clock()
        if action == "archive":
            _, inputs = batch_inputs(request)
            with self.store.transaction():
                for item in inputs:  # unknown or already archived ids are skipped (UNCONFIRMED)
                    row = self._lookup(o, str(item.get("id", "")), None)
                    if row is not None:
                        self.portal.archive(row)
            return Response(204)
        if action == "read":
            return self._batch_read(request, o, started)
        if action == "create":
            return self._batch_create(request, o, started)
        if action == "update":
            return self._batch_update(request, o, started)
        raise HubSpotError(404, "OBJECT_NOT_FOUND", f"Unknown batch action {action}")

    def _batch_answer(self, o: ObjectType, status: int, rows: Sequence[ObjectRow], names: Sequence[str] | None,
                      errors: list[dict[str, Any]], started: datetime, history: Sequence[str] = ()) -> Response:
        results = self.records_json(o, rows, names)
        _add_history(rows, results, history)
        body: dict[str, Any] = {"status": "COMPLETE", "results": results, **batch_times(started, self.clock)}
        if errors:
            body["numErrors"] = len(errors)
            body["errors"] = errors
            status = 207
        return json_response(status, body)

    def _batch_read(self, request: Request, o: ObjectType, started: datetime) -> Response:
        data, inputs = batch_inputs(request)
        names = [str(n) for n in data.get("properties") or []]
        history = [str(n) for n in data.get("propertiesWithHistory") or []]
        if history and len(inputs) > HISTORY_PAGE_MAX:
            raise HubSpotError(400, "VALIDATION_ERROR", f"Batch input limit exceeded: provided input size "
                               f"({len(inputs)}) exceeded maximum size ({HISTORY_PAGE_MAX}) with propertiesWithHistory")
        archived = flag(request, "archived")
        rows: list[ObjectRow] = []
        missing: list[str] = []
        for item in inputs:
            raw = str(item.get("id", ""))
            row = self._lookup(o, raw, data.get("idProperty"))
            if row is None or row.archived != archived:
                missing.append(raw)
            elif row.id not in {r.id for r in rows}:
                rows.append(row)
        errors = [] if not missing else [{
            "status": "error", "category": "OBJECT_NOT_FOUND",
            "message": f"Could not get some {o.singular.upper()} objects, they may be deleted or not exist. "
                       "Check that ids are valid.",
            "context": {"ids": missing},
        }]
        return self._batch_answer(o, 200, rows, names or None, errors, started, history)

    def _batch_create(self, request: Request, o: ObjectType, started: datetime) -> Response:
        _, inputs = batch_inputs(request)
        traced = all(isinstance(i.get("objectWriteTraceId"), str) and i["objectWriteTraceId"] for i in inputs)
        created: list[ObjectRow] = []
        errors: list[dict[str, Any]] = []

        class _AllOrNothing(Exception):
            pass

        try:
            with self.store.transaction() as db:
                for item in inputs:
                    db.execute("SAVEPOINT record")
                    try:
                        values = item.get("properties") or {}
                        if not isinstance(values, dict):
                            raise RecordFailure("VALIDATION_ERROR", "properties must be an object")
                        row = self.portal.create(o, values)
                        self._create_associations(o, row.id, item.get("associations"))
                        db.execute("RELEASE record")
                        created.append(row)
                    except RecordFailure as exc:
                        db.execute("ROLLBACK TO record")
                        db.execute("RELEASE record")
                        if not traced:
                            failure = exc
                            raise _AllOrNothing from None
                        errors.append(_record_error(exc, {"objectWriteTraceId": [item["objectWriteTraceId"]]}))
        except _AllOrNothing:
            raise failure from None
        names = sorted({n for r in created for n in r.properties})
        return self._batch_answer(o, 201, created, names or None, errors, started)

    def _batch_update(self, request: Request, o: ObjectType, started: datetime) -> Response:
        _, inputs = batch_inputs(request)
        updated: list[ObjectRow] = []
        errors: list[dict[str, Any]] = []
        names: set[str] = set()
        with self.store.transaction() as db:
            for item in inputs:
                raw = str(item.get("id", ""))
                values = item.get("properties")
                row = self._lookup(o, raw, item.get("idProperty"))
                if row is None or row.archived:
                    errors.append({"status": "error", "category": "OBJECT_NOT_FOUND",
                                   "message": f"Object not found. objectId {raw} does not exist",
                                   "context": {"ids": [raw]}})
                    continue
                if not isinstance(values, dict):
                    errors.append(_record_error(RecordFailure("VALIDATION_ERROR", "properties must be an object"),
                                                {"ids": [raw]}))
                    continue
                if (locked := self.faults.locked(request.method, request.path, raw)) is not None:
                    errors.append(_record_error(RecordFailure("LOCKED", locked, status=423), {"ids": [raw]}))
                    continue
                db.execute("SAVEPOINT record")
                try:
                    updated.append(self.portal.update(o, row, values))
                    names |= set(values)
                    db.execute("RELEASE record")
                except RecordFailure as exc:
                    db.execute("ROLLBACK TO record")
                    db.execute("RELEASE record")
                    errors.append(_record_error(exc, {"ids": [raw]}))
        return self._batch_answer(o, 200, updated, _written(o, names), errors, started)

    # --- search --------------------------------------------------------------------------------

    def _search(self, request: Request, o: ObjectType) -> Response:
        body = json_object(request)
        limit = body.get("limit", 10)
        after = body.get("after", 0) or 0
        if not isinstance(limit, int) or isinstance(limit, bool) or not 0 <= limit <= SEARCH_PAGE_MAX:
            raise HubSpotError(400, "VALIDATION_ERROR", f"limit must be between 0 and {SEARCH_PAGE_MAX}")
        if not str(after).isdigit():
            raise HubSpotError(400, "VALIDATION_ERROR", "after must be formatted as an integer")
        offset = int(str(after))
        if offset >= SEARCH_RESULT_CAP:
            raise HubSpotError(400, "VALIDATION_ERROR",
                               f"Cannot page beyond {SEARCH_RESULT_CAP} results: after={offset}. Narrow the query "
                               "(for example on hs_object_id) and search again.")
        try:
            compiled = compile_search(o.name, self.portal.properties(o.name), body)
        except SearchError as exc:
            raise HubSpotError(400, "VALIDATION_ERROR", str(exc)) from None
        source = f"FROM {quote(table(o.name))} o WHERE {compiled.where}"
        total = int(self.store.fetch(f"SELECT COUNT(*) {source}", compiled.params)[0][0])
        take = max(min(limit, SEARCH_RESULT_CAP - offset), 0)
        rows = [ObjectRow.from_sql(o.name, r) for r in self.store.fetch(
            f"SELECT {SELECT_COLUMNS} {source} ORDER BY {compiled.order_by} LIMIT ? OFFSET ?",
            (*compiled.params, take, offset),
        )] if take else []
        names = [str(n) for n in body.get("properties") or []]
        end = offset + len(rows)
        more = end if end < total and rows else None
        return json_response(200, {"total": total, "results": self.records_json(o, rows, names or None),
                                   **paging(more)})




class HubSpotSandbox:
    """The HubSpot entry of the sandbox's provider table (`apis.py`)."""

    name = "hubspot"

    def open_store(self, state_dir: Path) -> Store:
        return HubSpotStore(state_dir)

    def prepare_store(self, store: Store, *, records: int, seed: int, reset: bool) -> None:
        assert isinstance(store, HubSpotStore)
        if reset:
            store.drop_everything()
            forget_planted(store.path.parent)  # a reset portal is seeded afresh: the old plants no longer hold
        store.create_schema()
        if not store.seeded:
            data = hubspot_seed.seed_store(store, records=records, seed=seed, anchor=utc_now())
            hubspot_seed_fields.plant(store, data)

    def make_api(self, context: ApiContext) -> HubSpotApi:
        return HubSpotApi(context)

    def org_id(self, store: Store) -> str:
        return store.meta("portal_id") or ""


SANDBOX = HubSpotSandbox()


# --- helpers -------------------------------------------------------------------------------------


def _record_error(exc: RecordFailure, context: dict[str, list[str]]) -> dict[str, Any]:
    error: dict[str, Any] = {"status": "error", "category": exc.category, "message": exc.message, "context": context}
    if exc.details:
        error["errors"] = exc.details
    return error


def _add_history(rows: Sequence[ObjectRow], results: list[dict[str, Any]], names: Sequence[str]) -> None:
    """`propertiesWithHistory`: the sandbox keeps no history, so each value's only version is the
    current one, stamped with the record's last write."""
    if not names:
        return
    for row, result in zip(rows, results, strict=True):
        result["propertiesWithHistory"] = {
            n: [{"value": row.properties[n], "timestamp": row.updated_at, "sourceType": "API"}]
            for n in names if row.properties.get(n) is not None
        }


def _written(o: ObjectType, names: Iterable[str]) -> list[str]:
    """What an update answers with: the default properties, the written ones and the stamp it bumped."""
    return sorted({*DEFAULT_PROPERTIES.get(o.name, ("hs_object_id",)), *names, o.modified_property})


def _endpoint_name(method: str, path: str) -> str:
    """Calls grouped by endpoint for stats: ids replaced by {id}."""
    return f"{method} " + re.sub(r"/\d+(?=/|$)", "/{id}", path)

"""The HubSpot connector: hubspot-api-client (unmodified) driven through `hubspot_client`.

Failures become our errors in `hubspot_errors`, calls are paced to the portal's limits by
`hubspot_rate`, and JSON shapes become canonical records in `hubspot_records`; this module holds the
connector: which endpoint answers which question, paging, batching, and the rules for writes whose
outcome is unknown. Every HTTP exchange goes through `HubSpotConnector._call`.

Creates carry an idempotency key: a record may hold `RESTORE_KEY_PROPERTY` (a custom text property of
the portal), and when a `batch/create` fails in a way that may have landed (a dropped connection, a
timeout, a 502), the connector looks for the keys before sending again, so a retry never duplicates.
"""

from __future__ import annotations

import functools
import math
import re
import shlex
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from crmsweep.connectors.base import Connection, IncrementalUnsupported, RecordFilter, Scalar
from crmsweep.connectors.hubspot_assets import ASSET_OBJECTS, HubSpotAssets
from crmsweep.connectors.hubspot_client import DEFAULT_TIMEOUT, Answer, HubSpotClient
from crmsweep.connectors.hubspot_errors import body_json, is_api_exception, map_failure, outcome_unknown
from crmsweep.connectors.hubspot_properties import PSEUDO_OBJECTS, PropertyDefinitions, fields_of
from crmsweep.connectors.hubspot_rate import Pacer
from crmsweep.connectors.hubspot_records import (
    OWNER_FIELDS,
    SEARCH_CAP,
    SEARCH_PAGE,
    batch_results,
    canonical_record,
    in_filters,
    keyset_body,
    next_after,
    object_fields,
    owner_record,
    property_chunks,
    search_filters,
    whole_batch_failure,
)
from crmsweep.connectors.retry import RetryPolicy
from crmsweep.errors import BadInput, ConnectorError, RetriableError, UnknownObject
from crmsweep.model import (
    ASSOCIATION_FROM_FIELD,
    ASSOCIATION_TO_FIELD,
    LINK_TYPE_LABEL,
    ApiAllowance,
    ApiUsage,
    FieldKind,
    FieldSpec,
    ReadPlan,
    Record,
    WriteResult,
    association_object,
)
from crmsweep.providers.hubspot import HUBSPOT_CAPABILITIES, HUBSPOT_VOCABULARY, RESTORE_KEY_PROPERTY

T = TypeVar("T")


class CreateAttempt(Protocol):
    """What `find_created` reads of a create whose outcome is unknown (`model.CreateAttempt` of the
    re-create path has this shape): its idempotency key, the values it sent, when it was sent."""

    @property
    def key(self) -> str: ...
    @property
    def values(self) -> Mapping[str, Any]: ...
    @property
    def sent_after(self) -> str: ...

DEFAULT_API_VERSION = "v3"
OWNERS = "owners"
# The run log dates an intent by this machine's clock, createdate is HubSpot's: looking that much
# earlier keeps a skewed clock from hiding a record the create made.
CLOCK_MARGIN = timedelta(minutes=10)
PAGE = 100  # list endpoints and object batches
_USAGE_PATH = "/account-info/v3/api-usage/daily/private-apps"
ASSOCIATION_BATCH = 1000  # v4 batch/read inputs
# Query characters the repeated `properties=` of one list GET may take; the rest go to batch/read,
# whose body has no such limit (a too long URL is a 414).
MAX_PROPERTY_QUERY = 3000
_OBJECT_NAME = re.compile(r"[a-z][a-z0-9_]*|p[0-9]+_[a-z0-9_]+|2-[0-9]+|0-[0-9]+")
_RECORD_ID = re.compile(r"[0-9]{1,20}")
_MAX_SHOWN = 60


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def _object(name: str) -> str:
    if not isinstance(name, str) or not _OBJECT_NAME.fullmatch(name):
        raise BadInput(f"{_shown(name)} is not a HubSpot object type: use its API name in lower case "
                       "(like contacts, companies, deals, tickets, tasks)")
    return name


def _record_id(value: Any) -> str:
    if not isinstance(value, str | int) or isinstance(value, bool) or not _RECORD_ID.fullmatch(str(value)):
        raise BadInput(f"{_shown(value)} is not a HubSpot record id: expected digits (like 1234501)")
    return str(value)


class HubSpotConnector:
    """`crmsweep.connectors.base.Connector` for HubSpot (CRM v3 objects, v4 associations)."""

    provider = "hubspot"

    def __init__(
        self,
        connection: Connection,
        *,
        retry: RetryPolicy | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        max_property_query: int = MAX_PROPERTY_QUERY,
    ) -> None:
        if connection.provider != "hubspot":
            raise ValueError(f"connection '{connection.name}' is for {connection.provider}, not hubspot")
        if not connection.url.startswith("https://"):
            raise ConnectorError(f"HubSpot connection '{connection.name}' needs an https:// url")
        self.connection = connection
        self.connection_name = connection.name
        self.capabilities = HUBSPOT_CAPABILITIES
        self.vocabulary = HUBSPOT_VOCABULARY
        self._retry = retry or RetryPolicy()
        self.pacer = Pacer(daily_reserve=self._retry.daily_reserve, clock=self._retry.clock,
                           sleep=self._retry.sleep, where=f"HubSpot connection '{connection.name}'")
        self._client = HubSpotClient(connection, timeout=timeout)
        self._max_property_query = max_property_query
        self._version = connection.api_version or DEFAULT_API_VERSION
        self.calls = 0
        self.responses = 0
        self.rate_limited = 0  # 429 answers received (benchmarks and tests count them)
        self._org_id: str | None = None
        self._describes: dict[str, dict[str, Any]] = {}
        self._read_plans: dict[str, ReadPlan] = {}
        # Property definitions and the forms using them, as the pseudo-objects a backup and a pass read.
        self.definitions = PropertyDefinitions(
            self, [o for o in HUBSPOT_VOCABULARY.default_backup_objects if o != OWNERS])
        # Lists, marketing emails, campaigns: objects with APIs of their own (`hubspot_assets`).
        self._assets = HubSpotAssets(self)

    # -- plumbing

    def _call(self, action: str, fn: Callable[[], Answer], *, search: bool = False, answer_400: bool = False,
              resendable: bool = True) -> Answer:
        """One HTTP exchange under the retry policy and the pacer, failures mapped to our errors.

        `answer_400`: a 400 comes back as an answer (a batch write's validation errors, judged per record).
        `resendable` off (creates): a retriable failure after which the request may have been carried out
        is raised as `_OutcomeUnknown`, not retried, so the caller looks before it sends again.
        """

        def attempt() -> Answer:
            self.pacer.before(search=search)
            self.calls += 1
            try:
                answer = fn()
            except Exception as exc:
                if answer_400 and is_api_exception(exc) and getattr(exc, "status", None) == 400:
                    self.responses += 1
                    self.pacer.after(_headers(exc))
                    return Answer(status=400, data=body_json(getattr(exc, "body", None)), headers=_headers(exc))
                error = self._failure(exc, action)
                if not resendable and isinstance(error, RetriableError) and outcome_unknown(exc):
                    raise _OutcomeUnknown(error) from exc
                raise error from exc
            self.responses += 1
            self.pacer.after(answer.headers)
            return answer

        return self._retry.call(attempt)

    def _failure(self, exc: Exception, action: str) -> Exception:
        if not is_api_exception(exc) and not type(exc).__module__.startswith("urllib3"):
            return exc
        status = getattr(exc, "status", None) if is_api_exception(exc) else None
        if status:
            self.responses += 1
            refused = status == 429
            if refused:
                self.rate_limited += 1
            self.pacer.after(_headers(exc), refused=refused)
        return map_failure(exc, self.connection, action=action, first_contact=self.responses == 0,
                           url=self.connection.url)

    def _get(self, action: str, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Answer:
        return self._call(action, functools.partial(self._client.raw, method, *args, **kwargs))

    # -- identity

    def org_id(self) -> str:
        if self._org_id is None:
            answer = self._call("read the portal id", functools.partial(self._client.get_path,
                                                                         "/account-info/v3/details"))
            portal = answer.data.get("portalId") if isinstance(answer.data, Mapping) else None
            if portal is None:
                raise ConnectorError(f"HubSpot connection '{self.connection_name}' returned no portal id: "
                                     "the token needs the account-info scope")
            self._org_id = str(portal)
        return self._org_id

    def api_version(self) -> str:
        return self._version

    def current_user_id(self) -> str | None:
        # A private-app token or service key acts as the app, not as a user: no user to hold back.
        return None

    # -- describe

    def describe(self, object_name: str) -> dict[str, Any]:
        """Property definitions (live and archived) and property groups of an object type."""
        name = _object(object_name)
        if name == OWNERS:
            return {"objectType": OWNERS, "fields": [f.to_dict() for f in OWNER_FIELDS]}
        if name in PSEUDO_OBJECTS:
            return {"objectType": name, "fields": [f.to_dict() for f in fields_of(name)]}
        if name in ASSET_OBJECTS:
            return self._assets.describe(name)
        if name not in self._describes:
            api = self._client.properties
            try:
                live = self._get(f"describe {name}", api.get_all, name, archived=False)
            except ConnectorError as exc:
                if exc.status in (400, 404):
                    raise UnknownObject(f"the portal of connection '{self.connection_name}' has no object type "
                                   f"'{name}': use an API name like contacts, companies, deals, tickets") from None
                raise
            archived = self._get(f"describe {name}", api.get_all, name, archived=True)
            groups = self._get(f"describe {name}", self._client.property_groups.get_all, name)
            self._describes[name] = {
                "objectType": name,
                "properties": _results(live.data),
                "archivedProperties": _results(archived.data),
                "groups": _results(groups.data),
            }
        return self._describes[name]

    def fields(self, object_name: str) -> list[FieldSpec]:
        if _object(object_name) == OWNERS:
            return list(OWNER_FIELDS)
        if _object(object_name) in PSEUDO_OBJECTS:
            return fields_of(_object(object_name))
        if object_name in ASSET_OBJECTS:
            return self._assets.fields(object_name)
        return object_fields(self.describe(object_name)["properties"])

    def _kinds(self, object_name: str) -> dict[str, FieldKind]:
        return {f.name: f.kind for f in self.fields(object_name)}

    def _properties(self, object_name: str, fields: Sequence[str]) -> list[str]:
        envelope = {"id", "createdAt", "updatedAt", "archived", "archivedAt"}
        return [f for f in dict.fromkeys(fields) if f not in envelope]

    # -- reads

    def count(
        self,
        object_name: str,
        *,
        since: str | None = None,
        ids: Sequence[str] | None = None,
        equals: Mapping[str, Scalar] | None = None,
        has_value: Sequence[str] = (),
        include_deleted: bool = False,
    ) -> int:
        flt = RecordFilter.of(since=since, ids=ids, equals=equals, has_value=has_value)
        name = _object(object_name)
        if name in (OWNERS, *PSEUDO_OBJECTS) or name in ASSET_OBJECTS or flt.ids is not None:
            return sum(len(page) for page in self.iter_pages(name, ["id"], since=since, ids=ids, equals=equals,
                                                             has_value=has_value))
        body = keyset_body(search_filters(name, flt), ["hs_object_id"], None, 0, limit=1)
        answer = self._search(name, body)
        return int(answer.data.get("total", 0)) if isinstance(answer.data, Mapping) else 0

    def iter_pages(
        self,
        object_name: str,
        fields: Sequence[str],
        *,
        since: str | None = None,
        ids: Sequence[str] | None = None,
        equals: Mapping[str, Scalar] | None = None,
        has_value: Sequence[str] = (),
        include_deleted: bool = False,
    ) -> Iterator[list[Record]]:
        flt = RecordFilter.of(since=since, ids=ids, equals=equals, has_value=has_value)
        name = _object(object_name)
        if name == OWNERS:
            yield from self._owner_pages(flt)
            return
        if name in PSEUDO_OBJECTS:
            for page in self.definitions.pages(name, [*fields, *flt.fields(self.vocabulary)],
                                               include_deleted=include_deleted):
                kept = [_only(r, fields) for r in page if flt.matches(r, self.vocabulary)]
                if kept:
                    yield kept
            return
        if name in ASSET_OBJECTS:
            yield from self._assets.pages(name, fields, flt, include_deleted=include_deleted)
            return
        wanted = list(dict.fromkeys([*fields, *flt.fields(self.vocabulary)]))
        if flt.ids is not None:
            found = self.read(name, flt.ids, wanted, include_deleted=include_deleted)
            rows = [r for r in (found.get(i) for i in flt.ids) if r is not None and flt.matches(r, self.vocabulary)]
            for start in range(0, len(rows), PAGE):
                yield [_only(r, fields) for r in rows[start : start + PAGE]]
            return
        if flt.empty:
            yield from self._list_pages(name, wanted, archived=False)
        else:
            yield from self._search_pages(name, search_filters(name, flt), wanted)
        if include_deleted:
            # Search never sees archived records: those are listed, and filtered here.
            for page in self._list_pages(name, wanted, archived=True):
                kept = [_only(r, fields) for r in page if flt.matches(r, self.vocabulary)]
                if kept:
                    yield kept

    def _list_pages(self, name: str, fields: Sequence[str], *, archived: bool) -> Iterator[list[Record]]:
        """GET list pages of 100; properties beyond what one URL may carry are read by batch/read."""
        kinds = self._kinds(name)
        chunks = property_chunks(self._properties(name, fields), self._max_property_query)
        action = f"list {'archived ' if archived else ''}{name}"
        after: str | None = None
        seen: set[str] = set()
        while True:
            extra = {"after": after} if after else {}
            answer = self._get(action, self._client.objects.get_page, name, limit=PAGE, properties=chunks[0],
                               archived=archived, **extra)
            raw = _results(answer.data)
            records = [canonical_record(r, fields, kinds) for r in raw]
            if len(chunks) > 1 and records:
                self._fill(name, records, chunks[1:], fields, kinds, archived=archived)
            if records:
                yield records
            after = next_after(answer.data)
            if not after:
                return
            if after in seen:
                raise ConnectorError(f"HubSpot repeated a paging cursor when crmsweep tried to {action}: "
                                     "stopped to avoid an endless loop")
            seen.add(after)

    def _fill(self, name: str, records: list[Record], chunks: Sequence[Sequence[str]], fields: Sequence[str],
              kinds: Mapping[str, FieldKind], *, archived: bool) -> None:
        """Add the remaining property chunks to a page's records, by batch/read (properties in the body)."""
        rest = [p for chunk in chunks for p in chunk]
        found = self._batch_read(name, [str(r["id"]) for r in records], rest, kinds, archived=archived)
        for record in records:
            extra = found.get(str(record["id"]), {})
            for prop in rest:
                record[prop] = extra.get(prop)

    def _batch_read(self, name: str, ids: Sequence[str], properties: Sequence[str],
                    kinds: Mapping[str, FieldKind], *, archived: bool) -> dict[str, Record]:
        found: dict[str, Record] = {}
        action = f"read {'archived ' if archived else ''}{name}"
        for start in range(0, len(ids), PAGE):
            body = {"inputs": [{"id": i} for i in ids[start : start + PAGE]], "properties": list(properties)}
            answer = self._get(action, self._client.objects_batch.read, name, body, archived=archived)
            for raw in _results(answer.data):
                record = canonical_record(raw, None, kinds)
                found[str(record["id"])] = record
        return found

    def _search(self, name: str, body: Mapping[str, Any]) -> Answer:
        return self._call(f"search {name}", functools.partial(self._client.raw, self._client.search.do_search,
                                                               name, dict(body)), search=True)

    def _search_pages(self, name: str, filters: Sequence[Mapping[str, Any]],
                      fields: Sequence[str]) -> Iterator[list[Record]]:
        """Search pages of 200 by ascending id; at the 10,000 cap a new query resumes after the last id."""
        kinds = self._kinds(name)
        properties = self._properties(name, fields)
        after_id: str | None = None
        offset = 0
        while True:
            answer = self._search(name, keyset_body(filters, properties, after_id, offset))
            raw = _results(answer.data)
            records = [canonical_record(r, fields, kinds) for r in raw]
            if records:
                yield records
            next_offset = next_after(answer.data)
            if not next_offset or not raw:
                return
            if int(next_offset) + SEARCH_PAGE > SEARCH_CAP:
                # Paging past 10,000 is a 400: restart the query from the last id seen.
                last = str(raw[-1].get("id"))
                if after_id is not None and int(last) <= int(after_id):
                    raise ConnectorError(f"HubSpot search of {name} did not move past id {last}: stopped")
                after_id, offset = last, 0
            else:
                offset = int(next_offset)

    def _owner_pages(self, flt: RecordFilter) -> Iterator[list[Record]]:
        """Active owners, then archived ones (the owners of deactivated users, `active` False): both are
        owners a backup keeps and the inactive-users pass looks at, not recycle-bin rows."""
        for archived in (False, True):
            after: str | None = None
            while True:
                extra = {"after": after} if after else {}
                answer = self._get("list owners", self._client.owners.get_page, limit=PAGE, archived=archived,
                                   **extra)
                kept = [r for r in map(owner_record, _results(answer.data)) if flt.matches(r, self.vocabulary)]
                if kept:
                    yield kept
                after = next_after(answer.data)
                if not after:
                    break

    def read(
        self, object_name: str, ids: Sequence[str], fields: Sequence[str], *, include_deleted: bool = True
    ) -> dict[str, Record]:
        name = _object(object_name)
        if name in PSEUDO_OBJECTS:
            return self.definitions.read(name, list(dict.fromkeys(map(str, ids))), fields,
                                         include_deleted=include_deleted)
        if name in ASSET_OBJECTS:
            return self._assets.read(name, [str(i) for i in ids], fields, include_deleted=include_deleted)
        unique = list(dict.fromkeys(_record_id(i) for i in ids))
        if name == OWNERS:
            wanted = set(unique)
            return {str(r["id"]): r for page in self._owner_pages(RecordFilter()) for r in page
                    if str(r["id"]) in wanted}
        kinds = self._kinds(name)
        properties = self._properties(name, fields)
        found = self._batch_read(name, unique, properties, kinds, archived=False)
        missing = [i for i in unique if i not in found]
        if include_deleted and missing:
            found.update(self._batch_read(name, missing, properties, kinds, archived=True))
        # Archived rows carry their flag, as the protocol promises for include_deleted.
        return {i: _only(r, [*fields, "archived"]) for i, r in found.items()}

    def read_related(
        self, object_name: str, field: str, values: Sequence[str], fields: Sequence[str]
    ) -> list[Record]:
        unique = list(dict.fromkeys(str(v) for v in values))
        link = self._association_pair(object_name)
        if link is not None:
            return self._related_links(link, field, unique) if unique else []
        name = _object(object_name)
        if not unique:
            return []
        wanted = list(dict.fromkeys(["id", field, *fields]))
        if name in ASSET_OBJECTS:
            return [r for page in self.iter_pages(name, wanted) for r in page if str(r.get(field)) in set(unique)]
        if field == self.vocabulary.id_field and name != OWNERS:
            # The envelope id is no searchable property: read those records by id (live ones only).
            found = self.read(name, unique, wanted, include_deleted=False)
            return [found[i] for i in unique if i in found]
        if name == OWNERS:
            return [r for page in self._owner_pages(RecordFilter()) for r in page
                    if str(r.get(field)) in set(unique)]
        rows: list[Record] = []
        for condition in in_filters(field, unique):
            for page in self._search_pages(name, [condition], wanted):
                rows.extend(page)
        return rows

    def _association_pair(self, object_name: str) -> tuple[str, str] | None:
        """(from, to) when `object_name` is a snapshot's association pseudo-object (`contacts_to_deals`)."""
        linked = self.capabilities.association_objects
        return next(((a, b) for a in linked for b in linked if association_object(a, b) == object_name), None)

    def _related_links(self, pair: tuple[str, str], field: str, ids: list[str]) -> list[Record]:
        """Live links as a snapshot holds them ({from_id, to_id}), of records whose `field` end is in `ids`:
        the live re-check reads `contacts_to_deals` this way, as it reads a junction object elsewhere."""
        source, target = pair
        if field == ASSOCIATION_FROM_FIELD:
            found = self.read_associations(source, target, ids)
            return [{ASSOCIATION_FROM_FIELD: a, ASSOCIATION_TO_FIELD: b} for a in ids for b in found.get(a, [])]
        if field == ASSOCIATION_TO_FIELD:
            found = self.read_associations(target, source, ids)
            return [{ASSOCIATION_FROM_FIELD: a, ASSOCIATION_TO_FIELD: b} for b in ids for a in found.get(b, [])]
        raise BadInput(f"{association_object(source, target)} links are read by {ASSOCIATION_FROM_FIELD} "
                       f"or {ASSOCIATION_TO_FIELD}, not {_shown(field)}")

    # -- writes

    def _check_batch(self, object_name: str, size: int) -> str:
        name = _object(object_name)
        if name == OWNERS:
            raise BadInput("HubSpot owners are read-only through the API: reassign their records instead")
        if name == PSEUDO_OBJECTS[1]:
            raise BadInput("form fields are read-only here: change the form in HubSpot")
        if size > self.capabilities.max_batch_write:
            raise ValueError(f"{size} records in one HubSpot write; "
                             f"at most {self.capabilities.max_batch_write} per call")
        return name

    def delete(self, object_name: str, ids: Sequence[str]) -> list[WriteResult]:
        """Archive (HubSpot's recycle bin, 90 days, restored only in the UI or by re-creating); a list or
        marketing email is deleted through its own API, and restored with its id (`undelete`)."""
        name = self._check_batch(object_name, len(ids))
        if name in PSEUDO_OBJECTS:
            return self.definitions.archive(list(ids))
        if name in ASSET_OBJECTS:
            return self._assets.delete(name, ids)
        checked = [_record_id(i) for i in ids]
        if not checked:
            return []
        # Archiving is idempotent (204 whatever the state): a resend after an unknown outcome is safe.
        self._call(f"archive {name}", functools.partial(
            self._client.raw, self._client.objects_batch.archive, name, {"inputs": [{"id": i} for i in checked]}))
        return [WriteResult(id=i, ok=True) for i in checked]

    def update(self, object_name: str, records: Sequence[Record]) -> list[WriteResult]:
        name = self._check_batch(object_name, len(records))
        if name in PSEUDO_OBJECTS:
            raise BadInput("crmsweep does not change property definitions, only archives and re-creates them")
        if name in ASSET_OBJECTS:
            return self._assets.update(name, records)
        inputs = [{"id": _record_id(r.get("id")), "properties": _writable(r)} for r in records]
        if not inputs:
            return []
        keys = [str(i["id"]) for i in inputs]
        # Sending the same values twice leaves the same record: an update is safe to resend.
        answer = self._call(f"update {name}", functools.partial(
            self._client.raw, self._client.objects_batch.update, name, {"inputs": inputs}), answer_400=True)
        if answer.status == 400:
            if len(records) == 1:
                return [whole_batch_failure(answer.data, self.connection.token)]
            return [self.update(name, [record])[0] for record in records]
        results = batch_results(answer.data, keys, key_of_result="id", key_of_error="ids",
                                secret=self.connection.token)
        # An error names the ids it is about: each failure keeps its record's id.
        return [_unanswered(k) if r is None else r if r.id else replace(r, id=k)
                for r, k in zip(results, keys, strict=True)]

    def _holds_keys(self, name: str) -> bool:
        """Whether the portal has the key property on this object type (an admin adds it once: a single
        line text property named RESTORE_KEY_PROPERTY); without it, keys are not sent."""
        return any(f.name == RESTORE_KEY_PROPERTY for f in self.fields(name))

    def create(
        self, object_name: str, records: Sequence[Record], *, keys: Sequence[str] | None = None
    ) -> list[WriteResult]:
        """Results in request order, each with the new id. Where the portal holds the key property, each
        record carries its key, and after a failure that may have landed the keys are looked up before
        anything is sent again: a retry never duplicates. Without it, such a failure is OUTCOME_UNKNOWN,
        settled later by `find_created`."""
        name = self._check_batch(object_name, len(records))
        if name in ASSET_OBJECTS:
            raise BadInput(f"crmsweep does not create HubSpot {name}: a deleted one is restored with its id")
        if not records:
            return []
        if name in PSEUDO_OBJECTS:
            return self.definitions.create(records)
        if keys is not None:
            if len(keys) != len(records):
                raise ValueError(f"{len(keys)} keys for {len(records)} records")
            if self._holds_keys(name):
                records = [{**r, RESTORE_KEY_PROPERTY: k} for r, k in zip(records, keys, strict=True)]
        results: list[WriteResult | None] = [None] * len(records)
        pending = list(range(len(records)))
        for attempt in range(1, self._retry.attempts + 1):
            inputs = [{"properties": _writable(records[i]), "objectWriteTraceId": str(i)} for i in pending]
            try:
                answer = self._call(f"create {name}", functools.partial(
                    self._client.raw, self._client.objects_batch.create, name, {"inputs": inputs}),
                    answer_400=True, resendable=False)
            except _OutcomeUnknown as unknown:
                exc = unknown.error
                # The create may have landed: look before sending again.
                sent = {i: _key(records[i]) for i in pending}
                if not all(sent.values()):
                    raise ConnectorError(
                        f"create {name} on HubSpot connection '{self.connection_name}' may or may not have been "
                        f"carried out ({exc}): not sent again, since a second sending could create duplicates; "
                        "the records must be read back from HubSpot to know what happened",
                        status=exc.status, code="OUTCOME_UNKNOWN",
                    ) from unknown.__cause__
                landed = self.find_by_key(name, [k for k in sent.values() if k])
                for index, key in sent.items():
                    held = landed.get(key or "", [])
                    if len(held) == 1:
                        results[index] = WriteResult(id=str(held[0]["id"]), ok=True)
                    elif held:
                        raise ConnectorError(
                            f"{len(held)} {name} records on HubSpot connection '{self.connection_name}' carry the "
                            f"restore key {key}: not sent again; keep one and archive the others",
                            code="OUTCOME_UNKNOWN") from unknown.__cause__
                pending = [i for i in pending if results[i] is None]
                if not pending:
                    break
                if attempt >= self._retry.attempts:
                    raise exc from unknown.__cause__
                self._retry.sleep(self._retry.wait_for(exc, attempt))
                continue
            if answer.status == 400:
                if len(pending) == 1:
                    failure = whole_batch_failure(answer.data, self.connection.token)
                    results[pending[0]] = failure
                else:
                    singles = self._singly(name, [records[i] for i in pending], answer)
                    for index, single in zip(pending, singles, strict=True):
                        results[index] = single
                break
            traces = [str(i) for i in pending]
            found = batch_results(answer.data, traces, key_of_result="objectWriteTraceId",
                                  key_of_error="objectWriteTraceId", secret=self.connection.token)
            if any(r is None for r in found) and isinstance(answer.data, Mapping):
                found = _untraced(answer.data, found, [records[i] for i in pending])
            for index, result in zip(pending, found, strict=True):
                results[index] = result if result is not None else _unanswered(None)
            break
        return [r if r is not None else _unanswered(None) for r in results]

    def _singly(self, name: str, records: Sequence[Record], answer: Answer) -> list[WriteResult]:
        """A 400 for a whole batch names no input: each record is sent on its own to learn its outcome."""
        if len(records) == 1:
            return [whole_batch_failure(answer.data, self.connection.token)]
        return [self.create(name, [record])[0] for record in records]

    def find_by_key(self, object_name: str, keys: Sequence[str], fields: Sequence[str] = ()) -> dict[str, list[Record]]:
        """The live records carrying each RESTORE_KEY_PROPERTY value (with `fields`)."""
        name = _object(object_name)
        found: dict[str, list[Record]] = {}
        wanted = list(dict.fromkeys(["id", RESTORE_KEY_PROPERTY, *fields]))
        for condition in in_filters(RESTORE_KEY_PROPERTY, list(dict.fromkeys(keys))):
            for page in self._search_pages(name, [condition], wanted):
                for record in page:
                    key = record.get(RESTORE_KEY_PROPERTY)
                    if key:
                        found.setdefault(str(key), []).append(record)
        return found

    def find_created(self, object_name: str, attempts: Sequence[CreateAttempt]) -> dict[str, list[Record]]:
        """By key where the portal holds the key property; otherwise the records created since the
        earliest attempt (less a margin for the two clocks), the same list for every key, for the caller
        to tell apart by their values."""
        if not attempts:
            return {}
        name = _object(object_name)
        if name in PSEUDO_OBJECTS:
            return self.definitions.find_created([a.key for a in attempts], [a.values for a in attempts])
        fields = list(dict.fromkeys(n for a in attempts for n in a.values))
        if self._holds_keys(name):
            by_key = self.find_by_key(name, [a.key for a in attempts], fields)
            return {a.key: by_key.get(a.key, []) for a in attempts}
        earliest = min(datetime.fromisoformat(a.sent_after.replace("Z", "+00:00")) for a in attempts)
        since = (earliest - CLOCK_MARGIN).astimezone(UTC)
        condition = {"propertyName": "createdate", "operator": "GTE", "value": str(int(since.timestamp() * 1000))}
        found = [r for page in self._search_pages(name, [condition], ["id", *fields]) for r in page]
        return {a.key: found for a in attempts}

    def undelete(self, object_name: str, ids: Sequence[str]) -> list[WriteResult]:
        name = self._check_batch(object_name, len(ids))
        if name in ASSET_OBJECTS:
            return self._assets.undelete(name, ids)
        raise BadInput("HubSpot has no API to restore archived records: they come back by being re-created "
                       "(a new id), or from the recycle bin in HubSpot's own screens")

    # -- associations

    def read_associations(self, from_object: str, to_object: str, ids: Sequence[str]) -> dict[str, list[str]]:
        return {i: list(links) for i, links in self.read_association_types(from_object, to_object, ids).items()}

    def read_association_types(
        self, from_object: str, to_object: str, ids: Sequence[str]
    ) -> dict[str, dict[str, list[dict[str, Any]]]]:
        source, target = _object(from_object), _object(to_object)
        unique = list(dict.fromkeys(_record_id(i) for i in ids))
        links: dict[str, dict[str, list[dict[str, Any]]]] = {i: {} for i in unique}
        action = f"read {source} to {target} associations"
        for start in range(0, len(unique), ASSOCIATION_BATCH):
            body = {"inputs": [{"id": i} for i in unique[start : start + ASSOCIATION_BATCH]]}
            answer = self._get(action, self._client.associations.get_page, source, target, body)
            for result in _results(answer.data):
                origin = result.get("from") if isinstance(result, Mapping) else None
                if not isinstance(origin, Mapping):
                    continue
                held = links.setdefault(str(origin.get("id")), {})
                for to in result.get("to") or []:
                    if isinstance(to, Mapping):
                        types = held.setdefault(str(to.get("toObjectId")), [])
                        types.extend(_link_type(t) for t in to.get("associationTypes") or [] if isinstance(t, Mapping))
        for held in links.values():
            for to_id, types in held.items():
                # One order whatever HubSpot's: a snapshot's bytes, and the plans made from it, are stable.
                held[to_id] = sorted({(t["category"], t["typeId"]): t for t in types}.values(),
                                     key=_type_order)
        return links

    def create_associations(self, from_object: str, to_object: str, pairs: Sequence[tuple[str, str]],
                            types: Sequence[Sequence[Mapping[str, Any]]] | None = None) -> list[WriteResult]:
        source, target = _object(from_object), _object(to_object)
        if len(pairs) > self.capabilities.max_batch_write:
            raise ValueError(f"{len(pairs)} links in one HubSpot write; at most {self.capabilities.max_batch_write}")
        if types is not None and len(types) != len(pairs):
            raise ValueError(f"{len(types)} lists of link types for {len(pairs)} links")
        checked = [(_record_id(a), _record_id(b)) for a, b in pairs]
        specs = [[_type_spec(t) for t in kinds] for kinds in (types or [[] for _ in pairs])]
        results: dict[int, WriteResult] = {}
        # A link with types is made with every one it had, the unlabelled one included (batch/create, the
        # labelled create: a labelled create replaces a link's labels, api-notes 2.5); one with none (a
        # snapshot that kept no types) with the default, as before.
        for labelled in (False, True):
            indexes = [i for i, spec in enumerate(specs) if bool(spec) is labelled]
            if not indexes:
                continue
            body = {"inputs": [{"from": {"id": checked[i][0]}, "to": {"id": checked[i][1]},
                                **({"types": specs[i]} if labelled else {})} for i in indexes]}
            call = self._client.associations.create if labelled else self._client.associations.create_default
            # Linking twice leaves one link with the same types: safe to resend.
            answer = self._call(f"link {source} to {target}", functools.partial(
                self._client.raw, call, source, target, body))
            failed = _link_failures(answer.data, [checked[i] for i in indexes])
            for n, i in enumerate(indexes):
                results[i] = failed.get(n, WriteResult(id=checked[i][0], ok=True))
        return [results[i] for i in range(len(checked))]

    # -- backup metadata

    def derived_links(self, object_name: str) -> Mapping[str, tuple[str, ...]]:
        return {}

    def key_prefixes(self) -> dict[str, str]:
        return {}  # a record id is a number, alike in every object

    def deleted_since(self, object_name: str, start: datetime) -> list[str]:
        # Archived records are listed, but not those purged from the archive (GDPR deletes, records past
        # its 90 days): an incremental snapshot would keep them as if they were there.
        raise IncrementalUnsupported(
            f"HubSpot connection '{self.connection_name}' cannot back up incrementally: HubSpot lists no records "
            "deleted for good since a date, so an incremental snapshot could keep records that are gone; "
            f"run `crmsweep backup -c {shlex.quote(self.connection_name)}` (without --incremental)")

    def metadata_documents(self) -> Iterator[tuple[str, Any]]:
        """What a backup keeps beside the records: users, lists and marketing emails (archived ones too)."""
        yield "users", self._collect("list users", self._client.users.get_page)
        yield "lists", self._lists()
        emails = self._collect("list marketing emails", self._client.emails.get_page, archived=False)
        emails += self._collect("list archived marketing emails", self._client.emails.get_page, archived=True)
        yield "marketing_emails", emails

    def metadata_calls(self) -> int:
        # At least a page each: users, lists, live and archived marketing emails.
        return 4

    def _collect(self, action: str, method: Callable[..., Any], **kwargs: Any) -> list[Any]:
        rows: list[Any] = []
        after: str | None = None
        while True:
            extra = {"after": after} if after else {}
            answer = self._get(action, method, limit=PAGE, **kwargs, **extra)
            rows.extend(_results(answer.data))
            after = next_after(answer.data)
            if not after:
                return rows

    def _lists(self) -> list[Any]:
        rows: list[Any] = []
        offset = 0
        while True:
            body = {"query": "", "offset": offset, "count": PAGE}
            answer = self._get("search lists", self._client.lists.do_search, body)
            data = answer.data if isinstance(answer.data, Mapping) else {}
            rows.extend(data.get("lists") or [])
            if not data.get("hasMore"):
                return rows
            next_offset = int(data.get("offset") or 0)
            if next_offset <= offset:
                raise ConnectorError("HubSpot repeated a list-search offset: stopped to avoid an endless loop")
            offset = next_offset

    # -- accounting

    def read_plan(self, object_name: str) -> ReadPlan:
        """How a backup reads `object_name`: the search total (one call, once per connector) in list pages
        of 100, each with one batch/read more when the properties overflow one URL, then at least one
        page of archived records (a backup keeps those: HubSpot cannot restore them). The describe is
        read here (the backup reuses it) to know the properties, so `calls` holds no describe.
        Owners, property definitions and assets have no cheap total: a lower bound, rows unknown."""
        name = _object(object_name)
        plan = self._read_plans.get(name)
        if plan is None:
            if name in PSEUDO_OBJECTS:
                plan = ReadPlan(object=name, rows=None, method="list", calls=self.definitions.read_calls(name))
            elif name == OWNERS or name in ASSET_OBJECTS:
                plan = ReadPlan(object=name, rows=None, method="list", calls=2 if name == OWNERS else 1)
            else:
                names = [f.name for f in self.fields(name)]
                chunks = property_chunks(self._properties(name, names), self._max_property_query)
                per_page = 1 + (len(chunks) > 1)
                rows = self.count(name)
                pages = max(1, math.ceil(rows / PAGE)) + 1  # + the archived list's first page
                plan = ReadPlan(object=name, rows=rows, method="list", calls=pages * per_page)
            self._read_plans[name] = plan
        return plan

    def allowance(self) -> ApiAllowance | None:
        """The portal's daily allowance: from the X-HubSpot-RateLimit-Daily(-Remaining) headers last seen
        (less the calls sent since), else from the account-info usage resource. None if neither says."""
        pacer = self.pacer
        if pacer.daily_limit and pacer.daily_remaining is not None:
            return ApiAllowance(limit=pacer.daily_limit, remaining=max(pacer.remaining_now(), 0),
                                source="X-HubSpot-RateLimit-Daily")
        try:
            answer = self._call("read the API usage", functools.partial(self._client.get_path, _USAGE_PATH))
        except ConnectorError as exc:
            if exc.status in (401, 403, 404):  # a token without the account-info scope: the portal says nothing
                return None
            raise
        for row in _results(answer.data):
            if isinstance(row, Mapping) and row.get("name") == "private-apps-api-calls-daily":
                try:
                    limit, used = int(row["usageLimit"]), int(row["currentUsage"])
                except (KeyError, TypeError, ValueError):
                    return None
                return ApiAllowance(limit=limit, remaining=max(limit - used, 0), source="api-usage")
        return None

    def api_usage(self) -> ApiUsage:
        limit, remaining = self.pacer.daily_limit, self.pacer.daily_remaining
        used = limit - remaining if limit is not None and remaining is not None else None
        return ApiUsage(calls=self.calls, org_used=used, org_max=limit)

    def close(self) -> None:
        self._client.close()


# --- small helpers -----------------------------------------------------------------------------------


class _OutcomeUnknown(Exception):
    """A create failed in a way that may have landed: not for the retry policy to resend blindly."""

    def __init__(self, error: RetriableError) -> None:
        super().__init__(str(error))
        self.error = error


def _headers(exc: BaseException) -> dict[str, str]:
    headers = getattr(exc, "headers", None)
    try:
        return {str(k): str(v) for k, v in dict(headers or {}).items()}
    except (TypeError, ValueError):
        return {}


def _link_type(raw: Mapping[str, Any]) -> dict[str, Any]:
    """One type of a link as a snapshot keeps it: what a create needs (category, type id), and the label
    HubSpot shows for it (None for the unlabelled type), for the admin to read."""
    return {"category": raw.get("category"), "typeId": raw.get("typeId"), LINK_TYPE_LABEL: raw.get("label")}


def _type_order(kind: Mapping[str, Any]) -> tuple[str, int, str]:
    type_id = kind.get("typeId")
    return str(kind.get("category")), type_id if isinstance(type_id, int) else -1, str(type_id)


def _type_spec(kind: Mapping[str, Any]) -> dict[str, Any]:
    """A kept link type as batch/create takes it (api-notes 2.5); the label is not sent, the type id says it."""
    category, type_id = kind.get("category"), kind.get("typeId")
    if not isinstance(category, str) or not isinstance(type_id, int) or isinstance(type_id, bool):
        raise BadInput(f"a link type needs a category and an integer typeId, not {dict(kind)!r}: build the plan again")
    return {"associationCategory": category, "associationTypeId": type_id}


# How a batch link error names what failed: the pair's two ends, or ids without saying which end.
_FROM_KEYS = ("fromId", "fromObjectId")
_TO_KEYS = ("toId", "toObjectId")
_EITHER_KEYS = ("ids", "objectId")


def _named(context: Mapping[str, Any] | None, keys: Sequence[str]) -> set[str]:
    values: Any = next((context[k] for k in keys if context and context.get(k)), [])
    return {str(v) for v in (values if isinstance(values, list) else [values])}


def _made_links(data: Any) -> set[tuple[str, str]]:
    """The (from, to) pairs a batch link answer lists as made: v4 create's `fromObjectId`/`toObjectId`, or
    associate/default's `from.id`/`to.id`."""
    made: set[tuple[str, str]] = set()
    for row in _results(data):
        if not isinstance(row, Mapping):
            continue
        ends = [row.get("fromObjectId"), row.get("toObjectId")]
        for n, side in enumerate(("from", "to")):
            if ends[n] is None and isinstance(row.get(side), Mapping):
                ends[n] = row[side].get("id")
        if ends[0] is not None and ends[1] is not None:
            made.add((str(ends[0]), str(ends[1])))
    return made


def _link_failures(data: Any, pairs: Sequence[tuple[str, str]]) -> dict[int, WriteResult]:
    """The failed links of a batch link answer (207), by position in `pairs`. An error that names its pair
    fails that link alone: the record's other links in the batch were made, and reported failed they would be
    retried and counted as failures that did not happen. An error naming one end only (or ids of either end)
    fails each link with that end, but not one the answer lists as made."""
    made = _made_links(data)
    failed: dict[int, WriteResult] = {}
    for error in (data.get("errors") if isinstance(data, Mapping) else None) or []:
        if not isinstance(error, Mapping):
            continue
        context = error.get("context") if isinstance(error.get("context"), Mapping) else None
        froms, tos, either = (_named(context, keys) for keys in (_FROM_KEYS, _TO_KEYS, _EITHER_KEYS))
        for n, (a, b) in enumerate(pairs):
            if froms and tos:
                hit = a in froms and b in tos
            elif froms or tos:
                hit = (a in froms or b in tos) and (a, b) not in made
            else:
                hit = (a in either or b in either) and (a, b) not in made
            if hit and n not in failed:
                failed[n] = WriteResult(id=a, ok=False, message=str(error.get("message") or ""),
                                        error_code=str(error.get("category") or "UNKNOWN"))
    return failed


def _results(data: Any) -> list[Any]:
    if isinstance(data, Mapping):
        results = data.get("results")
        return list(results) if isinstance(results, list) else []
    return []


def _only(record: Record, fields: Sequence[str]) -> Record:
    keep = {"id", *fields}
    return {k: v for k, v in record.items() if k in keep}


def _writable(record: Mapping[str, Any]) -> dict[str, str]:
    """The properties of a write: envelope keys dropped, values as HubSpot takes them (text; "" clears)."""
    out: dict[str, str] = {}
    for name, value in record.items():
        if name in ("id", "createdAt", "updatedAt", "archived", "archivedAt"):
            continue
        if value is None:
            out[name] = ""
        elif isinstance(value, bool):
            out[name] = "true" if value else "false"
        elif isinstance(value, float):
            out[name] = _plain_number(value)
        else:
            out[name] = str(value)
    return out


def _plain_number(value: float) -> str:
    """A double (a before-image from a snapshot that typed numbers as FLOAT) in the only spelling HubSpot
    takes for a number: digits, a "-" and one "." (api-notes; "1e-05" and "1e+16" are refused)."""
    text = format(Decimal(repr(value)), "f")
    return text[:-2] if text.endswith(".0") else text


def _key(record: Mapping[str, Any]) -> str | None:
    value = record.get(RESTORE_KEY_PROPERTY)
    return str(value) if value not in (None, "") else None


def _untraced(data: Mapping[str, Any], found: list[WriteResult | None],
              records: Sequence[Record]) -> list[WriteResult | None]:
    """Fill the inputs a create's answer did not tie to a trace id: by the restore key the result
    carries, else in request order over the inputs no error named (HubSpot answers creates in input
    order; UNCONFIRMED in its docs), and only when the counts agree."""
    results = [r for r in data.get("results") or [] if isinstance(r, Mapping)]
    claimed = {r.id for r in found if r is not None and r.ok}
    loose = [r for r in results if str(r.get("id")) not in claimed]
    by_key = {str((r.get("properties") or {}).get(RESTORE_KEY_PROPERTY)): str(r.get("id")) for r in loose
              if isinstance(r.get("properties"), Mapping) and (r.get("properties") or {}).get(RESTORE_KEY_PROPERTY)}
    filled = list(found)
    for index, record in enumerate(records):
        key = _key(record)
        if filled[index] is None and key and key in by_key:
            filled[index] = WriteResult(id=by_key.pop(key), ok=True)
    claimed = {r.id for r in filled if r is not None and r.ok}
    loose = [r for r in loose if str(r.get("id")) not in claimed]
    open_slots = [i for i, r in enumerate(filled) if r is None]
    if len(open_slots) == len(loose):
        for index, result in zip(open_slots, loose, strict=True):
            filled[index] = WriteResult(id=str(result.get("id")), ok=True)
    return filled


def _unanswered(record_id: str | None) -> WriteResult:
    return WriteResult(id=record_id, ok=False, error_code="NO_RESULT",
                       message="HubSpot's answer named no outcome for this record: read it back to check")


__all__ = ["RESTORE_KEY_PROPERTY", "HubSpotConnector"]

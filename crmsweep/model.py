"""The shared vocabulary: Change, Plan, snapshot manifest, field specs, provider vocabulary.

Imported by every part of crmsweep; imports nothing of ours when imported (the plan writer's
column-wise part, `crmsweep.plan_text`, which needs Arrow, is imported when a plan is first written or
hashed). Everything here is plain data that
round-trips through JSON exactly (`to_dict` / `from_dict`), because plans, manifests and run logs are
files an admin reads, diffs and keeps.

Values inside records ("canonical form") are JSON scalars: str, int, float, bool, None. Dates are
"YYYY-MM-DD"; datetimes are UTC "YYYY-MM-DDTHH:MM:SS.mmmZ" (see `canonical_datetime`). Both CRMs
accept that form on input, so a before-image can be written back as it stands.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import operator
import secrets
import threading
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, date, datetime
from enum import StrEnum
from functools import cached_property
from itertools import groupby, repeat
from operator import attrgetter
from typing import IO, Any, TypeVar, cast

Record = dict[str, Any]


class ImageBlock(ABC):
    """Many before-images held together (the rows of one snapshot read, column by column), so that a plan
    writer asks for the canonical JSON of many of them in one call instead of encoding each as a dict."""

    @abstractmethod
    def canonical_json_bytes(self, rows: Sequence[int]) -> list[bytes]:
        """`canonical_json(record).encode()` of the records at these row positions, in that order."""

    def canonical_json_array(self, rows: Sequence[int]) -> Any:
        """The same texts as one Arrow text array, for a writer that copies them on without making Python
        bytes of each; None where the block offers `canonical_json_bytes` only."""
        return None

    def canonical_json_columns(self, rows: Sequence[int]) -> tuple[Any, list[tuple[str, bytes]]] | None:
        """(`canonical_json_array(rows)`, and for each field by name, sorted, the JSON list of its values in
        those rows, ", " between them), for a plan's columnar group; None where the block cannot say."""
        return None


class BeforeImage(Mapping[str, Any]):
    """A before-image that is one row of an `ImageBlock`: read like a record, written by its block.

    Equal to the canonical record it stands for (keys and values); `dict(image)` is that record."""

    __slots__ = ()

    @property
    @abstractmethod
    def block(self) -> ImageBlock: ...

    @property
    @abstractmethod
    def row(self) -> int: ...

    def record(self) -> Record:
        """The whole record as a plain dict."""
        return {key: self[key] for key in self}

PLAN_FORMAT = "crmsweep.plan/1"
# A plan file holding columnar groups (`begin_plan_file`): otherwise the same document, the same digest.
PLAN_FORMAT_COLUMNS = "crmsweep.plan/2"
PLAN_FORMATS = (PLAN_FORMAT, PLAN_FORMAT_COLUMNS)
MANIFEST_FORMAT = "crmsweep.snapshot/1"


_C = TypeVar("_C")


class PlanFormatError(ValueError):
    """A plan or manifest file is not in the expected shape."""


# --- values ---------------------------------------------------------------------------------------


def canonical_datetime(value: str | datetime | None) -> str | None:
    """UTC, millisecond precision, 'Z' suffix: the one form fingerprints are compared in.

    Accepts the providers' spellings ("2019-03-01T12:00:00.000+0000", "...Z", "+00:00") and
    datetime objects (naive ones are taken as UTC).
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        parsed = datetime.fromisoformat(text)
    else:
        parsed = value
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    parsed = parsed.astimezone(UTC)
    # Not strftime("%Y"): it does not zero-pad years below 1000 on every platform.
    return f"{parsed.year:04d}-" + parsed.strftime("%m-%dT%H:%M:%S.") + f"{parsed.microsecond // 1000:03d}Z"


def canonical_date(value: str | date | datetime | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return date.fromisoformat(value[:10]).isoformat()


# One encoder made once: json.dumps with these arguments would build it again for every change of a plan.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
# Plan header lines: the header's own key order, spaced for a person reading the file.
_READABLE = json.JSONEncoder(separators=(", ", ": "), ensure_ascii=False, allow_nan=False)


def canonical_json(data: Any) -> str:
    """The byte-stable serialisation digests are computed over."""
    return _CANONICAL.encode(data)


def sha256_text(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- fields and provider vocabulary -----------------------------------------------------------------


class FieldKind(StrEnum):
    """Provider-neutral value kinds; they decide the Parquet type of a column."""

    STRING = "string"
    BOOL = "bool"
    INT = "int"
    FLOAT = "float"
    # A number kept as the CRM's own text (a string column): more digits than a double holds survive a
    # backup and a restore (see crmsweep.decimal_text). Frames still give passes a float64.
    DECIMAL = "decimal"
    DATE = "date"
    DATETIME = "datetime"


@dataclass(frozen=True)
class FieldSpec:
    name: str
    kind: FieldKind
    provider_type: str  # the provider's own type name, e.g. "reference", "picklist", "email"
    nillable: bool = True
    createable: bool = False
    updateable: bool = False
    custom: bool = False
    reference_to: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind.value,
            "provider_type": self.provider_type,
            "nillable": self.nillable,
            "createable": self.createable,
            "updateable": self.updateable,
            "custom": self.custom,
            "reference_to": list(self.reference_to),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FieldSpec:
        return cls(
            name=str(data["name"]),
            kind=FieldKind(data["kind"]),
            provider_type=str(data.get("provider_type", "")),
            nillable=bool(data.get("nillable", True)),
            createable=bool(data.get("createable", False)),
            updateable=bool(data.get("updateable", False)),
            custom=bool(data.get("custom", False)),
            reference_to=tuple(data.get("reference_to", ())),
        )


@dataclass(frozen=True)
class DealLink:
    """How a person is tied to a deal: `object` rows link `person_field` to `deal_field`."""

    object: str
    person_field: str
    deal_field: str


# The state a removal op leaves a record in, as a count names it ("3 archived").
_REMOVED_STATES = {"delete": "deleted", "archive": "archived"}


@dataclass(frozen=True)
class Vocabulary:
    """Canonical concepts mapped onto one provider's objects and fields (data, not code).

    Passes are written once against this; each connector supplies its own instance.
    """

    provider: str
    id_field: str
    fingerprint_field: str  # bumped by the CRM on every write: drift detection
    deleted_field: str | None  # True on recycle-bin / archived rows (e.g. IsDeleted); None if none
    created_field: str
    owner_field: str
    people_objects: tuple[str, ...]
    last_activity_fields: tuple[str, ...]  # in order of preference; the first non-null wins
    email_field: str
    user_object: str
    user_active_field: str
    user_last_login_field: str
    deal_object: str
    deal_closed_field: str
    deal_close_date_field: str
    deal_links: tuple[DealLink, ...]
    # How a record is named in a preview: fields joined, e.g. ("Name", "<Email>").
    label_fields: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # How many of an object's first label fields together make its name (a first and a last name): joined
    # by a space, the rest in angle brackets. One when not said.
    label_name_fields: Mapping[str, int] = field(default_factory=dict)
    # Objects that are never proposed for change, whatever a pass says (contracts, invoices...).
    never_touch_objects: tuple[str, ...] = ()
    # System audit fields the CRM rewrites on every write; excluded from "did the record change" checks.
    audit_fields: tuple[str, ...] = ()
    # JSON text fields that embed such stamps (a definition as the API gave it): field -> its stamp keys.
    audit_keys: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # What `backup` takes when the admin names no objects.
    default_backup_objects: tuple[str, ...] = ()
    # Where ids have a short case-sensitive form (15 characters, in web addresses and reports) beside the
    # API's longer one (18), both must name the same record in [protect] ids and pass settings.
    short_id_length: int | None = None
    # Who wrote the record last (e.g. LastModifiedById): tells a write of ours from someone else's.
    last_modified_by_field: str | None = None
    # Where the CRM keeps a create's idempotency key on the record it made (a field an admin may add): a
    # record found carrying a create's key is the one that create made, whatever was edited on it since,
    # so settling it reads no values. None where keys are not kept (values decide).
    create_key_field: str | None = None
    # How a pass removes a record: "delete" (into a recycle bin that undeletes, ids kept) or "archive"
    # (the CRM has no undelete: a rollback re-creates the record under a new id). Op values.
    removal: str = "delete"
    # Whether writing `user_active_field` = false deactivates a user through the API. Where it cannot,
    # inactive_users hands a departed owner's records and open tasks to a configured owner instead.
    users_deactivatable: bool = True
    # Whether the CRM refuses a write that names an inactive user in `owner_field` (the owner must be active):
    # a rollback giving records back to an owner inactive in the CRM says, before writing, that those fail.
    owner_must_be_active: bool = False
    # The objects whose records a departed owner's hand-over reassigns (by `owner_field`), and the task
    # object whose open rows are reassigned too: a task is open unless its status is a done value.
    owned_objects: tuple[str, ...] = ()
    task_object: str | None = None
    task_status_field: str | None = None
    task_done_values: tuple[str, ...] = ()
    # The provider's entries for the concepts passes need beyond the ones above (instances of the
    # classes in crmsweep/concepts.py, at most one of each class). A pass declares the classes it needs
    # (`PassSpec.needs`); where one is absent the pass is skipped for this provider, saying why:
    # `absent_concepts` maps a concept class's name to that reason ("this CRM has no reports API").
    concepts: tuple[Any, ...] = ()
    absent_concepts: Mapping[str, str] = field(default_factory=dict)
    # How sentences name one record of an object and several ("opportunity", "opportunities"): object ->
    # (singular, plural). An object not listed is named by its API name in lower case, both ways.
    labels: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    # What an op does to an object's records in the CRM's own words, where the op value says otherwise:
    # object -> {op value: word}. An op the CRM carries out as an archive (a delete call that archives,
    # its undo an un-archive) is named so in summaries and prompts; the op in the signed plan is unchanged.
    op_words: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def op_word(self, op: str, object_name: str) -> str:
        """How a sentence names `op` done to a record of `object_name` ("delete", "archive")."""
        return self.op_words.get(object_name, {}).get(op, op)

    def label(self, object_name: str, *, many: bool = False) -> str:
        """How a sentence names a record of `object_name` ("an open deal"), or several (`many`)."""
        pair = self.labels.get(object_name)
        return pair[many] if pair else object_name.lower()

    def removed_word(self, object_name: str) -> str:
        """How a count names the records of `object_name` that `deleted_field` marks ("archived",
        "deleted"): the state the CRM's removal leaves them in."""
        word = self.op_word(self.removal, object_name)
        return _REMOVED_STATES.get(word, word)

    def removal_verb(self) -> str:
        """How a sentence says a pass removes a record: "Delete", or "Archive" where the CRM archives."""
        return self.removal.capitalize()

    def concept(self, kind: type[_C]) -> _C | None:
        """This provider's entry for the concept class `kind`, or None when it has none."""
        for entry in self.concepts:
            if isinstance(entry, kind):
                return entry
        return None

    def id_key(self, record_id: str) -> str:
        """The form two ids of one record share (`ids_match` compares by it)."""
        n = self.short_id_length
        if n and len(record_id) in (n, n + 3) and record_id.isalnum():
            return record_id[:n]
        return record_id


@dataclass(frozen=True)
class Capabilities:
    supports_undelete: bool
    max_batch_write: int
    max_query_page: int
    max_ids_per_read: int
    has_reports_api: bool
    # Objects whose writes may not share a call with other objects (setup objects such as users).
    isolated_write_objects: tuple[str, ...] = ()
    # Links between records are associations, read and made through the connector's association
    # calls. Without them, links are lookup fields and junction records, read and written as such.
    has_associations: bool = False
    # The object types associations link (a backup reads the links between each pair it backs up).
    association_objects: tuple[str, ...] = ()
    # Objects whose delete the CRM can undo keeping the id, where its records in general cannot be
    # undeleted (`supports_undelete` off): an object with a restore call of its own.
    undeletable_objects: tuple[str, ...] = ()
    # Whether one connector may read several objects at once from several threads (a backup's pool);
    # False where the connector's pacing or client is not thread-safe.
    concurrent_reads: bool = False
    # What an admin can do to bring back deleted records crmsweep cannot undelete ("restore them in ..."),
    # told where a rollback needs them back; empty where they undelete (`undeletes`).
    restore_by_hand: str = ""
    # Objects whose re-create brings a record back under the id it had (a definition keyed by its name):
    # a rollback's plan does not count them as re-created under new ids (its run's id map then says).
    recreated_under_own_id: tuple[str, ...] = ()
    # Whether the connector can list what was deleted since a moment (`deleted_since`), which an
    # incremental backup needs; where it cannot, `backup --incremental` is refused, first time included.
    incremental_backups: bool = True
    # The budget's view of objects with no batch endpoint: (object, calls) where a read by id costs that
    # many calls per record (an upper bound: a live GET, then an archived one), and the objects written
    # one record a call. Without them an apply's estimate counted one call per batch: 3x low on a portal.
    per_record_reads: tuple[tuple[str, int], ...] = ()
    per_record_writes: tuple[str, ...] = ()
    # Calls the connector spends describing an object the first time a command reads it by id (0 where
    # the describe comes from the plan's snapshot).
    describe_calls: int = 0
    # Whether a read by id that includes deleted records reads the ids it did not find live a second time,
    # from the recycle bin (a batch read that takes live or removed records, not both): two calls a batch
    # where the records are removed, as a rollback's re-creates are.
    rereads_deleted: bool = False

    def read_calls(self, object_name: str, records: int, *, removed: bool = False) -> int:
        """An upper bound on the calls a read by id of `records` records of `object_name` makes; `removed`:
        records expected in the recycle bin, read with deleted ones included (`rereads_deleted`)."""
        per_record = dict(self.per_record_reads).get(object_name)
        if per_record is not None:
            return per_record * records
        calls = math.ceil(records / self.max_ids_per_read)
        return 2 * calls if removed and self.rereads_deleted else calls

    def list_calls(self, rows: int, *, include_deleted: bool) -> int:
        """The calls a read of every row of an object of about `rows` rows makes, page by page: at least one
        page, and where removed rows are read apart (`rereads_deleted`), their own pages after the live
        ones (one more page at most than the rows together fill)."""
        pages = max(1, math.ceil(rows / self.max_query_page))
        return pages + 1 if include_deleted and self.rereads_deleted else pages

    def how_to_put_back(self, object_name: str) -> str:
        """What an admin does to bring deleted `object_name` records back ("undelete them", or by hand)."""
        if self.undeletes(object_name):
            return "undelete them"
        return self.restore_by_hand or "restore them in the CRM, if it still holds them"

    def undeletes(self, object_name: str) -> bool:
        """Whether a delete of `object_name` records can be undone with their ids kept."""
        return self.supports_undelete or object_name in self.undeletable_objects


# In a snapshot, the links from one object type to another (on providers with associations) are a
# pseudo-object named `association_object(from, to)` with one row per link.
ASSOCIATION_FROM_FIELD = "from_id"
ASSOCIATION_TO_FIELD = "to_id"
# The link's types as the connector read them (`LINK_TYPES_KEY` below), canonical JSON text; a snapshot
# taken before links kept their types has no such column (its links are re-made with the default type).
ASSOCIATION_TYPES_FIELD = "types"


def association_object(from_object: str, to_object: str) -> str:
    """The snapshot name of the links from `from_object` records to `to_object` records."""
    return f"{from_object}_to_{to_object}"


@dataclass(frozen=True)
class WriteResult:
    """One record's outcome of one write call, in request order."""

    id: str | None
    ok: bool
    error_code: str | None = None
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "ok": self.ok, "error_code": self.error_code, "message": self.message}


@dataclass(frozen=True)
class ApiUsage:
    calls: int  # HTTP calls this connector made
    org_used: int | None = None  # the org's rolling daily usage as the CRM last reported it
    org_max: int | None = None


@dataclass(frozen=True)
class ReadPlan:
    """How a connector will read one whole object, decided before the first page: a backup picks its
    path from it and the API budget adds its calls up. `rows` is None where the CRM cannot say cheaply."""

    object: str
    rows: int | None
    method: str  # "rest", "bulk", "batch", ...: named by the connector, shown to the admin
    calls: int  # estimated API calls to read it all, its describe included


@dataclass(frozen=True)
class ApiAllowance:
    """The org's rolling API allowance as the CRM reports it (`source` says where: a limits resource, a header)."""

    limit: int
    remaining: int
    source: str


# --- changes and plans ------------------------------------------------------------------------------


class Op(StrEnum):
    DELETE = "delete"
    UNDELETE = "undelete"
    UPDATE = "update"
    DEACTIVATE = "deactivate"
    REACTIVATE = "reactivate"
    ARCHIVE = "archive"
    CREATE = "create"
    # Link two records (providers with associations): `after` holds LINK_KEYS. Only a rollback makes
    # one, to re-link a re-created record; deleting that record undoes it.
    ASSOCIATE = "associate"


class Severity(StrEnum):
    CRITICAL = "critical"
    MAJOR = "major"
    MINOR = "minor"
    INFO = "info"


# Writes no CRM can take back (a merge re-parents and deletes the losers; a GDPR delete bypasses the
# recycle bin and blocklists the address; a purge empties the bin): crmsweep never performs them, and a
# plan naming one is refused as it is read.
IRREVERSIBLE_OPS = frozenset({"merge", "gdpr_delete", "purge", "hard_delete"})

# Ops that change a live record and therefore need its full before-image to be reversible.
OPS_NEEDING_BEFORE = frozenset({Op.DELETE, Op.UPDATE, Op.DEACTIVATE, Op.REACTIVATE, Op.ARCHIVE})
# What `validate` asks of a change, by op (`validate_all` checks a run of one op at once): of these, only a
# before-image that is not empty; of these, nothing; of these, a before-image too.
_BEFORE_ONLY = frozenset({Op.DELETE, Op.ARCHIVE})
_NOTHING_ASKED = frozenset({Op.UNDELETE, Op.CREATE})
_WRITES_FIELDS = frozenset({Op.UPDATE, Op.DEACTIVATE, Op.REACTIVATE})  # and a value written, to fields it holds


LINK_KEYS = ("from_object", "from_id", "to_object", "to_id")
# Besides LINK_KEYS, a link may name the types it had (where a CRM's links have kinds, some named): JSON
# objects the connector read and writes back as they are; generic code reads only a `LINK_TYPE_LABEL`.
# No types: the CRM's default link.
LINK_TYPES_KEY = "types"
LINK_TYPE_LABEL = "label"


def link_types(after: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The types a link change writes (an empty list: the default link)."""
    types = after.get(LINK_TYPES_KEY)
    return [dict(t) for t in types] if isinstance(types, list | tuple) else []


def link_type_labels(types: Iterable[Mapping[str, Any]]) -> list[str]:
    """The names of the named ones of `types`, as the CRM calls them, each once."""
    return list(dict.fromkeys(str(t[LINK_TYPE_LABEL]) for t in types if t.get(LINK_TYPE_LABEL)))


def parse_link_types(text: object) -> list[dict[str, Any]]:
    """A snapshot's types cell as the list of types; an empty cell, or none (a snapshot taken before links
    kept their types), gives none: the default link."""
    if not isinstance(text, str) or not text:
        return []
    try:
        types = json.loads(text)
    except json.JSONDecodeError:
        types = None
    if not isinstance(types, list) or not all(isinstance(t, dict) for t in types):
        raise PlanFormatError(f"link types must be a JSON list of objects, not {text[:80]!r}")
    return types

# A value that names a record re-created in the same plan by its old id: {"ref": [object, old_id]}.
# Its new id is known only once that create has run; apply resolves it from the run's id map.
REF_KEY = "ref"


def placeholder(object_name: str, old_id: str) -> dict[str, list[str]]:
    return {REF_KEY: [object_name, old_id]}


def placeholder_target(value: Any) -> tuple[str, str] | None:
    """(object, old id) if `value` is a placeholder, else None."""
    if isinstance(value, Mapping) and set(value) == {REF_KEY}:
        target = value[REF_KEY]
        if isinstance(target, list | tuple) and len(target) == 2 and all(isinstance(t, str) for t in target):
            return str(target[0]), str(target[1])
    return None


@dataclass(frozen=True)
class CreateAttempt:
    """A create sent in a run whose outcome was never logged: what resume looks for.

    `key` is the idempotency key logged in the intent; `values` the exact values sent (placeholders
    resolved); `sent_after` the intent's time (canonical datetime): the create cannot be older.
    """

    key: str
    values: Record
    sent_after: str


class NotReversible(ValueError):
    """A change whose inverse cannot be built (refused when the plan is built, not at rollback)."""


# Slots: a scan holds hundreds of thousands (a dict of attributes each was a third of a change's memory).
@dataclass(frozen=True, slots=True)
class Change:
    """One proposed write.

    `before` is the record as the plan expects to find it (the full before-image, canonical form): a dict,
    or a `BeforeImage` (a row of a snapshot read, kept column-wise until something needs it as a dict).
    `after` holds only the values the change writes: {} for delete/undelete/archive, the changed
    fields for update/deactivate/reactivate, every value for create.
    `fingerprint` is the record's fingerprint field (e.g. SystemModstamp) when scanned; apply
    skips the record as drift if the live value differs.
    """

    op: Op
    object: str
    record_id: str
    before: Mapping[str, Any]
    after: Record
    reason: str
    pass_name: str
    severity: Severity = Severity.INFO
    fingerprint: str | None = None
    label: str = ""

    def validate(self) -> None:
        if self.op in OPS_NEEDING_BEFORE and not self.before:
            raise NotReversible(
                f"{self.op} of {self.object} {self.record_id} has no before-image, so it could not be undone"
            )
        if self.op is Op.ASSOCIATE:
            self._check_link()
        if self.op in (Op.UPDATE, Op.DEACTIVATE, Op.REACTIVATE):
            if not self.after:
                raise PlanFormatError(f"{self.op} of {self.object} {self.record_id} writes no values")
            self._check_before_covers_after()

    @classmethod
    def many(cls, count: int, *, same: Mapping[str, Any], each: Mapping[str, Iterable[Any]]) -> list[Change]:
        """`count` changes: the fields of `same` (immutable values) shared by all, those of `each` one value
        per change, in order; between them every field, once.

        What `Change(...)` makes, made a field at a time: the frozen dataclass's `__init__` sets ten fields
        one Python call each, a second of a million-contact scan's 351k changes; this sets each field of
        every change in one C loop over its slot."""
        if set(same) | set(each) != _CHANGE_FIELDS or set(same) & set(each) or "after" in same:
            raise TypeError(f"Change.many sets each of {sorted(_CHANGE_FIELDS)} once, `after` one per change")
        made: list[Change] = list(map(object.__new__, repeat(cls, count)))
        for name, value in same.items():
            deque(map(_CHANGE_SLOTS[name], made, repeat(value, count)), maxlen=0)
        for name, values in each.items():
            column = values if isinstance(values, list) else list(values)
            if len(column) != count:
                raise ValueError(f"Change.many of {count} changes given {len(column)} values of {name}")
            deque(map(_CHANGE_SLOTS[name], made, column), maxlen=0)
        return made

    def _check_link(self) -> None:
        if sorted(k for k in self.after if k != LINK_TYPES_KEY) != sorted(LINK_KEYS):
            raise PlanFormatError(f"link {self.object} {self.record_id} must name {', '.join(LINK_KEYS)}")
        types = self.after.get(LINK_TYPES_KEY, [])
        if not isinstance(types, list) or not all(isinstance(t, Mapping) for t in types):
            raise PlanFormatError(f"link {self.object} {self.record_id}: {LINK_TYPES_KEY} must be a list of objects")

    def _check_before_covers_after(self) -> None:
        """Undoing a field write needs that field's old value."""
        missing = [k for k in self.after if k not in self.before]
        if missing:
            raise NotReversible(
                f"{self.op} of {self.object} {self.record_id} changes {', '.join(missing)} "
                "but its before-image lacks them"
            )

    def inverse(self, *, fingerprint: str | None = None, new_id: str | None = None, word: str | None = None) -> Change:
        """The change that undoes this one, once applied.

        `word`: this change's op as the CRM says it (`Vocabulary.op_word`), for the undo's reason.

        `fingerprint` is the record's fingerprint read back after this change was applied (the
        inverse is skipped as drift if someone changed the record since); `new_id` is the id a
        create produced.
        """
        def make(op: Op, record_id: str, before: Record, after: Record) -> Change:
            return Change(
                op=op,
                object=self.object,
                record_id=record_id,
                before=before,
                after=after,
                reason=f"undo {word or self.op}: {self.reason}",
                pass_name=self.pass_name,
                severity=self.severity,
                fingerprint=fingerprint,
                label=self.label,
            )

        if self.op is Op.DELETE:
            return make(Op.UNDELETE, self.record_id, dict(self.before), {})
        if self.op is Op.UNDELETE:
            return make(Op.DELETE, self.record_id, dict(self.before), {})
        if self.op is Op.ARCHIVE:
            return make(Op.CREATE, self.record_id, {}, dict(self.before))
        if self.op is Op.ASSOCIATE:
            raise NotReversible(f"link {self.record_id} is undone with the re-created record it links, not alone")
        if self.op is Op.CREATE:
            if not new_id:
                raise NotReversible(f"create of {self.object} has no recorded id, so it cannot be undone")
            return make(Op.DELETE, new_id, {**self.after, "Id": new_id}, {})
        # update / deactivate / reactivate: write the before-values of exactly the fields we changed.
        self._check_before_covers_after()
        restored = {k: self.before[k] for k in self.after}
        inverse_op = {Op.DEACTIVATE: Op.REACTIVATE, Op.REACTIVATE: Op.DEACTIVATE}.get(self.op, Op.UPDATE)
        return make(inverse_op, self.record_id, {**self.before, **self.after}, restored)

    def before_record(self) -> Record:
        """The before-image as a plain dict (itself when it is one), for what writes it out as JSON."""
        before = self.before
        if isinstance(before, BeforeImage):
            return before.record()
        return before if type(before) is dict else dict(before)

    def to_dict(self) -> dict[str, Any]:
        """The change as plain data (its before-image a dict), as plans, run logs and previews hold it."""
        return {
            "op": self.op.value,
            "object": self.object,
            "record_id": self.record_id,
            "label": self.label,
            "reason": self.reason,
            "pass": self.pass_name,
            "severity": self.severity.value,
            "fingerprint": self.fingerprint,
            "before": self.before_record(),
            "after": self.after,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Change:
        if not isinstance(data, Mapping):
            raise PlanFormatError(f"a change must be an object, not {type(data).__name__}")
        if str(data.get("op", "")).lower() in IRREVERSIBLE_OPS:
            raise PlanFormatError(
                f"{data['op']} of {data.get('object', '?')} {data.get('record_id', '?')} cannot be undone: "
                "crmsweep never performs it"
            )
        try:
            return cls(
                op=Op(data["op"]),
                object=str(data["object"]),
                record_id=str(data["record_id"]),
                before=dict(data.get("before") or {}),
                after=dict(data.get("after") or {}),
                reason=str(data.get("reason", "")),
                pass_name=str(data.get("pass", "")),
                severity=Severity(data.get("severity", Severity.INFO.value)),
                fingerprint=data.get("fingerprint"),
                label=str(data.get("label", "")),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise PlanFormatError(f"malformed change: {exc}") from exc


_OP_OF = {op.value: op for op in Op}
_SEVERITY_OF = {severity.value: severity for severity in Severity}


def changes_from_dicts(items: Sequence[Any]) -> tuple[Change, ...]:
    """`Change.from_dict` of each of `items` (a plan file's changes, as parsed), the same changes and errors.

    A plan of a million-contact scan holds 351k changes: made one `from_dict` at a time (a frozen dataclass's
    ten setters each, two dict copies, two enum lookups) they were a quarter of reading it. Changes as
    `to_dict` writes them are made a field at a time (`Change.many`) instead, their dicts not copied (a
    parse's own, shared with nothing); a plan holding any other shape is read one change at a time, so each
    error is the one `from_dict` raises."""
    keys = frozenset(_CHANGE_KEYS)
    regular = all(type(item) is dict and item.keys() == keys for item in items)
    if regular:
        ops = [_OP_OF.get(item["op"]) for item in items]
        severities = [_SEVERITY_OF.get(item["severity"]) for item in items]
        texts = {name: [item[name] for item in items] for name in ("object", "record_id", "label", "reason", "pass")}
        befores = [item["before"] for item in items]
        afters = [item["after"] for item in items]
        regular = (None not in ops and None not in severities
                   and all(type(text) is str for column in texts.values() for text in column)
                   and all(type(before) is dict for before in befores) and all(type(after) is dict for after in afters))
    if not regular:
        return tuple(Change.from_dict(item) for item in items)
    return tuple(Change.many(len(items), same={}, each={
        "op": ops, "object": texts["object"], "record_id": texts["record_id"], "before": befores, "after": afters,
        "reason": texts["reason"], "pass_name": texts["pass"], "severity": severities,
        "fingerprint": [item["fingerprint"] for item in items], "label": texts["label"]}))


def changes_from_items(items: Sequence[Any]) -> tuple[Change, ...]:
    """The changes of a plan file's `changes` list where columnar groups may stand among single changes
    (format `PLAN_FORMAT_COLUMNS`): each group expanded in its place into the changes it holds, the same ones
    its changes written a line each read as (`changes_from_dicts`)."""
    made: list[Change] = []
    start = 0
    for at, item in enumerate(items):
        if type(item) is dict and _GROUP_KEY in item:
            made += changes_from_dicts(items[start:at])
            made += _group_changes(item)
            start = at + 1
    made += changes_from_dicts(items[start:])
    return tuple(made)


_GROUP_KEY = "count"
_GROUP_KEYS = frozenset((_GROUP_KEY, "op", "object", "pass", "severity", "record_id", "label", "reason",
                         "fingerprint", "after", "before"))


def _group_changes(group: dict[str, Any]) -> list[Change]:
    """The changes of one columnar group; PlanFormatError for a group of any other shape."""
    count = group.get(_GROUP_KEY)
    if group.keys() != _GROUP_KEYS or type(count) is not int or count < 1:
        raise PlanFormatError(f"malformed group of changes: it must hold {', '.join(sorted(_GROUP_KEYS))}")
    op, severity = _OP_OF.get(group["op"]), _SEVERITY_OF.get(group["severity"])
    if op is None or severity is None or type(group["object"]) is not str or type(group["pass"]) is not str:
        raise PlanFormatError(f"malformed group of changes: op {group['op']!r}, severity {group['severity']!r}")
    columns = {name: group[name] for name in ("record_id", "label", "reason", "fingerprint", "after")}
    before = group["before"]
    if type(before) is not dict or not before:
        raise PlanFormatError("malformed group of changes: its before-images must be an object of fields")
    for name, values in (*columns.items(), *before.items()):
        if type(values) is not list or len(values) != count:
            raise PlanFormatError(f"malformed group of changes: {name} must list {count} values")
    if not (all(type(text) is str for name in ("record_id", "label", "reason") for text in columns[name])
            and all(text is None or type(text) is str for text in columns["fingerprint"])
            and all(type(after) is dict for after in columns["after"])):
        raise PlanFormatError("malformed group of changes: a text, fingerprint or after of the wrong kind")
    names = list(before)
    befores = list(map(dict, map(zip, repeat(names), zip(*before.values(), strict=True))))
    return Change.many(count, same={"op": op, "object": group["object"], "pass_name": group["pass"],
                                    "severity": severity},
                       each={"record_id": columns["record_id"], "before": befores, "after": columns["after"],
                             "reason": columns["reason"], "fingerprint": columns["fingerprint"],
                             "label": columns["label"]})


_CHANGE_FIELDS = frozenset(f.name for f in fields(Change))
# Each slot's own setter: it sets the attribute past the frozen `__setattr__` (as the dataclass's `__init__` does).
_CHANGE_SLOTS: dict[str, Callable[[Change, Any], None]] = {
    name: getattr(Change, name).__set__ for name in _CHANGE_FIELDS
}


def validate_all(changes: Sequence[Change]) -> None:
    """`validate` of every change, in order (the first one that fails raises, as there): a run of changes of
    one op is checked at once where the op needs only a before-image, the rest one by one."""
    for op, of_op in groupby(changes, key=attrgetter("op")):
        if op in _NOTHING_ASKED:
            continue
        run = list(of_op)
        if op in _BEFORE_ONLY and all(map(attrgetter("before"), run)):
            continue
        if op in _WRITES_FIELDS and all(map(attrgetter("before"), run)) and all(map(_writes_covered, run)):
            continue
        for change in run:
            change.validate()


def _writes_covered(change: Change) -> bool:
    """`change` writes a value, and only to fields its before-image holds (so an update can be undone)."""
    before = change.before
    return bool(change.after) and all(map(before.__contains__, change.after))


@dataclass(frozen=True)
class ReviewItem:
    """A finding a person must judge and no apply performs (likely duplicates to merge by hand).

    It travels in the plan header, under the digest, so the preview shows it; apply never reads it."""

    pass_name: str
    object: str
    record_ids: tuple[str, ...]
    reason: str
    score: float = 1.0  # how sure the pass is, 0..1
    labels: tuple[str, ...] = ()  # the records' preview labels, in `record_ids` order

    def to_dict(self) -> dict[str, Any]:
        return {
            "pass": self.pass_name,
            "object": self.object,
            "record_ids": list(self.record_ids),
            "reason": self.reason,
            "score": self.score,
            "labels": list(self.labels),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReviewItem:
        score = data.get("score", 1.0)
        if isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= float(score) <= 1:
            raise ValueError(f"review score must be a number from 0 to 1, not {score!r}")
        return cls(
            pass_name=str(data["pass"]),
            object=str(data["object"]),
            record_ids=_strings(data["record_ids"], "record_ids"),
            reason=str(data["reason"]),
            score=float(score),
            labels=_strings(data.get("labels", ()), "labels"),
        )


# What a plan file that fails to parse most likely is, and what to do, for the line that says why.
NOT_A_PLAN = "the file is not a crmsweep plan, or was edited; use the plan file scan wrote, or scan again"
# What every plan header holds; the others have defaults (older plans lack them).
_HEADER_FIELDS = ("plan_id", "created", "tool_version", "provider", "org_id", "connection", "source")


@dataclass(frozen=True)
class PlanHeader:
    plan_id: str
    created: str  # canonical datetime
    tool_version: str
    provider: str
    org_id: str
    connection: str
    # Where the before-images are held: {"kind": "snapshot", "id": ...} or {"kind": "run", "id": ...}.
    source: Mapping[str, str]
    config_digest: str = ""
    passes: tuple[str, ...] = ()
    # What was held back, per pass and reason (a protection, a guard, the pass's own rule):
    # {"stale_contacts": {"open opportunity": 3}}.
    held_back: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    rollback_of: str | None = None
    # The validated settings each pass ran with, so apply re-checks candidates by the same rules.
    pass_settings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # The scan was allowed over the [safety] caps (--allow-over-cap). Trusted only under this home's
    # signature of its own scan: `plan accept` refuses a plan that claims it.
    over_cap_allowed: bool = False
    # Findings for a person to judge (report-only passes); never applied.
    review: tuple[ReviewItem, ...] = ()

    @property
    def snapshot_id(self) -> str | None:
        return self.source.get("id") if self.source.get("kind") == "snapshot" else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "plan_id": self.plan_id,
            "created": self.created,
            "tool_version": self.tool_version,
            "provider": self.provider,
            "org_id": self.org_id,
            "connection": self.connection,
            "source": dict(self.source),
            "config_digest": self.config_digest,
            "passes": list(self.passes),
            "held_back": {k: dict(v) for k, v in self.held_back.items()},
            "notes": list(self.notes),
            "rollback_of": self.rollback_of,
            # Only when set, so plans without it (rollbacks, older scans) keep their digest.
            **({"pass_settings": {k: dict(v) for k, v in self.pass_settings.items()}} if self.pass_settings else {}),
            **({"over_cap_allowed": True} if self.over_cap_allowed else {}),
            **({"review": [item.to_dict() for item in self.review]} if self.review else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PlanHeader:
        if not isinstance(data, Mapping):
            raise PlanFormatError(f"its header is not an object: {NOT_A_PLAN}")
        if missing := [name for name in _HEADER_FIELDS if name not in data]:
            names = ", ".join(repr(name) for name in missing)
            raise PlanFormatError(f"its header has no {names} field{'s' if len(missing) > 1 else ''}: {NOT_A_PLAN}")
        try:
            return cls(
                plan_id=str(data["plan_id"]),
                created=str(data["created"]),
                tool_version=str(data["tool_version"]),
                provider=str(data["provider"]),
                org_id=str(data["org_id"]),
                connection=str(data["connection"]),
                source={str(k): str(v) for k, v in dict(data["source"]).items()},
                config_digest=str(data.get("config_digest", "")),
                passes=_strings(data.get("passes", ()), "passes"),
                held_back={
                    str(k): {str(r): int(n) for r, n in v.items()} for k, v in data.get("held_back", {}).items()
                },
                notes=_strings(data.get("notes", ()), "notes"),
                rollback_of=data.get("rollback_of"),
                pass_settings={str(k): dict(v) for k, v in dict(data.get("pass_settings") or {}).items()},
                over_cap_allowed=data.get("over_cap_allowed", False) is True,
                review=tuple(ReviewItem.from_dict(item) for item in data.get("review") or ()),
            )
        except (KeyError, ValueError, TypeError, AttributeError, OverflowError) as exc:
            raise PlanFormatError(f"its header is malformed ({exc}): {NOT_A_PLAN}") from exc


@dataclass(frozen=True)
class Plan:
    header: PlanHeader
    changes: tuple[Change, ...]

    @classmethod
    def build(cls, header: PlanHeader, changes: Sequence[Change]) -> Plan:
        """A plan whose every change is reversible; raises NotReversible otherwise."""
        validate_all(changes)
        return cls(header=header, changes=tuple(changes))

    def body(self) -> dict[str, Any]:
        return {"header": self.header.to_dict(), "changes": [c.to_dict() for c in self.changes]}

    @cached_property
    def digest(self) -> str:
        """sha256 over the canonical JSON of `body()`, computed once per plan (a plan is a value), and
        piece by piece, never as one text (see `_BodyHash`)."""
        body = _BodyHash()
        with _collector_paused(), _write_behind(None, body.add) as behind:
            for batch in _batches(self.changes):
                behind.put((), _joined_texts(batch, lines=False)[1])
        return body.digest(self.header)

    def write_json(self, out: IO[bytes], *, sign: Callable[[str], str] | None = None,
                   begun: BegunPlanFile | None = None) -> str:
        """Write the plan file to `out` as it is made, never holding its text; returns the digest.

        Layout: the format, then one change per line (its keys in their own order, as the preview shows
        them, the before-image in canonical JSON: see `_change_texts`; a batch of at least `_GROUP_LEAST`
        changes of one kind whose before-images are rows of one block as one columnar group instead, a field
        a line, the format then `PLAN_FORMAT_COLUMNS`: see `plan_text.group_texts`), then the header one key per line (a
        list one item per line), `digest` and, with `sign` (digest -> signature, see
        crmsweep.cleanup.plan_auth), `signature` last. Still one JSON document, so plans written before, the
        header first or indented, read the same way. The header comes after the changes so that a scan can
        write them while a pass that adds only to the header still runs (`begun`: `begin_plan_file` of this
        plan's very changes, already written to `out`; see crmsweep/plan_writing.py). The digest, if not
        known yet, is hashed in the same walk over the changes.
        """
        known: str | None = self.__dict__.get("digest")
        if begun is None:
            begun = begin_plan_file(out, self.changes, hashed=known is None)
        elif not begun.holds(self.changes):
            raise ValueError("the plan file was begun with other changes than the plan's")
        if known is None:
            if begun.body is None:
                raise ValueError("the plan file was begun without hashing its changes, and the digest is not known")
            known = begun.body.digest(self.header)
            self.__dict__["digest"] = known  # what cached_property stores: the same value, not computed twice
        out.write(b'\n  "header": ' + _header_text(self.header.to_dict()).encode())
        tail = f',\n  "digest": {_READABLE.encode(known)}'
        if sign is not None:
            tail += f',\n  "signature": {_READABLE.encode(sign(known))}'
        out.write((tail + "\n}\n").encode())
        return known

    def to_json(self, *, signature: str | None = None) -> str:
        """The plan file text (see `write_json`); the signature (crmsweep.cleanup.plan_auth) is not part of
        the digested body: it is made over the digest."""
        buffer = io.BytesIO()
        self.write_json(buffer, sign=None if signature is None else lambda _digest: signature)
        return buffer.getvalue().decode("utf-8")

    @classmethod
    def from_json(cls, text: str) -> tuple[Plan, str]:
        """Parse a plan file; returns the plan and the digest the file claims (check it yourself)."""
        parsed = PlanFile.parse(text)
        return parsed.plan, parsed.digest

    def with_header(self, **updates: Any) -> Plan:
        return Plan(header=replace(self.header, **updates), changes=self.changes)


def begin_plan_file(out: IO[bytes], changes: Sequence[Change], *, hashed: bool = True) -> BegunPlanFile:
    """A plan file's start written to `out`: its format and `changes`, the canonical JSON of each hashed (with
    `hashed`) for the digest. `Plan.write_json(begun=...)` writes the rest, once the header is known."""
    batches = list(_batches(changes))
    grouped = [len(batch) >= _GROUP_LEAST and _groupable(batch) for batch in batches]
    kind = PLAN_FORMAT_COLUMNS if any(grouped) else PLAN_FORMAT
    out.write(f'{{\n  "format": {_READABLE.encode(kind)},\n  "changes": ['.encode())
    body = _BodyHash() if hashed else None
    # Batch k is written and hashed on a worker while batch k+1 is encoded (see crmsweep.write_behind); the
    # collector is paused: encoding makes many short-lived objects next to a scan's millions of long-lived
    # ones, and none of them in a cycle.
    with _collector_paused(), _write_behind(out, None if body is None else body.add) as behind:
        for n, batch in enumerate(batches):
            group = _group_texts(batch) if grouped[n] else None
            lines, canonicals = _joined_texts(batch, lines=True) if group is None else group
            assert lines is not None
            behind.put((b",\n    " if n else b"\n    ", lines), canonicals)
    out.write(b"\n  ]," if changes else b"],")
    return BegunPlanFile(changes=tuple(changes), body=body)


@dataclass(frozen=True, eq=False)
class BegunPlanFile:
    """What `begin_plan_file` wrote: these changes, and the digest's hash up to the header (None: not hashed)."""

    changes: tuple[Change, ...]
    body: _BodyHash | None

    def holds(self, changes: Sequence[Change]) -> bool:
        """Whether `changes` are the very changes written (the same objects, in the same order)."""
        return len(changes) == len(self.changes) and all(map(operator.is_, changes, self.changes))


# Changes encoded, hashed and written at a time: few calls (a block encodes a batch's before-images in one),
# little text held (some megabytes).
_BATCH = 4096
# A batch of at least these many changes of one kind, their before-images rows of one block, is written as a
# columnar group (`plan_text.group_texts`): a field a line, not a change a line. Fewer stay a change a line.
_GROUP_LEAST = 256


class _BodyHash:
    """sha256 of the canonical JSON of a plan's body, fed its changes' canonical JSON batch by batch.

    Canonical JSON sorts keys, so the body is `{"changes":[<change>,<change>...],"header":<header>}`,
    each piece the canonical JSON of its value: the digest definition of `Plan.body()`, unchanged."""

    def __init__(self) -> None:
        self._hasher = hashlib.sha256(b'{"changes":[')
        self._first = True

    def add(self, changes: bytes | memoryview) -> None:
        """The next changes: the canonical JSON (UTF-8) of each `Change.to_dict()`, joined by ","."""
        if not self._first:
            self._hasher.update(b",")
        self._hasher.update(changes)
        self._first = False

    def digest(self, header: PlanHeader) -> str:
        self._hasher.update(b'],"header":' + canonical_json(header.to_dict()).encode() + b"}")
        return "sha256:" + self._hasher.hexdigest()


def _joined_texts(changes: Sequence[Change], *, lines: bool) -> tuple[memoryview | None, memoryview]:
    """`_batch_texts(changes)` joined (the lines by ",\\n    ", the canonical texts by ","; the lines only when
    asked for), made a field at a time by `crmsweep.plan_text`. Imported here, when a plan is first written:
    it imports this module (and Arrow), which imports nothing of ours."""
    from crmsweep.plan_text import joined_texts

    return joined_texts(changes, lines=lines)


def _groupable(changes: Sequence[Change]) -> bool:
    from crmsweep.plan_text import groupable

    return groupable(changes) is not None


def _group_texts(changes: Sequence[Change]) -> tuple[memoryview, memoryview] | None:
    from crmsweep.plan_text import group_texts

    return group_texts(changes)


def _write_behind(out: IO[bytes] | None, hash_update: Callable[[bytes | memoryview], object] | None) -> Any:
    """A `crmsweep.write_behind.WriteBehind` (imported when first used, as `_joined_texts`)."""
    from crmsweep.write_behind import WriteBehind

    return WriteBehind(out, hash_update)


def _collector_paused() -> Any:
    from crmsweep.collector import collector_paused

    return collector_paused()


def _batches(changes: Sequence[Change]) -> Iterator[Sequence[Change]]:
    for start in range(0, len(changes), _BATCH):
        yield changes[start : start + _BATCH]


_BEFORE = "before"
# Stands for the before-image while the rest of a change is encoded, then replaced by its text. Random
# per process, so no value from a CRM can be it; and a text holding it other than once is encoded whole.
_STAND_IN_VALUE = f"crmsweep-before-image-{secrets.token_hex(16)}"
_STAND_IN = f'"{_STAND_IN_VALUE}"'  # its JSON: letters, digits and dashes need no escape


# `Change.to_dict()`'s keys, in its order: a change with exactly these, its texts `str`, is written by
# `_known_change_texts` without an encoder walk over the change.
_CHANGE_KEYS = ("op", "object", "record_id", "label", "reason", "pass", "severity", "fingerprint", "before", "after")
# What both encoders (ensure_ascii=False) write a text as: the same function, called directly.
_encode_text: Callable[[str], str] = json.encoder.encode_basestring


def _known_change_texts(change: Mapping[str, Any], before: str) -> tuple[str, str] | None:
    """`_change_texts` for the change every plan holds (its keys those of `Change.to_dict()`, its texts
    `str`, its fingerprint a text or null, its `after` a dict), formatted from each value's JSON: the bytes
    `_READABLE` and `_CANONICAL` write, without their two walks a change (a third of writing a plan). None
    for anything else, which the encoders then write whole."""
    if tuple(change) != _CHANGE_KEYS:
        return None
    op, obj, rid, label, reason, name, severity, fingerprint, _, after = change.values()
    shared = _shared_texts((op, obj, reason, name, severity))
    known = None if shared is None else _formatted(shared, rid, label, fingerprint, after, before.encode())
    return None if known is None else (known[0].decode(), known[1].decode())


def _shared_texts(texts: tuple[Any, ...]) -> tuple[bytes, ...] | None:
    """The JSON (UTF-8) of a change's texts that many changes share (op, object, reason, pass, severity), or
    None where one is not a `str`."""
    return tuple(_encode_text(text).encode() for text in texts) if all(type(text) is str for text in texts) else None


def _formatted(shared: tuple[bytes, ...], rid: Any, label: Any, fingerprint: Any, after: Any,
               before: bytes) -> tuple[bytes, bytes] | None:
    """`_known_change_texts`, in UTF-8, from the JSON of the shared texts (`_shared_texts`), the change's own
    values and its before-image's canonical JSON."""
    if not (type(rid) is type(label) is str and (fingerprint is None or type(fingerprint) is str)
            and type(after) is dict):
        return None
    op, obj, reason, name, severity = shared
    rid, label = _encode_text(rid).encode(), _encode_text(label).encode()
    fp = b"null" if fingerprint is None else _encode_text(fingerprint).encode()
    # An empty mapping is "{}" to both encoders; `after` keeps its own order in the line, sorted in the digest.
    readable_after, canonical_after = ((_READABLE.encode(after).encode(), canonical_json(after).encode()) if after
                                       else (b"{}", b"{}"))
    line = (b'{"op": %b, "object": %b, "record_id": %b, "label": %b, "reason": %b, "pass": %b, "severity": %b, '
            b'"fingerprint": %b, "before": %b, "after": %b}'
            % (op, obj, rid, label, reason, name, severity, fp, before, readable_after))
    canonical = (b'{"after":%b,"before":%b,"fingerprint":%b,"label":%b,"object":%b,"op":%b,"pass":%b,'
                 b'"reason":%b,"record_id":%b,"severity":%b}'
                 % (canonical_after, before, fp, label, obj, op, name, reason, rid, severity))
    return line, canonical


def _before_texts(changes: Sequence[Change]) -> list[bytes]:
    """The canonical JSON (UTF-8) of each change's before-image: a dict encoded by itself, the rows of one
    block (a batch's changes mostly share one) encoded together by their block."""
    one = _rows_of_one_block([change.before for change in changes])
    if one is not None:
        return one[0].canonical_json_bytes(one[1])
    texts = [b""] * len(changes)
    blocks: dict[int, tuple[ImageBlock, list[int], list[int]]] = {}
    for at, change in enumerate(changes):
        before = change.before
        if type(before) is not dict and isinstance(before, BeforeImage):
            entry = blocks.get(id(before.block))
            if entry is None:
                entry = blocks[id(before.block)] = (before.block, [], [])
            entry[1].append(at)
            entry[2].append(before.row)
        else:
            texts[at] = canonical_json(before).encode()
    for block, places, rows in blocks.values():
        for at, text in zip(places, block.canonical_json_bytes(rows), strict=True):
            texts[at] = text
    return texts


def _rows_of_one_block(befores: list[Mapping[str, Any]]) -> tuple[ImageBlock, list[int]] | None:
    """(their block, their rows) when every before-image is a row of one block, as a batch's mostly are."""
    kinds = set(map(type, befores))
    if len(kinds) != 1 or not issubclass(kinds.pop(), BeforeImage):
        return None
    images = cast(list[BeforeImage], befores)
    if len(set(map(id, map(_BLOCK, images)))) != 1:
        return None
    return images[0].block, list(map(_ROW, images))


_BLOCK, _ROW = attrgetter("block"), attrgetter("row")


def _batch_texts(changes: Sequence[Change]) -> tuple[list[bytes], list[bytes]]:
    """(the lines in a plan file, the canonical JSON) of these changes in UTF-8, as `_change_texts` gives
    each from `to_dict()`."""
    lines: list[bytes] = []
    canonicals: list[bytes] = []
    # The shared texts' JSON, by the values themselves (enum members by identity: their hash is Python
    # code): a batch's changes mostly have the same few.
    encoded: dict[tuple[Any, ...], tuple[bytes, ...] | None] = {}
    for c, before in zip(changes, _before_texts(changes), strict=True):
        key = (id(c.op), c.object, c.reason, c.pass_name, id(c.severity))
        shared = encoded.get(key, _UNSEEN)
        if shared is _UNSEEN:
            shared = encoded[key] = _shared_texts((c.op.value, c.object, c.reason, c.pass_name, c.severity.value))
        known = None if shared is None else _formatted(shared, c.record_id, c.label, c.fingerprint, c.after, before)
        if known is None:
            line, canonical = _encoded_change_texts(c.to_dict(), before.decode())
            known = line.encode(), canonical.encode()
        lines.append(known[0])
        canonicals.append(known[1])
    return lines, canonicals


_UNSEEN: Any = object()


def _canonical_change(change: Mapping[str, Any]) -> str:
    """canonical_json(change), for a `Change.to_dict()`: the digest's piece of it."""
    known = _known_change_texts(change, canonical_json(change[_BEFORE])) if _BEFORE in change else None
    return canonical_json(change) if known is None else known[1]


def _change_texts(change: Mapping[str, Any]) -> tuple[str, str]:
    """(the change's line in a plan file, its canonical JSON), from `Change.to_dict()`.

    The before-image is most of a change's bytes, so it is encoded once, canonically, and that text
    serves both: the line keeps the change's own key order (and the order of `after`, whose values the
    preview lists) with the before-image's keys sorted; the canonical text is the one the digest needs.
    """
    before = canonical_json(change[_BEFORE])
    known = _known_change_texts(change, before)
    return known if known is not None else _encoded_change_texts(change, before)


def _encoded_change_texts(change: Mapping[str, Any], before: str) -> tuple[str, str]:
    """`_change_texts` by the encoders, for a change of any shape; `before` is its before-image's text."""
    rest = {**change, _BEFORE: _STAND_IN_VALUE}
    line, canonical = _READABLE.encode(rest), canonical_json(rest)
    if line.count(_STAND_IN) != 1 or canonical.count(_STAND_IN) != 1:
        return _READABLE.encode({**change, _BEFORE: json.loads(before)}), canonical_json(change)
    return line.replace(_STAND_IN, before), canonical.replace(_STAND_IN, before)


def _header_text(header: Mapping[str, Any]) -> str:
    """The header, one key per line, and a list one item per line (notes, review items can be many)."""
    lines = []
    for key, value in header.items():
        name = _READABLE.encode(key)
        if isinstance(value, list) and value:
            items = ",\n".join(f"      {_READABLE.encode(item)}" for item in value)
            lines.append(f"    {name}: [\n{items}\n    ]")
        else:
            lines.append(f"    {name}: {_READABLE.encode(value)}")
    return "{\n" + ",\n".join(lines) + "\n  }"


def _strings(value: Any, what: str) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise PlanFormatError(f"{what} must be a list of texts")
    return tuple(value)


def _refuse_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; canonical JSON (and so the digest) cannot hold them.
    raise PlanFormatError(f"{name} is not a value a plan can hold")


# The last plan texts parsed (digest of the text -> PlanFile), oldest first: see `PlanFile.parse`. Two:
# a rollback holds the plan it undoes and its own.
_PARSED_PLANS: dict[bytes, PlanFile] = {}
_PARSED_PLANS_KEPT = 2
_PARSED_PLANS_LOCK = threading.Lock()


@dataclass(frozen=True)
class PlanFile:
    """A plan file as read: the plan and what the file claims about it (neither claim checked here)."""

    plan: Plan
    digest: str
    signature: str

    @classmethod
    def parse(cls, text: str) -> PlanFile:
        """The plan file `text` as read. One `apply` or `rollback` parses the same text more than once
        (the file read, then the check that the run folder's copy is the plan applied): the last few
        parses are kept, keyed by a digest of the whole text, so a text is parsed again only when it
        differs in some byte. What is returned is shared: read it, never change it (as a run's plan)."""
        key = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=32).digest()
        with _PARSED_PLANS_LOCK:
            hit = _PARSED_PLANS.pop(key, None)
            if hit is not None:
                _PARSED_PLANS[key] = hit  # now the most recent
                return hit
        parsed = cls._parse(text)
        with _PARSED_PLANS_LOCK:
            _PARSED_PLANS[key] = parsed
            while len(_PARSED_PLANS) > _PARSED_PLANS_KEPT:
                del _PARSED_PLANS[next(iter(_PARSED_PLANS))]
        return parsed

    @classmethod
    def _parse(cls, text: str) -> PlanFile:
        # A parse makes millions of dicts it keeps, and no cycles: the collector's walks of them (a third of
        # reading a 1M-contact scan's plan) found nothing.
        with _collector_paused():
            return cls._parse_plain(text)

    @classmethod
    def _parse_plain(cls, text: str) -> PlanFile:
        try:
            doc = json.loads(text, parse_constant=_refuse_constant)
        except json.JSONDecodeError as exc:
            raise PlanFormatError(f"not a JSON plan file ({exc.msg} at line {exc.lineno})") from exc
        except PlanFormatError:
            raise
        except (ValueError, RecursionError) as exc:  # a number of thousands of digits; nesting past all use
            raise PlanFormatError(f"not a plan crmsweep can read ({type(exc).__name__})") from exc
        if not isinstance(doc, dict) or doc.get("format") not in PLAN_FORMATS:
            raise PlanFormatError(f"not a crmsweep plan (expected format {PLAN_FORMAT!r})")
        header = PlanHeader.from_dict(doc.get("header") or {})
        raw_changes = doc.get("changes")
        if not isinstance(raw_changes, list):
            raise PlanFormatError("plan has no list of changes")
        changes = (changes_from_items(raw_changes) if doc["format"] == PLAN_FORMAT_COLUMNS
                   else changes_from_dicts(raw_changes))
        plan = Plan(header=header, changes=changes)
        try:
            plan.digest  # noqa: B018 - a value canonical JSON cannot encode (a lone surrogate) fails here, once
        except (ValueError, TypeError, UnicodeEncodeError, RecursionError) as exc:
            raise PlanFormatError(f"the plan holds a value that has no canonical form ({type(exc).__name__})") from exc
        return cls(
            plan=plan,
            digest=str(doc.get("digest", "")),
            signature=str(doc.get("signature") or ""),
        )


# --- snapshots ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectLayer:
    """How an incremental snapshot holds an object without copying it: the rows of a full data file
    in a base snapshot, less the `deleted` ids and the ids of the entry's own file (the rows changed
    since), plus that file's rows. Reads as one full copy (see `snapshot_reader`)."""

    base_snapshot: str
    base_file: str  # relative to the base snapshot's folder
    base_sha256: str
    base_rows: int
    changed: int  # rows in the entry's own file
    deleted_file: str  # relative to this snapshot's folder: one id column
    deleted_sha256: str
    deleted: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "base_snapshot": self.base_snapshot,
            "base_file": self.base_file,
            "base_sha256": self.base_sha256,
            "base_rows": self.base_rows,
            "changed": self.changed,
            "deleted_file": self.deleted_file,
            "deleted_sha256": self.deleted_sha256,
            "deleted": self.deleted,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ObjectLayer:
        return cls(
            base_snapshot=str(data["base_snapshot"]),
            base_file=str(data["base_file"]),
            base_sha256=str(data["base_sha256"]),
            base_rows=int(data["base_rows"]),
            changed=int(data["changed"]),
            deleted_file=str(data["deleted_file"]),
            deleted_sha256=str(data["deleted_sha256"]),
            deleted=int(data["deleted"]),
        )


@dataclass(frozen=True)
class ObjectEntry:
    name: str
    rows: int  # rows the object reads as (for a layered object: as a full copy)
    file: str  # relative to the snapshot folder
    sha256: str
    fields: tuple[FieldSpec, ...]
    watermark: str | None = None  # max fingerprint field value seen (canonical datetime)
    layer: ObjectLayer | None = None  # set when `file` holds only the rows changed since a base snapshot
    # Of `rows`, those the vocabulary's deleted field marks removed (archived records, kept
    # where the CRM cannot undelete them: the snapshot is their only copy). None in a manifest written
    # before they were counted: such a snapshot may hold removed rows, so none is not assumed.
    removed_rows: int | None = None

    @property
    def live_rows(self) -> int | None:
        """The rows of records the CRM still holds live; None where the removed ones were not counted."""
        return None if self.removed_rows is None else self.rows - self.removed_rows

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "rows": self.rows,
            "file": self.file,
            "sha256": self.sha256,
            "watermark": self.watermark,
            "fields": [f.to_dict() for f in self.fields],
        }
        if self.removed_rows is not None:
            data["removed_rows"] = self.removed_rows
        if self.layer is not None:
            data["layer"] = self.layer.to_dict()
        return data

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> ObjectEntry:
        layer = data.get("layer")
        rows, removed = int(data["rows"]), data.get("removed_rows")
        # A count of the file's own rows: a whole number no greater than them (a manifest edited by hand is
        # refused as damaged, as one with a bad row count is, not printed as "-5 archived").
        if removed is not None and (type(removed) is not int or not 0 <= removed <= rows):
            raise ValueError(f"{name}: removed_rows {removed!r} is not a count of its {rows} rows")
        return cls(
            name=name,
            rows=rows,
            file=str(data["file"]),
            sha256=str(data["sha256"]),
            watermark=data.get("watermark"),
            fields=tuple(FieldSpec.from_dict(f) for f in data.get("fields", ())),
            layer=None if layer is None else ObjectLayer.from_dict(layer),
            removed_rows=removed,
        )


@dataclass(frozen=True)
class SnapshotManifest:
    snapshot_id: str
    connection: str
    provider: str
    org_id: str
    api_version: str
    tool_version: str
    started: str
    finished: str
    objects: Mapping[str, ObjectEntry]
    # Other files of the snapshot (describe JSON and the like): relative path -> sha256.
    metadata: Mapping[str, str] = field(default_factory=dict)
    api_calls: int = 0
    # Incremental snapshots: the snapshot they were taken against, and per object how it was read
    # ("changes since ..." or why it was read in full).
    parent: str | None = None
    notes: Mapping[str, str] = field(default_factory=dict)
    # The CRM's own clock when the backup began (to the second), where it tells: an incremental backup
    # dates its window by the earlier of this and `started`, so a fast local clock cannot hide changes.
    crm_started: str | None = None

    def to_dict(self) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if self.parent is not None:
            extra = {"parent": self.parent, "notes": dict(self.notes)}
        if self.crm_started is not None:
            extra["crm_started"] = self.crm_started
        return {
            "format": MANIFEST_FORMAT,
            "snapshot": self.snapshot_id,
            "connection": self.connection,
            "provider": self.provider,
            "org_id": self.org_id,
            "api_version": self.api_version,
            "tool_version": self.tool_version,
            "started": self.started,
            "finished": self.finished,
            "api_calls": self.api_calls,
            "objects": {name: entry.to_dict() for name, entry in self.objects.items()},
            "metadata": dict(self.metadata),
            **extra,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SnapshotManifest:
        if data.get("format") != MANIFEST_FORMAT:
            raise PlanFormatError(f"not a crmsweep snapshot manifest (expected format {MANIFEST_FORMAT!r})")
        try:
            return cls(
                snapshot_id=str(data["snapshot"]),
                connection=str(data["connection"]),
                provider=str(data["provider"]),
                org_id=str(data["org_id"]),
                api_version=str(data["api_version"]),
                tool_version=str(data["tool_version"]),
                started=str(data["started"]),
                finished=str(data["finished"]),
                api_calls=int(data.get("api_calls", 0)),
                objects={n: ObjectEntry.from_dict(n, e) for n, e in dict(data["objects"]).items()},
                metadata={str(k): str(v) for k, v in dict(data.get("metadata", {})).items()},
                parent=None if data.get("parent") is None else str(data["parent"]),
                notes={str(k): str(v) for k, v in dict(data.get("notes") or {}).items()},
                crm_started=None if data.get("crm_started") is None else str(data["crm_started"]),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise PlanFormatError(f"malformed snapshot manifest: {exc}") from exc

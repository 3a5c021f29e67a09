"""The one protocol every connector implements. Connectors do HTTP and nothing else.

Records cross this boundary in canonical form (see `crmsweep.model`): flat dicts of JSON scalars,
the provider's wrappers (such as "attributes" or "properties") taken off; dates "YYYY-MM-DD", datetimes as the
provider sends them (callers normalise with `model.canonical_datetime` where they compare).

Which records a read takes is said with typed filters (`since=`, `ids=`, `equals=`, `has_value=`,
gathered in `RecordFilter`), never with query text: each connector expresses them in its own API
(a WHERE clause, search filters), so generic code stays provider-neutral.

Links between records: where `capabilities.has_associations`, `read_associations` and
`create_associations` read and make them. Elsewhere links are lookup fields and junction
records, read and written like any other field or record, and those two calls raise
`AssociationsUnsupported`.

Retries live inside the connector (one injected `RetryPolicy`); callers see only the final outcome:
a result, or one of the errors in `crmsweep.errors` (LimitExceeded stops a run cleanly).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

from crmsweep.errors import BadInput
from crmsweep.model import (
    ApiUsage,
    Capabilities,
    CreateAttempt,
    FieldSpec,
    Record,
    Vocabulary,
    WriteResult,
    canonical_datetime,
)

Scalar = str | int | float | bool | None


class AssociationsUnsupported(BadInput):
    """The provider links records through fields, not associations (see `Capabilities.has_associations`)."""


@dataclass(frozen=True)
class RecordFilter:
    """The typed filters of `count` and `iter_pages`; every one given must hold (AND).

    - `since`: the record's fingerprint field is at or after this datetime (any spelling
      `model.canonical_datetime` takes; kept canonical);
    - `ids`: the record's id is one of these (an empty tuple matches nothing);
    - `equals`: each field holds exactly this value (None: the field is empty);
    - `has_value`: each field holds a value (not null, not "").
    """

    since: str | None = None
    ids: tuple[str, ...] | None = None
    equals: Mapping[str, Scalar] = field(default_factory=lambda: MappingProxyType({}))
    has_value: tuple[str, ...] = ()

    @classmethod
    def of(
        cls,
        *,
        since: str | None = None,
        ids: Sequence[str] | None = None,
        equals: Mapping[str, Scalar] | None = None,
        has_value: Sequence[str] = (),
    ) -> RecordFilter:
        """The filter of the keyword arguments the protocol methods take (checked, canonical)."""
        if isinstance(ids, str) or isinstance(has_value, str):
            raise TypeError("ids and has_value are sequences of strings, not one string")
        if since is not None:
            try:
                since = canonical_datetime(since)
            except ValueError:
                raise BadInput(f"since={since!r} is not a datetime (use 2024-01-31T00:00:00Z)") from None
        return cls(
            since=since,
            ids=None if ids is None else tuple(dict.fromkeys(str(i) for i in ids)),
            equals=MappingProxyType(dict(equals or {})),
            has_value=tuple(has_value),
        )

    @property
    def empty(self) -> bool:
        return self.since is None and self.ids is None and not self.equals and not self.has_value

    def fields(self, vocabulary: Vocabulary) -> tuple[str, ...]:
        """The fields a record needs for `matches`."""
        wanted = [*self.equals, *self.has_value]
        if self.since is not None:
            wanted.append(vocabulary.fingerprint_field)
        if self.ids is not None:
            wanted.append(vocabulary.id_field)
        return tuple(dict.fromkeys(wanted))

    def matches(self, record: Mapping[str, Any], vocabulary: Vocabulary) -> bool:
        """Whether a canonical record passes (for connectors that filter on their side, and fakes)."""
        if self.ids is not None:
            keys = {vocabulary.id_key(i) for i in self.ids}
            if vocabulary.id_key(str(record.get(vocabulary.id_field))) not in keys:
                return False
        if self.since is not None:
            stamp = record.get(vocabulary.fingerprint_field)
            if not stamp or (canonical_datetime(str(stamp)) or "") < self.since:
                return False
        for name, value in self.equals.items():
            held = record.get(name)
            if value is None:
                if held not in (None, ""):
                    return False
            elif held != value:
                return False
        return all(record.get(name) not in (None, "") for name in self.has_value)


@dataclass(frozen=True)
class Connection:
    """A resolved connection profile: everything a connector needs, the secret included.

    `token` is the secret itself (read from the environment variable the profile names); it must
    never be printed, logged or written to a plan, snapshot or run. `__repr__` hides it.
    """

    name: str
    provider: str
    url: str
    token: str
    ca_file: Path | None = None
    api_version: str | None = None
    # NAME of the environment variable the token came from (None for built-in connections), so an
    # auth error can say what to refresh without ever showing the token.
    token_env: str | None = None
    bulk_threshold: int | None = None  # None: the connector's default

    def __repr__(self) -> str:
        return (
            f"Connection(name={self.name!r}, provider={self.provider!r}, url={self.url!r}, "
            f"token='***', ca_file={self.ca_file!r}, api_version={self.api_version!r}, token_env={self.token_env!r})"
        )


@runtime_checkable
class Connector(Protocol):
    connection_name: str
    provider: str
    capabilities: Capabilities
    vocabulary: Vocabulary

    def org_id(self) -> str:
        """The org / portal id, used to refuse a plan made for another org."""
        ...

    def api_version(self) -> str: ...

    def current_user_id(self) -> str | None:
        """The id of the user the connection authenticates as (never proposed for deactivation)."""
        ...

    def describe(self, object_name: str) -> dict[str, Any]:
        """The provider's raw describe document for one object (saved into snapshots)."""
        ...

    def fields(self, object_name: str) -> list[FieldSpec]:
        """Queryable fields of an object, in describe order, with provider-neutral kinds."""
        ...

    def count(
        self,
        object_name: str,
        *,
        since: str | None = None,
        ids: Sequence[str] | None = None,
        equals: Mapping[str, Scalar] | None = None,
        has_value: Sequence[str] = (),
    ) -> int:
        """How many live records match the filters (see `RecordFilter`)."""
        ...

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
        """Every record matching the filters (see `RecordFilter`), one provider page at a time (bounded
        memory); with include_deleted, recycle-bin / archived records too, with their deleted flag."""
        ...

    def read(
        self, object_name: str, ids: Sequence[str], fields: Sequence[str], *, include_deleted: bool = True
    ) -> dict[str, Record]:
        """The live records with these ids (batched under the URI limit). Missing ids are absent;
        with include_deleted, recycle-bin rows are returned with their deleted flag."""
        ...

    def read_related(
        self, object_name: str, field: str, values: Sequence[str], fields: Sequence[str]
    ) -> list[Record]:
        """The live (not deleted) records of `object_name` whose `field` holds one of `values` (record ids),
        with `fields` and the id field; batched under the URI limit like `read`."""
        ...

    def delete(self, object_name: str, ids: Sequence[str]) -> list[WriteResult]:
        """At most `capabilities.max_batch_write` ids; results in request order."""
        ...

    def update(self, object_name: str, records: Sequence[Record]) -> list[WriteResult]:
        """Each record has the id field plus the values to write."""
        ...

    def create(
        self, object_name: str, records: Sequence[Record], *, keys: Sequence[str] | None = None
    ) -> list[WriteResult]:
        """`keys` are the creates' idempotency keys (one per record, logged in the run's intent): a CRM
        that can hold one on the record stores it there; others ignore it (see `find_created`)."""
        ...

    def find_created(self, object_name: str, attempts: Sequence[CreateAttempt]) -> dict[str, list[Record]]:
        """For each attempt's key, the live records that may be the one its create made (resume settles
        a create of unknown outcome with it, rather than risk a duplicate).

        A CRM that stores the key returns the records carrying it; one that cannot returns the records
        the connection's user created since the attempt was sent. Each record holds the id field and
        the fields of the attempt's values: the caller keeps those whose values are the ones sent.
        """
        ...

    def undelete(self, object_name: str, ids: Sequence[str]) -> list[WriteResult]:
        """Restore from the recycle bin, keeping ids (only where `capabilities.supports_undelete`)."""
        ...

    def read_associations(
        self, from_object: str, to_object: str, ids: Sequence[str]
    ) -> dict[str, list[str]]:
        """The ids of the `to_object` records each of `ids` (of `from_object`) is linked to; every id
        asked for is a key (an empty list when it has no links). Batched under the provider's limit.
        AssociationsUnsupported unless `capabilities.has_associations`."""
        ...

    def create_associations(
        self, from_object: str, to_object: str, pairs: Sequence[tuple[str, str]]
    ) -> list[WriteResult]:
        """Link each (from id, to id) pair with the provider's default association; results in request
        order, `id` being the from id. At most `capabilities.max_batch_write` pairs per call, like the
        other writes. AssociationsUnsupported unless `capabilities.has_associations`."""
        ...

    def metadata_documents(self) -> Iterator[tuple[str, Any]]:
        """(name, JSON document) pairs a backup keeps beside the records and describes: settings the CRM
        holds outside its objects (users, lists, marketing emails). `name` is a short file name
        (letters, digits, '_', '-'); none where the describes hold it all."""
        ...

    def api_usage(self) -> ApiUsage: ...

    def close(self) -> None: ...

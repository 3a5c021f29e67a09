"""The one protocol both connectors implement. Connectors do HTTP and nothing else.

Records cross this boundary in canonical form (see `crmsweep.model`): plain dicts of JSON scalars,
without provider envelope keys such as Salesforce's "attributes"; dates "YYYY-MM-DD", datetimes as the
provider sends them (callers normalise with `model.canonical_datetime` where they compare).

Retries live inside the connector (one injected `RetryPolicy`); callers see only the final outcome:
a result, or one of the errors in `crmsweep.errors` (LimitExceeded stops a run cleanly).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from crmsweep.model import ApiUsage, Capabilities, CreateAttempt, FieldSpec, Record, Vocabulary, WriteResult


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

    def count(self, object_name: str, *, where: str | None = None) -> int: ...

    def iter_pages(
        self,
        object_name: str,
        fields: Sequence[str],
        *,
        where: str | None = None,
        include_deleted: bool = False,
    ) -> Iterator[list[Record]]:
        """Every matching record, one provider page at a time (bounded memory)."""
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

    def api_usage(self) -> ApiUsage: ...

    def close(self) -> None: ...

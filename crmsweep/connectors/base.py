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

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

from crmsweep.errors import BadInput
from crmsweep.model import (
    ApiAllowance,
    ApiUsage,
    Capabilities,
    CreateAttempt,
    FieldSpec,
    ReadPlan,
    Record,
    Vocabulary,
    WriteResult,
    canonical_datetime,
)

Scalar = str | int | float | bool | None


class IncrementalUnsupported(BadInput):
    """The CRM cannot list what was deleted since a moment, so an incremental backup of it could keep
    records that are gone: `backup --incremental` is refused (exit 2) with this one-line reason."""


class ChangeLogUnavailable(Exception):
    """The CRM cannot list one object's deletes over the window asked (too long ago, too many, or no
    log for that object): an incremental backup reads that object in full, saying this reason."""


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


TOKEN_AUTH = "token"


@dataclass(frozen=True)
class SignIn:
    """How a connection signs in, when it is not with a token from the environment (`auth = "token"`).

    Only settings that are no secret: usernames, client ids, a key FILE's path, the NAMES of the
    environment variables that hold the secrets (read at each sign-in, never kept), a CLI org alias.
    Which keys a kind takes is checked by the config (`crmsweep.config`); the provider says which
    kinds it knows (`Provider.auth_kinds`).
    """

    kind: str  # one of `Provider.auth_kinds` but "token"
    login_url: str | None = None  # where the token endpoint is (jwt, password); My Domain for client_credentials
    username: str | None = None
    client_id: str | None = None
    client_id_env: str | None = None
    client_secret_env: str | None = None
    private_key_file: Path | None = None
    password_env: str | None = None
    security_token_env: str | None = None
    org: str | None = None  # the CRM's CLI's alias or username for the org

    def to_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in self.__dict__.items() if v is not None}


# How environment variables are conventionally named. A name that is not shaped so is never repeated in
# an error: it may well be the secret itself, pasted where its variable's NAME belongs.
_CONVENTIONAL_ENV_NAME = re.compile(r"[A-Z][A-Z0-9_]*")


def env_variable(name: str, key: str) -> str:
    """How an error names the environment variable `name` (set in the config's `key`): by name when it is
    shaped like one (ACME_SF_TOKEN), else without it."""
    if _CONVENTIONAL_ENV_NAME.fullmatch(name):
        return f"environment variable {name}"
    return (f"the environment variable named in {key} (its name is not shown: it is not in capitals, as "
            "variable names are, and may be the secret itself pasted in place of a NAME)")


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
    # A sign-in flow (None: the token above is the session, from `token_env`). With one, `token` is ""
    # until the connector has signed in, and `url` is the login url until the sign-in names the instance.
    auth: SignIn | None = None

    @property
    def can_sign_in_again(self) -> bool:
        """Whether an expired session can be replaced without the admin: any flow but a bare token."""
        return self.auth is not None

    def __repr__(self) -> str:
        return (
            f"Connection(name={self.name!r}, provider={self.provider!r}, url={self.url!r}, "
            f"token='***', ca_file={self.ca_file!r}, api_version={self.api_version!r}, token_env={self.token_env!r}, "
            f"auth={self.auth!r})"
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

    def key_prefixes(self) -> dict[str, str]:
        """Object name -> the prefix every id of its records starts with, for each object of the CRM's own list
        (the org's custom objects too, whose prefixes differ from org to org); empty where ids do not tell
        their object."""
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
        include_deleted: bool = False,
    ) -> int:
        """How many live records match the filters (see `RecordFilter`); with `include_deleted`, those in
        the recycle bin as well, where the CRM counts them (a CRM whose archive cannot be searched
        counts live records only)."""
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

        A CRM that stores the key returns the records carrying it, the key in the vocabulary's
        `create_key_field` (such a record is the create's, whatever was edited on it since); one that
        cannot returns the records the connection's user created since the attempt was sent. Each record
        holds the id field and the fields of the attempt's values: the caller tells those without the key
        by their values.
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

    def read_association_types(
        self, from_object: str, to_object: str, ids: Sequence[str]
    ) -> dict[str, dict[str, list[dict[str, Any]]]]:
        """As `read_associations`, each link with its types: from id -> to id -> the link's types, JSON
        objects `create_associations` takes back as they are (a `model.LINK_TYPE_LABEL` names a named one),
        in a stable order. AssociationsUnsupported unless `capabilities.has_associations`."""
        ...

    def create_associations(
        self, from_object: str, to_object: str, pairs: Sequence[tuple[str, str]],
        types: Sequence[Sequence[Mapping[str, Any]]] | None = None,
    ) -> list[WriteResult]:
        """Link each (from id, to id) pair; results in request order, `id` being the from id. `types`, one
        list a pair, are the types to give the link, as `read_association_types` read them (every one the
        link is to have: a CRM may replace a link's types with those written); an empty list, or no `types`,
        makes the provider's default link. At most `capabilities.max_batch_write` pairs per call, like the
        other writes. AssociationsUnsupported unless `capabilities.has_associations`."""
        ...

    def deleted_since(self, object_name: str, start: datetime) -> list[str]:
        """The ids of `object_name` records deleted since `start` and still deleted (in the recycle bin or
        purged from it), for an incremental backup; the records changed since are read with
        `iter_pages(since=..., include_deleted=True)`. ChangeLogUnavailable when the CRM cannot say for
        this object and window; IncrementalUnsupported when it never can."""
        ...

    def derived_links(self, object_name: str) -> Mapping[str, tuple[str, ...]]:
        """Fields of `object_name` pointing at records (of the objects named) whose values the CRM
        recomputes when this record is written or deleted, without moving their fingerprint (e.g. an
        activity's links, for the last-activity date of the records they point at). An incremental backup reads those
        records again; empty where the CRM derives nothing so."""
        ...

    def metadata_documents(self) -> Iterator[tuple[str, Any]]:
        """(name, JSON document) pairs a backup keeps beside the records and describes: settings the CRM
        holds outside its objects (users, lists, marketing emails). `name` is a short file name
        (letters, digits, '_', '-'); none where the describes hold it all."""
        ...

    def metadata_calls(self) -> int:
        """At least how many calls `metadata_documents` makes (the API budget adds them to a backup's)."""
        ...

    def read_plan(self, object_name: str) -> ReadPlan:
        """How a backup will read the whole object, and the calls it will take (after this one's own
        count, made once per connector and kept: the backup and the API budget share it)."""
        ...

    def allowance(self) -> ApiAllowance | None:
        """The org's daily API allowance as the CRM last reported it; None where it says nothing."""
        ...

    def api_usage(self) -> ApiUsage: ...

    def close(self) -> None: ...

"""The concepts cleanup passes need beyond the core vocabulary, one frozen dataclass each.

A concept is what a pass must know of a provider to run there: which objects and fields mean "email
bounced", "campaign finished", "custom field"... Each provider's vocabulary holds at most one instance of
each class (`Vocabulary.concepts`) and says, in `Vocabulary.absent_concepts`, why it has none of a class
it cannot map ("this CRM has no reports API"). A pass lists the classes it needs in `PassSpec.needs`; scan
skips it for a provider lacking one, with that reason. Plain data: imports nothing of ours.

Adding a pass that needs a new concept is: one class here, one entry per provider that has it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CustomFields:
    """Where a provider's custom field definitions are, and what references them.

    `definitions` is the snapshot object with one row per custom field definition (a metadata API's
    field records, or a property list); `field_of(row)` is the (record object, field name) a row defines,
    or None for one that defines no record field. `references` are the snapshot objects with one row per
    use of a field found by the backup (columns `object`, `field`, `by_type`, `by_id`, `by_name`).
    `removal` is the op that removes a definition ("archive": the CRM cannot give it back by API, so a
    rollback re-creates it from the row and writes its values back from the snapshot).
    `why_kept(row)` says why a definition must never be removed (managed package, read-only,
    CRM-defined), or None.
    """

    definitions: str
    field_of: Callable[[Mapping[str, Any]], tuple[str, str] | None]
    references: tuple[str, ...]
    removal: str
    why_kept: Callable[[Mapping[str, Any]], str | None]


# --- the record passes: people, tasks, deals, campaigns, accounts ------------------------------------


@dataclass(frozen=True)
class Link:
    """Rows of `object` that tie a record being judged to another record: `near_field` holds the judged
    record's id, `far_field` the other's (the id field itself when the rows are the other records, as
    with a lookup field; `from_id`/`to_id` for an association pseudo-object)."""

    object: str
    near_field: str
    far_field: str


@dataclass(frozen=True)
class ContactPoints:
    """How a person can be reached: per people object, the email and phone fields (`fields`, which a
    snapshot must hold for the object to be judged) and other phone fields used where the snapshot has
    them (`other_fields`). A person with none of them filled cannot be contacted."""

    fields: Mapping[str, tuple[str, ...]]
    other_fields: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class Converted:
    """People a CRM has converted into other records (a lead turned contact): per people object, the flag
    that says so (`flags`). They are history, read-only to most writes, and passes leave them alone."""

    flags: Mapping[str, str]


@dataclass(frozen=True)
class EmailBounces:
    """Where a CRM records that a person's address hard-bounced, on every people object.

    The address bounced when any of `set_fields` holds a value or any of `true_flags` is true;
    `detail_fields` say when and why, for the reason an admin reads. Clearing the address also writes
    `opt_out_field` true; where the CRM has no opt-out the API may write, `opt_out_field` is None and
    `no_opt_out` says so (a note in the plan).
    """

    set_fields: tuple[str, ...]
    true_flags: tuple[str, ...]
    detail_fields: tuple[str, ...]
    opt_out_field: str | None
    no_opt_out: str = ""


@dataclass(frozen=True)
class Cases:
    """Support cases (tickets): a row is closed when `closed_field` holds one of `closed_values`, else
    open (an empty value counts as open: when in doubt, keep). `people` and `accounts` tie people and
    accounts to their cases."""

    object: str
    closed_field: str
    closed_values: tuple[Any, ...]
    people: tuple[Link, ...]
    accounts: tuple[Link, ...]


@dataclass(frozen=True)
class TaskWork:
    """Tasks as work to finish: a task is done when `done_field` holds one of `done_values`; `due_field`
    is when it was due; closing one writes `close_writes`."""

    object: str
    done_field: str
    done_values: tuple[Any, ...]
    due_field: str
    close_writes: Mapping[str, Any]


@dataclass(frozen=True)
class DealStages:
    """How a deal's stage is written: `stage_field`, the stages that close a deal (`closed_stages`), and
    the provider's closed-lost stage (`closed_lost`). Where stages belong to pipelines, `closed_lost` is
    the stage of the pipeline `closed_lost_pipeline` names in `pipeline_field`; deals of another
    pipeline need a stage chosen by the admin."""

    stage_field: str
    closed_stages: tuple[str, ...]
    closed_lost: str
    pipeline_field: str | None = None
    closed_lost_pipeline: str | None = None


@dataclass(frozen=True)
class Campaigns:
    """Marketing campaigns: `object`, when each ends (`end_field`), its status (`status_field`, finished
    when in `done_statuses`). A campaign still runs while `active_field` is true, or, where the CRM has
    no such flag (None), while its status is not finished; ending one writes `end_writes`."""

    object: str
    end_field: str
    status_field: str
    done_statuses: tuple[str, ...]
    active_field: str | None
    end_writes: Mapping[str, Any]


@dataclass(frozen=True)
class Accounts:
    """Accounts (companies) and what ties records to them: their `contacts`, their `deals` (any deal not
    known closed keeps the account) and the records of never-touch objects (`kept_by`: contracts,
    orders, quotes, invoices) that keep an account whatever else it has. Each tuple holds alternatives
(the same links read from either end): one of them in the snapshot is enough."""

    object: str
    contacts: tuple[Link, ...]
    deals: tuple[Link, ...]
    # Never-touch object -> the links that tie its records to accounts (any one in the snapshot will do).
    kept_by: Mapping[str, tuple[Link, ...]]
    # Where the links to never-touch records cannot be backed up, what the admin must know (a note).
    kept_by_unchecked: str = ""

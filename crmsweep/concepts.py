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
from dataclasses import dataclass, field
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
    `is_custom(row)`: the definition is the org's own (an admin's field), not one the CRM defines; only
    those are candidates, and the others are not counted as held back.
    `filled_field`: a column of the definitions object holding how many live records hold a value (a count
    the connector reads from the CRM), so apply can see values written since the backup; None if the CRM
    gives no cheap count.
    `caveats`: what the reference evidence cannot see, said in every proposal's note.
    """

    definitions: str
    field_of: Callable[[Mapping[str, Any]], tuple[str, str] | None]
    references: tuple[str, ...]
    removal: str
    why_kept: Callable[[Mapping[str, Any]], str | None]
    is_custom: Callable[[Mapping[str, Any]], bool] = lambda row: True
    filled_field: str | None = None
    caveats: str = ""


# --- data quality (the `report quality` command) ------------------------------------------------------

SEVERITIES = ("critical", "major", "minor")


@dataclass(frozen=True)
class QualityRule:
    """One thing every live record of `object` must have, with how much its lack matters.

    Either a value in at least one of the fields `any_of` ("email or phone"), or, with `active_owner`, an
    owner that is an active user. `provider` limits a rule from a config to that provider's connections
    (None: every provider). `label` names the rule for a person ("email or phone").
    """

    object: str
    severity: str  # one of SEVERITIES
    label: str
    any_of: tuple[str, ...] = ()
    active_owner: bool = False
    provider: str | None = None


@dataclass(frozen=True)
class DataQuality:
    """A provider's default data-quality rules, and how its owners are named in a report.

    `owner_name_fields` are the user object's fields joined (non-empty ones, with a space) into an owner's
    name; the owner's id stands in when they are all empty. `queue_id_prefixes`: owner ids starting so
    name a queue, not a user (records waiting in a queue have an owner: no active-owner violation).
    """

    rules: tuple[QualityRule, ...]
    owner_name_fields: tuple[str, ...]
    queue_id_prefixes: tuple[str, ...] = ()

    @property
    def objects(self) -> tuple[str, ...]:
        """The objects the default rules check, in rule order, each once."""
        return tuple(dict.fromkeys(rule.object for rule in self.rules))


def default_quality_rules(
    people: dict[str, tuple[tuple[str, ...], tuple[str, ...]]],
    deals: dict[str, tuple[str, str]],
    owned_only: tuple[str, ...],
) -> tuple[QualityRule, ...]:
    """The rules the admins asked for, on one provider's names: a person needs an email or a phone
    (critical) and a city or region (major); a deal an amount and a close date (major); every record of
    these objects an active owner (critical).

    `people` maps a people object to (its email and phone fields, its city and region fields); `deals` a
    deal object to (its amount field, its close date field); `owned_only` are objects checked for their
    owner alone.
    """
    rules: list[QualityRule] = []
    for obj, (contact_fields, place_fields) in people.items():
        rules.append(QualityRule(obj, "critical", "email or phone", any_of=contact_fields))
        rules.append(QualityRule(obj, "major", "city or region", any_of=place_fields))
    for obj, (amount, close_date) in deals.items():
        rules.append(QualityRule(obj, "major", "amount", any_of=(amount,)))
        rules.append(QualityRule(obj, "major", "close date", any_of=(close_date,)))
    for obj in (*people, *owned_only, *deals):
        rules.append(QualityRule(obj, "critical", "active owner", active_owner=True))
    return tuple(rules)
# --- asset passes: stale_reports, stale_templates, stale_lists, old_files; and duplicates -----------------


@dataclass(frozen=True)
class RunnableAsset:
    """One object of saved reports or dashboards: `last_run_field` says when it last ran (or refreshed),
    `name_field` names it in reasons."""

    object: str
    last_run_field: str
    name_field: str


@dataclass(frozen=True)
class Reports:
    """Saved reports and dashboards that a pass may delete when nobody has run them for long.

    `viewed_field` is a "last viewed" date the CRM keeps per querying user (so it says nothing of the
    others' use): the pass never judges by it and says so. `removal` is the op that removes one.
    """

    assets: tuple[RunnableAsset, ...]
    viewed_field: str | None
    removal: str


@dataclass(frozen=True)
class EmailTemplates:
    """Email templates (or marketing emails) and when each was last used.

    A row is judged by `last_used_field`; where that is empty it was never used when `times_used_field`
    (if any) is 0 or empty, and is judged by its created date. `active_field` (if any): only rows with it
    true are candidates. `draft_flag` (if any): a row with it false is a draft, judged by `draft_date_field`
    instead (a draft is never "used"). `op` with `writes` is the change made to a stale one ("update" to
    deactivate, "delete" where the CRM keeps it restorable). `why_kept(row)` says why a row must never be
    proposed however old its dates (one a workflow still sends, whose sends the snapshot does not show),
    reading `kept_fields`; None where every row is judged by its dates.
    """

    object: str
    last_used_field: str
    times_used_field: str | None
    active_field: str | None
    draft_flag: str | None
    draft_date_field: str | None
    op: str
    writes: Mapping[str, Any]
    why_kept: Callable[[Mapping[str, Any]], str | None] | None = None
    kept_fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class Lists:
    """Saved lists (segments) of records, which the CRM restores with their ids after a delete.

    A list's last update is the latest of `updated_fields`; it is in use while a row of `used_by[0]` holds
    its id in `used_by[1]` (a JSON text list of ids).
    """

    object: str
    updated_fields: tuple[str, ...]
    used_by: tuple[str, str]
    removal: str


@dataclass(frozen=True)
class Files:
    """Stored files, and the link rows that attach each one to records.

    `links` rows tie `link_file_field` (the file's id) to `link_record_field` (a record of any object).
    `key_prefixes` are the documented id prefixes of the never-touch objects and of the standard objects files
    are attached to, so a link to one of their records is known even when the snapshot holds none of that
    object's rows (at apply, a link made since the scan).
    """

    object: str
    links: str
    link_file_field: str
    link_record_field: str
    key_prefixes: Mapping[str, str]
    removal: str


@dataclass(frozen=True)
class PeopleMatch:
    """The fields of one people object that tell two records apart (or not)."""

    object: str
    email_fields: tuple[str, ...]
    phone_fields: tuple[str, ...]
    first_name_field: str
    last_name_field: str
    company_field: str  # a company name, or (`company_is_record`) the id of the company record
    company_is_record: bool = False  # ids compare exactly (case matters in some CRMs' ids), names loosely


@dataclass(frozen=True)
class CompanyMatch:
    """The fields of one company (account) object: its name and its web domain or site address."""

    object: str
    name_field: str
    domain_field: str


@dataclass(frozen=True)
class DuplicateKeys:
    """Where likely duplicates are looked for: people and companies objects with their matching fields."""

    people: tuple[PeopleMatch, ...]
    companies: tuple[CompanyMatch, ...]
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
    `no_opt_out` says so (a note in the plan). `cleared_with_address` are the bounce fields the CRM
    empties itself when the address changes, and lets the API write back: clearing writes them empty
    too, so the preview shows what the CRM drops and a rollback puts the bounce back with the address.
    `reason_field` holds the receiving server's reply as text where the CRM records soft bounces too (a
    full mailbox, a spam or policy rejection, a deferral): the pass tells them from a bad address by it.
    None: the bounce fields record hard bounces only. `bad_address_flags` (among `true_flags`) are the CRM's
    own verdict that the address itself is bad: a bounce with one true is hard whatever its reply reads.
    """

    set_fields: tuple[str, ...]
    true_flags: tuple[str, ...]
    detail_fields: tuple[str, ...]
    opt_out_field: str | None
    no_opt_out: str = ""
    cleared_with_address: tuple[str, ...] = ()
    reason_field: str | None = None
    bad_address_flags: tuple[str, ...] = ()


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
    pipeline need a stage chosen by the admin. `won_stages` win a deal and `won_field` (if any) flags a
    won one: a stage the admin chooses must close deals without winning them. `lost_writes` are the values
    the CRM sets itself when a write moves a deal to a stage that closes it as lost (a probability, a
    forecast category): written with the stage, the preview shows them, and the move's undo writes back
    what the deal held (the CRM would otherwise put the old stage's defaults there)."""

    stage_field: str
    closed_stages: tuple[str, ...]
    closed_lost: str
    pipeline_field: str | None = None
    closed_lost_pipeline: str | None = None
    won_stages: tuple[str, ...] = ()
    won_field: str | None = None
    lost_writes: Mapping[str, Any] = field(default_factory=dict)
    # Fields the CRM sets itself on a move to a closed stage from the move's own moment (a close date), unless
    # the write gives them: the move writes each back as the deal holds it, so nothing changes unseen by the
    # preview and the undo has the deal's own value to write back.
    kept_on_close: tuple[str, ...] = ()


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
class RemovalCascades:
    """What the CRM deletes itself with a removed record, per object of the removed record: the links from
    the records it takes (their near end is the removed record's id; a contact takes its activities and
    its deal roles). The plan says how many go, and a removal that would take a record of a protected
    object, or one `[protect] ids` names, is held back. An object absent here takes nothing."""

    by_object: Mapping[str, tuple[Link, ...]]


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
    # Records the CRM deletes with an account (its activities): an account one of whose such records an
    # earlier pass changes is kept, or the deletion would sweep the change away and its undo could not
    # find the record as it left it.
    cascades: tuple[Link, ...] = ()
    # What the CRM deletes, in turn, with a record a cascade deletes (an opportunity takes its activities):
    # per object of a cascade, the links from the records it takes (their near end is that object's id).
    cascades_of: Mapping[str, tuple[Link, ...]] = field(default_factory=dict)

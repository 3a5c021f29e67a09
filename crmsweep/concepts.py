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

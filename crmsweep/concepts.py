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

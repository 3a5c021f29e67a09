"""Drift and reconcile rules: pure verdicts on a planned change against the live record.

Whether a change may still be written (nothing edited it since the scan, rule 3), whether the live record
already shows a write whose outcome is unknown, and how values compare in canonical form. Kept apart from
the engine so the rules hold no I/O and can be read and tested without a CRM or a run log.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from crmsweep.backup.runlog import SKIP_ALREADY_RESTORED
from crmsweep.decimal_text import DECIMAL_PATTERN
from crmsweep.model import Change, CreateAttempt, Op, Vocabulary, canonical_datetime

DELETE_OPS = (Op.DELETE, Op.ARCHIVE)
UPDATE_OPS = (Op.UPDATE, Op.DEACTIVATE, Op.REACTIVATE)
# Ops that take a record away from the org's users: what a cleanup does, whoever's plan it is in.
REMOVING_OPS = frozenset({Op.DELETE, Op.ARCHIVE, Op.DEACTIVATE})

# Skip reasons, as logged and reported.
SKIP_DRIFT = "drift"
SKIP_MISSING = "missing"
SKIP_ALREADY_DELETED = "already deleted"
SKIP_SOMEONE_ELSE = "changed by someone else"
SKIP_NO_PARENT = "parent not re-created"

# What a scan plan's fingerprints were read at, as a drift detail names it.
SINCE_BACKUP = "the backup the plan was scanned from"


def _is_null(value: Any) -> bool:
    # Parquet-backed readers may hand back NaN where the CRM had no value.
    return value is None or (isinstance(value, float) and math.isnan(value))


def _as_datetime(text: str) -> str | None:
    if len(text) < 19 or text[10] != "T":
        return None
    try:
        return canonical_datetime(text)
    except ValueError:
        return None


_DECIMAL = re.compile(DECIMAL_PATTERN)


def same_value(a: Any, b: Any) -> bool:
    """Equal in canonical form: nulls, numbers across int/float and decimal text, datetimes across spellings."""
    # Most values compared (a plan's before-image against its snapshot row, 50k rows of ~30 fields)
    # are the same value of the same type, which every rule below would call equal: answer those
    # first. NaN is never equal to itself, so it still reaches the null rule.
    if type(a) is type(b) and a == b:
        return True
    if _is_null(a) or _is_null(b):
        return _is_null(a) and _is_null(b)
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    if isinstance(a, str) and isinstance(b, str):
        if a == b:
            return True
        da, db = _as_datetime(a), _as_datetime(b)
        return da is not None and da == db
    if isinstance(a, str) and isinstance(b, int | float):
        return _same_number(a, b)
    if isinstance(b, str) and isinstance(a, int | float):
        return _same_number(b, a)
    return bool(a == b)


def _same_number(text: str, number: int | float) -> bool:
    """A number kept as its decimal text (FieldKind.DECIMAL) against one a read gave as a JSON number (an
    integer has no point, so JSON decoding made it an int): the same if exactly the same number."""
    text = text.strip()
    if not _DECIMAL.fullmatch(text) or not math.isfinite(number):
        return False
    return Decimal(text) == Decimal(number if isinstance(number, int) else repr(number))


def _same_fingerprint(expected: str, live: Any) -> bool:
    return isinstance(live, str) and same_value(expected, live)


def _is_deleted(live: Mapping[str, Any], vocabulary: Vocabulary) -> bool:
    return bool(vocabulary.deleted_field and live.get(vocabulary.deleted_field))


def shown_time(value: Any) -> str:
    """A fingerprint as the CLI shows every time (`canonical_datetime`), whatever spelling it came in:
    the plan holds the snapshot's canonical form, the live read the CRM's own ('+0000'), and two
    spellings side by side read as two kinds of value. Anything that is not a datetime is shown as is."""
    text = str(value)
    return _as_datetime(text) or text


def drift_verdict(
    change: Change, live: Mapping[str, Any] | None, vocabulary: Vocabulary, *, since: str = SINCE_BACKUP
) -> tuple[str, str] | None:
    """Why `change` must be skipped given the live record (None if absent), or None if it may be written.

    `since`: what the plan's fingerprint was read at, as the drift detail names it (a rollback plan's is
    the run's write, not a backup)."""
    if change.op is Op.CREATE:
        return restored_verdict(change, live, vocabulary)
    if change.op is Op.UNDELETE:
        if live is None:
            return SKIP_MISSING, "it is neither in the CRM nor in its recycle bin (emptied or purged?)"
        restored = restored_verdict(change, live, vocabulary)
        if restored is not None:
            return restored
    else:
        if live is None:
            return SKIP_MISSING, "it is no longer in the CRM"
        if _is_deleted(live, vocabulary):
            if change.op in DELETE_OPS:
                return SKIP_ALREADY_DELETED, "it is in the recycle bin already"
            return SKIP_MISSING, "it was deleted since the scan (it is in the recycle bin)"
    if not change.fingerprint:
        # Without the fingerprint the record had when planned (e.g. the read-back after an apply
        # failed), an edit made since cannot be told apart: skip rather than risk overwriting it.
        return SKIP_DRIFT, f"no {vocabulary.fingerprint_field} was recorded to check it against"
    now = live.get(vocabulary.fingerprint_field)
    if not _same_fingerprint(change.fingerprint, now):
        was = shown_time(change.fingerprint)
        return SKIP_DRIFT, f"changed since {since}: {vocabulary.fingerprint_field} was {was}, now {shown_time(now)}"
    return None


def restored_verdict(
    change: Change, live: Mapping[str, Any] | None, vocabulary: Vocabulary
) -> tuple[str, str] | None:
    """Why a rollback's re-create or undelete of `change.record_id` must not be written: the record removed
    under that id is live again (someone restored it by hand, e.g. from the CRM's recycle bin), so a
    create would make a second copy and an undelete has nothing to do. None where it is still removed
    (`live` None: not in the CRM at all, or in its recycle bin)."""
    if live is None or _is_deleted(live, vocabulary):
        return None
    what = "re-created" if change.op is Op.CREATE else "undeleted"
    return (SKIP_ALREADY_RESTORED, f"{change.object} {change.record_id} is live again under its own id "
            f"(restored since the run removed it): left as it is, not {what}")


def shows_applied(change: Change, live: Mapping[str, Any] | None, vocabulary: Vocabulary) -> bool:
    """Whether the live record already shows `change` written (reconciling a write of unknown outcome)."""
    if change.op in DELETE_OPS:
        if live is None:
            # Without a recycle bin, gone means deleted; and an archive is a removal the CRM keeps nothing
            # of (a field definition deleted through a metadata API is queryable nowhere): gone means done.
            return vocabulary.deleted_field is None or change.op is Op.ARCHIVE
        return _is_deleted(live, vocabulary)
    if live is None or _is_deleted(live, vocabulary):
        return False
    if change.op is Op.UNDELETE:
        return True
    if change.op in UPDATE_OPS:
        return all(name in live and same_value(value, live[name]) for name, value in change.after.items())
    return False


def someone_else_verdict(
    change: Change,
    live: Mapping[str, Any] | None,
    vocabulary: Vocabulary,
    *,
    settled_at: str | None,
    running_user: str | None,
) -> str | None:
    """Why a record found in the planned state, for a write of unknown outcome, is someone else's doing.

    The write was sent before the run stopped, so a fingerprint later than the stop entry (`settled_at`,
    None when the session was killed or interrupted and no such bound is known) was stamped by another
    write. For updates, the CRM also names who wrote last: someone other than the connection's user.
    (Deletes and undeletes are judged by time alone: not every CRM, nor the sandbox, stamps the deleter.)
    """
    if live is None:
        return None
    stamp = live.get(vocabulary.fingerprint_field)
    if settled_at and isinstance(stamp, str):
        after, stopped = _as_datetime(stamp), _as_datetime(settled_at)
        if after and stopped and after > stopped:
            return f"{vocabulary.fingerprint_field} is {after}, after the run stopped at {stopped}"
    by_field = vocabulary.last_modified_by_field
    by = live.get(by_field) if by_field else None
    if (
        change.op in UPDATE_OPS
        and running_user
        and isinstance(by, str)
        and by
        and vocabulary.id_key(by) != vocabulary.id_key(running_user)
    ):
        return f"{by_field} is {by}, not the user this connection runs as ({running_user})"
    return None


def _key_of(candidate: Mapping[str, Any], key_field: str | None) -> str | None:
    value = candidate.get(key_field) if key_field else None
    return None if _is_null(value) or value == "" else str(value)


def created_matches(
    attempt: CreateAttempt,
    candidates: Sequence[Mapping[str, Any]],
    id_field: str,
    *,
    exclude: Iterable[str] = (),
    key_field: str | None = None,
) -> list[str]:
    """The ids of the `candidates` (what the connector found for the attempt's key) that are the record
    the create made, if it landed. Ids in `exclude` (made by other creates of the run) are never it.

    A candidate carrying the attempt's key in `key_field` (`Vocabulary.create_key_field`) is it, whatever
    was edited on it since: someone changing a copy does not make it less the copy, and calling it absent
    would send the create again, a second copy. One carrying another key was made by another create.
    The rest are told by their values: those holding exactly the values sent."""
    taken = set(exclude)
    unclaimed = [c for c in candidates if c.get(id_field) and str(c[id_field]) not in taken]
    keyed = [str(c[id_field]) for c in unclaimed if _key_of(c, key_field) == attempt.key]
    if keyed:
        return keyed
    return [
        str(c[id_field])
        for c in unclaimed
        if _key_of(c, key_field) is None
        and all(name in c and same_value(value, c[name]) for name, value in attempt.values.items())
    ]


def near_matches(
    attempt: CreateAttempt,
    candidates: Sequence[Mapping[str, Any]],
    id_field: str,
    *,
    exclude: Iterable[str] = (),
    key_field: str | None = None,
) -> dict[str, list[str]]:
    """The `candidates` that hold at least half of the values the create sent (one at least) but not all:
    per id, the fields that differ. For a create of unknown outcome with no exact match, such a record
    may be its copy edited since (nothing else tells them apart where the CRM keeps no key), so sending
    the create again could make a second copy. Ids in `exclude` and records carrying a key are never it."""
    taken = set(exclude)
    # Agreement is counted on the values sent, not on empty fields: two strangers agree on those.
    filled = [name for name, value in attempt.values.items() if not _is_null(value)]
    near: dict[str, list[str]] = {}
    for c in candidates:
        if not c.get(id_field) or str(c[id_field]) in taken or _key_of(c, key_field) is not None:
            continue
        differ = [name for name, value in attempt.values.items() if name not in c or not same_value(value, c[name])]
        agree = sum(1 for name in filled if name not in differ)
        if differ and agree and 2 * agree >= len(filled):
            near[str(c[id_field])] = differ
    return near


def claimed_twice(matches: Mapping[int, Sequence[str]]) -> set[str]:
    """Ids that match more than one create: none of those creates can claim them."""
    counts = Counter(record_id for ids in matches.values() for record_id in ids)
    return {record_id for record_id, n in counts.items() if n > 1}

"""Protections: records no pass may propose, whatever it says. Applied by the scan to every pass.

Rules, checked in this order (a change is counted once, under the first rule that holds it):
1. objects the provider never lets us touch (`vocabulary.never_touch_objects`) and `[protect] objects`
   (named in any case: an admin's "contact" protects Contact; a protection must not fail on spelling);
2. the user the connection runs as (deactivating it would lock the apply out halfway), and ids listed
   in `[protect] ids`;
3. records created within `[protect] recent_days` of now (the before-image's created field), for every
   object, users included: a brand-new record is too young to judge. 0 turns the rule off.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import groupby
from operator import attrgetter, itemgetter
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from crmsweep.backup.row_block import RowBlock, RowRecord
from crmsweep.model import Change, Vocabulary, canonical_datetime

# A datetime as snapshots hold it: ASCII digits in fixed places, so text order is time order. The same
# pattern for Arrow (RE2: "$" is the end of the text only, as `fullmatch` asks).
_CANONICAL = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", re.ASCII)
_CANONICAL_RE2 = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$"


@dataclass(frozen=True)
class Protections:
    """The three `[protect]` settings (same names as config.ProtectSettings) plus the provider's rules."""

    vocabulary: Vocabulary
    now: datetime
    recent_days: int = 30
    objects: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()
    running_user_id: str | None = None
    _objects: frozenset[str] = field(init=False, repr=False)
    _ids: frozenset[str] = field(init=False, repr=False)
    _keys: frozenset[str] = field(init=False, repr=False)  # every key the ids rule holds: `_ids` and the running user's
    # Computed once, not per change: the running user's id key and the "recent" threshold, both as text.
    _running_key: str | None = field(init=False, repr=False)
    _since: datetime = field(init=False, repr=False)
    _since_text: str | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        named = (*self.vocabulary.never_touch_objects, *self.objects)
        object.__setattr__(self, "_objects", frozenset(name.casefold() for name in named))
        object.__setattr__(self, "_ids", frozenset(self.vocabulary.id_key(i) for i in self.ids))
        running = self.vocabulary.id_key(self.running_user_id) if self.running_user_id else None
        object.__setattr__(self, "_running_key", running)
        object.__setattr__(self, "_keys", self._ids | ({running} if running is not None else set()))
        since = self.now - timedelta(days=self.recent_days) if self.recent_days > 0 else self.now
        object.__setattr__(self, "_since", since)
        # Canonical datetimes (zero-padded, UTC, "Z") order as text in time order, and a created value with
        # milliseconds is later than `since` exactly when it is later than `since` cut to its milliseconds:
        # so the snapshot's own values compare as they stand. (A naive clock keeps the datetime path and its
        # error.)
        text = canonical_datetime(since) if self.recent_days > 0 and since.tzinfo is not None else None
        object.__setattr__(self, "_since_text", text)

    def unmatched_objects(self, present: Sequence[str]) -> list[str]:
        """The `[protect] objects` entries that name none of `present` (in any case): they hold nothing back."""
        here = {name.casefold() for name in present}
        return [name for name in self.objects if name.casefold() not in here]

    def protects_object(self, object_name: str) -> bool:
        """Whether no change to a record of `object_name` may be proposed (rule 1), nor one that takes such
        records with it (a CRM's cascade)."""
        return object_name.casefold() in self._objects

    def protected_among(self, record_ids: Iterable[str]) -> list[str]:
        """The ids of `record_ids` that `[protect] ids` (or the running user) names, in any of the id's forms."""
        if not self._keys:
            return []
        keys, key, rids = self._keys, self.vocabulary.id_key, list(record_ids)
        # Keyed only where a key can match (`_id_candidates`): a cascade asks of a hundred thousand tasks.
        return [rids[at] for at in self._id_candidates(rids) if key(rids[at]) in keys]

    def hold_reason(self, change: Change) -> str | None:
        """Why this change must not be proposed, or None."""
        if change.object.casefold() in self._objects:
            return self._object_reason(change.object)
        rid = change.record_id
        running = self._running_key
        # An id's key is a prefix of it: an id that does not start with the running user's key is not that
        # user's, and is told so without keying it.
        if self._ids or (running is not None and rid.startswith(running)):
            reason = self._id_reason(rid)
            if reason is not None:
                return reason
        if self.recent_days > 0 and self._recent(change.before.get(self.vocabulary.created_field)):
            return self._recent_reason()
        return None

    def apply(self, changes: Sequence[Change]) -> tuple[list[Change], dict[str, int]]:
        """The changes that may be proposed, and how many were held back per reason (counted in the order
        the changes first give each reason): `hold_reason` of each change, decided for all at once."""
        held = self._held(changes)
        if not held:
            return list(changes), {}
        counts: dict[str, int] = {}
        for at in sorted(held):
            counts[held[at]] = counts.get(held[at], 0) + 1
        return [change for at, change in enumerate(changes) if at not in held], counts

    def _held(self, changes: Sequence[Change]) -> dict[int, str]:
        """Position -> reason of each change `hold_reason` holds back, by the same rules in the same order;
        each rule asked of a pass's changes at once (a scan proposes 351k at 1M contacts: one call of each
        rule per change was a second)."""
        held: dict[int, str] = {}
        objects = list(map(attrgetter("object"), changes))
        protected = {name for name in set(objects) if name.casefold() in self._objects}
        if protected:
            held.update((at, self._object_reason(name)) for at, name in enumerate(objects) if name in protected)
        if self._keys:
            for at in self._id_candidates(list(map(attrgetter("record_id"), changes))):
                reason = None if at in held else self._id_reason(changes[at].record_id)
                if reason is not None:
                    held[at] = reason
        if self.recent_days > 0:
            reason = self._recent_reason()
            held.update((at, reason) for at in self._recent_positions(changes, held))
        return held

    def _id_candidates(self, rids: Sequence[str]) -> list[int]:
        """The positions of ids that may be keyed to a protected key (a superset: `_id_reason` decides).
        An id's key is the id or its first `short_id_length` characters, so no other id can be."""
        keys = self._keys
        cut = self.vocabulary.short_id_length
        hits = keys.intersection(rids)
        if cut:
            hits |= keys.intersection(map(itemgetter(slice(0, cut)), rids))
        if not hits:
            return []
        return [at for at, rid in enumerate(rids) if rid in hits or (cut and rid[:cut] in hits)]

    def _recent_positions(self, changes: Sequence[Change], held: Mapping[int, str]) -> list[int]:
        """The positions, not in `held`, of the changes whose before-image was created after `since`.

        Where before-images are rows of a snapshot block, their created column is compared at once, as text
        where it is canonical; any other value goes through `_recent` one by one, and only for a change not
        already held, so a value `_recent` refuses raises where `hold_reason` would."""
        name = self.vocabulary.created_field
        befores = list(map(attrgetter("before"), changes))
        found: list[int] = []
        for start, block, rows in _block_runs(befores):
            if block is None:
                found += [start + at for at, before in enumerate(rows)
                          if start + at not in held and self._recent(before.get(name))]
            elif name in block.names:  # else no before-image of the run has a created value: none is recent
                found += [start + at for at in self._recent_rows(block.column(name).take(pa.array(rows)),
                                                                 {at - start for at in held})]
        return found

    def _recent_rows(self, column: pa.Array, held: Collection[int]) -> list[int]:
        """The positions, not in `held`, of the created values of `column` after `since`, in order."""
        since = self._since_text
        if since is None or not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            return [at for at, value in enumerate(column.to_pylist()) if at not in held and self._recent(value)]
        canonical = pc.fill_null(pc.match_substring_regex(column, _CANONICAL_RE2), False)
        later = pc.fill_null(pc.greater(column, pa.scalar(since, column.type)), False)
        found = set(pc.indices_nonzero(pc.and_(canonical, later)).to_pylist())
        other = pc.indices_nonzero(pc.and_(pc.invert(canonical), pc.is_valid(column)))
        if len(other):
            values = column.take(other).to_pylist()
            found.update(at for at, value in zip(other.to_pylist(), values, strict=True)
                         if at not in held and self._recent(value))
        return sorted(found.difference(held))

    def _object_reason(self, object_name: str) -> str:
        return f"{object_name} is a protected object"

    def _id_reason(self, record_id: str) -> str | None:
        key = self.vocabulary.id_key(record_id)
        if key == self._running_key:
            return "the user crmsweep runs as"
        if key in self._ids:
            return "listed in [protect] ids"
        return None

    def _recent_reason(self) -> str:
        return f"created in the last {self.recent_days} days"

    def _recent(self, value: object) -> bool:
        """A before-image's created value is after `since` (the "recent" rule is on)."""
        since = self._since_text
        if since is not None and type(value) is str and _CANONICAL.fullmatch(value):
            return value > since
        created = _created(value)
        return created is not None and created > self._since


def _block_runs(befores: list[Mapping[str, Any]]) -> Iterator[tuple[int, RowBlock | None, list[Any]]]:
    """(start, block, rows) of each run of consecutive before-images that are rows of one block, by their row
    numbers; (start, None, images) of each run of the others."""
    if set(map(type, befores)) != {RowRecord}:
        kinds: list[RowBlock | None] = [b.block if type(b) is RowRecord else None for b in befores]
    else:
        kinds = list(map(attrgetter("block"), befores))
    start = 0
    for _, run in groupby(kinds):  # blocks compare as themselves (no block equals another)
        stop = start + len(list(run))
        of_run = befores[start:stop]
        owner = kinds[start]
        yield start, owner, list(map(attrgetter("row"), of_run)) if owner is not None else of_run
        start = stop


def _created(value: object) -> datetime | None:
    if not value:
        return None
    text = str(value)
    if len(text) == 24 and text.endswith("Z"):  # already canonical, as snapshots give it: no re-formatting
        return datetime.fromisoformat(text)
    # A date-only value reads as midnight UTC, like the snapshot's DATE columns.
    text = canonical_datetime(text) or ""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)

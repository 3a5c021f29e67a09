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
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from crmsweep.model import Change, Vocabulary, canonical_datetime

# A datetime as snapshots hold it: ASCII digits in fixed places, so text order is time order.
_CANONICAL = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", re.ASCII)


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

    def hold_reason(self, change: Change) -> str | None:
        """Why this change must not be proposed, or None."""
        if change.object.casefold() in self._objects:
            return f"{change.object} is a protected object"
        rid = change.record_id
        running = self._running_key
        # An id's key is a prefix of it: an id that does not start with the running user's key is not that
        # user's, and is told so without keying it (one call per change, 351k of them at 1M contacts).
        if self._ids or (running is not None and rid.startswith(running)):
            key = self.vocabulary.id_key(rid)
            if key == running:
                return "the user crmsweep runs as"
            if key in self._ids:
                return "listed in [protect] ids"
        if self.recent_days > 0:
            value = change.before.get(self.vocabulary.created_field)
            since = self._since_text
            if since is not None and type(value) is str and _CANONICAL.fullmatch(value):
                recent = value > since
            else:
                created = _created(value)
                recent = created is not None and created > self._since
            if recent:
                return f"created in the last {self.recent_days} days"
        return None

    def apply(self, changes: Sequence[Change]) -> tuple[list[Change], dict[str, int]]:
        """The changes that may be proposed, and how many were held back per reason."""
        kept: list[Change] = []
        held: dict[str, int] = {}
        for change in changes:
            reason = self.hold_reason(change)
            if reason is None:
                kept.append(change)
            else:
                held[reason] = held.get(reason, 0) + 1
        return kept, held


def _created(value: object) -> datetime | None:
    if not value:
        return None
    text = str(value)
    if len(text) == 24 and text.endswith("Z"):  # already canonical, as snapshots give it: no re-formatting
        return datetime.fromisoformat(text)
    # A date-only value reads as midnight UTC, like the snapshot's DATE columns.
    text = canonical_datetime(text) or ""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)

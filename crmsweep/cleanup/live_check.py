"""Apply-time re-check of a scan plan: are the candidates still candidates, on live data?

A record's own fingerprint does not move when something related to it does (a new contact role on an
open deal, a deal reopened, a task logged today), so before each batch apply re-evaluates, on the live
records, the rules that made each record a candidate (each pass declares what to re-read and owns the
pure rule, `PassSpec.live_check`) and the protections that hold records back, from the config in force
now. Reads go through the connector's typed `read`/`read_related`; nothing here builds a query.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from crmsweep.cleanup.passes import PASSES, LiveNeeds, LiveRows, RelatedRead, validate_settings
from crmsweep.cleanup.protect import Protections
from crmsweep.connectors.base import Connector
from crmsweep.errors import UnknownObject
from crmsweep.model import Change, Record, association_object

SKIP_PROTECTED = "protected"
SKIP_NO_LONGER_QUALIFIES = "no longer qualifies"


@dataclass(frozen=True)
class ApplyTimeRules:
    """The protections in force when the plan is applied (the `[protect]` settings of the config now).

    `pass_settings` (the config's) are used only for a pass the plan header does not record settings of.
    """

    recent_days: int = 30
    protect_objects: tuple[str, ...] = ()
    protect_ids: tuple[str, ...] = ()
    pass_settings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


class LiveChecker:
    """Re-checks the changes of one plan, batch by batch: every change of a scan plan, and every change of
    a plan from a run that removes a record again (a rollback of a rollback deletes what the scan's pass
    proposed, so it must still qualify and not be protected, exactly as at the first apply)."""

    def __init__(
        self,
        connector: Connector,
        rules: ApplyTimeRules,
        ran_with: Mapping[str, Mapping[str, Any]],
        now: datetime,
        field_names: Callable[[str], set[str]],
    ) -> None:
        self.connector = connector
        self.vocabulary = connector.vocabulary
        self.now = now
        self.field_names = field_names
        self._protections: Protections | None = None
        self._rules = rules
        self._ran_with = ran_with
        self._settings: dict[str, Mapping[str, Any]] = {}
        self._held: dict[str, bool] = {}

    @property
    def protections(self) -> Protections:
        # Made on first use, inside the run: asking the CRM who we are is a call, and a Ctrl-C during it
        # must find the run's own handler (which logs the stop and prints the resume command).
        if self._protections is None:
            rules = self._rules
            self._protections = Protections(
                vocabulary=self.vocabulary,
                now=self.now,
                recent_days=rules.recent_days,
                objects=rules.protect_objects,
                ids=rules.protect_ids,
                running_user_id=self.connector.current_user_id(),
            )
        return self._protections

    def _settings_of(self, pass_name: str) -> Mapping[str, Any]:
        if pass_name not in self._settings:
            recorded = self._ran_with.get(pass_name)
            self._settings[pass_name] = (
                recorded if recorded is not None
                else validate_settings(pass_name, self._rules.pass_settings.get(pass_name, {}))
            )
        return self._settings[pass_name]

    def _needs(self, change: Change) -> LiveNeeds | None:
        spec = PASSES.get(change.pass_name)
        if spec is None or spec.live_check is None:
            return None
        return spec.live_check.needs(self.vocabulary, change.object)

    def own_fields(self, object_name: str, changes: Sequence[Change]) -> list[str]:
        """The candidate fields to read with the drift check (those the object has)."""
        wanted: list[str] = [self.vocabulary.created_field]
        for change in changes:
            needs = self._needs(change)
            if needs is not None:
                wanted.extend(needs.fields)
        names = self.field_names(object_name)
        return [f for f in dict.fromkeys(wanted) if f in names]

    def verdicts(self, changes: Sequence[Change], live: Mapping[str, Record]) -> list[tuple[str, str] | None]:
        """Per change (live record in `live` by id): a skip (reason, detail), or None if it still qualifies."""
        related = self._related(changes)
        out: list[tuple[str, str] | None] = []
        for n, change in enumerate(changes):
            record = live.get(change.record_id, {})
            held = self.protections.hold_reason(replace(change, before={**change.before, **record}))
            if held is not None:
                out.append((SKIP_PROTECTED, f"protected at apply time: {held}"))
                continue
            spec = PASSES.get(change.pass_name)
            if spec is None or spec.live_check is None:
                out.append(None)
                continue
            rows = LiveRows(record=record, related=related[n], vocabulary=self.vocabulary)
            reason = spec.live_check.recheck(change, rows, self._settings_of(change.pass_name), self.now)
            out.append(None if reason is None else (SKIP_NO_LONGER_QUALIFIES, reason))
        return out

    def _related(self, changes: Sequence[Change]) -> list[dict[str, list[Record]]]:
        """Each change's related rows by read name, one read per declared step for the whole batch."""
        per_change: list[dict[str, list[Record]]] = [{} for _ in changes]
        by_pass: dict[str, list[int]] = {}
        for n, change in enumerate(changes):
            by_pass.setdefault(change.pass_name, []).append(n)
        key = self.vocabulary.id_key
        for positions in by_pass.values():
            needs = self._needs(changes[positions[0]])
            if needs is None:
                continue
            for step in needs.related:
                if self._org_has(step.object):
                    self._read_step(step, [(n, changes[n]) for n in positions], per_change, key)
        return per_change

    def _org_has(self, object_name: str) -> bool:
        """Whether the CRM has the object a related read names: one it lacks (an org without cases)
        ties no record to anything, so its read gives no rows rather than stopping the apply."""
        if object_name not in self._held:
            ends = self.connector.capabilities.association_objects
            if any(association_object(a, b) == object_name for a in ends for b in ends):
                self._held[object_name] = True
            else:
                try:
                    self.field_names(object_name)  # from the plan's snapshot where it holds the object
                    self._held[object_name] = True
                except UnknownObject:
                    self._held[object_name] = False
        return self._held[object_name]

    def _read_step(
        self,
        step: RelatedRead,
        group: Sequence[tuple[int, Change]],
        per_change: list[dict[str, list[Record]]],
        key: Callable[[str], str],
    ) -> None:
        # What each candidate's rows of this step must match: its own id, or values from an earlier step.
        # Ids are queried as they stand and matched by their id key (15- and 18-character forms alike).
        asked: dict[int, set[str]] = {}
        for n, change in group:
            if step.via is None:
                asked[n] = {change.record_id}
            else:
                earlier, field_name = step.via
                asked[n] = {str(r[field_name]) for r in per_change[n].get(earlier, []) if r.get(field_name)}
        wanted = {n: {key(v) for v in vs} for n, vs in asked.items()}
        values = sorted({v for vs in asked.values() for v in vs})
        rows = self.connector.read_related(step.object, step.match_field, values, step.fields) if values else []
        for n, _change in group:
            per_change[n][step.name] = [
                r for r in rows if r.get(step.match_field) and key(str(r[step.match_field])) in wanted[n]
            ]

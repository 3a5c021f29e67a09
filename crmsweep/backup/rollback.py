"""Rollback: the plan that undoes an apply run, built from that run's log alone.

Each applied change is inverted with `Change.inverse`, expecting the fingerprint the run read back
after its write (so a record someone edited since is skipped as drift, not overwritten), in reverse
order of application. Inverses keep identity where the CRM can: a delete is undone by a recycle-bin
undelete, a deactivation by a reactivation. A record the CRM cannot give back (archived, or purged
from the recycle bin) is re-created with a new id (see `recreate`): after the other changes, parents
before children. Users are reactivated before the rest and deactivated after it (`users_order`): a CRM
may refuse a record whose owner is inactive. The plan then goes through the same preview and apply as any
other.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from crmsweep import __version__
from crmsweep.backup.field_restore import (
    is_value_restore,
    removed_fields,
    restore_order,
    undo_key,
    value_restores,
)
from crmsweep.backup.recreate import (
    FieldSpecs,
    Link,
    create_values,
    parents_first,
    relinks,
    resolve_placeholders,
)
from crmsweep.backup.recreate_note import recreate_note, recreated_counts, unwritten_fields
from crmsweep.backup.runlog import (
    STATUS_DONE,
    STATUS_STOPPED,
    STATUS_UNFINISHED,
    ChangeOutcome,
    Outcome,
    RunState,
    already_restored,
    id_map_of,
    made_as,
    open_run,
    read_run,
    written_id,
)
from crmsweep.backup.snapshot_layout import load_manifest, sha256_file
from crmsweep.concepts import CustomFields
from crmsweep.errors import BadInput, SafetyRefusal
from crmsweep.model import (
    ASSOCIATION_FROM_FIELD,
    ASSOCIATION_TO_FIELD,
    ASSOCIATION_TYPES_FIELD,
    Capabilities,
    Change,
    FieldSpec,
    NotReversible,
    ObjectEntry,
    Op,
    Plan,
    PlanHeader,
    Record,
    Vocabulary,
    association_object,
    canonical_datetime,
    parse_link_types,
    placeholder_target,
)
from crmsweep.paths import Home


def new_plan_id(now: datetime) -> str:
    return f"plan-{now.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(2)}"


def undo_of(change: Change, outcome: ChangeOutcome, id_map: Mapping[str, Mapping[str, str]] | None = None,
            vocabulary: Vocabulary | None = None) -> Change:
    """The change that undoes `change`, applied with `outcome`: what a rollback plan holds for it.

    It expects the fingerprint the run read back after its write, and a create's new id; a create's
    placeholders are resolved from the run's `id_map`, so its undo holds the values it really wrote.
    """
    new_id = outcome.record_id if change.op is Op.CREATE else None
    if change.op is Op.CREATE and id_map:
        change = replace(change, after=resolve_placeholders(change.after, id_map) or change.after)
    # The undo's reason names the op in the CRM's words: a record the CRM archived is not "undo delete".
    word = vocabulary.op_word(change.op.value, change.object) if vocabulary else None
    return change.inverse(fingerprint=outcome.fingerprint_after, new_id=new_id, word=word)


def applied_undos(
    state: RunState,
    specs: FieldSpecs,
    vocabulary: Vocabulary,
    *,
    recreate: Collection[tuple[str, str]] = (),
    strict: bool = False,
) -> dict[tuple[str, str], Change]:
    """The undo of every reversible change run `state` applied, by (object, record id) it writes,
    last applied first.

    An archive is undone by a re-create; a delete by an undelete, or by a re-create where its
    (object, id key) is in `recreate` (the recycle bin no longer holds it). A re-create writes only
    createable fields (`specs`), with placeholders for parents re-created alongside. A change that
    cannot be undone is left out, or with `strict` raises NotReversible.
    """
    id_map = state.id_map
    undos: dict[tuple[str, str], Change] = {}
    keys: set[tuple[str, str]] = set()
    for index in reversed(state.applied_order):
        change = state.plan.changes[index]
        key = (change.object, vocabulary.id_key(change.record_id))
        if change.op is Op.ARCHIVE or (change.op is Op.DELETE and key in recreate):
            keys.add(key)
    for index in reversed(state.applied_order):
        change = state.plan.changes[index]
        if change.op is Op.ASSOCIATE:
            continue  # undone with the record it linked: the undo of its create deletes that record
        try:
            undo = undo_of(change, state.outcomes[index], id_map, vocabulary)
            if (change.object, vocabulary.id_key(change.record_id)) in keys:
                after = create_values(change.object, change.before, specs, keys, vocabulary)
                undo = replace(undo, op=Op.CREATE, before={}, after=after)
        except NotReversible:
            if strict:
                raise
            continue
        undos[(undo.object, undo.record_id)] = undo
    return undos


def _source_snapshot(home: Home, state: RunState) -> str | None:
    """The snapshot the run's changes came from, through the runs it undid, if any."""
    return source_snapshot(home, state.plan)


def source_snapshot(home: Home, plan: Plan) -> str | None:
    """The snapshot `plan`'s changes came from, through the runs it undoes (their plans only), if any."""
    source = dict(_undone_runs(home, plan)[1])
    return source.get("id") if source.get("kind") == "snapshot" else None


def run_reader(home: Home, settled: RunState | None = None) -> Callable[[str], RunState]:
    """Reads a run from its log, or gives `settled` for its run: a run settled in memory only (a dry run's
    `settle_run`), whose log still says pending where the dry run found what landed."""

    def read(run_id: str) -> RunState:
        return settled if settled is not None and settled.run_id == run_id else read_run(home, run_id)

    return read


def _undone_runs(home: Home, plan: Plan, settled: RunState | None = None
                 ) -> tuple[list[RunState], Mapping[str, str]]:
    """The runs `plan` undoes, the one it names first and back to the one a scan plan made, and the
    source the last of them names (a snapshot, unless the chain is broken or loops); `settled` as in
    `run_reader`."""
    read = run_reader(home, settled)
    seen: set[str] = set()
    runs: list[RunState] = []
    source = dict(plan.header.source)
    while source.get("kind") == "run" and source.get("id") not in seen:
        seen.add(source.get("id", ""))
        runs.append(read(source.get("id", "")))
        source = dict(runs[-1].plan.header.source)
    return runs, source


def judged_images(home: Home, plan: Plan, vocabulary: Vocabulary, settled: RunState | None = None
                  ) -> dict[tuple[str, str], Record]:
    """For a plan that undoes a run: by (object, id key) of the record as it stands now (a re-created
    one under its new id), the before-image of the scan plan's change that first touched it, i.e. the
    record as its pass judged it. Empty for a scan plan, or where a run of the chain cannot be read.

    Every run between wrote that record as an undo of crmsweep's own write, and the CRM stamped it
    then (modified dates; a re-create: every field a create cannot write, created date included), so
    a pass's rule must not read those stamps as the record's own life since the scan. `settled`: the run
    `plan` undoes as a dry run settled it in memory (its creates' new ids are known there, not in its log)."""
    try:
        runs = _undone_runs(home, plan, settled)[0]
    except BadInput:
        return {}
    images: dict[tuple[str, str], Record] = {}
    for state in reversed(runs):
        now: dict[tuple[str, str], Record] = {}
        for index in state.applied_order:
            change = state.plan.changes[index]
            if change.op is Op.ASSOCIATE:
                continue
            image = images.get((change.object, vocabulary.id_key(change.record_id))) or change.before_record()
            made = state.outcomes[index].record_id if change.op is Op.CREATE else None
            record_id = made or change.record_id
            now[(change.object, vocabulary.id_key(record_id))] = image
        images = now
    return images


def snapshot_field_specs(home: Home, state: RunState) -> dict[str, tuple[FieldSpec, ...]]:
    """The field specs of the snapshot the run's changes came from: what a re-create may write (the
    run log's before-images are whole rows). Empty if that snapshot is gone."""
    return plan_field_specs(home, state.plan)


def plan_field_specs(home: Home, plan: Plan) -> dict[str, tuple[FieldSpec, ...]]:
    """The field specs (the describes, as backed up) of the snapshot `plan` came from; empty if gone."""
    snapshot_id = source_snapshot(home, plan)
    try:
        _folder, manifest = load_manifest(home.snapshots_dir, snapshot_id or "")
    except BadInput:
        return {}
    return {name: entry.fields for name, entry in manifest.objects.items()}


def snapshot_links(home: Home, state: RunState, objects: Collection[str]) -> dict[tuple[str, str], list[Link]]:
    """The links the run's snapshot holds from or to `objects` (providers with associations; none
    elsewhere), each with the types it had: what re-created records are re-linked with. A snapshot
    taken before links kept their types gives none: those are re-linked with the CRM's default."""
    snapshot_id = _source_snapshot(home, state)
    if snapshot_id is None or not objects:
        return {}
    # Imported here: the reader pulls in pandas/pyarrow, which only a re-create with links needs.
    from crmsweep.backup.snapshot import open_snapshot

    try:
        reader = open_snapshot(home, snapshot_id)
    except BadInput:
        return {}
    names = list(reader.manifest.objects)
    links: dict[tuple[str, str], list[Link]] = {}
    for from_object in names:
        for to_object in names:
            table = association_object(from_object, to_object)
            if (from_object in objects or to_object in objects) and reader.has(table):
                _check_links_file(reader.path, reader.manifest.objects[table], snapshot_id)
                links[(from_object, to_object)] = [
                    Link(str(row[ASSOCIATION_FROM_FIELD]), str(row[ASSOCIATION_TO_FIELD]),
                         parse_link_types(row.get(ASSOCIATION_TYPES_FIELD)))
                    for row in reader.records(table)
                ]
    return links


def _check_links_file(folder: Path, entry: ObjectEntry, snapshot_id: str) -> None:
    """Refuse links (their ends, their types) a file edited since the backup would give: a re-link writes
    them as they are, so they are held to the manifest's hash as a plan's before-images are."""
    # Links are read whole by every backup, incremental ones too: none is layered on a base.
    if entry.layer is not None or sha256_file(folder / entry.file) == entry.sha256:
        return
    raise SafetyRefusal(
        f"the links {entry.name} of snapshot {snapshot_id} have changed since the backup (their sha256 differs "
        f"from the manifest): check it with `crmsweep snapshots verify {snapshot_id}`; its re-created records "
        "cannot be re-linked from it"
    )


def put_back_by_rollbacks(home: Home, state: RunState, vocabulary: Vocabulary, *, besides: Plan | None = None
                          ) -> dict[tuple[str, str], str]:
    """What the rollbacks of run `state` (all but runs of the plan `besides`) put back: by the `undo_key`
    of each change one applied, or left because the record was live again under its own id, the id key in
    place of the id, the rollback run that did.

    A later rollback of the run undoes only the rest. Each of these was an undo once already: doing it
    again would undo what happened since, and not a write of the run: a record its owner deleted again, a
    value they changed or cleared, a second copy of a re-created record (a create has no drift check).

    What a rollback of such a rollback undid again (its copies archived again, say) is not put back."""
    return _put_back(home, state, state.rollbacks, vocabulary.id_key, besides, frozenset(), vocabulary)


def _put_back(home: Home, state: RunState, rollback_ids: Sequence[str], id_key: Callable[[str], str],
              besides: Plan | None, seen: frozenset[str], vocabulary: Vocabulary | None = None
              ) -> dict[tuple[str, str], str]:
    done: dict[tuple[str, str], str] = {}
    seen = seen | {state.run_id}
    for rollback_id in dict.fromkeys(rollback_ids):
        if rollback_id in seen:
            continue  # a log naming its own undoing in a loop: not followed round again
        rollback = read_run(home, rollback_id)
        if rollback.rollback_of != state.run_id or (besides is not None and rollback.plan.digest == besides.digest):
            continue
        # Keyed as the rollbacks of this rollback know its records: a re-created one by the id it was given.
        undone = (_put_back(home, rollback, rollback.rollbacks, id_key, None, seen, vocabulary)
                  if rollback.rollbacks else {})
        again = _UndoneAgain(rollback, undone, id_key, vocabulary) if undone else None
        for out in rollback.outcomes:
            if out.outcome is Outcome.APPLIED or already_restored(out):
                change = rollback.plan.changes[out.index]
                if again is None or not again(change, out):
                    done.setdefault((undo_key(change)[0], id_key(change.record_id)), rollback_id)
    return done


class _UndoneAgain:
    """Whether a change a rollback applied was undone again by the rollbacks of that rollback (`undone`: what
    they put back, keyed as they know the records: by the ids this rollback gave them). Its rollbacks write
    plain undos (a rollback removes no field, so none of theirs is a value restore), and they undo no link: a
    link goes with a record at either end, and a value restore with its record or its field's definition."""

    def __init__(self, rollback: RunState, undone: Mapping[tuple[str, str], str], id_key: Callable[[str], str],
                 vocabulary: Vocabulary | None) -> None:
        self._undone, self._key = undone, id_key
        self._made = id_map_of(rollback.plan, rollback.outcomes)
        concept = vocabulary.concept(CustomFields) if vocabulary is not None else None
        # (record object, field) of each definition this rollback re-created that its rollbacks removed again.
        self._fields: set[tuple[str, str]] = set()
        for out in rollback.outcomes:
            change = rollback.plan.changes[out.index]
            if concept is None or change.object != concept.definitions or change.op is not Op.CREATE:
                continue
            if self._gone(change.object, out.record_id or change.record_id):
                target = concept.field_of(change.before) or concept.field_of(change.after)
                if target is not None:
                    self._fields.add(target)

    def _gone(self, obj: str, record_id: str) -> bool:
        return (obj, self._key(record_id)) in self._undone

    def _end(self, obj: object, value: object) -> str | None:
        target = placeholder_target(value)
        if target is not None:
            return self._made.get(target[0], {}).get(target[1])
        return value if isinstance(value, str) and isinstance(obj, str) else None

    def __call__(self, change: Change, out: ChangeOutcome) -> bool:
        if change.op is Op.ASSOCIATE:
            ends = [(change.after.get(f"{side}_object"), change.after.get(f"{side}_id")) for side in ("from", "to")]
            return any(isinstance(obj, str) and (end := self._end(obj, value)) is not None and self._gone(obj, end)
                       for obj, value in ends)
        if self._gone(change.object, written_id(change, out)):
            return True
        return is_value_restore(change) and any((change.object, name) in self._fields for name in change.after)


def kept_recreations(home: Home, plan: Plan, vocabulary: Vocabulary) -> dict[str, dict[str, str]]:
    """For a rollback plan: object -> old id -> id given, of the records the other rollbacks of its run
    re-created (or found restored by hand) that are still back. The plan's links may point at them: this
    rollback re-makes a link an earlier one could not, onto the record that one re-created."""
    run_id = plan.header.rollback_of
    if not run_id:
        return {}
    try:
        state = read_run(home, run_id)
        put_back = put_back_by_rollbacks(home, state, vocabulary, besides=plan)
        rollbacks = [read_run(home, r) for r in dict.fromkeys(state.rollbacks) if r in set(put_back.values())]
    except BadInput:
        return {}
    found: dict[str, dict[str, str]] = {}
    for rollback in rollbacks:
        for out in rollback.outcomes:
            change = rollback.plan.changes[out.index]
            if change.op is not Op.CREATE or put_back.get((change.object, vocabulary.id_key(change.record_id))) \
                    != rollback.run_id:
                continue
            given = made_as(change, out)
            now = _now_under(home, rollback, change.object, given, vocabulary.id_key, frozenset()) if given else None
            if now is not None:
                found.setdefault(change.object, {})[change.record_id] = now
    return found


def _now_under(home: Home, rollback: RunState, obj: str, record_id: str, id_key: Callable[[str], str],
               seen: frozenset[str]) -> str | None:
    """The id record `record_id`, which `rollback` re-created, stands under now: removed by a rollback of that
    rollback and re-created by a rollback of that one, it is the last copy; None if no copy stands."""
    seen = seen | {rollback.run_id}
    for undoing in (read_run(home, r) for r in dict.fromkeys(rollback.rollbacks) if r not in seen):
        if undoing.rollback_of != rollback.run_id or not any(
                undoing.plan.changes[i].object == obj and id_key(undoing.plan.changes[i].record_id) == id_key(record_id)
                for i in undoing.applied_order):
            continue
        # Removed again: standing only if a rollback of that removal re-created it (under another id).
        for redoing in (read_run(home, r) for r in dict.fromkeys(undoing.rollbacks) if r not in seen):
            if redoing.rollback_of != undoing.run_id:
                continue
            for out in redoing.outcomes:
                change = redoing.plan.changes[out.index]
                if change.op is Op.CREATE and change.object == obj and id_key(change.record_id) == id_key(record_id):
                    again = made_as(change, out)
                    if again:
                        return _now_under(home, redoing, obj, again, id_key, seen | {undoing.run_id})
        return None
    return record_id


def left_to_undo(undos: Mapping[tuple[str, str], Change], put_back: Mapping[tuple[str, str], str],
                 vocabulary: Vocabulary) -> dict[tuple[str, str], Change]:
    """The undos of `undos` that none of the rollbacks `put_back` (`put_back_by_rollbacks`) did."""
    return {k: u for k, u in undos.items() if (undo_key(u)[0], vocabulary.id_key(u.record_id)) not in put_back}


def snapshot_value_restores(
    home: Home,
    state: RunState,
    removals: Mapping[str, Sequence[tuple[str, Change]]],
    undos: Mapping[tuple[str, str], Change],
    vocabulary: Vocabulary,
) -> dict[tuple[str, str], Change]:
    """The updates that write the values of the fields run `state` removed back, from the snapshot its
    plan came from (see `field_restore`); none if that snapshot is gone (the definitions still come back)."""
    snapshot_id = _source_snapshot(home, state)
    if snapshot_id is None:
        return {}
    from crmsweep.backup.snapshot import open_snapshot

    try:
        reader = open_snapshot(home, snapshot_id)
    except BadInput:
        return {}
    return value_restores(removals, reader, undos, vocabulary)


def users_order(changes: Sequence[Change], vocabulary: Vocabulary) -> list[Change]:
    """`changes` with the reactivations of users first and their deactivations last, order otherwise kept.

    A CRM may refuse a write naming an inactive user as a record's owner (an INACTIVE_OWNER_OR_USER error):
    the owner writes that give records back to users the run deactivated need those users active first,
    and the reverse apply order has the reactivations last (a scan plan deactivates before the later pass
    hands the tasks over). A rollback of such a rollback deactivates them again: last, after the writes that
    hand their records over again (its reverse order already has them so), so that no write of the plan ever
    names a user it has deactivated. Neither needs another undo before it: each writes the active flag only."""
    users = vocabulary.user_object

    def rank(change: Change) -> int:
        if change.object != users:
            return 1
        return {Op.REACTIVATE: 0, Op.DEACTIVATE: 2}.get(change.op, 1)

    return sorted(changes, key=rank)


def owner_writes(changes: Sequence[Change], vocabulary: Vocabulary) -> dict[str, list[int]]:
    """By the owner id written, the indexes of `changes` that give a record to an owner (`owner_field` in a
    write's values), the owners the changes themselves reactivate left out (`users_order` has them first)."""
    users, owner = vocabulary.user_object, vocabulary.owner_field
    back = {vocabulary.id_key(c.record_id) for c in changes if c.object == users and c.op is Op.REACTIVATE}
    found: dict[str, list[int]] = {}
    for index, change in enumerate(changes):
        value = change.after.get(owner) if change.op in (Op.UPDATE, Op.CREATE) else None
        if isinstance(value, str) and value and vocabulary.id_key(value) not in back:
            found.setdefault(value, []).append(index)
    return found


def inactive_owner_notes(changes: Sequence[Change], inactive: Mapping[str, Sequence[int]],
                         vocabulary: Vocabulary, *, done: bool = False) -> list[str]:
    """A line for each owner of `inactive` (owner id -> indexes into `changes` giving records to that owner,
    who is inactive in a CRM that refuses an inactive owner): those writes will fail (`done`: failed), and
    what the admin can do."""
    lines = []
    verb = "failed" if done else "will fail"
    for owner, indexes in inactive.items():
        objects = dict.fromkeys(changes[i].object for i in indexes)
        what = " and ".join(vocabulary.label(o, many=True) for o in objects)
        ids = ", ".join(f"{changes[i].object} {changes[i].record_id}" for i in indexes)
        lines.append(f"{len(indexes):,} changes {verb}: {inactive_owner_reason(owner, what)} ({ids})")
    return lines


def inactive_owner_reason(owner: str, what: str) -> str:
    """Why a write giving records (`what`: "tasks") to `owner`, inactive in the CRM, fails, and what to do."""
    return (f"owner {owner} is inactive in the CRM: reactivate that user first, or leave these {what} with "
            "their current owner")


def recreates_any(state: RunState, recreate: Collection[tuple[str, str]]) -> bool:
    """Whether undoing run `state` re-creates a record (an archive, or a delete in `recreate`)."""
    return bool(recreate) or any(state.plan.changes[i].op is Op.ARCHIVE for i in state.applied_order)


def rollback_changes(
    home: Home, state: RunState, vocabulary: Vocabulary, *, recreate: Collection[tuple[str, str]], strict: bool
) -> dict[tuple[str, str], Change]:
    """The undos of run `state` (see `applied_undos`), then the links of what they re-create, by
    (object, record id): what the rollback planner writes and the plan checks expect, alike."""
    specs = snapshot_field_specs(home, state) if recreates_any(state, recreate) else {}
    undos = applied_undos(state, specs, vocabulary, recreate=recreate, strict=strict)
    removals = removed_fields((state.plan.changes[i] for i in state.applied_order), vocabulary)
    if removals:
        undos.update(snapshot_value_restores(home, state, removals, undos, vocabulary))
    creates = [c for c in undos.values() if c.op is Op.CREATE]
    links = snapshot_links(home, state, {c.object for c in creates}) if creates else {}
    return {**undos, **{(c.object, c.record_id): c for c in relinks(creates, links, vocabulary)}}


def refuse_rollback_of(home: Home, state: RunState, *, applying: Plan | None = None, force: bool = False) -> None:
    """Refuse to undo run `state` when a rollback cannot be right: it was rolled back already, or some of
    its writes have an unknown outcome. Run when a rollback plan is built, accepted and applied.

    `applying` is the rollback plan about to be applied: if a run of that very plan is what rolled the
    run back, it is not refused here (apply reports it as already applied).
    """
    run_id = state.run_id
    if state.rolled_back_by and not force:
        by = read_run(home, state.rolled_back_by)
        if applying is None or by.plan.digest != applying.digest:
            raise SafetyRefusal(
                f"run {run_id} was already rolled back by run {state.rolled_back_by}: nothing is left to undo "
                "(see `crmsweep runs list`)"
            )
    if applying is not None and state.rollbacks:
        started = unfinished_rollback(home, run_id)
        if started is not None and started.plan.digest != applying.digest:
            # A plan written before (or beside) it re-creates again what that rollback re-created already.
            raise SafetyRefusal(
                f"rollback run {started.run_id} of run {run_id} stopped before it finished: this plan would "
                f"re-create again what it re-created already. Finish that one with `crmsweep rollback {run_id}`"
            )
    pending = state.count(Outcome.PENDING)
    if pending:
        # Their writes may have landed: a rollback without them would leave them in place for good,
        # and mark the run rolled back so that nothing would ever settle them.
        raise SafetyRefusal(
            f"run {run_id} was interrupted with {pending} write(s) of unknown outcome: before rolling it back, "
            f"settle them from the live records (`crmsweep rollback {run_id}` does, writing nothing new)"
        )


def build_rollback_plan(
    home: Home,
    run_id: str,
    *,
    now: datetime,
    vocabulary: Vocabulary,
    force: bool = False,
    gone: Collection[tuple[str, str]] = (),
    capabilities: Capabilities | None = None,
) -> Plan:
    """The inverse of every change run `run_id` applied (result ok), last applied first, re-creates
    after the rest, parents before children; users reactivated first and deactivated last (`users_order`).

    `gone` holds (object, id) of deleted records that the recycle bin no longer holds (the caller
    read the CRM): those are re-created with new ids rather than undeleted. `capabilities` (the
    provider's) say in the plan's notes how to keep what a re-create loses.
    """
    return rollback_plan_of(home, read_run(home, run_id), now=now, vocabulary=vocabulary, force=force, gone=gone,
                            capabilities=capabilities)


def rollback_plan_of(
    home: Home,
    state: RunState,
    *,
    now: datetime,
    vocabulary: Vocabulary,
    force: bool = False,
    gone: Collection[tuple[str, str]] = (),
    capabilities: Capabilities | None = None,
) -> Plan:
    """`build_rollback_plan` of a run as read (or as settled in memory, for a dry run)."""
    run_id = state.run_id
    refuse_rollback_of(home, state, force=force)
    if not state.applied_order:
        raise BadInput(f"run {run_id} applied no changes: nothing to roll back")
    original = state.plan
    recreate = {(obj, vocabulary.id_key(i)) for obj, i in gone}
    if recreates_any(state, recreate) and not snapshot_field_specs(home, state):
        raise SafetyRefusal(
            f"run {run_id} cannot be rolled back: records must be re-created, and the snapshot its plan came "
            "from, which says what a create may write, is gone (restore that snapshot folder)"
        )
    try:
        every = rollback_changes(home, state, vocabulary, recreate=recreate, strict=True)
        # A second rollback covers what the earlier ones could not (a failure, a skip), not what they did.
        put_back = put_back_by_rollbacks(home, state, vocabulary)
        undos = left_to_undo(every, put_back, vocabulary)
        links = [c for c in undos.values() if c.op is Op.ASSOCIATE]
        ordered = parents_first([c for c in undos.values() if c.op is not Op.ASSOCIATE], vocabulary)
        changes = users_order(restore_order(ordered, vocabulary) + links, vocabulary)
    except NotReversible as exc:
        raise SafetyRefusal(f"run {run_id} cannot be rolled back: {exc}") from None
    own_id = capabilities.recreated_under_own_id if capabilities is not None else ()
    created = sum(1 for c in changes if c.op is Op.CREATE and c.object not in own_id)
    # Name only what this rollback does to keep ids, in the CRM's words (a CRM may un-archive and have no
    # recycle-bin undelete): a made-up "recycle-bin undelete" misleads the admin about what comes back how.
    # A create the CRM answers under the record's own id (a definition restored by name) is a restore.
    kept = Counter("restore" if c.op is Op.CREATE else vocabulary.op_word(c.op.value, c.object) for c in changes
                   if c.op is not Op.ASSOCIATE and (c.op is not Op.CREATE or c.object in own_id))
    parts = [f"ids are kept ({', '.join(f'{n:,} {word}' for word, n in kept.items())})"] if kept else []
    if created:
        parts.append(f"{created:,} re-created with new ids (parents first, links after)")
    notes = [f"rollback of run {run_id}: {len(changes):,} changes; " + ("; ".join(parts) or "nothing to write")]
    if len(undos) < len(every):
        by = ", ".join(f"run {r}" for r in dict.fromkeys(put_back.values()))
        notes.append(f"{len(every) - len(undos):,} more undos are left out: earlier rollbacks put them back ({by})")
    lost = recreate_note_of(state, changes, vocabulary, snapshot_field_specs(home, state) if created else {},
                            capabilities)
    if lost:
        notes.append(lost)
    header = PlanHeader(
        plan_id=new_plan_id(now),
        created=canonical_datetime(now) or "",
        tool_version=__version__,
        provider=original.header.provider,
        org_id=original.header.org_id,
        connection=original.header.connection,
        source={"kind": "run", "id": run_id},
        config_digest=original.header.config_digest,
        passes=original.header.passes,
        notes=tuple(notes),
        rollback_of=run_id,
    )
    return Plan.build(header, changes)


def recreate_note_of(
    state: RunState,
    changes: Sequence[Change],
    vocabulary: Vocabulary,
    specs: FieldSpecs,
    capabilities: Capabilities | None,
    *,
    done: bool = False,
    run_id: str | None = None,
    new_ids: Mapping[str, Mapping[str, str]] | None = None,
) -> str | None:
    """The line saying what re-creating the records `changes` create (undoing run `state`, whose snapshot's
    field specs are `specs`) loses, and what to do instead by the provider's `capabilities` (unknown: not
    said); None if they re-create nothing under a new id. `done`: they were applied, by rollback run `run_id`,
    `new_ids` (its id map: object -> old id -> new id) naming the records made."""
    # Before the writes, what comes back under its own id is known from the capabilities; after, from
    # the id map (the caller passes only the creates it gave a new id).
    own_id = capabilities.recreated_under_own_id if capabilities is not None and not done else ()
    creates = [c for c in changes if c.op is Op.CREATE and c.object not in own_id]
    if not creates:
        return None
    befores = {(c.object, vocabulary.id_key(c.record_id)): c.before
               for c in (state.plan.changes[i] for i in state.applied_order) if c.op in (Op.ARCHIVE, Op.DELETE)}
    rows = [(c.object, befores.get((c.object, vocabulary.id_key(c.record_id)), {}), c.after) for c in creates]
    fields = unwritten_fields(rows, specs, vocabulary)
    # Activity history is said lost only where the records held an activity date that is not the modified
    # stamp every record has (an audit field): a field definition has none.
    history = any(n in fields for n in vocabulary.last_activity_fields if n not in vocabulary.audit_fields)
    made = new_ids or {}
    records = [(c.object, c.record_id, made[c.object][c.record_id])
               for c in creates if c.record_id in made.get(c.object, {})]
    return recreate_note(recreated_counts(creates), fields, capabilities, done=done, run_id=run_id, history=history,
                         records=records)


def mark_rolled_back(home: Home, run_id: str, by_run: str) -> None:
    """Record on run `run_id` that rollback run `by_run` undid it (only once that run is done, without failures)."""
    rollback = read_run(home, by_run)
    if rollback.rollback_of != run_id or dict(rollback.plan.header.source) != {"kind": "run", "id": run_id}:
        raise BadInput(f"run {by_run} is not a rollback of run {run_id}")
    if rollback.status != STATUS_DONE:
        raise SafetyRefusal(
            f"rollback run {by_run} is {rollback.status}, not done: finish it before marking run {run_id} rolled back"
        )
    missing = not_undone(home, run_id, by_run)
    if missing:
        raise SafetyRefusal(
            f"the rollbacks of run {run_id} did not undo {len(missing)} change(s) it applied "
            f"(e.g. {missing[0]}): roll the run back again to cover them"
        )
    open_run(home, run_id).append({"t": "rolled_back", "by": by_run})


def not_undone(home: Home, run_id: str, by_run: str) -> list[str]:
    """The records run `run_id` changed that neither rollback run `by_run` nor any other rollback of
    it put back ("Object id" each).

    A rollback plan is built from the run as it stood then: if the run was resumed afterwards, or the
    plan was trimmed, or records were skipped as drift, it covers less than the run did, and the run
    must not be marked undone. Several rollbacks may share the work (a second one skips what the first
    put back), so what they undid is counted together, whatever each ended as: a rollback that ended with
    failures still put back what it logged as applied, and a record it found restored by hand is back.
    The rollbacks are those the run's log names.
    """
    original = read_run(home, run_id)
    # What the rollbacks applied, or found live again under its own id (restored by hand), less what a rollback
    # of one of them undid again. (A value restore is known apart: it writes into a re-created field, and puts
    # back no change the run made to the record.)
    undone = set(_put_back(home, original, [*original.rollbacks, by_run], str, None, frozenset()))
    missing = []
    for i in original.applied_order:
        change = original.plan.changes[i]
        if change.op is Op.ASSOCIATE:
            continue  # undone with the record it linked
        record_id = written_id(change, original.outcomes[i])
        if (change.object, record_id) not in undone:
            missing.append(f"{change.object} {record_id}")
    return missing


def unfinished_rollback(home: Home, run_id: str) -> RunState | None:
    """The latest rollback of run `run_id` if it was interrupted or stopped (to resume, not start anew), and
    not undone itself since, in whole or in part: resuming it would write onto what that undid (links onto
    copies archived again) and count as back what is not. A new rollback then undoes what is left."""
    original = read_run(home, run_id)
    if not original.rollbacks:
        return None
    latest = read_run(home, original.rollbacks[-1])
    return latest if latest.status in (STATUS_STOPPED, STATUS_UNFINISHED) and not latest.rollbacks else None

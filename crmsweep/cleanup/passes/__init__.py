"""The registry of cleanup passes, and the types a pass is written against.

A pass is a pure function `PassContext -> PassOutput`: it reads the snapshot view, never the CRM.
Each pass lives in its own module here, which defines `SPEC` and is found by itself (every module of
this package whose name does not start with "_"); the first line of the module's docstring is the
summary admins see. A pass declares what it reads (backup takes at least those objects), the concepts
it needs (crmsweep/concepts.py), its settings with defaults and bounds, and the changes it proposes.
Passes run in `order` over the snapshot as the earlier passes' changes would leave it
(crmsweep/cleanup/effects.py).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from crmsweep.backup.row_block import block_rows, field_values
from crmsweep.bounds import Bound
from crmsweep.cleanup.labels import labels_of, record_label
from crmsweep.cleanup.protect import Protections
from crmsweep.cleanup.view import SnapshotView
from crmsweep.collector import collector_paused
from crmsweep.errors import BadInput
from crmsweep.model import Change, Op, Record, ReviewItem, Severity, Vocabulary
from crmsweep.suggest import did_you_mean


@dataclass(frozen=True)
class PassContext:
    view: SnapshotView  # the snapshot as the earlier passes' changes leave it
    vocabulary: Vocabulary
    now: datetime  # UTC, aware
    settings: Mapping[str, Any]  # validated, defaults merged
    # The snapshot as backed up, before any pass: for a guard that must count what an earlier pass removes
    # (an email archived in the same plan still uses its lists: restoring it must find them). None: `view`.
    backed_up: SnapshotView | None = None
    # The changes the earlier passes of this scan propose (kept by protections), in plan order.
    earlier: tuple[Change, ...] = ()
    # The scan's protections, for a pass whose change takes other records with it (a CRM's cascade): the scan
    # holds back a change to a protected record, the pass one that would delete protected records along.
    protections: Protections | None = None

    @property
    def snapshot(self) -> SnapshotView:
        return self.backed_up if self.backed_up is not None else self.view


def propose(
    ctx: PassContext,
    pass_name: str,
    op: Op,
    object_name: str,
    before: Mapping[str, Any],
    *,
    after: Record | None = None,
    reason: str,
    severity: Severity,
) -> Change:
    """A Change from a snapshot record, as every pass makes it: the full before-image, its fingerprint
    (drift is checked against it at apply time) and the record's label for the preview."""
    vocab = ctx.vocabulary
    return Change(
        op=op,
        object=object_name,
        record_id=str(before[vocab.id_field]),
        before=before,
        after=after or {},
        reason=reason,
        pass_name=pass_name,
        severity=severity,
        fingerprint=before.get(vocab.fingerprint_field),
        label=record_label(vocab, object_name, before),
    )


def propose_all(
    ctx: PassContext,
    pass_name: str,
    op: Op,
    object_name: str,
    befores: Sequence[Mapping[str, Any]],
    *,
    reasons: Sequence[str],
    severity: Severity,
    afters: Sequence[Record | None] | None = None,
) -> list[Change]:
    """`propose` of each record of `befores` with its reason (and its `after` of `afters`; none without),
    made together: the ids, fingerprints and labels of records read together from a snapshot are read a
    column at a time, and the changes made a field at a time (`Change.many`): a scan proposes hundreds of
    thousands, and one at a time they were a third of a pass's time."""
    vocab = ctx.vocabulary
    rows = block_rows(befores)
    ids = field_values(befores, vocab.id_field, required=True, rows=rows)
    fingerprints = field_values(befores, vocab.fingerprint_field, rows=rows)
    labels = labels_of(vocab, object_name, befores, rows)
    written = [{} for _ in befores] if afters is None else [after or {} for after in afters]
    with collector_paused():
        return Change.many(len(befores),
                           same={"op": op, "object": object_name, "pass_name": pass_name, "severity": severity},
                           each={"record_id": list(map(str, ids)), "before": befores, "after": written,
                                 "reason": reasons, "fingerprint": fingerprints, "label": labels})


@dataclass
class PassOutput:
    changes: list[Change]
    held_back: dict[str, int] = field(default_factory=dict)  # reason -> count
    skipped: str | None = None  # why the pass could not run at all
    # Things an admin should know that are neither a change nor a hold-back ("2 Contact rows have no dates").
    notes: list[str] = field(default_factory=list)
    # Findings for a person to judge, never applied (likely duplicates).
    review: list[ReviewItem] = field(default_factory=list)


@dataclass(frozen=True)
class ObjectRead:
    """One object a pass reads from the snapshot: backup takes it; scan skips the pass when it is absent
    (unless `optional`). `fields` are the columns the pass reads (empty: it does not say)."""

    object: str
    fields: tuple[str, ...] = ()
    optional: bool = False


def _reads_nothing(vocabulary: Vocabulary) -> Sequence[ObjectRead]:
    return ()


class Computed(Enum):
    """In a `Proposal.writes`: the pass computes this field's value (the preview shows each one)."""

    VALUE = "a value the pass computes"


ANY_VALUE = Computed.VALUE


def _writes_nothing(vocabulary: Vocabulary) -> Mapping[str, Any]:
    return {}


@dataclass(frozen=True)
class Proposal:
    """One kind of change a pass can propose, as data: a plan claiming the pass may hold no other.

    `objects` are the objects it may propose this op for, in a provider's vocabulary; `writes` maps each
    field it may write to the value it writes (or ANY_VALUE): a change's `after` holds some of these
    fields, with those values, and nothing else (a delete writes nothing).
    """

    op: Op
    objects: Callable[[Vocabulary], Collection[str]]
    writes: Callable[[Vocabulary], Mapping[str, Any]] = _writes_nothing
    # Where a value written comes from a setting (the owner to hand over to, the stage to move to): the
    # writes once the settings the pass ran with are known (the plan header's). Provenance checks a
    # change against these, so a plan cannot write a value the settings did not choose.
    settled: Callable[[Vocabulary, Mapping[str, Any]], Mapping[str, Any]] | None = None

    def writes_with(self, vocabulary: Vocabulary, settings: Mapping[str, Any]) -> Mapping[str, Any]:
        """What this proposal writes under `settings` (validated, defaults merged)."""
        return self.settled(vocabulary, settings) if self.settled is not None else self.writes(vocabulary)


@dataclass(frozen=True)
class RelatedRead:
    """Live rows of `object` whose `match_field` holds a candidate's id, or with `via` = (an earlier
    read's name, a field of its rows), one of the values that field holds in the candidate's rows; with
    `values_of(change)`, one of the values it gives (ids the change itself names: the owner a hand-over
    takes a record from, and the one it gives it to)."""

    name: str
    object: str
    match_field: str
    fields: tuple[str, ...]
    via: tuple[str, str] | None = None
    values_of: Callable[[Change], Sequence[str]] | None = None


@dataclass(frozen=True)
class EveryRowRead:
    """Every live row of `object` (with `include_deleted`, the removed ones too, flagged), with `fields` and
    the id, read once per batch whatever its candidates: for a rule no read by the candidates' ids can
    serve, where a row names the records it uses inside one field (a list of ids as text), which no
    CRM's query matches by one id. Meant for objects of hundreds of rows, not millions."""

    name: str
    object: str
    fields: tuple[str, ...]
    include_deleted: bool = False


@dataclass(frozen=True)
class LiveNeeds:
    """What apply re-reads live for one candidate object: its own `fields`, the `related` rows and `every`
    row of the objects named there, and with `values_of(change)` = (record object, field), the live values
    of every record the plan's snapshot holds a value of that field on (a removal of the field must not
    lose values the snapshot lacks)."""

    fields: tuple[str, ...] = ()
    related: tuple[RelatedRead, ...] = ()
    values_of: Callable[[Change], tuple[str, str] | None] | None = None
    every: tuple[EveryRowRead, ...] = ()
    # The CRM's own id prefix of each object (`Connector.key_prefixes`), read once per apply: a rule that
    # must tell which object a linked record belongs to, an org's own objects included, from its id alone.
    key_prefixes: bool = False


@dataclass(frozen=True)
class ValueCheck:
    """The snapshot's values of `object`.`field_name` against the live records: how many records held one at the
    backup (`holders`), and those whose live value is not that one, by id, with how ("changed", "cleared").
    `unavailable` says why nothing could be compared (the snapshot is gone)."""

    object: str
    field_name: str
    holders: int = 0
    changed: Mapping[str, str] = field(default_factory=dict)
    unavailable: str | None = None
    # Checking a rollback's undo: of the records that rollback wrote a value into, how many hold it still
    # (not deleted); more values than that are someone else's. None elsewhere.
    written: int | None = None


@dataclass(frozen=True)
class LiveRows:
    """The live state of one candidate: its record (the needed fields), its related rows by read name
    (those of `LiveNeeds.every` too), and the check of its values where the pass asked for one
    (`LiveNeeds.values_of`)."""

    record: Mapping[str, Any]
    related: Mapping[str, Sequence[Record]]
    vocabulary: Vocabulary
    values: ValueCheck | None = None
    # By read name, why a read of `LiveNeeds.every` gave no rows (the CRM refused it): its rows in `related`
    # are then missing, not none, and a rule that needs them must keep the record.
    unread: Mapping[str, str] = field(default_factory=dict)
    # Object -> id prefix as the CRM lists them (`LiveNeeds.key_prefixes`); None when not asked for or the
    # CRM refused the list, `prefixes_unread` then saying why (a rule must then keep what it cannot tell).
    key_prefixes: Mapping[str, str] | None = None
    prefixes_unread: str | None = None


def live_flag(value: Any) -> bool | None:
    """A checkbox value as a live read gives it: JSON true/false, or the text "true"/"false" that CRMs
    sending every property as a string give; None for anything else (unknown, not false)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


@dataclass(frozen=True)
class LiveCheck:
    """How a pass's candidates are checked again at apply time, on live data (so passes own their rules).

    `needs(vocabulary, object)` declares the reads; `recheck(change, live, settings, now)` is pure and says
    why the change no longer qualifies, or None. `settings` are those the pass ran with (the plan header).
    `holds(change, live, protections)`, also pure, says why the protections in force now hold the change
    back for what it does beyond its own record (what the CRM deletes along with it), or None: apply checks
    only the record itself against them, and the pass alone knows what its change takes with it.
    """

    needs: Callable[[Vocabulary, str], LiveNeeds]
    recheck: Callable[[Change, LiveRows, Mapping[str, Any], datetime], str | None]
    holds: Callable[[Change, LiveRows, Protections], str | None] | None = None


@dataclass(frozen=True)
class PassSpec:
    name: str
    summary: str
    order: int
    defaults: Mapping[str, Any]
    run: Callable[[PassContext], PassOutput]
    # Value rules beyond the type and bounds (allowed words...); raises BadInput. Types are checked for every pass.
    check: Callable[[Mapping[str, Any]], None] | None = None
    # Every kind of change the pass proposes; apply and `plan accept` refuse a change under its name that
    # matches none of them (see crmsweep/cleanup/provenance.py).
    proposes: tuple[Proposal, ...] = ()
    # The range of every numeric setting (each one must have one), checked with the types.
    bounds: Mapping[str, Bound] = field(default_factory=dict)
    # The candidate rules re-evaluated on live data before apply writes (None: nothing to re-check).
    live_check: LiveCheck | None = None
    # The concept classes (crmsweep/concepts.py) the pass needs; a provider lacking one skips it.
    needs: tuple[type, ...] = ()
    # The objects the pass reads, in a provider's vocabulary (called only when every `needs` is there).
    reads: Callable[[Vocabulary], Sequence[ObjectRead]] = _reads_nothing
    # True for a pass that only reports (PassOutput.review) and never proposes a change.
    report_only: bool = False
    # The summary in one provider's words, where the generic one would name what that CRM does not do
    # (a delete where it archives); None: `summary` holds for every provider.
    summary_for: Callable[[Vocabulary], str] | None = None


def absent_advice(objects: Sequence[str]) -> str:
    """What to do about objects a snapshot lacks: a default backup takes every object a pass reads that the
    CRM has, so either the CRM has none (an org without cases or campaigns) or the backup named its objects."""
    them = "them" if len(objects) > 1 else "it"
    return (f"if the CRM has {' or '.join(objects)}, back up without --object (a backup then takes {them}) "
            "and scan again")


def missing_concept(spec: PassSpec, vocabulary: Vocabulary) -> str | None:
    """Why `spec` cannot run for this provider (a concept it needs is not mapped), or None."""
    for kind in spec.needs:
        if vocabulary.concept(kind) is None:
            why = vocabulary.absent_concepts.get(kind.__name__)
            return why or f"crmsweep maps no {kind.__name__} for {vocabulary.provider}"
    return None


def objects_read(vocabulary: Vocabulary, names: Sequence[str] | None = None) -> list[str]:
    """The objects the passes `names` (default all) read for this provider, each once, in pass order;
    passes the provider cannot run contribute nothing."""
    objects: list[str] = []
    for spec in PASSES.values():
        if names is not None and spec.name not in names:
            continue
        if missing_concept(spec, vocabulary) is not None:
            continue
        for read in spec.reads(vocabulary):
            if read.object not in objects:
                objects.append(read.object)
    return objects


def summary_in(spec: PassSpec, vocabulary: Vocabulary | None) -> str:
    """The pass summary an admin reads for a plan of this provider (None: the generic one)."""
    if vocabulary is None:
        return spec.summary
    if missing_concept(spec, vocabulary) is not None:
        # The pass cannot run for this provider and proposes nothing: its generic summary speaks of another
        # CRM's objects (a recycle bin this one lacks), and the skip note already says why.
        return ""
    return spec.summary if spec.summary_for is None else spec.summary_for(vocabulary)


def summary_of(docstring: str | None) -> str:
    """The first line of a module docstring: the pass summary shown to admins."""
    return (docstring or "").strip().splitlines()[0].strip() if (docstring or "").strip() else ""


def _type_error(name: str, key: str, default: Any, value: Any) -> str | None:
    """None when `value` has the type of `default`, else what is wrong."""
    if isinstance(default, bool):
        ok = isinstance(value, bool)
        wanted = "true or false"
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
        wanted = "a whole number"
    elif isinstance(default, float):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        wanted = "a number"
    elif isinstance(default, str):
        ok = isinstance(value, str)
        wanted = "a string"
    elif isinstance(default, list | tuple):
        ok = isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
        wanted = "a list of strings"
    else:
        return None
    if ok:
        return None
    return f"[passes.{name}] {key} must be {wanted}, not {value!r}"


def validate_settings(name: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    """The pass's defaults overlaid with `raw`, checked; BadInput names the config key at fault."""
    spec = PASSES.get(name)
    if spec is None:
        raise BadInput(f"[passes.{name}] is not a known pass{did_you_mean(name, PASSES)}; "
                       f"known passes: {', '.join(PASSES)}")
    unknown = sorted(set(raw) - set(spec.defaults))
    if unknown:
        known = f"known settings: {', '.join(sorted(spec.defaults))}" if spec.defaults else "it takes no settings"
        raise BadInput(f"[passes.{name}] has no setting {unknown[0]!r}{did_you_mean(unknown[0], spec.defaults)}; "
                       f"{known}")
    merged: dict[str, Any] = dict(spec.defaults)
    for key, value in raw.items():
        problem = _type_error(name, key, spec.defaults[key], value)
        if problem:
            raise BadInput(problem)
        bound = spec.bounds.get(key)
        out_of_bounds = bound.problem(value) if bound is not None else None
        if out_of_bounds:
            raise BadInput(f"[passes.{name}] {key} {out_of_bounds}")
        merged[key] = list(value) if isinstance(value, list | tuple) else value
    if spec.check is not None:
        spec.check(merged)
    return merged


def check_pass_tables(tables: Mapping[str, Mapping[str, Any]], *, source: str) -> None:
    """Every `[passes.*]` table of a config, checked as it is loaded; the error names the file."""
    for name, raw in tables.items():
        try:
            validate_settings(name, raw)
        except BadInput as exc:
            raise BadInput(f"{source}: {exc}") from None


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _pass_modules() -> list[str]:
    """Every pass module of this package, by name (helpers start with "_" and are not passes)."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def _load() -> dict[str, PassSpec]:
    # Imported here, after the types above exist, because each pass module imports them from this package.
    specs: list[PassSpec] = []
    for module_name in _pass_modules():
        module = importlib.import_module(f"{__name__}.{module_name}")
        spec = getattr(module, "SPEC", None)
        if not isinstance(spec, PassSpec):
            raise TypeError(f"pass module {module_name} defines no SPEC")
        if spec.name != module_name:
            raise TypeError(f"pass module {module_name} names its pass {spec.name!r}: one name for both")
        if spec.report_only and spec.proposes:
            raise TypeError(f"pass {spec.name} only reports but declares changes it proposes")
        unbounded = [key for key, value in spec.defaults.items() if _numeric(value) and key not in spec.bounds]
        if unbounded:
            raise TypeError(f"pass {spec.name} declares no bounds for {unbounded}")
        specs.append(spec)
    orders = [s.order for s in specs]
    clash = sorted({o for o in orders if orders.count(o) > 1})
    if clash:
        # Each pass runs over what the earlier ones leave: the order must be stated, never left to names.
        raise TypeError(f"passes share the order {clash[0]}: give each its own")
    return {spec.name: spec for spec in sorted(specs, key=lambda s: s.order)}


PASSES: dict[str, PassSpec] = _load()

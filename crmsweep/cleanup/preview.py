"""Preview: a Plan as a plain-text diff a person reads at a glance, and as a summary for `--json`.

Every change is one line whose first character says what happens to the record, so a terminal can
colour by it: `-` delete/archive, `~` update/deactivate/reactivate, `+` undelete/create. No other
line starts with one of those characters. Every value a change writes is shown in full and exactly
(JSON, invisible characters escaped): the admin approves what will be written, not a summary of it.
Values being replaced are shortened, as the snapshot holds them in full. A number kept as text (a
decimal field's exact digits, as the snapshot holds it) reads as a number beside a number, its digits
as they are. A re-create says "create (new id)" and an undelete "undelete (id kept)"; a re-created
child's lookup to a parent re-created first reads "(the new id of Account 001...)", the one value not
known before apply writes it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from crmsweep import providers
from crmsweep.cleanup.labels import change_name, one_line
from crmsweep.cleanup.passes import PASSES, summary_in
from crmsweep.decimal_text import decimal_text
from crmsweep.model import Change, Op, Plan, Vocabulary, link_type_labels, link_types, placeholder_target

MARKS = {
    Op.DELETE: "-",
    Op.ARCHIVE: "-",
    Op.UPDATE: "~",
    Op.DEACTIVATE: "~",
    Op.REACTIVATE: "~",
    Op.UNDELETE: "+",
    Op.CREATE: "+",
    Op.ASSOCIATE: "+",
}
VALUE_WIDTH = 40
NO_PASS = "(no pass)"


def format_value(value: Any) -> str:
    """JSON-ish and short: true, false, null, 42, "text" (strings cut to 40 characters)."""
    if isinstance(value, str):
        text = value if len(value) <= VALUE_WIDTH else value[: VALUE_WIDTH - 1] + "…"
        return one_line(json.dumps(text, ensure_ascii=False))
    if value is None or isinstance(value, bool | int | float):
        return json.dumps(value)
    return format_value(str(value))


def _value_pair(before: Any, after: Any) -> str:
    """`before → after` of one field, both read as numbers where `numbers_pair` says so (digits as they are)."""
    if numbers_pair(before, after):
        return f"{_as_number(before)} → {_as_number(after)}"
    return f"{format_value(before)} → {exact_value(after)}"


def numbers_pair(before: Any, after: Any) -> bool:
    """Whether one field's `before` and `after` both read as numbers: one side is a number and the other a
    number or a number's text the snapshot keeps as the CRM's (a decimal field's exact digits), or null. The
    text preview and `--json` both show such a pair as two numbers (`"60" → 0` read as text becoming a
    number); what is written is unchanged."""
    if not (_is_number(before) or _is_number(after)):
        return False
    return _as_number(before) is not None and _as_number(after) is not None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _as_number(value: Any) -> str | None:
    """`value` as a number's text (null for none), or None if it is not a number or a number's text."""
    if value is None:
        return "null"
    if isinstance(value, str) and value != value.strip():
        return None  # blanks around it are written too: shown as the text it is
    try:
        return decimal_text(value)
    except ValueError:
        return None


def _typed_number(value: Any) -> Any:
    """A value of a `numbers_pair` as a JSON number: a number's text as a Decimal of exactly its digits."""
    return Decimal(value) if isinstance(value, str) else value


def exact_value(value: Any) -> str:
    """A written value as JSON, in full, on one line; characters that would not show are escaped."""
    return one_line(json.dumps(value, ensure_ascii=False, default=str))


def written_value(value: Any) -> str:
    """`exact_value`, but a placeholder says whose id it will be (only known once that create has run)."""
    target = placeholder_target(value)
    if target is not None:
        return f"(the new id of {one_line(target[0])} {one_line(target[1])})"
    return exact_value(value)


def _word(change: Change, vocabulary: Vocabulary | None) -> str:
    """The op in the CRM's words (a delete call that archives is an archive: `Vocabulary.op_words`)."""
    return vocabulary.op_word(change.op.value, change.object) if vocabulary else change.op.value


def change_line(change: Change, vocabulary: Vocabulary | None = None) -> str:
    label = f' "{one_line(change.label)}"' if change.label else ""
    parts = [f"{MARKS[change.op]} {change_name(change)}{label}"]
    word = _word(change, vocabulary)
    if change.op is Op.ARCHIVE:
        # In the CRM's word, as the counts above the lines say it (a CRM may call removing a field deleting it).
        parts.append(word)
    elif change.op is Op.DELETE and word != change.op.value:
        # Said where the CRM's delete is not one (an archive that keeps the id); a plain delete says nothing.
        parts.append(f"{word} (id kept)")
    elif change.op is Op.UNDELETE:
        parts.append(f"{word} (id kept)")
    elif change.op is Op.ASSOCIATE:
        a = change.after
        # The named types the link gets (as the CRM names them), so the admin sees each label written.
        labels = link_type_labels(link_types(a))
        named = f" ({', '.join(one_line(label) for label in labels)})" if labels else ""
        parts.append(f"link {one_line(str(a.get('from_object')))} {written_value(a.get('from_id'))} → "
                     f"{one_line(str(a.get('to_object')))} {written_value(a.get('to_id'))}{named}")
    elif change.op is Op.CREATE:
        written = ", ".join(f"{k}: {written_value(v)}" for k, v in change.after.items())
        made = "create (new id)" if word == change.op.value else f"{word} (id kept)"
        parts.append(made + (f" with {written}" if written else ""))
    elif change.op is not Op.DELETE:
        parts.append(", ".join(f"{k}: {_value_pair(change.before.get(k), v)}" for k, v in change.after.items()))
    if change.reason.strip():
        parts.append(one_line(change.reason.strip()))
    return "  ".join(parts)


def _plural(count: int, word: str, words: str | None = None) -> str:
    return f"{count:,} {word}" if count == 1 else f"{count:,} {words or word + 's'}"


def _op_counts(changes: Iterable[Change], vocabulary: Vocabulary | None = None) -> dict[str, int]:
    """Changes counted by what they do, in the CRM's words (`_word`), in Op order."""
    counts: dict[str, int] = {}
    order = {op.value: i for i, op in enumerate(Op)}
    for change in sorted(changes, key=lambda c: order[c.op.value]):
        word = _word(change, vocabulary)
        counts[word] = counts.get(word, 0) + 1
    return counts


def _op_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{n:,} {op}" for op, n in counts.items())


def ops_breakdown(ops: Iterable[tuple[str, str]], vocabulary: Vocabulary | None = None) -> str:
    """(op, object) pairs counted in order of first appearance: "252 delete Contact, 3 deactivate User";
    each op in the `vocabulary`'s words where given (`Vocabulary.op_word`)."""
    counts = Counter((vocabulary.op_word(op, obj) if vocabulary else op, obj) for op, obj in ops)
    return ", ".join(f"{n:,} {op} {obj}" for (op, obj), n in counts.items()) or "no changes"


def breakdown(plan: Plan) -> str:
    """What a plan does, by op and object, in plan order, in its provider's words."""
    return ops_breakdown(((change.op.value, change.object) for change in plan.changes),
                         _vocabulary(plan.header.provider))


def _group(plan: Plan) -> dict[str, dict[str, list[Change]]]:
    """pass -> object -> changes, passes in header order then any others in plan order."""
    groups: dict[str, dict[str, list[Change]]] = {name: {} for name in plan.header.passes}
    for change in plan.changes:
        groups.setdefault(change.pass_name or NO_PASS, {}).setdefault(change.object, []).append(change)
    return groups


def _split_notes(plan: Plan, pass_names: Iterable[str]) -> tuple[list[str], dict[str, list[str]]]:
    """Plan notes that start 'PASS: ' belong to that pass's section; the rest are general."""
    general: list[str] = []
    per_pass: dict[str, list[str]] = {}
    names = sorted(pass_names, key=len, reverse=True)
    for note in plan.header.notes:
        owner = next((n for n in names if note.startswith(f"{n}: ")), None)
        if owner is None:
            general.append(note)
        else:
            per_pass.setdefault(owner, []).append(note[len(owner) + 2 :])
    return general, per_pass


def _source_text(source: Any) -> str:
    kind, ident = source.get("kind", "?"), source.get("id", "?")
    return f"{kind} {ident}"


def _vocabulary(provider: str) -> Vocabulary | None:
    """The vocabulary of the plan's provider, for summaries in its words; None for one not registered."""
    known = provider in providers.names()
    return providers.get(provider).vocabulary if known else None


def vocabulary_of(provider: str) -> Vocabulary | None:
    """The vocabulary of a plan's provider (None for one not registered): words for its ops."""
    return _vocabulary(provider)


def removal_words(changes: Iterable[Change], removals: Iterable[Op], provider: str) -> str:
    """What the `removals` among `changes` do, as a verb and a count in the CRM's words: "deletes 219
    records", "archives 213 records and deletes 6" (an archive the CRM restores is not a delete)."""
    kinds, vocabulary = set(removals), _vocabulary(provider)
    counts: Counter[str] = Counter()
    for change in changes:
        if change.op in kinds:
            counts[_word(change, vocabulary)] += 1
    total = sum(counts.values())
    if len(counts) <= 1:
        return f"{next(iter(counts), 'delete')}s {total:,} records"
    (first, n), *rest = counts.most_common()
    return f"{first}s {n:,} records and " + " and ".join(f"{w}s {k:,}" for w, k in rest)


def render_preview(plan: Plan, *, limit: int | None = None, signature: str | None = None) -> str:
    """The plan as text; `limit` caps the change lines shown per object ("… and 57 more"); `signature`
    says what the file's signature is worth (the caller knows the home that checks it)."""
    if limit is not None and limit < 0:
        raise ValueError("limit must be 0 or more")
    header = plan.header
    groups = _group(plan)
    general_notes, pass_notes = _split_notes(plan, groups)
    vocabulary = _vocabulary(header.provider)
    totals = _op_counts(plan.changes, vocabulary)
    lines = [
        f"plan {header.plan_id}  {plan.digest}",
        f"provider {header.provider}  org {header.org_id}  connection {header.connection}",
        f"source: {_source_text(header.source)}"
        + (f"  (rollback of {header.rollback_of})" if header.rollback_of else ""),
        f"created {header.created}  by crmsweep {header.tool_version}",
        f"changes: {len(plan.changes):,}" + (f" ({_op_text(totals)})" if totals else ""),
    ]
    if signature is not None:
        lines.insert(1, f"signature: {signature}")
    lines.extend(f"note: {note}" for note in general_notes)

    skipped_passes = 0
    for name, objects in groups.items():
        count = sum(len(c) for c in objects.values())
        lines.append("")
        lines.append(f"{name} — {_plural(count, 'change')}")
        spec = PASSES.get(name)
        # A pass's summary describes what it proposes; under a rollback or restore it would mislead.
        summary = summary_in(spec, vocabulary) if spec is not None else ""
        if summary and header.source.get("kind") == "snapshot" and not header.rollback_of:
            lines.append(f"  {summary}")
        for obj, changes in objects.items():
            lines.append(f"{obj}: {_op_text(_op_counts(changes, vocabulary))}")
            shown = changes if limit is None else changes[:limit]
            lines.extend(change_line(c, vocabulary) for c in shown)
            if len(changes) > len(shown):
                lines.append(f"… and {len(changes) - len(shown):,} more")
        held = header.held_back.get(name, {})
        if held:
            # Each reason says why (a protection, a guard, the pass's own rule: a soft bounce), so none is
            # called a protection.
            lines.append("held back: " + ", ".join(f"{n:,} {reason}" for reason, n in held.items()))
        for note in pass_notes.get(name, []):
            if note.startswith("skipped: "):
                skipped_passes += 1
            lines.append(note if note.startswith("skipped: ") else f"note: {note}")

    if header.review:
        lines.append("")
        lines.append(f"for review (never applied) — {_plural(len(header.review), 'finding')}")
        shown_items = header.review if limit is None else header.review[:limit]
        for item in shown_items:
            labels = item.labels or ("",) * len(item.record_ids)
            names = ", ".join(f"{rid} {label}".strip() for rid, label in zip(item.record_ids, labels, strict=False))
            lines.append(f"  {item.pass_name} {item.object}: {item.reason} ({item.score:.0%}): {names}")
        if len(header.review) > len(shown_items):
            lines.append(f"… and {len(header.review) - len(shown_items):,} more")

    held_total = sum(n for reasons in header.held_back.values() for n in reasons.values())
    closing = [_plural(len(plan.changes), "change") + (f" ({_op_text(totals)})" if totals else "")]
    if held_total:
        closing.append(f"{held_total:,} held back")
    if skipped_passes:
        closing.append(f"{_plural(skipped_passes, 'pass', 'passes')} skipped")
    lines.append("")
    lines.append("total: " + "; ".join(closing))
    # Every line goes through one_line: header fields, notes and pass names come from the file, and a
    # raw ESC in one could erase other lines (a change) on the admin's terminal.
    return "\n".join(one_line(line) for line in lines) + "\n"


def unlisted(plan: Plan, limit: int | None) -> int:
    """How many change lines `render_preview(plan, limit=limit)` leaves out (its "… and N more" lines)."""
    if limit is None:
        return 0
    return sum(max(0, len(changes) - limit) for objects in _group(plan).values() for changes in objects.values())


def summarize(plan: Plan) -> dict[str, Any]:
    """The preview's numbers as data (for `--json`)."""
    by_pass: dict[str, dict[str, dict[str, int]]] = {}
    for name, objects in _group(plan).items():
        by_pass[name] = {obj: _op_counts(changes) for obj, changes in objects.items()}
    vocabulary = _vocabulary(plan.header.provider)
    # The keys stay the signed plan's op values (scripts count on them); where the CRM carries an op out
    # as something else (a delete that archives), `op_words` says how the preview's text names it.
    words: dict[str, dict[str, str]] = {}
    for change in plan.changes:
        word = _word(change, vocabulary)
        if word != change.op.value:
            words.setdefault(change.object, {})[change.op.value] = word
    header = plan.header
    return {
        "plan": header.plan_id,
        "digest": plan.digest,
        # Where and when, as the text's header lines say: a script checks it is the org it means to change.
        "provider": header.provider,
        "org_id": header.org_id,
        "connection": header.connection,
        "created": header.created,
        "tool_version": header.tool_version,
        "changes": len(plan.changes),
        "by_op": _op_counts(plan.changes),
        "by_pass": by_pass,
        "op_words": words,
        "rollback_of": plan.header.rollback_of,
        "source": dict(plan.header.source),
        "held_back": {name: dict(reasons) for name, reasons in plan.header.held_back.items()},
        "notes": list(plan.header.notes),
        "review": [item.to_dict() for item in plan.header.review],
    }


def listed_changes(plan: Plan, *, limit: int | None = None) -> dict[str, Any]:
    """The changes the preview lists, as data (for `--json`): in its order (by pass, then object), at most `limit`
    an object as its text shows, each with every value it writes beside the one the plan expects to find; and
    how many were left unlisted. A script reads what the admin reviewed, without parsing the plan file."""
    if limit is not None and limit < 0:
        raise ValueError("limit must be 0 or more")
    vocabulary = _vocabulary(plan.header.provider)
    listed: list[dict[str, Any]] = []
    unlisted = 0
    for objects in _group(plan).values():
        for changes in objects.values():
            shown = changes if limit is None else changes[:limit]
            unlisted += len(changes) - len(shown)
            listed.extend(_listed(change, vocabulary) for change in shown)
    return {"listed": listed, "not_listed": unlisted}


def _listed(change: Change, vocabulary: Vocabulary | None) -> dict[str, Any]:
    # A create has no before-image to compare with, and a link's `after` names its two ends: both as written.
    before = {} if change.op in (Op.CREATE, Op.ASSOCIATE) else change.before
    return {
        "pass": change.pass_name,
        "object": change.object,
        "record_id": change.record_id,
        "label": change.label,
        "op": change.op.value,
        "op_word": _word(change, vocabulary),
        "severity": change.severity.value,
        "reason": change.reason,
        "writes": {name: _write(before.get(name), value) for name, value in change.after.items()},
    }


def _write(before: Any, after: Any) -> dict[str, Any]:
    """One field's `before` and `after` for `--json`, typed as the text preview reads them (`numbers_pair`)."""
    if numbers_pair(before, after):
        return {"before": _typed_number(before), "after": _typed_number(after)}
    return {"before": before, "after": after}


def pass_summary(
    plan: Plan, per_pass: Mapping[str, int], held_back: Mapping[str, Mapping[str, int]], skipped: Mapping[str, str]
) -> list[tuple[str, str]]:
    """(pass, what it did) for each pass a scan ran, in order, as one line each: its proposals and hold-backs,
    its findings for review, or why it was skipped."""
    lines: list[tuple[str, str]] = []
    for name, count in per_pass.items():
        if name in skipped:
            lines.append((name, f"skipped: {skipped[name]}"))
            continue
        spec = PASSES.get(name)
        if spec is not None and spec.report_only:
            found = sum(1 for item in plan.header.review if item.pass_name == name)
            lines.append((name, f"{found:,} {'finding' if found == 1 else 'findings'} for review (never applied)"))
            continue
        held = held_back.get(name, {})
        held_text = "".join(f"; held back {n:,} ({why})" for why, n in held.items())
        lines.append((name, f"{count:,} proposed{held_text}"))
    return [(name, one_line(text)) for name, text in lines]

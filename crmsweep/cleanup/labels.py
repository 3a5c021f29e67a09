"""How a record is named for a person: the label a Change carries into the preview."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from crmsweep.model import Change, Vocabulary


def escaped(ch: str) -> str:
    """A character that would not show as itself, as its Python escape (\\n, \\x1b, \\u202e)."""
    return ascii(ch)[1:-1]


def one_line(text: object) -> str:
    """Text from a plan, a run log or the CRM as it may be shown to a person: on one line, every character
    that would not show as itself (newline, ESC and other controls, bidi overrides, zero-width) escaped
    visibly. A raw ESC could move the cursor and erase lines of a preview; a newline could fake one."""
    text = str(text)
    if text.isprintable():  # nearly always: one C call instead of a test per character (a scan labels 300k)
        return text
    return "".join(ch if ch.isprintable() else escaped(ch) for ch in text)


def has_control(text: str) -> bool:
    """True if `text` holds a character one_line would escape."""
    return not text.isprintable()


def record_label(vocabulary: Vocabulary, object_name: str, record: Mapping[str, Any]) -> str:
    """'Jane Doe <jane@x.org>': the name (the first label field, or the first few where a name is in parts)
    as is, each further field in angle brackets.

    Empty fields are left out; an object without label fields gets "" (the id still names it).
    """
    fields = vocabulary.label_fields.get(object_name, ())
    named = max(1, vocabulary.label_name_fields.get(object_name, 1))
    texts = [
        (index, one_line(str(record.get(name))))
        for index, name in enumerate(fields)
        if record.get(name) is not None and str(record.get(name)).strip() != ""
    ]
    name = " ".join(text for index, text in texts if index < named)
    rest = [f"<{text}>" for index, text in texts if index >= named]
    return " ".join([name, *rest] if name else rest)


def change_name(change: Change) -> str:
    """'Contact 003...': the record a change is about, as previews and refusals name it."""
    return f"{change.object} {change.record_id or '(new record)'}"


def table_lines(headers: Sequence[object], rows: Sequence[Sequence[object]]) -> list[str]:
    """Rows under column headers as aligned plain text lines, every cell made one line: what a person
    reads and `awk` splits on two or more spaces."""
    cells = [[one_line(h) for h in headers], *([one_line(c) for c in row] for row in rows)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(headers))]
    return ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in cells]

"""How a record is named for a person: the label a Change carries into the preview."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crmsweep.model import Change, Vocabulary


def one_line(text: str) -> str:
    """Control characters (a newline in a Name) would break a line-per-change preview."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())


def record_label(vocabulary: Vocabulary, object_name: str, record: Mapping[str, Any]) -> str:
    """'Jane Doe <jane@x.org>': the first label field as is, each further one in angle brackets.

    Empty fields are left out; an object without label fields gets "" (the id still names it).
    """
    parts: list[str] = []
    for index, name in enumerate(vocabulary.label_fields.get(object_name, ())):
        value = record.get(name)
        if value is None or str(value).strip() == "":
            continue
        text = one_line(str(value))
        parts.append(text if index == 0 else f"<{text}>")
    return " ".join(parts)


def change_name(change: Change) -> str:
    """'Contact 003...': the record a change is about, as previews and refusals name it."""
    return f"{change.object} {change.record_id or '(new record)'}"

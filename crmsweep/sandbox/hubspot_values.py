"""Property values as HubSpot keeps them: every value a string, datetimes as ISO-8601 UTC with
milliseconds ("2024-01-17T19:55:04.281Z"), numbers without trailing zeros, booleans lower case.

`check_value` is the write-time check; its failures carry HubSpot's per-property error codes. A number
written must be digits with at most one "-" in front and one "." (HubSpot changelog "Upcoming: A change for
number properties in CRM APIs": commas, spaces, several dots refused with 400; so are an exponent and a "+",
which that rule leaves out); it is kept to the last digit, whatever its length, without trailing zeros
and with "-0" as "0" (how HubSpot spells a stored number back is UNCONFIRMED: crmsweep keeps whatever text
it reads, and compares numbers as exact decimals).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Context, Decimal, InvalidOperation

from crmsweep.sandbox.hubspot_schema import BOOL, DATE, DATETIME, ENUM, NUMBER, PropertyDef

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_WRITTEN_NUMBER = re.compile(r"-?([0-9]+\.?[0-9]*|\.[0-9]+)")


class PropertyValueError(Exception):
    """One property's value refused: HubSpot's `error` code, the property and a message."""

    def __init__(self, code: str, name: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.name = name
        self.message = message


def format_ts(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_ts(text: str) -> datetime | None:
    """A datetime filter or write value: epoch milliseconds, an ISO datetime, or a date."""
    text = text.strip()
    if re.fullmatch(r"-?\d{1,16}", text):
        return _EPOCH + timedelta(milliseconds=int(text))
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def normalize_number(text: str) -> str | None:
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        return None
    if not number.is_finite():
        return None
    # normalize() rounds to its context's precision (28 digits by default): give it every digit there is.
    normalized = format(number.normalize(Context(prec=max(1, len(number.as_tuple().digits)))), "f")
    return normalized if normalized != "-0" else "0"


def check_value(prop: PropertyDef, value: object, *, owner_ids: frozenset[str] = frozenset()) -> str | None:
    """The stored form of a written value ("" clears it, stored as None), or PropertyValueError."""
    if value is None or value == "":
        return None
    text = value if isinstance(value, str) else (str(value).lower() if isinstance(value, bool) else str(value))
    if prop.name == "hubspot_owner_id":
        if text not in owner_ids:
            raise PropertyValueError("INVALID_OPTION", prop.name, f"{text} was not one of the allowed options")
        return text
    if prop.type == NUMBER:
        number = normalize_number(text) if _WRITTEN_NUMBER.fullmatch(text) else None
        if number is None:
            raise PropertyValueError("INVALID_INTEGER" if prop.name.startswith("num") else "INVALID_DECIMAL", prop.name,
                              f"{text} was not a valid number")
        return number
    if prop.type in (DATETIME, DATE):
        moment = parse_ts(text)
        if moment is None:
            raise PropertyValueError("INVALID_DATE", prop.name, f"{text} was not a valid date or datetime")
        return format_ts(moment) if prop.type == DATETIME else moment.date().isoformat()
    if prop.type == BOOL:
        if text.lower() not in ("true", "false"):
            raise PropertyValueError("INVALID_BOOLEAN", prop.name, f"{text} was not a valid boolean")
        return text.lower()
    if prop.type == ENUM and prop.options:
        chosen = text.split(";")
        bad = [c for c in chosen if c not in prop.options]
        if bad:
            raise PropertyValueError("INVALID_OPTION", prop.name, f"{bad[0]} was not one of the allowed options: "
                              + ", ".join(prop.options))
        return text
    if prop.name == "email" and not _EMAIL_RE.match(text):
        raise PropertyValueError("INVALID_EMAIL", prop.name, f"Email address {text} is invalid")
    return text

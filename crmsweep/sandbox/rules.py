"""The platform's rules for values written through the API: types, lengths, required fields,
and the calculated fields Salesforce keeps right itself. Pure functions, no I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Any

from crmsweep.sandbox import schema
from crmsweep.sandbox.schema import Field, SObject
from crmsweep.sandbox.seed_words import FORECAST_CATEGORY, PROBABILITY

_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DEFAULT_LENGTHS = {
    schema.ID: 18,
    schema.REFERENCE: 18,
    schema.STRING: 255,
    schema.PICKLIST: 255,
    schema.EMAIL: 80,
    schema.PHONE: 40,
    schema.URL: 255,
    schema.TEXTAREA: 32000,
}
_NUMERIC = (schema.DOUBLE, schema.CURRENCY, schema.PERCENT)
NUMERIC_TYPES = frozenset(_NUMERIC)
_WIDE = Context(prec=60)  # room for 18 digits and any scale, so rounding to the scale is exact
# The default values a new org ships with for these required picklists (schema.py has no picklist defaults).
PICKLIST_DEFAULTS = {
    ("Lead", "Status"): "Open - Not Contacted",
    ("Task", "Status"): "Not Started",
    ("Task", "Priority"): "Normal",
    ("Case", "Status"): "New",
    ("Contract", "Status"): "Draft",
    ("Order", "Status"): "Draft",
    ("Invoice", "Status"): "Draft",
    ("ContentDocumentLink", "ShareType"): "V",
}
# Auto-number fields: the platform numbers records of these objects itself, zero-padded.
AUTO_NUMBERS = {"Contract": "ContractNumber", "Order": "OrderNumber", "Invoice": "InvoiceNumber"}
AUTO_NUMBER_DIGITS = 8


class RecordError(Exception):
    """One record's failure, reported per record as the platform does (`statusCode`, not errorCode)."""

    def __init__(self, status_code: str, message: str, fields: tuple[str, ...] = ()) -> None:
        super().__init__(f"{status_code}: {message}")
        self.status_code = status_code
        self.message = message
        self.fields = fields

    def to_json(self) -> dict[str, Any]:
        return {"statusCode": self.status_code, "message": self.message, "fields": list(self.fields)}


# --- time ------------------------------------------------------------------------------------------


def format_datetime(moment: datetime) -> str:
    """The stored and answered form: 'YYYY-MM-DDTHH:MM:SS.mmm+0000', UTC (text order is time order).

    The year always has four digits, as Salesforce answers ('0999-05-06T...'); strftime's %Y does
    not pad on glibc, and '999-...' is not ISO 8601, so clients refuse it."""
    moment = moment.astimezone(UTC)
    return f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}+0000"


def default_json(f: Field) -> object:
    """A field's describe defaultValue, dates and datetimes in the API's form."""
    if isinstance(f.default, datetime):
        return format_datetime(f.default)
    if isinstance(f.default, date):
        return f.default.isoformat()
    return f.default


def parse_datetime(text: str) -> datetime:
    parsed = datetime.fromisoformat(text.strip())
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def next_stamp(now: datetime, previous: str | None) -> str:
    """A SystemModstamp later than `previous` even within one millisecond: drift checks rely on it."""
    now = now.astimezone(UTC).replace(microsecond=now.microsecond // 1000 * 1000)
    if previous is not None:
        floor = parse_datetime(previous) + timedelta(milliseconds=1)
        if now < floor:
            now = floor
    return format_datetime(now)


# --- describe facts shared by the API and the checks -----------------------------------------------


def field_length(f: Field) -> int:
    return f.length or _DEFAULT_LENGTHS.get(f.type, 0)


def defaulted_on_create(obj: SObject, f: Field) -> bool:
    return (
        f.default is not None
        or f.name == "OwnerId"
        or (obj.name, f.name) in PICKLIST_DEFAULTS
        or (not f.createable and f.name != "Name")
    )


# --- value checks ----------------------------------------------------------------------------------


def _type_error(f: Field, value: object) -> RecordError:
    return RecordError(
        "INVALID_TYPE_ON_FIELD_IN_RECORD", f"{f.display_label}: value not of required type: {value}", (f.name,)
    )


def coerce_value(f: Field, value: object) -> object:
    """A JSON value as stored in SQLite, or RecordError if the platform would refuse it."""
    if value is None:
        return None
    if f.type == schema.BOOLEAN:
        if not isinstance(value, bool):
            raise _type_error(f, value)
        return int(value)
    if f.type == schema.INT:
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal) or not _finite(value) \
                or int(value) != value:
            raise _type_error(f, value)
        return int(value)
    if f.type in _NUMERIC:
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal) or not _finite(value):
            raise _type_error(f, value)
        return exact_number(f, value)
    if f.type == schema.DATE:
        if not isinstance(value, str):
            raise _type_error(f, value)
        try:
            return date.fromisoformat(value[:10]).isoformat()
        except ValueError:
            raise _type_error(f, value) from None
    if f.type == schema.DATETIME:
        if not isinstance(value, str):
            raise _type_error(f, value)
        try:
            return format_datetime(parse_datetime(value))
        except ValueError:
            raise _type_error(f, value) from None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _type_error(f, value)
    text = value if isinstance(value, str) else str(value)
    if text == "":
        return None  # Salesforce stores an empty text value as null (so Bulk CSV, which has no null, agrees)
    limit = field_length(f)
    if limit and len(text) > limit:
        raise RecordError(
            "STRING_TOO_LONG", f"{f.display_label}: data value too large: {text[:40]} (max length={limit})", (f.name,)
        )
    if f.type == schema.EMAIL and text and not _EMAIL_RE.fullmatch(text):
        raise RecordError("INVALID_EMAIL_ADDRESS", f"{f.display_label}: invalid email address: {text}", (f.name,))
    return text


def check_values(obj: SObject, values: Mapping[str, object], *, creating: bool) -> dict[str, object]:
    """The record's values by canonical field name, coerced; unknown or read-only fields refused."""
    unknown = [name for name in values if obj.field(name) is None]
    if unknown:
        raise RecordError(
            "INVALID_FIELD", f"No such column '{unknown[0]}' on sobject of type {obj.name}", tuple(unknown)
        )
    fields = [(obj.field(name), value) for name, value in values.items()]
    read_only = [
        f.name for f, _ in fields if f is not None and not (f.createable if creating else f.updateable)
    ]
    if read_only:
        raise RecordError(
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            f"Unable to create/update fields: {', '.join(read_only)}. Please check the security settings of "
            "this field and verify that it is read/write for your profile or permission set.",
            tuple(read_only),
        )
    out: dict[str, object] = {}
    for f, value in fields:
        assert f is not None
        out[f.name] = coerce_value(f, value)
    return out


def check_required(obj: SObject, row: Mapping[str, object]) -> None:
    missing = [
        f.name for f in obj.fields if not f.nillable and (f.createable or f.updateable) and row.get(f.name) is None
    ]
    if missing:
        raise RecordError("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]",
                          tuple(missing))


def defaults(obj: SObject) -> dict[str, object]:
    out: dict[str, object] = {}
    for f in obj.fields:
        if f.default is not None:
            out[f.name] = int(f.default) if isinstance(f.default, bool) else f.default
        elif (obj.name, f.name) in PICKLIST_DEFAULTS:
            out[f.name] = PICKLIST_DEFAULTS[(obj.name, f.name)]
    return out


def calculated(obj_name: str, row: Mapping[str, object]) -> dict[str, object]:
    """The platform-derived fields of a row after a write."""
    out: dict[str, object] = {}
    if obj_name in ("Contact", "Lead", "User"):
        first, last = row.get("FirstName"), row.get("LastName")
        out["Name"] = " ".join(str(p) for p in (first, last) if p) or None
    if obj_name == "Contact":
        out["IsEmailBounced"] = int(row.get("EmailBouncedDate") is not None or bool(row.get("EmailBouncedReason")))
    if obj_name == "Opportunity":
        stage = row.get("StageName")
        out["IsClosed"] = int(stage in ("Closed Won", "Closed Lost"))
        out["IsWon"] = int(stage == "Closed Won")
    if obj_name == "Task":
        out["IsClosed"] = int(row.get("Status") == "Completed")
    if obj_name == "Case":
        out["IsClosed"] = int(row.get("Status") == "Closed")
    return out


# What the platform sets from an opportunity's stage, unless the same write sets it: "implicitly set based on
# the StageName value, but you can override that value" (Opportunity, Object Reference). Only when the stage
# is written anew: a write that leaves the stage as it was keeps a probability a rep typed.
_STAGE_IMPLIED: dict[str, Mapping[str, object]] = {
    "Probability": PROBABILITY, "ForecastCategoryName": FORECAST_CATEGORY}


def stage_implied(obj_name: str, row: Mapping[str, object], given: Collection[str],
                  before: Mapping[str, object] | None) -> dict[str, object]:
    """The fields a write of `given` makes the platform set from the row's stage."""
    stage = row.get("StageName")
    if obj_name != "Opportunity" or not isinstance(stage, str):
        return {}
    if before is not None and ("StageName" not in given or before.get("StageName") == stage):
        return {}
    return {name: values[stage] for name, values in _STAGE_IMPLIED.items() if name not in given and stage in values}


# Bounce management keeps the bounce on the record "until the email address is updated" (Salesforce Help,
# "Bounce Management Explained"): a write that changes the address clears the bounce date and reason, unless
# the same write sets them (an admin restoring a record as it was).
_BOUNCE_FIELDS = ("EmailBouncedDate", "EmailBouncedReason")


def bounce_cleared(obj_name: str, row: Mapping[str, object], given: Collection[str],
                   before: Mapping[str, object] | None) -> dict[str, object]:
    """The bounce fields a write of `given` makes the platform clear: those of a contact or lead whose
    address the write changes."""
    if obj_name not in ("Contact", "Lead") or before is None or "Email" not in given:
        return {}
    if str(before.get("Email") or "").lower() == str(row.get("Email") or "").lower():
        return {}
    return {name: None for name in _BOUNCE_FIELDS if name not in given}


def to_json_value(f: Field, stored: object) -> object:
    """A stored SQLite value as the REST API answers it."""
    if stored is None:
        return None
    if f.type == schema.BOOLEAN:
        return bool(stored)
    if f.type in _NUMERIC:
        return stored_number(stored)
    return stored


def _finite(value: int | float | Decimal) -> bool:
    if isinstance(value, Decimal):
        return value.is_finite()
    return isinstance(value, int) or math.isfinite(value)


def exact_number(f: Field, value: int | float | Decimal) -> str:
    """A double/currency/percent value as stored: the exact decimal, rounded half up to the field's scale
    (Salesforce rounds extra decimal places), in plain notation. RecordError NUMBER_OUTSIDE_VALID_RANGE when
    it has more digits before the point than precision - scale allows (Salesforce's precision is at most 18)."""
    number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    whole_digits = max(f.precision or 18, 1) - f.scale
    out_of_range = RecordError("NUMBER_OUTSIDE_VALID_RANGE",
                               f"{f.display_label}: value outside of valid range on numeric field: {value}", (f.name,))
    if number and number.adjusted() >= whole_digits:  # checked before rounding, so a huge exponent costs nothing
        raise out_of_range
    rounded = number.quantize(Decimal(1).scaleb(-f.scale), rounding=ROUND_HALF_UP, context=_WIDE)
    if rounded and rounded.adjusted() >= whole_digits:  # 99.995 rounds up to 100.00
        raise out_of_range
    return format(rounded if rounded else rounded.copy_abs(), "f")  # "-0" is 0


def stored_number(stored: object) -> Decimal:
    """A stored number (exact text; REAL in a state written before numbers were kept exactly) as a Decimal,
    which the sandbox's JSON answers carry digit for digit."""
    return Decimal(repr(stored)) if isinstance(stored, float) else Decimal(str(stored))


def event_times(row: Mapping[str, object], given: Collection[str]) -> dict[str, object]:
    """An Event's start, end, duration and dates kept consistent, as the platform does: the start
    from StartDateTime or ActivityDateTime (ActivityDate for an all-day event), the end from
    EndDateTime or the duration; `given` are the fields this write set. Values are stored forms."""
    all_day = bool(row.get("IsAllDayEvent"))
    if all_day and row.get("ActivityDate") and ("ActivityDate" in given or not row.get("StartDateTime")):
        start = datetime.fromisoformat(f"{row['ActivityDate']}T00:00:00+00:00")
    elif "ActivityDateTime" in given and "StartDateTime" not in given and row.get("ActivityDateTime"):
        start = parse_datetime(str(row["ActivityDateTime"]))
    elif row.get("StartDateTime") or row.get("ActivityDateTime"):
        start = parse_datetime(str(row.get("StartDateTime") or row.get("ActivityDateTime")))
    else:
        raise RecordError("REQUIRED_FIELD_MISSING", "Required fields are missing: [StartDateTime]", ("StartDateTime",))
    if row.get("EndDateTime") and ("EndDateTime" in given or row.get("DurationInMinutes") is None):
        end = parse_datetime(str(row["EndDateTime"]))
    elif row.get("DurationInMinutes") is not None:
        end = start + timedelta(minutes=int(str(row["DurationInMinutes"])))
    elif all_day:
        end = start + timedelta(days=1)
    else:
        raise RecordError("REQUIRED_FIELD_MISSING", "Required fields are missing: [DurationInMinutes]",
                          ("DurationInMinutes",))
    if end < start:
        raise RecordError("FIELD_INTEGRITY_EXCEPTION", "End Date Time: the end can't be before the start",
                          ("EndDateTime",))
    return {
        "StartDateTime": format_datetime(start),
        "ActivityDateTime": None if all_day else format_datetime(start),
        "ActivityDate": start.date().isoformat(),
        "EndDateTime": format_datetime(end),
        "DurationInMinutes": int((end - start).total_seconds() // 60),
    }

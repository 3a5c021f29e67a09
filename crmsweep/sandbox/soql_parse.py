"""SOQL text → syntax tree, for the sandbox's query endpoints. Pure: no schema, no SQL, no clock.

Only the subset real clients send is accepted (see `soql.py` for what each node means). Anything
else fails with a `SoqlError` whose message names the offending token or the unsupported feature,
in Salesforce's wording where there is one, so a client sees what it would see from a real org.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone

MALFORMED_QUERY = "MALFORMED_QUERY"
INVALID_FIELD = "INVALID_FIELD"
INVALID_TYPE = "INVALID_TYPE"
NUMBER_OUTSIDE_VALID_RANGE = "NUMBER_OUTSIDE_VALID_RANGE"
INVALID_QUERY_FILTER_OPERATOR = "INVALID_QUERY_FILTER_OPERATOR"


class SoqlError(Exception):
    """A query the sandbox refuses; `error_code` is the Salesforce errorCode the server returns (HTTP 400)."""

    def __init__(self, message: str, error_code: str = MALFORMED_QUERY) -> None:
        super().__init__(message)
        self.message = message
        self.error_code = error_code


# --- syntax tree ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldRef:
    parts: tuple[str, ...]  # as written: ("owner", "isactive"); resolved against the schema later
    pos: int

    @property
    def text(self) -> str:
        return ".".join(self.parts)


@dataclass(frozen=True)
class StringLit:
    value: str  # escapes decoded, for ordinary comparisons
    like_pattern: str  # for LIKE: \% and \_ kept escaped, a literal backslash doubled (ESCAPE '\')


@dataclass(frozen=True)
class NumberLit:
    value: int | float


@dataclass(frozen=True)
class BoolLit:
    value: bool


@dataclass(frozen=True)
class NullLit:
    pass


@dataclass(frozen=True)
class DateLit:
    value: date


@dataclass(frozen=True)
class DateTimeLit:
    value: datetime  # timezone-aware, UTC


@dataclass(frozen=True)
class RangeLit:
    """A relative date literal such as TODAY or LAST_N_DAYS:30; resolved against `now` later."""

    name: str  # upper case
    n: int | None


Literal = StringLit | NumberLit | BoolLit | NullLit | DateLit | DateTimeLit | RangeLit


@dataclass(frozen=True)
class Comparison:
    field: FieldRef
    op: str  # one of = != < <= > >= LIKE ("<>" is normalised to "!=")
    value: Literal


@dataclass(frozen=True)
class InList:
    field: FieldRef
    negated: bool
    values: tuple[Literal, ...]


@dataclass(frozen=True)
class SemiJoin:
    field: FieldRef
    negated: bool
    subquery: Query


@dataclass(frozen=True)
class Not:
    operand: Condition


@dataclass(frozen=True)
class BoolOp:
    op: str  # "AND" or "OR"
    operands: tuple[Condition, ...]


Condition = Comparison | InList | SemiJoin | Not | BoolOp


@dataclass(frozen=True)
class OrderItem:
    field: FieldRef
    descending: bool
    nulls_first: bool


@dataclass(frozen=True)
class Query:
    fields: tuple[FieldRef, ...]  # empty for SELECT COUNT()
    count_only: bool
    object_name: str
    object_pos: int
    where: Condition | None
    order_by: tuple[OrderItem, ...]
    limit: int | None
    offset: int | None


# --- lexer ----------------------------------------------------------------------------------------

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<number>[+-]?\d+(?:\.\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op>!=|<>|<=|>=|=|<|>)
  | (?P<punct>[(),:])
    """,
    re.VERBOSE,
)

# Where an identifier may not stand for a field name.
_RESERVED = frozenset(
    {
        "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "ORDER", "BY", "LIMIT", "OFFSET", "NULL",
        "TRUE", "FALSE", "GROUP", "HAVING", "WITH", "USING", "INCLUDES", "EXCLUDES", "TYPEOF", "FOR", "UPDATE",
    }
)

# Clauses a client may send that the sandbox does not implement: say so instead of "unexpected token".
_UNSUPPORTED_CLAUSES = {
    "GROUP": "GROUP BY",
    "HAVING": "HAVING",
    "WITH": "WITH",
    "USING": "USING SCOPE",
    "FOR": "FOR VIEW / FOR REFERENCE / FOR UPDATE",
    "UPDATE": "UPDATE TRACKING / UPDATE VIEWSTAT",
    "ALL": "ALL ROWS (use queryAll)",
}

_RANGE_WITH_N = frozenset({"LAST_N_DAYS", "NEXT_N_DAYS", "N_DAYS_AGO", "LAST_N_YEARS", "NEXT_N_YEARS", "N_YEARS_AGO"})
_RANGE_PLAIN = frozenset(
    {"TODAY", "YESTERDAY", "TOMORROW", "THIS_YEAR", "LAST_YEAR", "NEXT_YEAR", "LAST_90_DAYS", "NEXT_90_DAYS"}
)
# Real SOQL date literals the sandbox does not compute (weeks and quarters depend on locale and fiscal setup).
_RANGE_UNSUPPORTED = re.compile(
    r"^(?:(?:LAST|THIS|NEXT)_(?:WEEK|MONTH|QUARTER|FISCAL_QUARTER|FISCAL_YEAR)"
    r"|(?:LAST|NEXT)_N_(?:WEEKS|MONTHS|QUARTERS|FISCAL_QUARTERS|FISCAL_YEARS)"
    r"|N_(?:WEEKS|MONTHS|QUARTERS|FISCAL_QUARTERS|FISCAL_YEARS)_AGO)$"
)

_MAX_INT = 2**63 - 1

_ESCAPES = {"'": "'", '"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f"}


@dataclass(frozen=True)
class Token:
    kind: str  # string, datetime, date, number, ident, op, punct, eof
    text: str
    pos: int

    @property
    def upper(self) -> str:
        return self.text.upper()


def _where(text: str, pos: int) -> str:
    row = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return f"Row:{row}:Column:{col}"


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            if text[pos] == "'":
                raise SoqlError(f"unterminated string literal at {_where(text, pos)}")
            raise SoqlError(f"unexpected token: '{text[pos]}' at {_where(text, pos)}")
        kind = m.lastgroup or ""
        if kind != "ws":
            tokens.append(Token(kind, m.group(), pos))
        pos = m.end()
    tokens.append(Token("eof", "<EOF>", len(text)))
    return tokens


def _decode_string(body: str, text: str, pos: int) -> StringLit:
    plain: list[str] = []
    like: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            plain.append(ch)
            like.append(ch)
            i += 1
            continue
        nxt = body[i + 1]  # the lexer guarantees a backslash is never last
        if nxt in _ESCAPES:
            plain.append(_ESCAPES[nxt])
            like.append("\\\\" if nxt == "\\" else _ESCAPES[nxt])
        elif nxt in "%_":
            plain.append(nxt)
            like.append("\\" + nxt)
        else:
            raise SoqlError(f"Invalid string literal: escape sequence '\\{nxt}' is not valid at {_where(text, pos)}")
        i += 2
    return StringLit("".join(plain), "".join(like))


def _parse_datetime(raw: str, text: str, pos: int) -> DateTimeLit:
    m = re.fullmatch(r"(\d{4}-\d{2}-\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:?\d{2})", raw)
    if m is None:  # pragma: no cover - the lexer only hands over matching text
        raise SoqlError(f"unexpected token: '{raw}' at {_where(text, pos)}")
    day, hh, mm, ss, frac, zone = m.groups()
    try:
        base = datetime.fromisoformat(f"{day}T{hh}:{mm}:{ss}")
    except ValueError:
        raise SoqlError(f"invalid datetime literal '{raw}' at {_where(text, pos)}") from None
    micros = int((frac or "0")[:6].ljust(6, "0"))
    if zone == "Z":
        tz: timezone = UTC
    else:
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        if offset >= timedelta(hours=24):
            raise SoqlError(f"invalid time zone offset in datetime literal '{raw}' at {_where(text, pos)}")
        tz = timezone(sign * offset)
    return DateTimeLit(base.replace(microsecond=micros, tzinfo=tz).astimezone(UTC))


# --- parser ---------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    # token helpers

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def peek(self, ahead: int = 1) -> Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def advance(self) -> Token:
        tok = self.tok
        if tok.kind != "eof":
            self.i += 1
        return tok

    def is_kw(self, *words: str) -> bool:
        return self.tok.kind == "ident" and self.tok.upper in words

    def is_punct(self, ch: str) -> bool:
        return self.tok.kind == "punct" and self.tok.text == ch

    def unexpected(self, tok: Token | None = None) -> SoqlError:
        tok = tok or self.tok
        word = tok.upper if tok.kind == "ident" else ""
        if word in _UNSUPPORTED_CLAUSES:
            return SoqlError(f"{_UNSUPPORTED_CLAUSES[word]} is not supported by the crmsweep sandbox "
                             f"(at {_where(self.text, tok.pos)})")
        return SoqlError(f"unexpected token: '{tok.text}' at {_where(self.text, tok.pos)}")

    def expect_kw(self, word: str) -> Token:
        if not self.is_kw(word):
            raise self.unexpected()
        return self.advance()

    def expect_punct(self, ch: str) -> Token:
        if not self.is_punct(ch):
            raise self.unexpected()
        return self.advance()

    def unsupported(self, what: str, tok: Token) -> SoqlError:
        return SoqlError(f"{what} is not supported by the crmsweep sandbox (at {_where(self.text, tok.pos)})")

    # grammar

    def query(self, *, nested: bool) -> Query:
        self.expect_kw("SELECT")
        fields, count_only = self.select_list()
        self.expect_kw("FROM")
        obj = self.advance()
        # "Order" is an object as well as a keyword: after FROM it names the object, as in Salesforce.
        if obj.kind != "ident" or (obj.upper in _RESERVED and obj.upper != "ORDER") or "." in obj.text:
            raise self.unexpected(obj)
        where = None
        if self.is_kw("WHERE"):
            self.advance()
            where = self.condition()
        order_by: tuple[OrderItem, ...] = ()
        if self.is_kw("ORDER"):
            self.advance()
            self.expect_kw("BY")
            order_by = self.order_list()
        limit = offset = None
        if self.is_kw("LIMIT"):
            self.advance()
            limit = self.count_number("LIMIT")
        if self.is_kw("OFFSET"):
            self.advance()
            offset = self.count_number("OFFSET")
        if not nested and self.tok.kind != "eof":
            raise self.unexpected()
        return Query(fields, count_only, obj.text, obj.pos, where, order_by, limit, offset)

    def select_list(self) -> tuple[tuple[FieldRef, ...], bool]:
        if self.is_kw("COUNT") and self.peek().kind == "punct" and self.peek().text == "(":
            start = self.advance()
            self.advance()
            if not self.is_punct(")"):
                raise self.unsupported("COUNT(field) and other aggregate queries (use COUNT())", start)
            self.advance()
            if self.is_punct(","):
                raise self.unexpected()
            return (), True
        fields = [self.select_item()]
        while self.is_punct(","):
            self.advance()
            fields.append(self.select_item())
        return tuple(fields), False

    def select_item(self) -> FieldRef:
        tok = self.tok
        if self.is_punct("("):
            raise self.unsupported("A child relationship subquery in SELECT", tok)
        if self.is_kw("TYPEOF"):
            raise self.unsupported("TYPEOF", tok)
        if tok.kind == "ident" and self.peek().kind == "punct" and self.peek().text == "(":
            raise self.unsupported(f"The function {tok.text}() in SELECT", tok)
        return self.field_ref()

    def field_ref(self) -> FieldRef:
        tok = self.tok
        if tok.kind != "ident" or tok.upper in _RESERVED:
            raise self.unexpected()
        self.advance()
        return FieldRef(tuple(tok.text.split(".")), tok.pos)

    def count_number(self, clause: str) -> int:
        tok = self.advance()
        if tok.kind != "number" or not tok.text.isdigit() or int(tok.text) > _MAX_INT:
            raise SoqlError(f"{clause} must be a non-negative whole number, got '{tok.text}' at "
                            f"{_where(self.text, tok.pos)}")
        return int(tok.text)

    def order_list(self) -> tuple[OrderItem, ...]:
        items = [self.order_item()]
        while self.is_punct(","):
            self.advance()
            items.append(self.order_item())
        return tuple(items)

    def order_item(self) -> OrderItem:
        field = self.field_ref()
        descending = False
        if self.is_kw("ASC", "DESC"):
            descending = self.advance().upper == "DESC"
        nulls_first = True  # Salesforce sorts nulls first unless told otherwise, whatever the direction
        if self.is_kw("NULLS"):
            self.advance()
            if not self.is_kw("FIRST", "LAST"):
                raise self.unexpected()
            nulls_first = self.advance().upper == "FIRST"
        return OrderItem(field, descending, nulls_first)

    def condition(self) -> Condition:
        first = self.term()
        if not self.is_kw("AND", "OR"):
            return first
        op = self.tok.upper
        operands = [first]
        while self.is_kw("AND", "OR"):
            if self.tok.upper != op:
                # SOQL has no precedence between AND and OR: mixing them needs parentheses.
                raise self.unexpected()
            self.advance()
            operands.append(self.term())
        return BoolOp(op, tuple(operands))

    def term(self) -> Condition:
        if self.is_kw("NOT"):
            self.advance()
            return Not(self.term())
        if self.is_punct("("):
            self.advance()
            inner = self.condition()
            self.expect_punct(")")
            return inner
        return self.simple()

    def simple(self) -> Condition:
        field = self.field_ref()
        tok = self.tok
        if tok.kind == "op":
            self.advance()
            op = "!=" if tok.text == "<>" else tok.text
            return Comparison(field, op, self.literal())
        if self.is_kw("LIKE"):
            self.advance()
            return Comparison(field, "LIKE", self.literal())
        negated = False
        if self.is_kw("NOT"):
            self.advance()
            negated = True
            if not self.is_kw("IN"):
                raise self.unexpected()
        if self.is_kw("IN"):
            self.advance()
            self.expect_punct("(")
            if self.is_kw("SELECT"):
                sub = self.query(nested=True)
                self.expect_punct(")")
                return SemiJoin(field, negated, sub)
            values = [self.literal()]
            while self.is_punct(","):
                self.advance()
                values.append(self.literal())
            self.expect_punct(")")
            return InList(field, negated, tuple(values))
        if self.is_kw("INCLUDES", "EXCLUDES"):
            raise self.unsupported(f"{tok.upper} (multi-select picklists)", tok)
        raise self.unexpected()

    def literal(self) -> Literal:
        tok = self.advance()
        if tok.kind == "string":
            return _decode_string(tok.text[1:-1], self.text, tok.pos)
        if tok.kind == "number":
            number = float(tok.text) if "." in tok.text else int(tok.text)
            # SQLite integers are 64-bit: compare larger literals as reals rather than fail at execution.
            return NumberLit(float(number) if abs(number) > _MAX_INT else number)
        if tok.kind == "date":
            try:
                return DateLit(date.fromisoformat(tok.text))
            except ValueError:
                raise SoqlError(f"invalid date literal '{tok.text}' at {_where(self.text, tok.pos)}") from None
        if tok.kind == "datetime":
            return _parse_datetime(tok.text, self.text, tok.pos)
        if tok.kind == "ident":
            word = tok.upper
            if word == "NULL":
                return NullLit()
            if word in ("TRUE", "FALSE"):
                return BoolLit(word == "TRUE")
            if word in _RANGE_PLAIN:
                return RangeLit(word, None)
            if word in _RANGE_WITH_N:
                if not self.is_punct(":"):
                    raise SoqlError(f"date literal {word} needs a number, as in {word}:30 "
                                    f"(at {_where(self.text, tok.pos)})")
                self.advance()
                return RangeLit(word, self.count_number(word))
            if _RANGE_UNSUPPORTED.match(word):
                raise self.unsupported(f"The date literal {word}", tok)
        raise self.unexpected(tok)


def parse_soql(text: str) -> Query:
    """Parse one SOQL statement; raises `SoqlError` (MALFORMED_QUERY) on anything outside the subset."""
    try:
        return _Parser(text).query(nested=False)
    except RecursionError:
        raise SoqlError("the query nests parentheses or NOT too deeply") from None

"""The sandbox's SOQL engine: compile a SOQL subset to SQLite SQL, and shape result rows as Salesforce JSON.

The server calls `compile_soql` for `query` / `queryAll`, runs `CompiledQuery.sql` (appending its own
` LIMIT ? OFFSET ?` for paging) and turns each row into a record with `shape_record`.

Semantics follow Salesforce's documentation, with these sandbox choices:

* Conditions are two-valued, as in SOQL: a comparison with a null field is simply false, except
  `!=` and `NOT IN`, which are true for a null field; `NOT` negates that. (Plain SQL would make the
  whole condition unknown.)
* Relative date literals (TODAY, LAST_N_DAYS:n ...) are computed from `now` in UTC. Real Salesforce
  uses the querying user's time zone, so near midnight the two can disagree by a day.
* Text comparisons, LIKE and ORDER BY on text ignore case (SQLite NOCASE: ASCII letters only).
* ORDER BY puts nulls first unless NULLS LAST is given, whatever the direction, as Salesforce does;
  ties are broken by the table's rowid so paging sees a total, stable order.
* Only one level of relationship (`Owner.IsActive`) and no polymorphic relationships (Task `Who`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from crmsweep.sandbox import ids, schema
from crmsweep.sandbox.rules import format_datetime, stored_number
from crmsweep.sandbox.soql_parse import (
    INVALID_FIELD,
    INVALID_QUERY_FILTER_OPERATOR,
    INVALID_TYPE,
    MALFORMED_QUERY,
    NUMBER_OUTSIDE_VALID_RANGE,
    BoolLit,
    BoolOp,
    Comparison,
    Condition,
    DateLit,
    DateTimeLit,
    FieldRef,
    InList,
    Literal,
    Not,
    NullLit,
    NumberLit,
    Query,
    RangeLit,
    SemiJoin,
    SoqlError,
    StringLit,
    parse_soql,
)

__all__ = ["CompiledQuery", "OutputColumn", "SoqlError", "compile_soql", "shape_record"]

MAX_OFFSET = 2000  # Salesforce refuses larger OFFSETs with NUMBER_OUTSIDE_VALID_RANGE

_TEXT_TYPES = frozenset({schema.STRING, schema.PICKLIST, schema.EMAIL, schema.PHONE, schema.TEXTAREA, schema.URL})
_ID_TYPES = frozenset({schema.ID, schema.REFERENCE})
_NUMBER_TYPES = frozenset({schema.INT, schema.DOUBLE, schema.CURRENCY, schema.PERCENT})
_REAL_TYPES = frozenset({schema.DOUBLE, schema.CURRENCY, schema.PERCENT})
_ORDERING_OPS = frozenset({"<", "<=", ">", ">="})

_NO_SUCH_COLUMN = (
    "No such column '{field}' on entity '{entity}'. If you are attempting to use a custom field, be sure to "
    "append the '__c' after the custom field name. Please reference your WSDL or the describe call for the "
    "appropriate names."
)
_BAD_RELATIONSHIP = (
    "Didn't understand relationship '{name}' in field path. If you are attempting to use a custom "
    "relationship, be sure to append the '__r' after the custom relationship name. Please reference your "
    "WSDL or the describe call for the appropriate names."
)
_NO_SUCH_OBJECT = (
    "sObject type '{name}' is not supported. If you are attempting to use a custom object, be sure to append "
    "the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names."
)


@dataclass(frozen=True)
class OutputColumn:
    path: tuple[str, ...]  # canonical (schema) names: ("Email",) or ("Owner", "IsActive")
    field: schema.Field  # the leaf field; its type drives JSON conversion
    object_name: str  # object owning the leaf field


_Param = object  # spelled out because the field `CompiledQuery.object` shadows the builtin in its body


@dataclass(frozen=True)
class CompiledQuery:
    """A query ready to run.

    Row layout of `sql` (what `shape_record` expects): the record's own Id, then one value per
    `columns` entry, then the Id of each related record, one per relationship in order of its first
    appearance in `columns`. For `count_only`, `sql` is `SELECT COUNT(*) ...` and the caller applies
    `limit` / `offset` to that count itself.
    """

    object: schema.SObject
    count_only: bool
    sql: str  # with WHERE and a total ORDER BY, without LIMIT/OFFSET
    params: tuple[_Param, ...]  # qmark parameters for sql
    columns: tuple[OutputColumn, ...]
    limit: int | None
    offset: int | None


# --- SQL fragments --------------------------------------------------------------------------------


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


@dataclass(frozen=True)
class _Sql:
    text: str
    params: tuple[object, ...] = ()


def _join(parts: Sequence[_Sql], sep: str) -> _Sql:
    return _Sql(sep.join(p.text for p in parts), tuple(itertools.chain.from_iterable(p.params for p in parts)))


@dataclass(frozen=True)
class _Resolved:
    """A field path resolved against the schema, with the SQL expression that reads it."""

    column: OutputColumn
    expr: str

    @property
    def field(self) -> schema.Field:
        return self.column.field

    @property
    def text_like(self) -> bool:
        return self.field.type in _TEXT_TYPES

    @property
    def compared(self) -> str:
        """The expression filters and ORDER BY use: numbers are stored as exact decimal text, and compared
        as the nearest doubles (a filter's literal is one too)."""
        return f"CAST({self.expr} AS REAL)" if self.field.type in _REAL_TYPES else self.expr


class _Scope:
    """One FROM clause: its table alias and the LEFT JOINs its relationship fields need."""

    def __init__(self, obj: schema.SObject, aliases: Iterator[str]) -> None:
        self.obj = obj
        self.aliases = aliases
        self.alias = next(aliases)
        self.joins: dict[str, tuple[str, schema.SObject, schema.Field]] = {}  # relationship → (alias, obj, ref)

    def resolve(self, ref: FieldRef) -> _Resolved:
        if len(ref.parts) == 1:
            leaf = self.obj.field(ref.parts[0])
            if leaf is None:
                raise SoqlError(_NO_SUCH_COLUMN.format(field=ref.parts[0], entity=self.obj.name), INVALID_FIELD)
            return _Resolved(OutputColumn((leaf.name,), leaf, self.obj.name), f"{self.alias}.{_quote(leaf.name)}")
        if len(ref.parts) > 2:
            raise SoqlError(f"'{ref.text}': relationship paths of more than one level are not supported by the "
                            "crmsweep sandbox", MALFORMED_QUERY)
        rel_name, leaf_name = ref.parts
        ref_field = self.obj.relationship(rel_name)
        if ref_field is None:
            raise SoqlError(_BAD_RELATIONSHIP.format(name=rel_name), INVALID_FIELD)
        if len(ref_field.reference_to) != 1:
            raise SoqlError(f"'{ref.text}': polymorphic relationships ({ref_field.relationship_name} can point at "
                            f"{', '.join(ref_field.reference_to)}) are not supported by the crmsweep sandbox",
                            INVALID_FIELD)
        target = schema.get_object(ref_field.reference_to[0])
        if target is None:  # pragma: no cover - the schema only references objects it defines
            raise SoqlError(_BAD_RELATIONSHIP.format(name=rel_name), INVALID_FIELD)
        leaf = target.field(leaf_name)
        if leaf is None:
            raise SoqlError(_NO_SUCH_COLUMN.format(field=leaf_name, entity=target.name), INVALID_FIELD)
        alias = self.join_alias(ref_field, target)
        return _Resolved(
            OutputColumn((ref_field.relationship_name or rel_name, leaf.name), leaf, target.name),
            f"{alias}.{_quote(leaf.name)}",
        )

    def join_alias(self, ref_field: schema.Field, target: schema.SObject) -> str:
        key = ref_field.name
        if key not in self.joins:
            self.joins[key] = (next(self.aliases), target, ref_field)
        return self.joins[key][0]

    def from_clause(self) -> str:
        parts = [f"{_quote(self.obj.name)} {self.alias}"]
        for alias, target, ref_field in self.joins.values():
            parts.append(f"LEFT JOIN {_quote(target.name)} {alias} "
                         f"ON {alias}.{_quote('Id')} = {self.alias}.{_quote(ref_field.name)}")
        return " ".join(parts)

    def not_deleted(self) -> str | None:
        return f"{self.alias}.{_quote('IsDeleted')} = 0" if self.obj.has_is_deleted else None


# --- literals -------------------------------------------------------------------------------------

_TYPE_WORDS = {
    schema.BOOLEAN: "boolean", schema.DATE: "date", schema.DATETIME: "dateTime", schema.INT: "int",
    schema.DOUBLE: "double", schema.CURRENCY: "currency", schema.PERCENT: "percent", schema.ID: "id",
    schema.REFERENCE: "reference",
}


def _wrong_type(field: schema.Field) -> SoqlError:
    word = _TYPE_WORDS.get(field.type, "string")
    quoted = field.type in _TEXT_TYPES or field.type in _ID_TYPES
    return SoqlError(f"value of filter criterion for field '{field.name}' must be of type {word} and should "
                     f"{'' if quoted else 'not '}be enclosed in quotes", INVALID_FIELD)


def _scalar(field: schema.Field, lit: Literal) -> object:
    """The stored form of a single (non-null, non-range) literal compared with `field`."""
    kind = field.type
    if kind in _TEXT_TYPES or kind in _ID_TYPES:
        if isinstance(lit, StringLit):
            return lit.value
    elif kind == schema.BOOLEAN:
        if isinstance(lit, BoolLit):
            return int(lit.value)
    elif kind in _NUMBER_TYPES:
        if isinstance(lit, NumberLit):
            return lit.value
    elif kind == schema.DATE:
        if isinstance(lit, DateLit):
            return lit.value.isoformat()
    elif kind == schema.DATETIME and isinstance(lit, DateTimeLit):
        return format_datetime(lit.value)
    raise _wrong_type(field)


def _id_literal(field: schema.Field, lit: Literal) -> Literal:
    """Ids as the platform reads them: a 15-character id means its 18-character form, '' means null."""
    if field.type not in _ID_TYPES or not isinstance(lit, StringLit):
        return lit
    if lit.value == "":
        return NullLit()
    full = ids.normalize(lit.value)
    if full is None:
        raise SoqlError(f"invalid ID field: {lit.value}", INVALID_QUERY_FILTER_OPERATOR)
    return StringLit(full, full)


def _year_start(year: int) -> date:
    return date(year, 1, 1)


def _year_end(year: int) -> date:
    return date(year, 12, 31)


def date_range(lit: RangeLit, now: datetime) -> tuple[date, date]:
    """First and last day (inclusive) of a relative date literal, in UTC.

    LAST_N_DAYS:n includes today (n+1 days); NEXT_N_DAYS:n starts tomorrow; LAST_N_YEARS:n and
    NEXT_N_YEARS:n exclude the current year, as Salesforce documents.
    """
    today = (now if now.tzinfo is None else now.astimezone(UTC)).date()
    year = today.year
    n = lit.n or 0
    day = timedelta(days=1)
    ranges: dict[str, tuple[date, date]] = {
        "TODAY": (today, today),
        "YESTERDAY": (today - day, today - day),
        "TOMORROW": (today + day, today + day),
        "LAST_N_DAYS": (today - n * day, today),
        "NEXT_N_DAYS": (today + day, today + n * day),
        "N_DAYS_AGO": (today - n * day, today - n * day),
        "LAST_90_DAYS": (today - 90 * day, today),
        "NEXT_90_DAYS": (today + day, today + 90 * day),
        "THIS_YEAR": (_year_start(year), _year_end(year)),
        "LAST_YEAR": (_year_start(year - 1), _year_end(year - 1)),
        "NEXT_YEAR": (_year_start(year + 1), _year_end(year + 1)),
        "LAST_N_YEARS": (_year_start(year - n), _year_end(year - 1)),
        "NEXT_N_YEARS": (_year_start(year + 1), _year_end(year + n)),
        "N_YEARS_AGO": (_year_start(year - n), _year_end(year - n)),
    }
    return ranges[lit.name]


def _checked_range(lit: RangeLit, now: datetime) -> tuple[date, date]:
    try:
        return date_range(lit, now)
    except (OverflowError, ValueError):
        raise SoqlError(f"the date literal {lit.name}:{lit.n} reaches outside the calendar",
                        NUMBER_OUTSIDE_VALID_RANGE) from None


# --- conditions -----------------------------------------------------------------------------------


class _ConditionCompiler:
    def __init__(self, scope: _Scope, now: datetime, *, allow_semi_join: bool, compile_sub: _SubCompiler) -> None:
        self.scope = scope
        self.now = now
        self.allow_semi_join = allow_semi_join
        self.compile_sub = compile_sub

    def compile(self, cond: Condition) -> _Sql:
        if isinstance(cond, BoolOp):
            return _wrap(_join([self.compile(c) for c in cond.operands], f" {cond.op} "))
        if isinstance(cond, Not):
            inner = self.compile(cond.operand)
            return _Sql(f"NOT ({inner.text})", inner.params)
        if isinstance(cond, Comparison):
            return self.comparison(cond)
        if isinstance(cond, InList):
            return self.in_list(cond)
        return self.semi_join(cond)

    def comparison(self, cond: Comparison) -> _Sql:
        col = self.scope.resolve(cond.field)
        value, op, c = _id_literal(col.field, cond.value), cond.op, col.compared
        if isinstance(value, NullLit):
            if op == "=":
                return _Sql(f"{c} IS NULL")
            if op == "!=":
                return _Sql(f"{c} IS NOT NULL")
            raise SoqlError(f"null can only be compared with = or != (field '{col.field.name}')", INVALID_FIELD)
        if op == "LIKE":
            if not col.text_like:
                raise SoqlError(f"LIKE can only be used on text fields; '{col.field.name}' is of type "
                                f"{col.field.type}", INVALID_FIELD)
            if not isinstance(value, StringLit):
                raise _wrong_type(col.field)
            return _Sql(f"({c} IS NOT NULL AND {c} LIKE ? ESCAPE '\\')", (value.like_pattern,))
        if isinstance(value, RangeLit):
            return self.range_comparison(col, op, value)
        if col.field.type == schema.BOOLEAN and op in _ORDERING_OPS:
            raise SoqlError(f"operator {op} cannot be used on boolean field '{col.field.name}'", INVALID_FIELD)
        param = _scalar(col.field, value)
        collate = " COLLATE NOCASE" if col.text_like else ""
        if op == "!=":
            return _Sql(f"({c} IS NULL OR {c} <> ?{collate})", (param,))
        return _Sql(f"({c} IS NOT NULL AND {c} {op} ?{collate})", (param,))

    def range_comparison(self, col: _Resolved, op: str, lit: RangeLit) -> _Sql:
        first, last = _checked_range(lit, self.now)
        if col.field.type == schema.DATE:
            start: str = first.isoformat()
            end: str = last.isoformat()
        elif col.field.type == schema.DATETIME:
            start = f"{first.isoformat()}T00:00:00.000+0000"
            end = f"{last.isoformat()}T23:59:59.999+0000"
        else:
            raise SoqlError(f"the date literal {lit.name} can only be compared with a date or dateTime field, "
                            f"not '{col.field.name}'", INVALID_FIELD)
        c = col.expr
        if op == "=":
            return _Sql(f"({c} IS NOT NULL AND {c} >= ? AND {c} <= ?)", (start, end))
        if op == "!=":
            return _Sql(f"({c} IS NULL OR {c} < ? OR {c} > ?)", (start, end))
        bound = {"<": start, "<=": end, ">": end, ">=": start}[op]
        return _Sql(f"({c} IS NOT NULL AND {c} {op} ?)", (bound,))

    def in_list(self, cond: InList) -> _Sql:
        col = self.scope.resolve(cond.field)
        c = col.compared
        values = [_id_literal(col.field, v) for v in cond.values]
        has_null = any(isinstance(v, NullLit) for v in values)
        params: list[object] = []
        for v in values:
            if isinstance(v, NullLit):
                continue
            if isinstance(v, RangeLit):
                raise SoqlError(f"the date literal {v.name} cannot be used in an IN list in the crmsweep sandbox",
                                MALFORMED_QUERY)
            params.append(_scalar(col.field, v))
        collate = " COLLATE NOCASE" if col.text_like else ""
        marks = ", ".join("?" * len(params))
        if cond.negated:
            if not params:
                return _Sql(f"{c} IS NOT NULL")
            # A listed null excludes null fields; otherwise a null field is "not in" any list of values.
            null_test = f"{c} IS NOT NULL AND" if has_null else f"{c} IS NULL OR"
            return _Sql(f"({null_test} {c}{collate} NOT IN ({marks}))", tuple(params))
        member = f"({c} IS NOT NULL AND {c}{collate} IN ({marks}))" if params else "0"
        return _Sql(f"({c} IS NULL OR {member})" if has_null else member, tuple(params))

    def semi_join(self, cond: SemiJoin) -> _Sql:
        if not self.allow_semi_join:
            raise SoqlError("nested semi-join subqueries are not supported", MALFORMED_QUERY)
        col = self.scope.resolve(cond.field)
        if col.field.type not in _ID_TYPES:
            raise SoqlError(f"the left operand of a semi-join must be an Id or reference field, not "
                            f"'{col.field.name}'", INVALID_FIELD)
        sub = self.compile_sub(cond.subquery)
        c = col.expr
        if cond.negated:
            return _Sql(f"({c} IS NULL OR {c} NOT IN ({sub.text}))", sub.params)
        return _Sql(f"({c} IS NOT NULL AND {c} IN ({sub.text}))", sub.params)


class _SubCompiler:
    """Compiles semi-join subqueries, sharing the alias counter of the outer query."""

    def __init__(self, aliases: Iterator[str], now: datetime) -> None:
        self.aliases = aliases
        self.now = now

    def __call__(self, query: Query) -> _Sql:
        if query.count_only or len(query.fields) != 1:
            raise SoqlError("a semi-join subquery must select exactly one Id or reference field", MALFORMED_QUERY)
        if query.order_by or query.limit is not None or query.offset is not None:
            raise SoqlError("ORDER BY, LIMIT and OFFSET are not allowed in a semi-join subquery", MALFORMED_QUERY)
        scope = _Scope(_object(query, schema.get_object), self.aliases)
        selected = scope.resolve(query.fields[0])
        if selected.field.type not in _ID_TYPES:
            raise SoqlError(f"a semi-join subquery must select an Id or reference field, not "
                            f"'{selected.field.name}'", INVALID_FIELD)
        where = [_Sql(t) for t in (scope.not_deleted(),) if t]
        if query.where is not None:
            conds = _ConditionCompiler(scope, self.now, allow_semi_join=False, compile_sub=self)
            where.append(_wrap(conds.compile(query.where)))
        # NOT IN against a list holding NULL is never true in SQL: keep nulls out of the subquery.
        where.append(_Sql(f"{selected.expr} IS NOT NULL"))
        body = _join(where, " AND ")
        return _Sql(f"SELECT {selected.expr} FROM {scope.from_clause()} WHERE {body.text}", body.params)


def _wrap(sql: _Sql) -> _Sql:
    return _Sql(f"({sql.text})", sql.params)


def _object(query: Query, objects: Callable[[str], schema.SObject | None]) -> schema.SObject:
    obj = objects(query.object_name)
    if obj is None:
        raise SoqlError(_NO_SUCH_OBJECT.format(name=query.object_name), INVALID_TYPE)
    return obj


# Objects Salesforce will only query with an id filter on one of these fields (= one id or IN ids).
_REQUIRED_ID_FILTERS = {"ContentDocumentLink": ("ContentDocumentId", "LinkedEntityId")}
_ID_FILTER_MESSAGE = (
    "Implementation restriction: {name} requires a filter by a single Id on {fields} using the equals "
    "operator or multiple Id's using the IN operator."
)


def _check_filter_restriction(obj: schema.SObject, query: Query) -> None:
    """Refuse a query on an object whose documented implementation restriction it breaks."""
    fields = _REQUIRED_ID_FILTERS.get(obj.name)
    if fields is None:
        return
    wanted = {f.lower() for f in fields}
    for cond in _top_level_and(query.where):
        ref = cond.field if isinstance(cond, Comparison | InList) else None
        if ref is None or len(ref.parts) != 1 or ref.parts[0].lower() not in wanted:
            continue
        if (isinstance(cond, Comparison) and cond.op == "=") or (isinstance(cond, InList) and not cond.negated):
            return
    raise SoqlError(_ID_FILTER_MESSAGE.format(name=obj.name, fields=" or ".join(fields)), MALFORMED_QUERY)


def _top_level_and(cond: Condition | None) -> list[Condition]:
    """The conditions that must all hold: the operands of top-level ANDs, flattened."""
    if cond is None:
        return []
    if isinstance(cond, BoolOp) and cond.op == "AND":
        return [c for operand in cond.operands for c in _top_level_and(operand)]
    return [cond]


# --- public API -----------------------------------------------------------------------------------


def compile_soql(
    text: str,
    *,
    include_deleted: bool,
    now: datetime,
    objects: Callable[[str], schema.SObject | None] = schema.get_object,
) -> CompiledQuery:
    """Compile one SOQL statement for the SQLite store.

    `include_deleted` is True for `queryAll` (recycle-bin rows included). `now` anchors relative
    date literals; they are computed in UTC, whereas real Salesforce uses the user's time zone.
    Raises `SoqlError` with MALFORMED_QUERY, INVALID_FIELD, INVALID_TYPE, INVALID_QUERY_FILTER_OPERATOR
    (malformed id literal) or NUMBER_OUTSIDE_VALID_RANGE (OFFSET over 2000).
    `objects` resolves the FROM object (the store's, with the org's custom fields; the Tooling API's own).
    """
    query = parse_soql(text)
    obj = _object(query, objects)
    _check_filter_restriction(obj, query)
    if query.offset is not None and query.offset > MAX_OFFSET:
        raise SoqlError(f"Maximum SOQL offset allowed is {MAX_OFFSET}", NUMBER_OUTSIDE_VALID_RANGE)
    aliases = (f"t{i}" for i in itertools.count())
    scope = _Scope(obj, aliases)

    columns: list[_Resolved] = []
    seen: set[tuple[str, ...]] = set()
    for ref in query.fields:
        resolved = scope.resolve(ref)
        if resolved.column.path in seen:
            raise SoqlError(f"duplicate field selected: {'.'.join(resolved.column.path)}", MALFORMED_QUERY)
        seen.add(resolved.column.path)
        columns.append(resolved)

    where: list[_Sql] = []
    if not include_deleted and (deleted_test := scope.not_deleted()):
        where.append(_Sql(deleted_test))
    if query.where is not None:
        conds = _ConditionCompiler(scope, now, allow_semi_join=True, compile_sub=_SubCompiler(aliases, now))
        where.append(_wrap(conds.compile(query.where)))
    where_sql = _join(where, " AND ")
    where_text = f" WHERE {where_sql.text}" if where else ""

    if query.count_only:
        sql = f"SELECT COUNT(*) FROM {scope.from_clause()}{where_text}"
        return CompiledQuery(obj, True, sql, where_sql.params, (), query.limit, query.offset)

    order_terms = []
    for item in query.order_by:
        col = scope.resolve(item.field)
        collate = " COLLATE NOCASE" if col.text_like else ""
        direction = "DESC" if item.descending else "ASC"
        nulls = "FIRST" if item.nulls_first else "LAST"
        order_terms.append(f"{col.compared}{collate} {direction} NULLS {nulls}")
    order_terms.append(f"{scope.alias}.rowid")

    select = [f"{scope.alias}.{_quote('Id')}", *(c.expr for c in columns)]
    related = _relationship_order(tuple(c.column for c in columns))
    for rel in related:
        ref_field = obj.relationship(rel)
        assert ref_field is not None  # resolved above
        select.append(f"{scope.joins[ref_field.name][0]}.{_quote('Id')}")
    # Joins may have been added by ORDER BY after WHERE was built; FROM is rendered last so it has them all.
    # Unique output names, so the server may wrap this in `SELECT * FROM (...)` or CREATE TABLE ... AS.
    select_list = ", ".join(f"{expr} AS c{i}" for i, expr in enumerate(select))
    sql = (f"SELECT {select_list} FROM {scope.from_clause()}{where_text} "
           f"ORDER BY {', '.join(order_terms)}")
    return CompiledQuery(obj, False, sql, where_sql.params, tuple(c.column for c in columns),
                         query.limit, query.offset)


def _relationship_order(columns: Sequence[OutputColumn]) -> list[str]:
    return list(dict.fromkeys(c.path[0] for c in columns if len(c.path) == 2))


def _json_value(field: schema.Field, value: object) -> object:
    if value is None:
        return None
    if field.type == schema.BOOLEAN:
        return bool(value)
    if field.type == schema.INT:
        return int(value)  # type: ignore[call-overload]
    if field.type in _REAL_TYPES:
        return stored_number(value)
    return value


def shape_record(query: CompiledQuery, row: Sequence[object], api_version: str) -> dict[str, Any]:
    """One row of `query.sql` as the Salesforce REST record (fields in SELECT order)."""
    version = api_version.removeprefix("v")

    def attributes(object_name: str, record_id: object) -> dict[str, Any]:
        return {"type": object_name, "url": f"/services/data/v{version}/sobjects/{object_name}/{record_id}"}

    record: dict[str, Any] = {"attributes": attributes(query.object.name, row[0])}
    first_related = 1 + len(query.columns)
    related_ids = {rel: row[first_related + i] for i, rel in enumerate(_relationship_order(query.columns))}
    for i, col in enumerate(query.columns):
        value = _json_value(col.field, row[1 + i])
        if len(col.path) == 1:
            record[col.path[0]] = value
            continue
        rel, leaf = col.path
        if rel not in record:
            rel_id = related_ids[rel]
            record[rel] = None if rel_id is None else {"attributes": attributes(col.object_name, rel_id)}
        if record[rel] is not None:
            record[rel][leaf] = value
    return record

"""Plain rows for the hot paths: statements built with SQLAlchemy, run on the driver on SQLite.

Every request authenticates, and most poll a task or submit one: a handful of indexed
statements each. On SQLite such a statement takes 3 or 4 µs in the driver and about 25 µs
through ``Connection.execute`` (execution context, events, result metadata), plus the pool's
checkout and reset around it: most of a status poll's CPU. So on SQLite these statements
are compiled once and run straight on the driver's connection, with the type processing
SQLAlchemy itself would apply (dates, JSON, booleans) and its exception classes. On a
database server the network round trip dwarfs that cost, and they run through SQLAlchemy
like every other statement.

The statements are SQLAlchemy Core, so they are written once for both databases. Two things
the driver path does not do, and refuses rather than gets wrong: an ``IN`` list expanded at
execution time (write ``or_`` of equalities), and a write that leaves a column to its
Python-side default (give every column, as ``models.column_values`` does).
"""

from __future__ import annotations

import sqlite3
from collections import namedtuple
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Connection, Dialect, Executable, Insert, Update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.compiler import SQLCompiler

from wavforge.errors import InvalidRequest

Params = Mapping[str, Any]
# A row: a named tuple of the statement's columns on the driver, SQLAlchemy's ``Row`` else.
PlainRow = Any
REQUIRED = object()  # a parameter the caller must give (``bindparam("name")``)
Processor = Callable[[Any], Any] | None


class Rows(Protocol):
    """Statements on plain rows: a row has its columns as attributes, as an entity does."""

    def first(self, statement: Executable, params: Params) -> PlainRow | None: ...

    def scalar(self, statement: Executable, params: Params) -> Any: ...

    def run(self, statement: Executable, params: Params) -> int:
        """Run a statement that returns no rows; the number of rows it matched."""
        ...


class EngineRows:
    """:class:`Rows` through SQLAlchemy, for a database server."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def first(self, statement: Executable, params: Params) -> PlainRow | None:
        return self._connection.execute(statement, params).first()

    def scalar(self, statement: Executable, params: Params) -> Any:
        return self._connection.scalar(statement, params)

    def run(self, statement: Executable, params: Params) -> int:
        return int(self._connection.execute(statement, params).rowcount)


class DriverRows:
    """:class:`Rows` on a ``sqlite3`` connection, with statements from ``plans``."""

    def __init__(self, connection: sqlite3.Connection, plans: Plans) -> None:
        self._connection = connection
        self._plans = plans

    def first(self, statement: Executable, params: Params) -> PlainRow | None:
        plan = self._plans.of(statement, params)
        row = self._cursor(plan, params).fetchone()
        return None if row is None else plan.row(row)

    def scalar(self, statement: Executable, params: Params) -> Any:
        row = self.first(statement, params)
        return None if row is None else row[0]

    def run(self, statement: Executable, params: Params) -> int:
        plan = self._plans.of(statement, params)
        return self._cursor(plan, params).rowcount

    def _cursor(self, plan: Plan, params: Params) -> sqlite3.Cursor:
        values = plan.values(params)
        cursor: sqlite3.Cursor = driver_call(self._connection.execute, plan.sql, values)
        return cursor


def driver_call(call: Callable[..., Any], *args: Any) -> Any:
    """A call into ``sqlite3``, its errors raised as SQLAlchemy's (``IntegrityError``, ...),
    so that callers catch one family of exceptions whichever path ran the statement."""
    try:
        return call(*args)
    except sqlite3.Error as error:
        statement = args[0] if args and isinstance(args[0], str) else ""
        raise DBAPIError.instance(statement, None, error, sqlite3.Error) from error


@dataclass(frozen=True)
class Plan:
    """One statement compiled for the driver: its SQL, how to bind, how to read a row."""

    sql: str
    binds: Sequence[tuple[str, Any, Processor]]  # name, fixed value or REQUIRED, processor
    make_row: Callable[[Sequence[Any]], Any] | None
    results: Sequence[tuple[int, Processor]]  # columns whose values need processing

    def values(self, params: Params) -> tuple[Any, ...]:
        values = []
        for name, fixed, process in self.binds:
            value = params.get(name, fixed)
            if value is REQUIRED:
                raise KeyError(f"a value is required for the parameter {name!r}")
            values.append(value if process is None else process(value))
        refuse_nul(values)
        return tuple(values)

    def row(self, raw: Sequence[Any]) -> Any:
        if self.results:
            raw = list(raw)
            for index, process in self.results:
                raw[index] = process(raw[index])  # type: ignore[misc]
        assert self.make_row is not None, "a statement without columns returns no rows"
        return self.make_row(raw)


class Plans:
    """Compiled statements by statement, built on first use (statements are built once, at
    import, so this holds one plan for each)."""

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self._plans: dict[object, Plan] = {}

    def of(self, statement: Executable, params: Params) -> Plan:
        key: object = statement
        if isinstance(statement, Insert | Update):
            key = (statement, tuple(params))  # compiled for the columns given, as SQLAlchemy does
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = self._compile(statement, params)
        return plan

    def _compile(self, statement: Executable, params: Params) -> Plan:
        keys = list(params) if isinstance(statement, Insert | Update) else None
        compiled = statement.compile(dialect=self._dialect, column_keys=keys)  # type: ignore[attr-defined]
        assert isinstance(compiled, SQLCompiler)
        if "POSTCOMPILE" in compiled.string:
            raise ValueError(f"expanding parameters cannot run on the driver: {compiled.string}")
        names = compiled.positiontup or []
        if isinstance(statement, Insert | Update) and not set(names) <= set(params):
            # A column's Python-side default, which SQLAlchemy fills in at execution.
            raise ValueError(f"a write on the driver needs every column it sets: {sorted(names)}")
        binds = [
            (
                name,
                REQUIRED if compiled.binds[name].required else compiled.binds[name].effective_value,
                compiled.binds[name].type.dialect_impl(self._dialect).bind_processor(self._dialect),
            )
            for name in names
        ]
        return Plan(compiled.string, binds, *self._reading(statement))

    def _reading(
        self, statement: Executable
    ) -> tuple[Callable[[Sequence[Any]], Any] | None, list[tuple[int, Processor]]]:
        columns = list(getattr(statement, "selected_columns", ()))
        if not columns or isinstance(statement, Insert):
            return None, []
        row_type = namedtuple("row", [column.key for column in columns], rename=True)  # type: ignore[misc]
        processors = [
            column.type.dialect_impl(self._dialect).result_processor(self._dialect, None)
            for column in columns
        ]
        results = [(index, process) for index, process in enumerate(processors) if process]
        return row_type._make, results


def refuse_nul(values: Iterable[object]) -> None:
    """A 400 for text with a NUL character among a statement's parameters, whichever
    database: PostgreSQL cannot store one (psycopg raises, which was a 500), and SQLite
    would keep what PostgreSQL refuses."""
    if any(isinstance(value, str) and "\x00" in value for value in values):
        raise InvalidRequest("text must not contain NUL (0x00) characters")

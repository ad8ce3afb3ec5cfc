"""Open the database named by a URL: SQLite in WAL mode, or PostgreSQL, with the same tables."""

from __future__ import annotations

import fcntl
import functools
import operator
import os
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

from sqlalchemy import (
    Connection,
    Engine,
    Float,
    String,
    Table,
    create_engine,
    event,
    exc,
    func,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url

T = TypeVar("T")
#: The databases Omni runs on.
SUPPORTED = ("sqlite", "postgresql")


#: Connections kept for concurrent requests; a request waits at most 10 s for one.
POOL: dict[str, int] = {"pool_size": 20, "max_overflow": 20, "pool_timeout": 10}


class UnsupportedDatabase(ValueError):
    """A database URL for a database Omni does not run on."""


def open_engine(url: str, *, create: bool = True, migrate: bool = True) -> Engine:
    """An engine for `url`, with the schema created when `create` is true: a new store at
    the newest revision, an older one upgraded (`service.storage.migrate`), or, with
    `migrate` false, refused with `SchemaOutdated`.

    Raises `UnsupportedDatabase` for a database other than SQLite or PostgreSQL,
    `sqlalchemy.exc.ArgumentError` for a URL that does not parse, and
    `sqlalchemy.exc.OperationalError` when the server cannot be reached.

    SQLite files get WAL journaling (readers never block the writer), a busy timeout and
    their parent folder created; PostgreSQL URLs are used as they are.
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED:
        raise UnsupportedDatabase(
            f"Omni stores data in SQLite or PostgreSQL; '{backend}' URLs are not supported"
        )
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, **POOL)
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, **POOL)
        _ping_when_idle(engine)
    if create:
        from service.storage.migrate import ensure

        try:
            ensure(engine, upgrade=migrate)
        except Exception:
            engine.dispose()
            raise
    return engine


@functools.lru_cache(maxsize=16)
def for_reads(engine: Engine) -> Engine:
    """The engine of a request that only reads. On PostgreSQL its connections run each
    statement on its own (autocommit): under READ COMMITTED a statement in a transaction
    sees its own snapshot anyway, so the answer is the same, without a BEGIN and a
    ROLLBACK round trip around every request. SQLite's engine as it is (no round trips).
    One per engine (kept: a request asks for it often)."""
    if engine.dialect.name != "postgresql":
        return engine
    return engine.execution_options(isolation_level="AUTOCOMMIT")


#: A pooled connection unused for this long is pinged before it is handed out.
PING_IDLE_SECONDS = 5.0


def _ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection before handing it out only when it sat unused for
    PING_IDLE_SECONDS (a server restart or a firewall drops idle connections): under
    load, connections go straight back to work, and a ping is a round trip on every
    request (a third of a churn answer's on PostgreSQL). A connection that fails its ping
    is replaced, as with `pool_pre_ping`; one that breaks in use is reported by its
    request, and the pool is replaced (SQLAlchemy's handling of a disconnect)."""

    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is not None and time.monotonic() - since < PING_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as error:
            raise exc.DisconnectionError(f"a pooled connection failed its ping: {error}") from error


@contextmanager
def begin_write(engine: Engine) -> Iterator[Connection]:
    """`engine.begin()` for a write that comes often (the events' intake). On a SQLite
    file, writers from every process queue on a lock file first: SQLite lets one writer
    in at a time, and one that finds the database busy sleeps 1, 2, 5, 10... ms between
    tries, where a writer waiting on the lock file is woken as soon as it is free.
    PostgreSQL writers go straight in."""
    path = _lock_path(engine)
    if path is None:
        with engine.begin() as conn:
            yield conn
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with engine.begin() as conn:
            yield conn
    finally:
        os.close(fd)  # closing releases the lock


@contextmanager
def pipelined(conn: Connection) -> Iterator[None]:
    """On PostgreSQL, the statements run inside go to the server together (psycopg's
    pipeline mode): they are sent as they are made and the client waits for the server
    only where it needs an answer (a read's rows, an INSERT's RETURNING) and at the end.
    One event's intake went from ten round trips to four.

    Inside, read only through `fetch_all` or `many_returning`: a SELECT run by SQLAlchemy
    fails (it asks for the result's columns before the server has answered), and a
    statement's row count is not known until the end. An error inside is raised at the
    next wait at the latest, within the caller's transaction, so nothing is half-applied.
    SQLite runs the statements as they come (no round trips)."""
    if dialect_of(conn) != "postgresql":
        yield
        return
    with conn.connection.driver_connection.pipeline():  # type: ignore[union-attr]
        yield


def _lock_path(engine: Engine) -> str | None:
    """The lock file of a SQLite file store (None: PostgreSQL, or SQLite in memory)."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return f"{url.database}-writers.lock"


#: Pages written to a SQLite store's log before it is copied into the database.
CHECKPOINT_PAGES = 10_000


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    # The log is copied into the database every 10,000 pages (40 MB) written, not every
    # 1,000: a page written again meanwhile (the end of the events table and of its time
    # index, an active person's state rows) is copied once. Events at 100 a request: 10%
    # more requests a second; a checkpoint is a longer pause when it comes (p99).
    cursor.execute(f"PRAGMA wal_autocheckpoint={CHECKPOINT_PAGES}")
    cursor.close()


def dialect_of(conn: Connection) -> str:
    """'sqlite' or 'postgresql'; raises `UnsupportedDatabase` for any other database."""
    name = conn.dialect.name
    if name not in SUPPORTED:
        raise UnsupportedDatabase(f"Omni stores data in SQLite or PostgreSQL, not {name}")
    return name


def insert_into(conn: Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT for `table` in the connection's dialect, so that `on_conflict_do_nothing`
    and `on_conflict_do_update` (and `excluded`) work on SQLite and PostgreSQL alike."""
    if dialect_of(conn) == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


#: Statements built once per dialect (`once`).
_BUILT: dict[tuple[str, Callable[[Connection], Any]], Any] = {}


def once(conn: Connection, build: Callable[[Connection], T]) -> T:
    """The statement `build(conn)` makes, built once per dialect and kept: what runs per
    request or per event batch, whose building (an upsert's `excluded` columns, its cache
    key) cost several times what running it did. `build` must be a module-level function
    whose statement depends on nothing but the dialect (values go in as parameters)."""
    key = (dialect_of(conn), build)
    found = _BUILT.get(key)
    if found is None:
        found = _BUILT[key] = build(conn)
    return cast(T, found)


@dataclass(frozen=True)
class _DriverStatement:
    """A statement as the driver runs it: its SQL, with parameters by name, and what a
    row needs before the driver takes it."""

    sql: str
    defaults: Mapping[str, Any]  # the statement's own values (a literal in its WHERE)
    processors: Mapping[str, Callable[[Any], Any]]  # types that convert values on the way
    many: _ManyRows | None  # an INSERT of one row, as one of many rows (SQLite)
    arrays: _Arrays | None = None  # an INSERT of one row, as arrays of many (PostgreSQL)

    def as_arrays(self, rows: Sequence[Mapping[str, Any]]) -> _Arrays | None:
        """The statement for `rows` as one of arrays, when it has one that takes them."""
        arrays = self.arrays
        return arrays if arrays is not None and len(rows) > 1 and arrays.unique(rows) else None

    def parameters(self, rows: Sequence[Mapping[str, Any]]) -> Sequence[Mapping[str, Any]]:
        if not self.defaults and not self.processors:
            return rows
        out = []
        for row in rows:
            values = {**self.defaults, **row}
            for name, process in self.processors.items():
                if values[name] is not None:
                    values[name] = process(values[name])
            out.append(values)
        return out

    def many_rows(self, rows: Sequence[Mapping[str, Any]]) -> tuple[str, list[Any]]:
        """The INSERT with its VALUES group repeated for each of `rows`, and its parameters:
        by position (SQLite checks each named parameter against all before it when it
        prepares a statement, which for a thousand of them costs milliseconds)."""
        assert self.many is not None
        take = operator.itemgetter(*self.many.names)
        if len(self.many.names) == 1:  # itemgetter of one name gives the value itself
            return self.many.sql(len(rows)), [take(row) for row in rows]
        return self.many.sql(len(rows)), [v for row in rows for v in take(row)]


@dataclass(frozen=True)
class _ManyRows:
    """An INSERT of one row split around its VALUES group, with the group's parameter
    names in order: what repeating the group for many rows needs."""

    head: str
    names: tuple[str, ...]
    tail: str

    @classmethod
    def of(cls, sql: str) -> _ManyRows | None:
        found = _VALUES.search(sql)
        if found is None:
            return None
        names = tuple(name[1:] for name in _PLACEHOLDER.findall(found.group(1)))
        return cls(sql[: found.start(1)], names, sql[found.end(1) :])

    def sql(self, n: int) -> str:
        """The INSERT of `n` rows, with positional parameters."""
        return _repeated(self, n)


@functools.lru_cache(maxsize=256)
def _repeated(many: _ManyRows, n: int) -> str:
    group = f"({', '.join('?' * len(many.names))})"
    return f"{many.head}{', '.join([group] * n)}{many.tail}"


@dataclass(frozen=True)
class _Arrays:
    """An INSERT of one row on PostgreSQL as one statement for many rows: each column's
    values go as one array and `unnest` makes the rows. psycopg's `executemany` sends
    every row as its own message, built in Python (half of a 100-event request's CPU);
    here each statement is sent once, whatever the number of rows.

    An upsert (ON CONFLICT ... DO UPDATE) may not meet one key twice in a statement:
    rows that do are sent by `executemany` instead (`unique`)."""

    sql: str
    names: tuple[str, ...]
    floats: tuple[bool, ...]  # columns of floats: ints among their values made floats
    key: tuple[str, ...] | None  # the DO UPDATE's conflict columns (None: DO NOTHING, none)

    @classmethod
    def of(cls, sql: str, binds: Mapping[str, Any], dialect: Any) -> _Arrays | None:
        found = _PG_VALUES.search(sql)
        if found is None:
            return None
        names = tuple(_PG_PLACEHOLDER.findall(found.group(1)))
        if any(name not in binds for name in names):
            return None
        kinds = [binds[name].type for name in names]
        cast = [
            "text" if isinstance(kind, String) else kind.compile(dialect=dialect) for kind in kinds
        ]  # text: a cast to VARCHAR(n) would cut a longer value where the INSERT refuses it
        arrays = ", ".join(f"%({n})b::{t}[]" for n, t in zip(names, cast, strict=True))
        update = _PG_CONFLICT.search(sql)
        if update is None and "DO UPDATE" in sql:  # a conflict target not by columns
            return None
        key = tuple(k.strip().strip('"') for k in update.group(1).split(",")) if update else None
        unnested = f"{sql[: found.start()]}SELECT * FROM unnest({arrays}){sql[found.end() :]}"
        floats = tuple(isinstance(kind, Float) for kind in kinds)
        return cls(unnested, names, floats, key)

    def unique(self, rows: Sequence[Mapping[str, Any]]) -> bool:
        if self.key is None:
            return True
        return len(set(map(operator.itemgetter(*self.key), rows))) == len(rows)

    def parameters(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
        out = {}
        for name, is_float in zip(self.names, self.floats, strict=True):
            values = [row[name] for row in rows]
            if is_float:
                values = [None if v is None else float(v) for v in values]
            out[name] = values
        return out


#: A placeholder as SQLAlchemy writes it for psycopg, with the cast it may add (::VARCHAR).
_PG_ONE = r"%\(\w+\)s(?:::\w+(?: \w+)*(?:\(\d+(?:, ?\d+)?\))?)?"
_PG_VALUES = re.compile(rf"VALUES \(({_PG_ONE}(?:, {_PG_ONE})*)\)")
_PG_PLACEHOLDER = re.compile(r"%\((\w+)\)s")
_PG_CONFLICT = re.compile(r"ON CONFLICT \(([^)]*)\) DO UPDATE")
_PLACEHOLDER = re.compile(r":\w+")
_VALUES = re.compile(r"VALUES (\(:\w+(?:, :\w+)*\))")
#: Parameters in one statement of many rows (SQLite allows 32,766).
_MOST_PARAMETERS = 30_000

#: Driver-level statements per builder, dialect and row keys (None: SQLAlchemy runs it).
_DRIVER: dict[tuple[Callable[[Connection], Any], str, tuple[str, ...]], _DriverStatement | None]
_DRIVER = {}
#: Each dialect with parameters by name (what both drivers take as a mapping per row).
_NAMED: dict[str, Any] = {}


def _driver_statement(
    conn: Connection, build: Callable[[Connection], Any], keys: tuple[str, ...]
) -> _DriverStatement | None:
    key = (build, dialect_of(conn), keys)
    if key in _DRIVER:
        return _DRIVER[key]
    dialect = _NAMED.get(key[1])
    if dialect is None:
        style = "pyformat" if key[1] == "postgresql" else "named"
        dialect = _NAMED[key[1]] = cast(Any, type(conn.dialect))(paramstyle=style)
    compiled = once(conn, build).compile(dialect=dialect, column_keys=list(keys))
    own = {name: value for name, value in compiled.params.items() if name not in keys}
    binds = compiled.binds.values()
    found = None  # a list parameter, or one the rows do not give: SQLAlchemy runs it
    if not any(b.expanding for b in binds) and not any(v is None for v in own.values()):
        processors = {}
        for bind in binds:
            process = bind.type._cached_bind_processor(dialect)
            if process is not None and bind.key in compiled.params:
                processors[bind.key] = process
        sql = str(compiled)
        many = _ManyRows.of(sql) if key[1] == "sqlite" and not own else None
        pg = key[1] == "postgresql" and not own
        arrays = _Arrays.of(sql, compiled.binds, dialect) if pg else None
        found = _DriverStatement(sql, own, processors, many, arrays)
    _DRIVER[key] = found
    return found


def run_many(
    conn: Connection, build: Callable[[Connection], Any], rows: Sequence[Mapping[str, Any]]
) -> None:
    """Run the statement `build(conn)` makes (see `once`) for each of `rows` (all with the
    same keys), inside the caller's transaction, through the driver's `executemany`.

    What runs per event batch: SQLAlchemy turns every row into parameters in Python
    (about 10 us a row and statement, a third of a 100-event request), where the
    drivers take a mapping a row as it is. A statement with a list parameter goes
    through SQLAlchemy.
    """
    if not rows:
        return
    statement = _driver_statement(conn, build, tuple(rows[0]))
    if statement is None:
        conn.execute(once(conn, build), list(rows))
        return
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        arrays = statement.as_arrays(rows)
        if arrays is not None:
            cursor.execute(arrays.sql, arrays.parameters(statement.parameters(rows)))
        else:
            cursor.executemany(statement.sql, statement.parameters(rows))
    finally:
        cursor.close()


def many_returning(
    conn: Connection, build: Callable[[Connection], Any], rows: Sequence[Mapping[str, Any]]
) -> list[tuple[Any, ...]]:
    """What the INSERT ... RETURNING that `build(conn)` makes (see `once`) returns when
    run for each of `rows` (all with the same keys), inside the caller's transaction.

    On PostgreSQL the rows go through psycopg's `executemany` in pipeline mode, a
    statement of one row parsed once: psycopg parses a statement's placeholders again on
    every run once it is longer than 4 KB or has more than 50 of them (100 events: 6-8
    ms, against 1.8 ms). On SQLite, whose `executemany` returns no rows, they go as one
    INSERT of many rows (one `execute` a row costs about 20 us more a row).
    """
    if not rows:
        return []
    statement = _driver_statement(conn, build, tuple(rows[0]))
    if statement is None:
        return [tuple(row) for row in conn.execute(once(conn, build), list(rows))]
    parameters = statement.parameters(rows)
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    found: list[tuple[Any, ...]] = []
    try:
        arrays = statement.as_arrays(rows)
        if arrays is not None:
            cursor.execute(arrays.sql, arrays.parameters(parameters))
            return [tuple(row) for row in cursor.fetchall()]
        if dialect_of(conn) == "postgresql":
            cursor.executemany(statement.sql, parameters, returning=True)
            while True:
                found.extend(tuple(row) for row in cursor.fetchall())
                if not cursor.nextset():
                    return found
        if statement.many is None:
            for one in parameters:
                found.extend(tuple(row) for row in cursor.execute(statement.sql, one))
            return found
        step = max(_MOST_PARAMETERS // len(parameters[0]), 1)
        for start in range(0, len(parameters), step):
            chunk = parameters[start : start + step]
            found.extend(tuple(r) for r in cursor.execute(*statement.many_rows(chunk)))
        return found
    finally:
        cursor.close()


@dataclass
class _DriverQuery:
    """A SELECT as the driver runs it for one shape of parameters (each list parameter's
    length): its SQL and where each placeholder's value comes from."""

    sql: str
    sources: tuple[tuple[str, str, int | None], ...]  # placeholder, parameter, list index
    positional: bool
    defaults: Mapping[str, Any]  # the statement's own values (a LIMIT)
    types: tuple[Any, ...]  # the columns' types
    #: What each column's type does to its values on the way back, known once the driver
    #: has said what it returns (PostgreSQL's numbers: the column's type code).
    results: tuple[Callable[[Any], Any] | None, ...] | None = None

    def parameters(self, given: Mapping[str, Any]) -> Any:
        values = [
            (given[name] if name in given else self.defaults[name])
            if index is None
            else given[name][index]
            for _, name, index in self.sources
        ]
        if self.positional:
            return values
        return {placeholder: v for (placeholder, _, _), v in zip(self.sources, values, strict=True)}


#: Driver-level SELECTs per statement, dialect and lengths of its list parameters (at
#: most `_MOST_QUERIES` kept).
_QUERIES: dict[tuple[Any, str, tuple[tuple[str, int], ...]], _DriverQuery | None] = {}
_MOST_QUERIES = 4096
_UNKNOWN: Any = object()


def fetch_all(conn: Connection, statement: Any, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """The rows (tuples) of a SELECT built once (a module-level statement) for `params`,
    run by the driver in the caller's connection.

    For what runs with every request: SQLAlchemy works out the parameters (and expands
    a list parameter's placeholders) on every execution, about 100 us a statement; here
    the SQL for each length of the list parameters is worked out once and kept.
    """
    shape = tuple(sorted((k, len(v)) for k, v in params.items() if isinstance(v, list | tuple)))
    key = (statement, dialect_of(conn), shape)
    query = _QUERIES.get(key, _UNKNOWN)
    if query is _UNKNOWN:
        if len(_QUERIES) >= _MOST_QUERIES:  # many lengths of list parameters: start over
            _QUERIES.clear()
        query = _QUERIES[key] = _driver_query(conn, statement, params)
    if query is None:  # a type the driver does not take as it is: SQLAlchemy runs it
        return [tuple(row) for row in conn.execute(statement, dict(params)).all()]
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(query.sql, query.parameters(params))
        rows = cursor.fetchall()
        if query.results is None:
            query.results = tuple(
                kind._cached_result_processor(conn.dialect, column[1])
                for kind, column in zip(query.types, cursor.description, strict=True)
            )
    finally:
        cursor.close()
    if not any(query.results):
        return [tuple(row) for row in rows]
    return [
        tuple(v if f is None else f(v) for f, v in zip(query.results, row, strict=True))
        for row in rows
    ]


def _driver_query(
    conn: Connection, statement: Any, params: Mapping[str, Any]
) -> _DriverQuery | None:
    compiled = statement.compile(dialect=conn.dialect)
    defaults = {k: v for k, v in compiled.params.items() if k not in params}
    for name, bind in compiled.binds.items():
        process = bind.type._cached_bind_processor(conn.dialect)
        if process is None:
            continue
        if name in params:  # a value given on every run, to convert: SQLAlchemy runs it
            return None
        if defaults.get(name) is not None:  # the statement's own constant: converted once
            defaults[name] = process(defaults[name])
    expanded = compiled.construct_expanded_state(dict(params))
    origin = {
        placeholder: (name, i)
        for name, placeholders in expanded.parameter_expansion.items()
        for i, placeholder in enumerate(placeholders)
    }
    names = expanded.positiontup if compiled.positional else list(expanded.parameters)
    sources = tuple((p, *origin[p]) if p in origin else (p, p, None) for p in names or ())
    types = tuple(column.type for column in compiled._result_columns)
    return _DriverQuery(expanded.statement, sources, compiled.positional, defaults, types)


def refresh_statistics(conn: Connection, tables: Iterable[Table]) -> None:
    """On PostgreSQL, ANALYZE `tables` in the caller's transaction (it counts the rows the
    transaction wrote): after a bulk write the planner otherwise plans with what it knew
    before, until autovacuum gets to the tables, if it runs at all. On a store loaded
    with no statistics, the carts' last-purchase read of a 100-event request took 13.6
    ms where it takes 1.9 with them (a scan of every id's rows for each item). SQLite:
    nothing (its planner's defaults are what Omni's reads are tuned to)."""
    if dialect_of(conn) != "postgresql":
        return
    quote = conn.dialect.identifier_preparer.quote
    names = ", ".join(quote(table.name) for table in dict.fromkeys(tables))
    if names:
        conn.execute(text(f"ANALYZE {names}"))


def greatest_least(conn: Connection) -> tuple[Any, Any]:
    """The SQL functions for the larger and the smaller of two values in the connection's
    dialect (GREATEST/LEAST on PostgreSQL; SQLite's two-argument max/min)."""
    if dialect_of(conn) == "postgresql":
        return func.greatest, func.least
    return func.max, func.min


@contextmanager
def temporary_schema(url: str, prefix: str = "omni_tmp") -> Iterator[str]:
    """A URL to a fresh, empty PostgreSQL schema on the server at `url`, dropped afterwards.

    For tests and benchmarks that must not touch each other's tables.
    """
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in url else "?"
    try:
        yield f"{url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

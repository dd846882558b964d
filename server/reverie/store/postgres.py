"""The PostgreSQL backend: a memory several machines share, behind the same `Database`.

psycopg 3 rather than asyncpg: its client-side binding (`AsyncClientCursor`) takes the
store's SQL as written for SQLite (`?` and `:name`, translated once per statement here)
and quotes values on the client, so a NULL compared with `IS NULL` or a timestamp string
passed to `julianday` needs no cast; and psycopg_pool gives each unit of work its own
connection, so one coroutine's reads never land inside another's transaction.

Units of work hold the same guarantees as SQLite's:
- `transaction()` takes a transaction-scoped advisory lock first, so writers are one at a
  time across every server sharing the database (SQLite's BEGIN IMMEDIATE): a
  compare-and-set read inside stays true until commit, and an apply cannot interleave
  with another;
- `snapshot()` is a REPEATABLE READ, READ ONLY transaction: one moment across its reads.

Statements outside a unit run on a pooled connection in autocommit, like SQLite's.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any, TypeVar, cast

import anyio
import psycopg
from psycopg import AsyncClientCursor, AsyncConnection, errors
from psycopg.adapt import Transformer
from psycopg.types.numeric import FloatLoader
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from reverie.config import safe_url
from reverie.errors import Busy, InvalidInput, Unreachable, Unwritable
from reverie.store.database import BUSY_TIMEOUT_MS, Database, Params, Refused, Row, refuse_surrogates
from reverie.store.postgres_schema import WRITE_LOCK, migrate

T = TypeVar("T")
POOL_SIZE = 8  # connections per process: enough for an HTTP server's concurrent reads
SPARE_WAIT_S = 0.002  # how long a read waits for a second connection (`at_once`) before doing without
CONNECT_TIMEOUT_S = 10


class PostgresDatabase(Database):
    backend = "postgresql"

    def __init__(self, pool: AsyncConnectionPool, url: str):
        super().__init__()
        self.pool = pool
        self.name = safe_url(url)
        self._lock = anyio.Lock()  # this process's writers queue here rather than holding pooled connections
        # The connection of the unit of work this task is in, if any (and whose database it is).
        self._unit: ContextVar[AsyncConnection | None] = ContextVar(f"unit-{id(self)}", default=None)
        # That connection again when the unit is a snapshot, whose moment other connections may share.
        self._snapshot: ContextVar[AsyncConnection | None] = ContextVar(f"snapshot-{id(self)}", default=None)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Database]:
        async with self._lock, self._connection() as connection, _unit(connection, "BEGIN"):
            await connection.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            token = self._unit.set(connection)
            try:
                await self._run_deferred()
                yield self
            finally:
                self._unit.reset(token)

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[Database]:
        async with self._connection() as connection, _unit(connection, _SNAPSHOT):
            token, snapshot = self._unit.set(connection), self._snapshot.set(connection)
            try:
                yield self
            finally:
                self._snapshot.reset(snapshot)
                self._unit.reset(token)

    async def execute(self, sql: str, params: Params = ()) -> int:
        async with self._statement() as connection:
            if isinstance(params, dict) or len(params) <= MERGED_FROM:
                cursor = await connection.execute(*_bound(sql, params))
            else:
                cursor = await connection.execute(_merged(connection, sql, params))
            return cursor.rowcount

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        """Run `sql` once per row; a plain `INSERT INTO t (columns) VALUES (?, …)` goes in as one COPY."""
        rows = list(rows)
        if not rows:
            return
        async with self._statement() as connection:
            if (plain := _PLAIN_INSERT.fullmatch(sql)) and not isinstance(rows[0], dict):
                await _copy_in(connection, plain.group(1), plain.group(2), cast(list[Sequence[Any]], rows))
                return
            statement = _bound(sql, rows[0])[0]
            await connection.cursor().executemany(statement, [_bound(sql, row)[1] for row in rows])

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        async with self._statement() as connection:
            cursor = await connection.execute(*_bound(sql, params))
            return await cursor.fetchall() if cursor.description else []  # type: ignore[return-value]  # _Row each

    async def stream(self, sql: str, params: Params = ()) -> AsyncIterator[Row]:
        async with self._statement() as connection:
            async for row in connection.cursor().stream(*_bound(sql, params)):
                yield row  # type: ignore[misc]  # the pool's row factory makes each a _Row

    async def in_one_call(self, reads: Callable[[Database], Coroutine[Any, Any, T]]) -> T:
        """The reads on one pooled connection, instead of one checkout per statement."""
        if self._unit.get() is not None:
            return await reads(self)
        async with self._connection() as connection:
            token = self._unit.set(connection)
            try:
                return await reads(self)
            finally:
                self._unit.reset(token)

    async def at_once(self, *reads: Callable[[Database], Coroutine[Any, Any, Any]]) -> tuple[Any, ...]:
        """Inside a snapshot, each read after the first runs at the same time on a spare pooled
        connection that takes the snapshot's moment (`pg_export_snapshot`): each read runs in
        one server process, so a `read_memory`'s memory and history halves, one after the
        other, left all but one of the server's cores idle. A read with no connection to
        spare (the pool is busy) runs after the first, on the snapshot's own."""
        if self._snapshot.get() is None or len(reads) < 2:
            return await super().at_once(*reads)
        async with contextlib.AsyncExitStack() as stack:
            spares = [c for c in [await stack.enter_async_context(self._spare()) for _ in reads[1:]] if c]
            if not spares:
                return await super().at_once(*reads)
            moment = await self.scalar("SELECT pg_export_snapshot()")
            found: list[Any] = [None] * len(reads)
            # A failed read lets the others finish rather than cancelling them: psycopg closes a
            # connection whose query is cancelled, and the snapshot's own must go on serving.
            failed: list[Exception] = []

            async def on_spare(at: int, connection: AsyncConnection) -> None:
                try:
                    async with _unit(connection, _SNAPSHOT):
                        with _said_plainly(self.name):
                            await connection.execute("SET TRANSACTION SNAPSHOT %s", (moment,))
                        self._unit.set(connection)  # this task's own context: the other reads keep theirs
                        found[at] = await reads[at](self)
                except Exception as error:
                    failed.append(error)

            async with anyio.create_task_group() as group:
                for at, connection in enumerate(spares, 1):
                    group.start_soon(on_spare, at, connection)
                try:
                    for at in [0, *range(len(spares) + 1, len(reads))]:
                        found[at] = await reads[at](self)
                except Exception as error:
                    failed.insert(0, error)
            if failed:
                raise failed[0]
            return tuple(found)

    async def close(self) -> None:
        with contextlib.suppress(Busy, Unwritable, Unreachable, psycopg.Error):
            await self.flush_deferred()
        await self.pool.close()

    @asynccontextmanager
    async def _statement(self) -> AsyncIterator[AsyncConnection]:
        """The unit's connection inside a unit of work; otherwise a pooled one, in autocommit."""
        if (connection := self._unit.get()) is not None:
            with _said_plainly(self.name):
                yield connection
            return
        async with self._connection() as connection:
            with _said_plainly(self.name):
                yield connection

    @asynccontextmanager
    async def _spare(self) -> AsyncIterator[AsyncConnection | None]:
        """An idle pooled connection if there is one now (None if not): never waiting for one,
        so readers that each hold a connection cannot wait on each other for a second."""
        try:
            connection = await self.pool.getconn(timeout=SPARE_WAIT_S)
        except PoolTimeout:
            yield None
            return
        try:
            yield connection
        finally:
            await self.pool.putconn(connection)

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncConnection]:
        try:
            async with self.pool.connection(timeout=CONNECT_TIMEOUT_S) as connection:
                yield connection
        except PoolTimeout as error:
            raise Unreachable(_unreachable(self.name, str(error))) from None


_SNAPSHOT = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"


@asynccontextmanager
async def _unit(connection: AsyncConnection, begin: str) -> AsyncIterator[None]:
    with _said_plainly(""):
        await connection.execute(begin)
    try:
        yield
    except BaseException:
        with anyio.CancelScope(shield=True), contextlib.suppress(psycopg.Error):
            await connection.execute("ROLLBACK")
        raise
    with _said_plainly(""):
        await connection.execute("COMMIT")


@contextlib.contextmanager
def _said_plainly(where: str) -> Iterator[None]:
    """The server's refusals as Reverie's errors: each says what happened and what to do."""
    try:
        yield
    except UnicodeEncodeError as error:
        raise refuse_surrogates(error) from None
    except errors.LockNotAvailable as error:
        raise Busy(f"The memory database stayed busy for {BUSY_TIMEOUT_MS // 1000} s (another server is writing "
                   "to it); nothing was changed. Try again in a moment.") from error
    except (errors.IntegrityError, errors.RaiseException) as error:
        raise Refused(error.diag.message_primary or str(error)) from error
    except (errors.DiskFull, errors.ReadOnlySqlTransaction, errors.InsufficientPrivilege) as error:
        raise Unwritable(f"PostgreSQL refused the write: {error.diag.message_primary}. Nothing was written. "
                         "Check the server's disk and the role's privileges, then try again.") from error
    except psycopg.DataError as error:
        if "NUL" in str(error):
            raise InvalidInput("The text holds a NUL character (U+0000), which PostgreSQL cannot store. "
                               "Nothing was stored; remove it and send the text again.") from None
        raise
    except psycopg.OperationalError as error:
        raise Unreachable(_unreachable(where, str(error))) from error


def _unreachable(where: str, why: str) -> str:
    return (f"Could not reach the PostgreSQL memory database {where}: {why.strip()}. Check that the server is "
            "running and that --db / REVERIE_DB names it (postgresql://user@host:port/database).")


# --- the store's SQL, as PostgreSQL takes it ------------------------------------------------

_TOKENS = re.compile(r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|::|\?|:(\w+)|%|INDEXED BY \w+|CROSS JOIN|"""
                     r"""\bIS NOT (?!NULL\b|DISTINCT\b|TRUE\b|FALSE\b)|\bIS (?!NOT\b|NULL\b|DISTINCT\b|TRUE\b|FALSE\b)""",
                     re.IGNORECASE)


@functools.lru_cache(maxsize=1024)
def translate(statement: str) -> str:
    """SQLite's SQL, as the store writes it, in PostgreSQL's: psycopg's `%s` / `%(name)s`
    parameters; no index hints; `IS` between values as `IS [NOT] DISTINCT FROM`; CROSS JOIN
    (SQLite's hint to keep the join order) as a plain JOIN. Quoted text is left alone."""

    def one(token: re.Match[str]) -> str:
        text = token.group(0)
        upper = text.upper()
        if text[0] in "'\"" or text == "::":
            return text.replace("%", "%%")
        if text == "?":
            return "%s"
        if token.group(1):
            return f"%({token.group(1)})s"
        if text == "%":
            return "%%"
        if upper.startswith("INDEXED BY"):
            return ""
        if upper == "CROSS JOIN":
            return "JOIN"
        return "IS DISTINCT FROM " if upper.startswith("IS NOT") else "IS NOT DISTINCT FROM "

    return _TOKENS.sub(one, statement)


def _bound(statement: str, params: Params) -> tuple[str, Params]:
    return translate(statement), (params if isinstance(params, dict) else tuple(params))


# psycopg parses a statement for its placeholders again on every call once it has more than
# 50 parameters (its cache stops there). A bulk insert of 142 events has ~1,000: parsing
# them took twice as long as quoting them, and about a tenth of logging a session. Such a
# statement is merged here from a template made once, as psycopg merges it: each value
# quoted by the connection's own adapters.
MERGED_FROM = 50


def _merged(connection: AsyncConnection, statement: str, params: Sequence[Any]) -> bytes:
    literal = Transformer.from_context(connection).as_literal
    template = _template(statement, connection.info.encoding)
    return template % tuple(b"NULL" if value is None else literal(value) for value in params)


@functools.lru_cache(maxsize=256)
def _template(statement: str, encoding: str) -> bytes:
    return translate(statement).encode(encoding)  # `?` became %s, a literal % became %%


# Rows inserted many at a time go in by COPY, not INSERT: the server parses no statement and
# no literals (the events statement alone, 4,000 events: 142 µs a row by INSERT, 109 by COPY). What the rows do is the same as the
# INSERTs': the same values (each dumped by the connection's adapters, then read by the
# column's type), ids in row order, every trigger fired; the ledger's statement trigger (p002)
# logs them all at once, in key order.
_PLAIN_INSERT = re.compile(r"\s*INSERT INTO (\w+) \(([\w\s,]+)\)\s+VALUES \(\s*\?(?:\s*,\s*\?)*\s*\)\s*", re.IGNORECASE)


async def _copy_in(connection: AsyncConnection, table: str, columns: str, rows: list[Sequence[Any]]) -> None:
    async with connection.cursor().copy(f"COPY {table} ({' '.join(columns.split())}) FROM STDIN") as copy:
        for row in rows:
            await copy.write_row(row)


# --- rows ------------------------------------------------------------------------------------


class _Row(tuple[Any, ...]):
    """A row by position or column name, like sqlite3.Row."""

    __slots__ = ()
    _columns: dict[str, int] = {}

    def __getitem__(self, key: Any) -> Any:
        return tuple.__getitem__(self, self._columns[key] if isinstance(key, str) else key)

    def keys(self) -> list[str]:
        return list(self._columns)


@functools.lru_cache(maxsize=512)
def _row_class(names: tuple[str, ...]) -> type[_Row]:
    return type("Row", (_Row,), {"__slots__": (), "_columns": {n: i for i, n in enumerate(names)}})


def _rows(cursor: Any) -> Callable[[Sequence[Any]], _Row]:
    return _row_class(tuple(column.name for column in cursor.description or ()))


class _Numbers(FloatLoader):
    """`numeric` (sums and products of integers and literals) as a float or an int, as
    SQLite gives them, never as Decimal."""

    def load(self, data: Any) -> Any:
        value = super().load(data)
        return int(value) if value.is_integer() and b"." not in bytes(data) else value


# --- opening ---------------------------------------------------------------------------------


async def _configure(connection: AsyncConnection) -> None:
    connection.adapters.register_loader("numeric", _Numbers)
    await connection.execute(f"SET lock_timeout = {BUSY_TIMEOUT_MS}")
    await connection.execute("SET TIME ZONE 'UTC'")
    # A search over a million events is costed high enough for JIT compilation, which took
    # longer (~20 ms) than the query gained from it; none of the store's queries runs long.
    await connection.execute("SET jit = off")


@asynccontextmanager
async def open_postgres(url: str, *, migrated: bool = True) -> AsyncIterator[PostgresDatabase]:
    """Connect to (and migrate) the memory at a `postgresql://` URL; with `migrated=False`
    the schema is left as it is (`reverie doctor` checks it as it is)."""
    await _migrated(url, apply=migrated)
    pool = AsyncConnectionPool(url, min_size=2, max_size=POOL_SIZE, open=False, configure=_configure,
                               kwargs={"autocommit": True, "cursor_factory": AsyncClientCursor, "row_factory": _rows},
                               name="reverie")
    try:
        await pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
    except PoolTimeout:
        await pool.close()
        raise Unreachable(_unreachable(safe_url(url), "the connection pool could not open in time")) from None
    db = PostgresDatabase(pool, url)
    try:
        yield db
    finally:
        await db.close()


async def _migrated(url: str, apply: bool = True) -> None:
    """Migrate (if `apply`) on a connection of its own, first: a server that is not there
    fails here at once, with libpq's own reason, rather than after the pool's retries."""
    try:
        connection = await AsyncConnection.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
    except psycopg.Error as error:
        raise Unreachable(_unreachable(safe_url(url), str(error).strip().splitlines()[0])) from None
    async with connection:
        with _said_plainly(safe_url(url)):
            await _configure(connection)
            if apply:
                await migrate(connection)

"""The SQLite backend: one connection to one file, its pragmas, and its units of work.

aiosqlite runs every statement on one worker thread, so concurrent coroutines share
one connection; a lock serialises units of work so that a `transaction()` never sees
another coroutine's half-finished writes. Across processes, SQLite's own locking and
the busy timeout do the same job.

Bookkeeping a read wants written (read counts) is `defer`red: it rides along at the start
of the next write transaction, or is written on close, so a read never takes the write
lock or waits for another process's writer.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite
import anyio

from reverie.errors import Busy, Unwritable
from reverie.store import ledger
from reverie.store.database import BUSY_TIMEOUT_MS, Database, Params, Refused, Row, refuse_surrogates
from reverie.store.migrations import migrate

T = TypeVar("T")


class SqliteDatabase(Database):
    backend = "sqlite"

    def __init__(self, connection: aiosqlite.Connection, path: str):
        super().__init__()
        self.connection = connection
        self.path = self.name = path
        self._lock = anyio.Lock()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Database]:
        """A write transaction: BEGIN IMMEDIATE, commit on success, roll back on anything else.

        IMMEDIATE takes the write lock up front, so two processes cannot both read a
        proposal as pending and then both apply it.
        """
        async with self._lock, _writable(self.path), self._unit("BEGIN IMMEDIATE"):
            await self._run_deferred()
            yield self

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[Database]:
        """A consistent read across several queries."""
        async with self._lock, self._unit("BEGIN"):
            yield self

    @asynccontextmanager
    async def _unit(self, begin: str) -> AsyncIterator[None]:
        await self._begin(begin)
        try:
            yield
        except BaseException:
            # Keep the body's error: on a damaged file the ROLLBACK may fail too and hide it.
            with anyio.CancelScope(shield=True), contextlib.suppress(sqlite3.Error):
                await self.connection.execute("ROLLBACK")
            raise
        await self.connection.execute("COMMIT")

    async def _begin(self, statement: str) -> None:
        try:
            await self.connection.execute(statement)
        except sqlite3.OperationalError as error:
            if "locked" in str(error) or "busy" in str(error):
                raise Busy(f"The memory database stayed busy for {BUSY_TIMEOUT_MS // 1000} s (another process "
                           "is writing to it); nothing was changed. Try again in a moment.") from error
            raise

    async def execute(self, sql: str, params: Params = ()) -> int:
        with _valid_text():
            cursor = await self.connection.execute(sql, params)
        return cursor.rowcount

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        with _valid_text():
            await self.connection.executemany(sql, rows)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        # Run and drain the statement in one call to the worker thread. A SELECT left
        # half-read across an await holds a read transaction open on this shared
        # connection; another coroutine's BEGIN IMMEDIATE would then have to upgrade that
        # read lock, which SQLite refuses at once ("database is locked", SQLITE_BUSY or
        # BUSY_SNAPSHOT) instead of waiting out busy_timeout for the other process.
        with _valid_text():
            return list(await self.connection.execute_fetchall(sql, params))

    async def stream(self, sql: str, params: Params = ()) -> AsyncIterator[Row]:
        async with self.connection.execute(sql, params) as cursor:
            async for row in cursor:
                yield row

    async def in_one_call(self, reads: Callable[[Database], Coroutine[Any, Any, T]]) -> T:
        """Run `reads` — store queries only, nothing that waits on anything else — on the
        connection's thread in one hand-off, instead of one per statement (each costs a
        thread switch and an event-loop turn; a `read_memory` makes a dozen).

        `reads` gets a view of this database whose queries run at once, so its coroutine
        finishes without ever suspending; one that awaits anything else is a bug, and fails.
        """
        if not (hasattr(self.connection, "_execute") and hasattr(self.connection, "_conn")):
            return await reads(self)  # an aiosqlite without these internals: a hand-off per statement, as before
        view = _OnItsThread(self.connection, self.path)

        def run() -> T:
            steps = reads(view).__await__()
            try:
                steps.send(None)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            steps.close()
            raise RuntimeError("Database.in_one_call: the reads awaited something other than the database.")

        return await self.connection._execute(run)  # type: ignore[no-untyped-call,no-any-return]

    async def close(self) -> None:
        await self._flush_quietly()
        await self.connection.close()

    async def _flush_quietly(self) -> None:
        # Read counts only rank later reads and date staleness: a busy or unwritable file must not stop a close.
        with contextlib.suppress(Busy, Unwritable, sqlite3.Error):
            await self.flush_deferred()


class _OnItsThread(SqliteDatabase):
    """The database as seen from the connection's own thread (`Database.in_one_call`):
    statements run directly, so a coroutine made only of them never suspends."""

    def __init__(self, connection: aiosqlite.Connection, path: str):  # no lock: it runs inside the caller's unit
        self.connection, self.path, self.name, self._deferred = connection, path, path, {}

    async def execute(self, sql: str, params: Params = ()) -> int:
        with _valid_text():
            return self.connection._conn.execute(sql, params).rowcount

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        with _valid_text():
            self.connection._conn.executemany(sql, rows)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        with _valid_text():
            return self.connection._conn.execute(sql, params).fetchall()


# What SQLite says when a write cannot reach the file, and what to tell the person.
_UNWRITABLE = {
    "database or disk is full": "The disk holding the memory database {path} is full",
    "readonly database": "The memory database {path} is read-only to this process",
    "disk I/O error": "The memory database {path} could not be written (a disk I/O error: the disk may be "
                      "full or failing)",
}


@asynccontextmanager
async def _writable(path: str) -> AsyncIterator[None]:
    """Turn a write the file refused into `Unwritable`, saying what to do; the transaction was rolled back."""
    try:
        yield
    except sqlite3.OperationalError as error:
        said = next((text for cause, text in _UNWRITABLE.items() if cause in str(error)), None)
        if said is None:
            raise
        raise Unwritable(said.format(path=path) + ": nothing was written. Free disk space, or make the file, "
                         "its folder and the -wal/-shm files beside it writable by the user running Reverie "
                         "(or point REVERIE_DB elsewhere), then try again.") from error


@contextlib.contextmanager
def _valid_text() -> Iterator[None]:
    """Refuse text SQLite cannot store, whichever field it came in; and say a write the
    schema refused as `Refused`, the same on every backend.

    sqlite3 binds every str as UTF-8, which a lone surrogate does not have. The write is
    inside a transaction that this error rolls back, so nothing is half-stored.
    """
    try:
        yield
    except UnicodeEncodeError as error:
        raise refuse_surrogates(error) from None
    except sqlite3.IntegrityError as error:
        raise Refused(str(error)) from error


@asynccontextmanager
async def open_sqlite(path: str | Path) -> AsyncIterator[SqliteDatabase]:
    """Open (creating if needed) and migrate the database file at `path`."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    connection = await aiosqlite.connect(str(path), isolation_level=None)
    connection.row_factory = sqlite3.Row
    try:
        await _configure(connection)
        await migrate(connection)
        db = SqliteDatabase(connection, str(path))
        yield db
        await db._flush_quietly()
    finally:
        await connection.close()


async def _configure(connection: aiosqlite.Connection) -> None:
    await connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    await connection.execute("PRAGMA journal_mode = WAL")
    await connection.execute("PRAGMA foreign_keys = ON")
    await connection.execute("PRAGMA synchronous = NORMAL")
    await ledger.register(connection)  # the ledger's triggers call it on every write

"""What every backend's database is: the statements the store runs, its units of work, and
which backend a `--db` target names.

The store (`reverie.store.*`) is written against this class only: plain SQL with `?` or
`:name` parameters, rows read by column name or position. Two backends implement it:
`store.sqlite` (the embedded default, one file) and `store.postgres` (a server a team's
machines share). Where their SQL differs the store asks `db.backend`; no driver's type
crosses this interface.

A unit of work is `transaction()` (writes: one writer at a time, across every process
sharing the memory, so a compare-and-set read inside it stays true until it commits) or
`snapshot()` (several reads that see one moment). Bookkeeping a read wants written (read
counts) is `defer`red: it rides along at the start of the next write transaction, or is
written on close, so a read never waits for a writer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

from reverie.config import is_server_url
from reverie.errors import InvalidInput

BUSY_TIMEOUT_MS = 10_000

Params = Sequence[Any] | dict[str, Any]
Backend = Literal["sqlite", "postgresql"]
T = TypeVar("T")

class Row(Protocol):
    """A result row: by position or by column name, like `sqlite3.Row`."""

    def __getitem__(self, key: int | str, /) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...

    def keys(self) -> list[str]: ...


class Refused(Exception):
    """The schema refused a write: a constraint, or a trigger that keeps history append-only."""


def refuse_surrogates(error: UnicodeEncodeError) -> InvalidInput:
    """Text no backend can store: a lone surrogate (U+D800–U+DFFF, which an in-process
    caller can send; JSON transports reject it) has no UTF-8 form."""
    near = error.object[max(error.start - 20, 0) : error.end + 20]
    return InvalidInput(f"The text {near!r} is not valid Unicode: it holds a lone surrogate (U+D800 to U+DFFF), "
                        "which cannot be stored. Nothing was stored; send it as valid UTF-8.")


class Database:
    """One memory's database, shared by every coroutine of a process."""

    backend: Backend
    name: str  # the file path or the server URL (without a password), for messages

    def __init__(self) -> None:
        self._deferred: dict[str, Callable[[Database], Awaitable[None]]] = {}

    def defer(self, key: str, write: Callable[[Database], Awaitable[None]]) -> None:
        """Have `write` run at the start of the next write transaction, or on close; one per `key`.

        What it writes must be worth losing rather than waiting for: if that transaction
        rolls back, it is gone.
        """
        self._deferred.setdefault(key, write)

    async def flush_deferred(self) -> None:
        """Write what was deferred now (a dream is about to read it)."""
        if self._deferred:
            async with self.transaction():
                pass

    async def _run_deferred(self) -> None:
        deferred, self._deferred = self._deferred, {}
        for write in deferred.values():
            await write(self)

    def transaction(self) -> AbstractAsyncContextManager[Database]:
        """A write transaction: commit on success, roll back on anything else. It holds the
        memory's one write lock from its start, so two processes cannot both read a
        proposal as pending and then both apply it."""
        raise NotImplementedError

    def snapshot(self) -> AbstractAsyncContextManager[Database]:
        """A consistent read across several queries."""
        raise NotImplementedError

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run a statement; returns how many rows it changed."""
        raise NotImplementedError

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        raise NotImplementedError

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        raise NotImplementedError

    def stream(self, sql: str, params: Params = ()) -> AsyncIterator[Row]:
        """Rows one at a time, for reads too large to hold at once (the doctor's checks)."""
        raise NotImplementedError

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        rows = await self.fetchall(sql, params)  # drained: see `store.sqlite` for why
        return rows[0] if rows else None

    async def scalar(self, sql: str, params: Params = ()) -> Any:
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]

    async def in_one_call(self, reads: Callable[[Database], Coroutine[Any, Any, T]]) -> T:
        """Run `reads` (store queries only) as cheaply as the backend can; SQLite runs them
        on its connection's thread in one hand-off."""
        return await reads(self)

    async def at_once(self, *reads: Callable[[Database], Coroutine[Any, Any, Any]]) -> tuple[Any, ...]:
        """Run independent `reads` (store queries only) of one snapshot, as fast as the
        backend can; their results in order. Here, one after the other in one `in_one_call`:
        SQLite reads a file from one connection."""

        async def each(db: Database) -> tuple[Any, ...]:
            return tuple([await read(db) for read in reads])

        return await self.in_one_call(each)

    async def close(self) -> None:
        raise NotImplementedError


def _postgres() -> Callable[[str], AbstractAsyncContextManager[Database]]:
    try:
        from reverie.store.postgres import open_postgres  # the driver is an optional extra
    except ImportError as error:
        raise InvalidInput(f"A postgresql:// database needs the PostgreSQL driver ({error.name} is not installed): "
                           "pip install 'reverie-mcp[postgres]'.") from None
    return open_postgres


@asynccontextmanager
async def open_database(target: str | Path) -> AsyncIterator[Database]:
    """Open (creating if needed) and migrate the memory at `target`: a SQLite file's path,
    or a `postgresql://` URL."""
    if is_server_url(target):
        async with _postgres()(str(target)) as db:
            yield db
        return
    from reverie.store.sqlite import open_sqlite

    async with open_sqlite(target) as sqlite_db:
        yield sqlite_db

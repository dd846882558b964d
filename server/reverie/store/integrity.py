"""What `reverie doctor` and `reverie backup` read: SQLite's own checks, the full-text
indexes against their tables, the revision log, the transcripts, and `VACUUM INTO`.

Nothing here changes a row. The one statement that looks like a write, FTS5's
`'integrity-check'` command, is spelled as an INSERT but stores nothing. Every failure to
read — a damaged page, a file that is not SQLite, a missing table — is raised as
`Damaged` with SQLite's own words, so the doctor reports it instead of crashing.

The files are opened with `open_existing`, which never creates a file and never migrates:
a check must look at the database as it is, not as opening it for work would leave it.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import aiosqlite
import anyio

from reverie.clock import from_iso
from reverie.errors import Damaged
from reverie.models import Turn
from reverie.store import ledger
from reverie.store.database import BUSY_TIMEOUT_MS, Database
from reverie.store.ledger import Checkpoint, Head
from reverie.store.migrations import MIGRATIONS, Ledgered
from reverie.store.sqlite import SqliteDatabase

T = TypeVar("T")

# CREATE VIRTUAL TABLE x USING fts5 (..., content = 'table', content_rowid = 'key', ...)
_EXTERNAL_CONTENT = re.compile(r"content\s*=\s*'(\w+)'\s*,\s*content_rowid\s*=\s*'(\w+)'", re.IGNORECASE)
_TRIGGER_NAME = re.compile(r"CREATE TRIGGER (\w+)", re.IGNORECASE)
_DROP_TRIGGER = re.compile(r"DROP TRIGGER (?:IF EXISTS )?(\w+)", re.IGNORECASE)


@dataclass(frozen=True)
class MemoryState:
    """The part of a memory the revision log decides: its text, kind, place and whether it is archived."""

    id: str
    content: str
    category: str
    scope: str
    valid_to: datetime | None
    archived_reason: str | None

    @classmethod
    def from_json(cls, text: str) -> MemoryState:
        """From a memory row as the log stored it; only the fields compared, so older rows still read."""
        row = json.loads(text)
        return cls(row["id"], row["content"], row["category"], row["scope"], from_iso(row.get("valid_to")),
                   row.get("archived_reason"))


@dataclass(frozen=True)
class LoggedChange:
    id: int
    revision_id: int
    memory_id: str
    change: str  # insert | archive | restore
    before: MemoryState | None
    after: MemoryState


@dataclass(frozen=True)
class SessionChain:
    """A session's stored content hash and the turns it was computed over, in order."""

    id: str
    content_hash: str
    turns: list[Turn]
    indexes: list[int]  # each event's idx, to spot a gap left by a removed event


@asynccontextmanager
async def open_existing(path: str | Path) -> AsyncIterator[Database]:
    """A connection to an existing database file: no file is created and nothing is migrated."""
    if not Path(path).is_file():
        raise Damaged(f"There is no database file at {path}. Check --db or REVERIE_DB.")
    connection = await aiosqlite.connect(f"{Path(path).resolve().as_uri()}?mode=rw", uri=True, isolation_level=None)
    connection.row_factory = sqlite3.Row
    try:
        # Close the pragma's cursor: a statement left open makes VACUUM refuse to run.
        await (await connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")).close()
        await ledger.register(connection)  # the ledger check recomputes digests in SQL, as the triggers do
        yield SqliteDatabase(connection, str(path))
    finally:
        await connection.close()


@asynccontextmanager
async def consistent_read(db: Database) -> AsyncIterator[Database]:
    """Reads that see one moment of the file however others write meanwhile (a read transaction).

    For a connection of its own (`open_existing`): unlike `Database.snapshot`, it takes no
    lock, and a failure inside is not masked by the COMMIT that ends it (on a damaged file
    SQLite may refuse that too).
    """
    await reading(db.execute("BEGIN"))
    try:
        yield db
    except BaseException:
        # The transaction may already have ended with the error that brought us here.
        with anyio.CancelScope(shield=True), contextlib.suppress(sqlite3.Error):
            await db.execute("ROLLBACK")
        raise
    await reading(db.execute("COMMIT"))


async def reading(work: Awaitable[T]) -> T:
    """Await a read, turning SQLite's complaint about the file into `Damaged`."""
    try:
        return await work
    except sqlite3.DatabaseError as error:
        raise Damaged(f"SQLite could not read it: {error}") from None


# --- SQLite ----------------------------------------------------------------------------------


async def sqlite_problems(db: Database) -> list[str]:
    """PRAGMA integrity_check and foreign_key_check, as sentences; empty when both pass."""
    rows = await reading(db.fetchall("PRAGMA integrity_check"))
    problems = [line for r in rows if r[0] != "ok" for line in r[0].splitlines() if not line.startswith("*** ")]
    orphans = await reading(db.fetchall("PRAGMA foreign_key_check"))
    problems += [f"{r[0]} row {r[1]} points at a missing {r[2]} row" for r in orphans]
    return problems


@dataclass(frozen=True)
class TriggerDrift:
    """How the file's triggers differ from the ones the migrations created."""

    missing: list[str]
    changed: list[str]   # same name, other SQL: a guard replaced by a no-op looks like this
    unknown: list[str]   # triggers no migration created


def expected_triggers() -> dict[str, str]:
    """Each trigger the migrations leave in place, by name, with its SQL (whitespace normalised)."""
    expected: dict[str, str] = {}
    for _, statements in MIGRATIONS:
        for statement in statements:
            if created := _TRIGGER_NAME.match(statement.strip()):
                expected[created.group(1)] = _normalised(statement)
            elif dropped := _DROP_TRIGGER.match(statement.strip()):
                expected.pop(dropped.group(1), None)
    return expected


def _normalised(sql: str) -> str:
    return " ".join(sql.split())


async def trigger_drift(db: Database) -> TriggerDrift:
    """Compare the triggers by their SQL, not their names: a same-named no-op guards nothing."""
    expected = expected_triggers()
    rows = await reading(db.fetchall("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"))
    present = {r[0]: _normalised(r[1] or "") for r in rows}
    return TriggerDrift(
        missing=[name for name in expected if name not in present],
        changed=[name for name in expected if name in present and present[name] != expected[name]],
        unknown=sorted(name for name in present if name not in expected),
    )


# --- the ledger ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerDrift:
    """Where one kind of row differs from its digests in the ledger (keys of the rows)."""

    kind: str
    unlogged: list[str]   # rows the ledger never saw: added behind Reverie's back
    changed: list[str]    # rows whose digest is not the one logged: edited
    gone: list[str]       # logged rows no longer there: deleted
    repeated: list[str]   # rows logged again though they never change: the ledger was rewritten


async def ledger_drift(db: Database, item: Ledgered) -> LedgerDrift:
    """Recompute `item`'s digest for every row and compare with the newest entry logged for it."""
    rows = (f"SELECT {item.key_sql('t')} AS key, {item.digest_sql('t')} AS digest FROM {item.table} t "
            f"WHERE {item.condition('t')}")
    newest = "SELECT key, digest FROM ledger WHERE seq IN (SELECT max(seq) FROM ledger WHERE kind = ? GROUP BY key)"
    differing = await reading(db.fetchall(
        f"SELECT now.key, logged.digest IS NULL FROM ({rows}) now LEFT JOIN ({newest}) logged USING (key) "
        "WHERE logged.digest IS NOT now.digest ORDER BY now.key", (item.kind,)))
    gone = await reading(db.fetchall(
        f"SELECT DISTINCT key FROM ledger WHERE kind = ? AND key NOT IN "
        f"(SELECT {item.key_sql('t')} FROM {item.table} t WHERE {item.condition('t')}) ORDER BY key",
        (item.kind,)))
    repeated = [] if item.mutable else await reading(db.fetchall(
        "SELECT key FROM ledger WHERE kind = ? GROUP BY key HAVING count(*) > 1 ORDER BY key", (item.kind,)))
    return LedgerDrift(item.kind, [r[0] for r in differing if r[1]], [r[0] for r in differing if not r[1]],
                       [r[0] for r in gone], [r[0] for r in repeated])


async def has_ledger(db: Database) -> bool:
    return bool(await reading(db.scalar("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'ledger'")))


async def ledger_checkpoints(db: Database, at: int | None = None) -> tuple[Checkpoint, Checkpoint | None, int]:
    """The checkpoint of the whole ledger, the one as of entry `at` (None if there is no such entry), and its length."""
    head, then, entries = Head(), None, 0
    try:
        async for seq, kind, key, row_digest in db.stream("SELECT seq, kind, key, digest FROM ledger ORDER BY seq"):
            head.add(seq, kind, key, row_digest)
            entries += 1
            if seq == at:
                then = head.checkpoint()
    except sqlite3.DatabaseError as error:
        raise Damaged(f"SQLite could not read it: {error}") from None
    return head.checkpoint(), then, entries


# --- full-text indexes -----------------------------------------------------------------------


async def fts_tables(db: Database) -> dict[str, tuple[str, str]]:
    """Every external-content FTS5 table: name → (content table, its rowid column)."""
    rows = await reading(db.fetchall(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%fts5%'"))
    return {r[0]: (m.group(1), m.group(2)) for r in rows if (m := _EXTERNAL_CONTENT.search(r[1]))}


@dataclass(frozen=True)
class IndexDrift:
    """How an FTS5 index differs from its content table."""

    indexed: int             # rows the index holds
    missing: list[int]       # table rows the index lacks
    extra: list[int]         # index rows whose table row is gone
    mismatch: str | None     # FTS5's own integrity-check complaint (text differs), if any


async def index_drift(db: Database, fts: str, table: str, key: str) -> IndexDrift:
    """Compare index `fts` with `table` (rowid column `key`).

    The `_docsize` shadow table lists exactly the rowids the index holds (selecting from the
    FTS table itself would read the content table instead). The 'integrity-check' command
    with rank 1 compares the index with the content table's current text.
    """
    indexed = await reading(db.scalar(f"SELECT count(*) FROM {fts}_docsize"))
    missing = await reading(db.fetchall(
        f"SELECT {key} FROM {table} WHERE {key} NOT IN (SELECT id FROM {fts}_docsize) ORDER BY {key}"))
    extra = await reading(db.fetchall(
        f"SELECT id FROM {fts}_docsize WHERE id NOT IN (SELECT {key} FROM {table}) ORDER BY id"))
    mismatch = None
    try:
        await db.execute(f"INSERT INTO {fts} ({fts}, rank) VALUES ('integrity-check', 1)")
    except sqlite3.OperationalError as error:  # busy, read-only: the check could not run
        raise Damaged(f"SQLite could not check {fts}: {error}") from None
    except sqlite3.DatabaseError as error:  # SQLITE_CORRUPT_VTAB: the index disagrees with the table
        mismatch = str(error)
    return IndexDrift(indexed, [r[0] for r in missing], [r[0] for r in extra], mismatch)


# --- the revision log ------------------------------------------------------------------------


async def logged_changes(db: Database) -> list[LoggedChange]:
    """Every memory change in the order it was made."""
    rows = await reading(db.fetchall(
        "SELECT id, revision_id, memory_id, change, before_json, after_json FROM memory_changes ORDER BY id"))
    return [
        LoggedChange(
            id=r["id"], revision_id=r["revision_id"], memory_id=r["memory_id"], change=r["change"],
            before=MemoryState.from_json(r["before_json"]) if r["before_json"] else None,
            after=MemoryState.from_json(r["after_json"]),
        )
        for r in rows
    ]


async def memory_states(db: Database) -> dict[str, MemoryState]:
    """Every memory row, active or archived, by id."""
    rows = await reading(db.fetchall(
        "SELECT id, content, category, scope, valid_to, archived_reason FROM memories ORDER BY seq"))
    return {r[0]: MemoryState(r[0], r[1], r[2], r[3], from_iso(r[4]), r[5]) for r in rows}


# --- transcripts -----------------------------------------------------------------------------


async def session_chains(db: Database) -> AsyncIterator[SessionChain]:
    """Each session with its events, streamed (one session in memory at a time), by id."""
    current: SessionChain | None = None
    try:
        async for row in db.stream(
                """SELECT s.id AS sid, s.content_hash, e.idx, e.role, e.content, e.tool_name, e.is_error
                   FROM sessions s LEFT JOIN events e ON e.session_id = s.id ORDER BY s.id, e.idx"""):
            if current is None or current.id != row["sid"]:
                if current is not None:
                    yield current
                current = SessionChain(row["sid"], row["content_hash"], [], [])
            if row["idx"] is not None:
                current.turns.append(Turn(role=row["role"], content=row["content"],
                                          tool_name=row["tool_name"], is_error=bool(row["is_error"])))
                current.indexes.append(row["idx"])
    except sqlite3.DatabaseError as error:
        raise Damaged(f"SQLite could not read it: {error}") from None
    if current is not None:
        yield current


# --- backup ----------------------------------------------------------------------------------


async def vacuum_into(db: Database, target: Path) -> None:
    """Write a compact, consistent copy of the database to `target` while others keep working.

    VACUUM INTO reads inside one read transaction, so writers carry on (WAL) and the copy
    holds exactly the commits made before it started.
    """
    await reading(db.execute("VACUUM INTO ?", (str(target),)))


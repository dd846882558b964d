"""What `reverie doctor` and `reverie backup` read: each backend's own checks (SQLite's
integrity and FTS5 indexes; PostgreSQL's migrations, keys, triggers and search columns), the
revision log, the transcripts, the ledger, and the backups (`VACUUM INTO`, `pg_dump`).

Nothing here changes a row. The one statement that looks like a write, FTS5's
`'integrity-check'` command, is spelled as an INSERT but stores nothing. Every failure to
read — a damaged page, a file that is not SQLite, a missing table — is raised as
`Damaged` with the database's own words, so the doctor reports it instead of crashing.

The database is opened with `open_existing`, which never creates a file or a database and
never migrates: a check must look at the database as it is, not as opening it for work
would leave it.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import shlex
import shutil
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Collection, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import aiosqlite
import anyio

from reverie.clock import from_iso
from reverie.config import child_environment, is_server_url, safe_url
from reverie.errors import Damaged, InvalidInput, Unwritable
from reverie.models import Turn
from reverie.store import ledger
from reverie.store.database import BUSY_TIMEOUT_MS, Backend, Database
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
async def open_existing(target: str | Path) -> AsyncIterator[Database]:
    """An existing database, a SQLite file or a `postgresql://` URL: nothing is created and
    nothing is migrated."""
    if is_server_url(target):
        async with _open_server(str(target)) as db:
            yield db
        return
    async with _open_file(target) as db:
        yield db


@asynccontextmanager
async def _open_server(url: str) -> AsyncIterator[Database]:
    try:
        from reverie.store.postgres import open_postgres  # the driver is an optional extra
    except ImportError as error:
        raise InvalidInput(f"A postgresql:// database needs the PostgreSQL driver ({error.name} is not installed): "
                           "pip install 'reverie-mcp[postgres]'.") from None
    async with open_postgres(url, migrated=False) as db:
        yield db


@asynccontextmanager
async def _open_file(path: str | Path) -> AsyncIterator[Database]:
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
    """Reads that see one moment of the database however others write meanwhile.

    On SQLite, for a connection of its own (`open_existing`): a read transaction that,
    unlike `Database.snapshot`, takes no lock, and whose failure inside is not masked by the
    COMMIT that ends it (on a damaged file SQLite may refuse that too). PostgreSQL's
    snapshot is a REPEATABLE READ, READ ONLY transaction, which never waits for a writer.
    """
    if db.backend == "postgresql":
        with _read_plainly():
            async with db.snapshot():
                yield db
        return
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
    """Await a read, turning the database's complaint about what it holds into `Damaged`."""
    with _read_plainly():
        return await work


@functools.cache
def _read_errors() -> tuple[type[Exception], ...]:
    try:
        import psycopg
    except ImportError:  # SQLite only: the driver is an optional extra
        return (sqlite3.DatabaseError,)
    return (sqlite3.DatabaseError, psycopg.Error)


@contextlib.contextmanager
def _read_plainly() -> Iterator[None]:
    try:
        yield
    except _read_errors() as error:
        if isinstance(error, sqlite3.DatabaseError):
            raise Damaged(f"SQLite could not read it: {error}") from None
        raise Damaged(f"PostgreSQL could not read it: {str(error).strip().splitlines()[0]}") from None


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
    """How the database's triggers differ from the ones the migrations created."""

    missing: list[str]
    changed: list[str]   # same name, other SQL: a guard replaced by a no-op looks like this
    unknown: list[str]   # triggers no migration created
    # PostgreSQL only: what its triggers also depend on.
    disabled: list[str] = field(default_factory=list)   # there, but not firing (ALTER TABLE … DISABLE TRIGGER)
    functions: list[str] = field(default_factory=list)  # trigger functions missing, or with another body
    rules: list[str] = field(default_factory=list)      # rewrite rules (CREATE RULE) no migration created


def expected_triggers(backend: Backend = "sqlite", applied: Collection[str] | None = None) -> dict[str, str]:
    """Each trigger the migrations (those `applied`, if given) leave in place, by name, with its SQL (normalised)."""
    expected: dict[str, str] = {}
    for statement in _statements(backend, applied):
        if created := _TRIGGER_NAME.match(statement.strip()):
            expected[created.group(1)] = _normalised(statement) if backend == "sqlite" else _trigger_text(statement)
        elif dropped := _DROP_TRIGGER.match(statement.strip()):
            expected.pop(dropped.group(1), None)
    return expected


def _statements(backend: Backend, applied: Collection[str] | None = None) -> list[str]:
    return [statement for name, statements in _migrations(backend) if applied is None or name in applied
            for statement in statements]


def _migrations(backend: Backend) -> list[tuple[str, list[str]]]:
    if backend == "postgresql":
        from reverie.store import postgres_schema  # imports the optional driver

        return postgres_schema.MIGRATIONS
    return MIGRATIONS


def _normalised(sql: str) -> str:
    return " ".join(sql.split())


async def trigger_drift(db: Database) -> TriggerDrift:
    """Compare the triggers by their SQL, not their names: a same-named no-op guards nothing."""
    if db.backend == "postgresql":
        return await _server_trigger_drift(db)
    expected = expected_triggers()
    rows = await reading(db.fetchall("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"))
    present = {r[0]: _normalised(r[1] or "") for r in rows}
    return TriggerDrift(
        missing=[name for name in expected if name not in present],
        changed=[name for name in expected if name in present and present[name] != expected[name]],
        unknown=sorted(name for name in present if name not in expected),
    )


# --- PostgreSQL ------------------------------------------------------------------------------
#
# The catalogue, read in the memory's schema (the connection's current_schema()), held
# against what `store.postgres_schema` creates. Triggers are compared by the definition
# PostgreSQL prints back (`pg_get_triggerdef`), put in the same form as the statement that
# made them; the functions they call by their body, exactly as written.

_HERE = "(SELECT oid FROM pg_namespace WHERE nspname = current_schema())"
_FIRING = ("O", "A")  # pg_trigger.tgenabled: fires in every session; D is disabled, R fires only for replication
_FUNCTION = re.compile(r"CREATE (?:OR REPLACE )?FUNCTION (\w+)\((.*?)\).*?\$\$(.*)\$\$", re.DOTALL)
_TABLE = re.compile(r"CREATE TABLE (\w+)")
_REFERENCE = re.compile(r"^\s*(\w+) [^,\n]*?REFERENCES (\w+) \((\w+)\)", re.MULTILINE)
_ADDED_REFERENCE = re.compile(r"ALTER TABLE (\w+) ADD FOREIGN KEY \((\w+)\) REFERENCES (\w+) \((\w+)\)")
_SEARCH_INDEX = re.compile(r"CREATE INDEX (\w+) ON (\w+) USING gin \((\w+)\)")


def _trigger_text(sql: str) -> str:
    """A trigger's definition in one form, whether as written or as `pg_get_triggerdef` prints
    it (which qualifies the table, lowercases OLD and NEW, quotes some names and adds
    parentheses)."""
    sql = re.sub(r"\bON \w+\.", "ON ", sql)
    return " ".join(sql.replace('"', "").replace("(", " ").replace(")", " ").lower().split())


def expected_functions(applied: Collection[str] | None = None) -> dict[str, str]:
    """Each function the PostgreSQL migrations create, as `name(arguments)`, with its body."""
    return {f"{m.group(1)}({m.group(2)})": m.group(3) for s in _statements("postgresql", applied)
            if (m := _FUNCTION.match(s.strip()))}


async def _server_trigger_drift(db: Database) -> TriggerDrift:
    # Held against the migrations this database has applied: one not applied yet is the
    # first check's to report, and its triggers are not missing, merely not due.
    applied = await applied_migrations(db)
    expected = expected_triggers("postgresql", applied)
    rows = await reading(db.fetchall(
        "SELECT t.tgname, t.tgenabled, pg_get_triggerdef(t.oid) FROM pg_trigger t "
        f"JOIN pg_class c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal AND c.relnamespace = {_HERE}"))
    present = {r[0]: _trigger_text(r[2]) for r in rows}
    functions = expected_functions(applied)
    bodies = {f"{r[0]}({r[1]})": r[2] for r in await reading(db.fetchall(
        "SELECT proname, pg_get_function_identity_arguments(oid), prosrc FROM pg_proc "
        f"WHERE pronamespace = {_HERE}"))}
    rules = await reading(db.fetchall(
        "SELECT rulename, tablename FROM pg_rules WHERE schemaname = current_schema() ORDER BY rulename"))
    return TriggerDrift(
        missing=[name for name in expected if name not in present],
        changed=[name for name in expected if name in present and present[name] != expected[name]],
        unknown=sorted(name for name in present if name not in expected),
        disabled=sorted(r[0] for r in rows if r[0] in expected and r[1] not in _FIRING),
        functions=[name for name, body in functions.items() if bodies.get(name) != body],
        rules=[f"{r[0]} on {r[1]}" for r in rules],
    )


async def applied_migrations(db: Database) -> list[str] | None:
    """The migrations recorded as applied, in order; None where there is no schema at all."""
    if not await has_table(db, "_migrations"):
        return None
    return [r[0] for r in await reading(db.fetchall("SELECT name FROM _migrations ORDER BY name"))]


def expected_migrations(backend: Backend) -> list[str]:
    return [name for name, _ in _migrations(backend)]


@dataclass(frozen=True)
class ForeignKey:
    name: str
    table: str
    column: str
    parent: str
    parent_column: str
    validated: bool = True   # false: added NOT VALID, so rows from before it were never checked
    enforced: bool = True    # false: its triggers were disabled (ALTER TABLE … DISABLE TRIGGER ALL)

    @property
    def shape(self) -> tuple[str, str, str, str]:
        return self.table, self.column, self.parent, self.parent_column


def expected_foreign_keys() -> set[tuple[str, str, str, str]]:
    """(table, column, parent table, parent column) for each foreign key the PostgreSQL migrations create."""
    found: set[tuple[str, str, str, str]] = set()
    for statement in _statements("postgresql"):
        if table := _TABLE.match(statement.strip()):
            found |= {(table.group(1), m.group(1), m.group(2), m.group(3)) for m in _REFERENCE.finditer(statement)}
        elif added := _ADDED_REFERENCE.match(" ".join(statement.split())):
            found.add((added.group(1), added.group(2), added.group(3), added.group(4)))
    return found


async def foreign_keys(db: Database) -> list[ForeignKey]:
    """The single-column foreign keys on the memory's tables (Reverie's are all single-column)."""
    firing = ", ".join(f"'{state}'" for state in _FIRING)
    rows = await reading(db.fetchall(
        f"""SELECT con.conname, c.relname, a.attname, p.relname, pa.attname, con.convalidated,
                   NOT EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgconstraint = con.oid AND t.tgenabled NOT IN ({firing}))
            FROM pg_constraint con
            JOIN pg_class c ON c.oid = con.conrelid
            JOIN pg_class p ON p.oid = con.confrelid
            JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = con.conkey[1]
            JOIN pg_attribute pa ON pa.attrelid = con.confrelid AND pa.attnum = con.confkey[1]
            WHERE con.contype = 'f' AND c.relnamespace = {_HERE} ORDER BY con.conname"""))
    return [ForeignKey(*r) for r in rows]


async def orphans(db: Database, key: ForeignKey) -> list[str]:
    """The values of `key.column` that name no row of the parent table (PostgreSQL's foreign_key_check)."""
    rows = await reading(db.fetchall(
        f"SELECT DISTINCT CAST(c.{key.column} AS TEXT) FROM {key.table} c WHERE c.{key.column} IS NOT NULL "
        f"AND NOT EXISTS (SELECT 1 FROM {key.parent} p WHERE p.{key.parent_column} = c.{key.column}) ORDER BY 1"))
    return [r[0] for r in rows]


async def unusable_indexes(db: Database) -> list[str]:
    """Indexes PostgreSQL does not use or keep up (a failed CREATE INDEX CONCURRENTLY or REINDEX)."""
    rows = await reading(db.fetchall(
        "SELECT ci.relname FROM pg_index i JOIN pg_class ci ON ci.oid = i.indexrelid "
        f"WHERE ci.relnamespace = {_HERE} AND NOT (i.indisvalid AND i.indisready AND i.indislive) ORDER BY 1"))
    return [r[0] for r in rows]


@dataclass(frozen=True)
class SearchColumn:
    """A table's full-text column: generated from its text, and its GIN index."""

    table: str
    column: str
    index: str
    generated: str | None  # the expression it is generated from; None when it is not generated (or not there)
    indexed: bool          # the GIN index is there, on that column, and usable


def expected_search_columns() -> list[tuple[str, str, str]]:
    """(table, column, GIN index) for each full-text column the PostgreSQL migrations create."""
    return [(m.group(2), m.group(3), m.group(1)) for s in _statements("postgresql")
            if (m := _SEARCH_INDEX.match(s.strip()))]


def search_expression() -> str:
    """What each full-text column is generated from, as PostgreSQL prints it back."""
    from reverie.store.postgres_schema import SEARCH_CONFIG

    return f"to_tsvector('{SEARCH_CONFIG}'::regconfig, content)"


async def search_columns(db: Database) -> list[SearchColumn]:
    found = []
    for table, column, index in expected_search_columns():
        generated = await reading(db.scalar(
            "SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
            f"WHERE c.relname = ? AND a.attname = ? AND a.attgenerated = 's' AND c.relnamespace = {_HERE}",
            (table, column)))
        indexed = await reading(db.scalar(
            "SELECT count(*) FROM pg_index i JOIN pg_class ci ON ci.oid = i.indexrelid "
            "JOIN pg_class ct ON ct.oid = i.indrelid JOIN pg_am am ON am.oid = ci.relam "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] "
            "WHERE ci.relname = ? AND ct.relname = ? AND a.attname = ? AND am.amname = 'gin' "
            f"AND i.indisvalid AND i.indisready AND ci.relnamespace = {_HERE}", (index, table, column)))
        found.append(SearchColumn(table, column, index, generated, bool(indexed)))
    return found


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
    where = f"WHERE {item.condition('t')}" if item.when else ""  # a bare "WHERE 1" is SQLite's alone
    rows = f"SELECT {item.key_sql('t')} AS key, {_digest_sql(db.backend, item)} AS digest FROM {item.table} t {where}"
    newest = "SELECT key, digest FROM ledger WHERE seq IN (SELECT max(seq) FROM ledger WHERE kind = ? GROUP BY key)"
    differing = await reading(db.fetchall(
        f"SELECT now.key, logged.digest IS NULL FROM ({rows}) now LEFT JOIN ({newest}) logged USING (key) "
        "WHERE logged.digest IS NOT now.digest ORDER BY now.key", (item.kind,)))
    # An anti-join, not NOT IN (subquery): PostgreSQL runs NOT IN row by row once the keys outgrow work_mem.
    gone = await reading(db.fetchall(
        f"SELECT DISTINCT logged.key FROM ledger logged LEFT JOIN (SELECT {item.key_sql('t')} AS key "
        f"FROM {item.table} t {where}) now ON now.key = logged.key "
        "WHERE logged.kind = ? AND now.key IS NULL ORDER BY logged.key", (item.kind,)))
    repeated = [] if item.mutable else await reading(db.fetchall(
        "SELECT key FROM ledger WHERE kind = ? GROUP BY key HAVING count(*) > 1 ORDER BY key", (item.kind,)))
    return LedgerDrift(item.kind, [r[0] for r in differing if r[1]], [r[0] for r in differing if not r[1]],
                       [r[0] for r in gone], [r[0] for r in repeated])


def _digest_sql(backend: Backend, item: Ledgered) -> str:
    """`store.ledger.digest` over a row `t`, as the backend's triggers compute it."""
    if backend == "postgresql":
        from reverie.store.postgres_schema import digest_sql  # imports the optional driver

        return digest_sql(item, "t")
    return item.digest_sql("t")


async def memory_word_drift(db: Database, limit: int) -> list[tuple[str, int, str, int | None, int]]:
    """PostgreSQL: (word, slice, scope, kept, counted) where `memory_words` differs from a recount
    of the memories' lexemes (`kept` None: the row is missing); at most `limit`."""
    from reverie.store.postgres_schema import MEMORY_WORDS_RECOUNT  # imports the optional driver

    rows = await reading(db.fetchall(
        f"""SELECT coalesce(k.word, c.word), coalesce(k.slice, c.slice), coalesce(k.scope, c.scope), k.rows,
                   coalesce(c.rows, 0)
            FROM memory_words k FULL JOIN ({MEMORY_WORDS_RECOUNT}) c
              ON k.word = c.word AND k.slice = c.slice AND k.scope = c.scope
            WHERE k.rows IS DISTINCT FROM c.rows ORDER BY 1, 2, 3 LIMIT ?""", (limit,)))
    return [tuple(r) for r in rows]


async def has_table(db: Database, name: str) -> bool:
    if db.backend == "postgresql":
        return bool(await reading(db.scalar(
            "SELECT count(*) FROM pg_class WHERE relname = ? AND relkind IN ('r', 'p') "
            f"AND relnamespace = {_HERE}", (name,))))
    return bool(await reading(db.scalar("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
                                        (name,))))


async def has_ledger(db: Database) -> bool:
    return await has_table(db, "ledger")


async def ledger_checkpoints(db: Database, at: int | None = None) -> tuple[Checkpoint, Checkpoint | None, int]:
    """The checkpoint of the whole ledger, the one as of entry `at` (None if there is no such entry), and its length."""
    head, then, entries = Head(), None, 0
    with _read_plainly():
        async for seq, kind, key, row_digest in db.stream("SELECT seq, kind, key, digest FROM ledger ORDER BY seq"):
            head.add(seq, kind, key, row_digest)
            entries += 1
            if seq == at:
                then = head.checkpoint()
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
    with _read_plainly():
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
    if current is not None:
        yield current


# --- backup ----------------------------------------------------------------------------------


async def vacuum_into(db: Database, target: Path) -> None:
    """Write a compact, consistent copy of the database to `target` while others keep working.

    VACUUM INTO reads inside one read transaction, so writers carry on (WAL) and the copy
    holds exactly the commits made before it started.
    """
    await reading(db.execute("VACUUM INTO ?", (str(target),)))



@dataclass(frozen=True)
class Dump:
    """A `pg_dump` archive written, and the ledger it holds."""

    checkpoint: Checkpoint  # the ledger's head as of the dump's snapshot
    entries: int


def pg_dump_command(url: str, target: Path) -> str:
    """The command that writes what `pg_dump_into` writes, for a person to run (no password in it)."""
    return shlex.join(["pg_dump", "--format=custom", f"--file={target}", f"--dbname={safe_url(url)}"])


async def pg_dump_into(db: Database, url: str, target: Path) -> Dump:
    """Write a `pg_dump` archive of the server database at `url` to `target` (custom format, for
    `pg_restore`), and the ledger checkpoint of exactly what it holds.

    pg_dump reads inside a snapshot this connection exports and keeps open, so the archive
    and the checkpoint are of one moment while servers keep writing. The password travels in
    PGPASSWORD, not on the command line, where other users of the machine could read it.
    """
    program = shutil.which("pg_dump")
    if program is None:
        raise InvalidInput(f"pg_dump is not on PATH, so no backup was written. Install PostgreSQL's client tools "
                           f"(e.g. apt install postgresql-client) and run this again, or run it yourself: "
                           f"{pg_dump_command(url, target)}")
    from psycopg.conninfo import conninfo_to_dict, make_conninfo  # a server URL: the driver is installed

    options = conninfo_to_dict(url)
    environment = child_environment(**({"PGPASSWORD": str(options.pop("password"))} if "password" in options else {}))
    async with consistent_read(db):
        snapshot = await reading(db.scalar("SELECT pg_export_snapshot()"))
        done = await anyio.run_process(
            [program, "--format=custom", f"--file={target}", f"--snapshot={snapshot}",
             f"--dbname={make_conninfo('', **options)}"], check=False, env=environment)
        if done.returncode != 0:
            said = done.stderr.decode(errors="replace").strip() or f"it exited with status {done.returncode}"
            raise Unwritable(f"pg_dump could not back up {safe_url(url)}, so no backup was written: {said}. "
                             "(A server newer than pg_dump needs the pg_dump of its own version or later.)")
        head, _, entries = await ledger_checkpoints(db)
    return Dump(head, entries)

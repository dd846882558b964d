"""Copying a SQLite memory into an empty PostgreSQL database, exactly (`reverie migrate --from --to`).

Every row of the history goes over as it is: the same ids and sequence numbers, the same
text to the character, and the ledger with it, entry for entry. The copy is one
transaction on the target with `reverie.copying` on, so the target's ledger triggers stand
aside (`store.postgres_schema`) instead of logging each copied row a second time; then the
identity sequences are moved past the copied ids, so the next row written gets the next id.
Before it commits, the target's ledger must hash to the source's checkpoint, entry for entry.

Not copied: `locks`, leases held by processes on the old machine (a copied one would only
block dreams on the new one until it expired), and `_migrations`, since each backend
records its own schema.

The source is read inside one snapshot, so a server still writing to the SQLite file
cannot tear the copy; a copy that fails leaves the target as it was. PostgreSQL's text
cannot hold U+0000, which SQLite's can: a row holding one is refused, by name, before
anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass

from reverie.errors import Conflict, Damaged, InvalidInput
from reverie.store.database import Database
from reverie.store.integrity import ledger_checkpoints
from reverie.store.ledger import Checkpoint

BATCH = 5_000  # rows per COPY, whatever the size of the history (long tool outputs make a batch tens of MB)


@dataclass(frozen=True)
class Copied:
    """A table the copy carries over."""

    table: str
    key: tuple[str, ...]         # the columns that name a row to a person
    identity: str | None = None  # the column whose sequence must pass the copied values; also the order

    @property
    def order(self) -> str:
        return self.identity or ", ".join(self.key)


# In an order that inserts every row after the rows it points at (proposals and revisions
# point at each other; those two keys are checked at commit).
TABLES = (
    Copied("sessions", ("id",)),
    Copied("events", ("session_id", "idx"), "id"),
    Copied("notes", ("session_id", "idx"), "id"),
    Copied("proposals", ("id",)),
    Copied("revisions", ("id",), "id"),
    Copied("proposal_sessions", ("proposal_id", "session_id")),
    Copied("operations", ("proposal_id", "op_id")),
    Copied("memories", ("id",), "seq"),
    Copied("memory_changes", ("id",), "id"),
    Copied("projects", ("key",)),
    Copied("ledger", ("seq",), "seq"),
)


@dataclass(frozen=True)
class Copy:
    counts: dict[str, int]   # rows copied, by table
    checkpoint: Checkpoint   # the ledger's head, the same on both sides
    entries: int             # ledger entries copied


async def copy_memory(source: Database, target: Database) -> Copy:
    """Copy every table of `TABLES` from the SQLite `source` into the empty PostgreSQL `target`."""
    if source.backend != "sqlite" or target.backend != "postgresql":
        raise InvalidInput("A copy goes from a SQLite file to a PostgreSQL database.")
    async with source.snapshot():
        await refuse_unstorable(source)  # again, in the snapshot copied: the file may have grown since
        head, _, entries = await ledger_checkpoints(source)
        async with target.transaction():
            await target.execute("SET LOCAL reverie.copying = 'on'")
            await _refuse_filled(target)
            counts = {table.table: await _copy_table(source, target, table) for table in TABLES}
            await _advance_identities(target)
            await _same_ledger(target, head, entries)
    # Statistics now, not when autovacuum gets round to it: until then the planner guesses
    # the tables are empty, and a search took 4x as long.
    await target.execute("ANALYZE")
    return Copy(counts, head, entries)


async def held(db: Database) -> dict[str, int]:
    """How many rows each copied table holds."""
    return {table.table: int(await db.scalar(f"SELECT count(*) FROM {table.table}")) for table in TABLES}


async def _refuse_filled(target: Database) -> None:
    counts = {table: n for table, n in (await held(target)).items() if n}
    if not counts:
        return
    found = ", ".join(f"{n:,} {'ledger entries' if table == 'ledger' else table}" for table, n in counts.items())
    raise Conflict(f"{target.name} already holds a memory ({found}), and a copy goes only into an empty database, "
                   "so nothing was copied. To start over, make sure nothing in it is needed (`reverie --db URL "
                   f"backup FILE` keeps it), then drop and create it again: in psql on another database of that "
                   f"server, DROP DATABASE {_database_name(target)}; CREATE DATABASE {_database_name(target)}; "
                   "then run this again. Or copy into another, new database.")


def _database_name(db: Database) -> str:
    from psycopg.conninfo import conninfo_to_dict  # a server database: the driver is installed

    return str(conninfo_to_dict(db.name).get("dbname") or "<database>")


async def refuse_unstorable(source: Database) -> None:
    """Refuse, naming the first, rows whose text PostgreSQL cannot store (a NUL character, U+0000)."""
    found: list[str] = []
    for table in TABLES:
        text = await _text_columns(source, table.table)
        if not text:
            continue
        keys = ", ".join(table.key)
        holds = " OR ".join(f"instr({column}, char(0)) > 0" for column in text)
        which = ", ".join(f"instr({column}, char(0)) > 0" for column in text)
        rows = await source.fetchall(f"SELECT {keys}, {which} FROM {table.table} WHERE {holds} ORDER BY {table.order}")
        for row in rows:
            named = ", ".join(f"{column} {row[i]!r}" for i, column in enumerate(table.key))
            columns = [column for i, column in enumerate(text) if row[len(table.key) + i]]
            found.append(f"the {table.table} row with {named} (in {', '.join(columns)})")
    if found:
        more = f" (and {len(found) - 1:,} more row(s))" if len(found) > 1 else ""
        raise InvalidInput(
            f"Nothing was copied: {found[0]}{more} holds a NUL character (U+0000), which PostgreSQL text cannot "
            "store, and a copy must not change a character. Keep this memory on SQLite; or export it (`reverie "
            "export FILE`), remove the \\u0000 characters from that file, and import it into the PostgreSQL "
            "database (`reverie --db URL import FILE`): that starts a new history there rather than copying this one.")


async def _text_columns(db: Database, table: str) -> list[str]:
    return [r[1] for r in await db.fetchall(f"PRAGMA table_info({table})") if str(r[2]).upper() == "TEXT"]


async def _columns(source: Database, target: Database, table: str) -> list[str]:
    """The columns copied: the target's own (not its generated search columns), which the source must have too."""
    wanted = [r[0] for r in await target.fetchall(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = ? AND is_generated = 'NEVER' ORDER BY ordinal_position", (table,))]
    there = [r[1] for r in await source.fetchall(f"PRAGMA table_info({table})")]
    if set(wanted) != set(there):
        raise InvalidInput(f"The {table} table has columns {', '.join(there)} in the SQLite file but "
                           f"{', '.join(wanted)} on PostgreSQL, so it cannot be copied exactly; nothing was copied. "
                           "Run the same version of Reverie on both (`reverie migrate` each first).")
    return wanted


async def _copy_table(source: Database, target: Database, table: Copied) -> int:
    columns = await _columns(source, target, table.table)
    names = ", ".join(f'"{column}"' for column in columns)
    # Unquoted, as the schema's own names are plain words: an INSERT of plain names is what
    # the PostgreSQL store sends as one COPY (`postgres._PLAIN_INSERT`).
    insert = f"INSERT INTO {table.table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    copied, batch = 0, []
    async for row in source.stream(f"SELECT {names} FROM {table.table} ORDER BY {table.order}"):
        batch.append(tuple(row))
        if len(batch) == BATCH:
            copied += await _insert(target, insert, batch)
            batch = []
    copied += await _insert(target, insert, batch)
    if (there := await target.scalar(f"SELECT count(*) FROM {table.table}")) != copied:
        raise Damaged(f"Copying {table.table} left {there} rows on PostgreSQL for {copied} read; nothing was copied.")
    return copied


async def _insert(target: Database, insert: str, rows: list[tuple[object, ...]]) -> int:
    await target.executemany(insert, rows)  # one COPY on PostgreSQL (`store.postgres`)
    return len(rows)


async def _advance_identities(target: Database) -> None:
    """Have each identity hand out the id after the last one copied, as SQLite would have next."""
    for table in TABLES:
        if table.identity:
            await target.execute(f"SELECT setval(pg_get_serial_sequence('{table.table}', '{table.identity}'), "
                                 f"max({table.identity})) FROM {table.table} HAVING max({table.identity}) IS NOT NULL")


async def _same_ledger(target: Database, head: Checkpoint, entries: int) -> None:
    """The target's ledger must be the source's, entry for entry; else the copy is rolled back."""
    copied, then, count = await ledger_checkpoints(target, head.seq)
    if count != entries or (entries and then != head) or copied != head:
        raise Damaged(f"The copied ledger hashes to {copied} ({count:,} entries), not to the SQLite file's {head} "
                      f"({entries:,} entries); nothing was copied.")

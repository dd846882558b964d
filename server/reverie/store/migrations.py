"""Numbered, append-only schema migrations.

Each migration is a list of statements run in one transaction together with the row in
`_migrations` that records it, so a crash mid-migration leaves the previous schema. Never
edit a migration that has shipped; add `m002_…` instead. (`executescript()` is not used:
it commits whatever transaction is open.)

Invariants the schema itself enforces, so no code path can break them:
- events, notes and ended sessions are append-only (triggers refuse UPDATE and DELETE);
- memories are never deleted, and their text, category and scope never change: a change
  archives the old row (`valid_to`) and inserts a new one, so history stays readable;
- revisions and memory_changes are append-only: they are the log revert replays.
"""

from __future__ import annotations

import sqlite3

import aiosqlite

from reverie.clock import to_iso, utcnow


def _refuse(table: str, action: str, message: str, when: str = "", name: str = "") -> str:
    """A trigger that aborts `action` on `table` (optionally only `when` a condition holds)."""
    name = name or f"{table}_no_{action.lower()}"
    return f"CREATE TRIGGER {name} BEFORE {action} ON {table} {when} BEGIN SELECT RAISE(ABORT, '{message}'); END"


m001_initial = [
    # One row per session. A session stays open (ended_at NULL) while a client appends
    # turns; once ended its row is final. content_hash chains sha256 over its events.
    """CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        agent_id TEXT NOT NULL,
        title TEXT,
        outcome TEXT NOT NULL DEFAULT 'unknown'
            CHECK (outcome IN ('success', 'failure', 'partial', 'unknown')),
        outcome_summary TEXT,
        content_hash TEXT NOT NULL,
        started_at TEXT NOT NULL,      -- first turn's timestamp, else when logged
        ended_at TEXT,                 -- NULL while open for appends
        logged_at TEXT NOT NULL
    )""",
    "CREATE INDEX sessions_agent ON sessions (agent_id, started_at)",
    _refuse("sessions", "DELETE", "sessions are append-only"),
    _refuse("sessions", "UPDATE", "an ended session is final", "WHEN OLD.ended_at IS NOT NULL"),
    _refuse(
        "sessions",
        "UPDATE",
        "a session keeps its id, agent and start",
        "WHEN NEW.id IS NOT OLD.id OR NEW.agent_id IS NOT OLD.agent_id"
        " OR NEW.started_at IS NOT OLD.started_at",
        name="sessions_identity",
    ),
    # One row per turn; idx counts from 0 within its session.
    """CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions (id),
        idx INTEGER NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'tool', 'system')),
        content TEXT NOT NULL,
        tool_name TEXT,
        is_error INTEGER NOT NULL DEFAULT 0 CHECK (is_error IN (0, 1)),
        timestamp TEXT,
        UNIQUE (session_id, idx)
    )""",
    _refuse("events", "UPDATE", "events are append-only"),
    _refuse("events", "DELETE", "events are append-only"),
    """CREATE VIRTUAL TABLE events_fts USING fts5 (
        content, content = 'events', content_rowid = 'id', tokenize = 'porter unicode61'
    )""",
    """CREATE TRIGGER events_fts_insert AFTER INSERT ON events BEGIN
        INSERT INTO events_fts (rowid, content) VALUES (NEW.id, NEW.content);
    END""",
    # Memory candidates the agent wrote down during a session.
    """CREATE TABLE notes (
        id INTEGER PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions (id),
        idx INTEGER NOT NULL,
        content TEXT NOT NULL,
        created_at TEXT NOT NULL,
        UNIQUE (session_id, idx)
    )""",
    _refuse("notes", "UPDATE", "notes are append-only"),
    _refuse("notes", "DELETE", "notes are append-only"),
    # The curated layer. seq is the stable rowid the FTS index points at.
    """CREATE TABLE memories (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        content TEXT NOT NULL,
        category TEXT NOT NULL
            CHECK (category IN ('fact', 'preference', 'workflow', 'pitfall', 'insight')),
        scope TEXT NOT NULL,
        confidence REAL NOT NULL CHECK (confidence BETWEEN 0 AND 1),
        evidence_json TEXT NOT NULL DEFAULT '[]',  -- [{session_id, event_index, note_index, quote}]
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        observed_at TEXT NOT NULL,     -- newest evidence; decides which of two facts is newer
        valid_to TEXT,                 -- set when archived (superseded, merged, pruned, reverted)
        archived_reason TEXT,
        last_read_at TEXT,
        read_count INTEGER NOT NULL DEFAULT 0
    )""",
    "CREATE INDEX memories_active ON memories (scope, category) WHERE valid_to IS NULL",
    _refuse("memories", "DELETE", "memories are archived, never deleted"),
    _refuse(
        "memories",
        "UPDATE OF id, content, category, scope, confidence, evidence_json, created_at, observed_at",
        "a memory keeps its text; archive it and add a new one",
        name="memories_immutable",
    ),
    """CREATE VIRTUAL TABLE memories_fts USING fts5 (
        content, content = 'memories', content_rowid = 'seq', tokenize = 'porter unicode61'
    )""",
    """CREATE TRIGGER memories_fts_insert AFTER INSERT ON memories BEGIN
        INSERT INTO memories_fts (rowid, content) VALUES (NEW.seq, NEW.content);
    END""",
    # A dream's output, waiting for review or decided.
    """CREATE TABLE proposals (
        id TEXT PRIMARY KEY,
        engine TEXT NOT NULL,
        scope TEXT,
        status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN
            ('pending', 'applied', 'partially_applied', 'rejected', 'superseded', 'reverted')),
        base_revision INTEGER NOT NULL,  -- the revision the engine saw
        instructions TEXT,
        stats_json TEXT NOT NULL,
        created_at TEXT NOT NULL,
        decided_at TEXT,
        applied_revision INTEGER REFERENCES revisions (id)
    )""",
    "CREATE INDEX proposals_status ON proposals (status, created_at)",
    # Which sessions a proposal reviewed: an applied proposal consolidates them.
    """CREATE TABLE proposal_sessions (
        proposal_id TEXT NOT NULL REFERENCES proposals (id),
        session_id TEXT NOT NULL REFERENCES sessions (id),
        PRIMARY KEY (proposal_id, session_id)
    )""",
    "CREATE INDEX proposal_sessions_session ON proposal_sessions (session_id)",
    """CREATE TABLE operations (
        proposal_id TEXT NOT NULL REFERENCES proposals (id),
        op_id TEXT NOT NULL,
        position INTEGER NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('add', 'update', 'merge', 'prune', 'promote')),
        targets_json TEXT NOT NULL,    -- memory ids the op archives
        before_json TEXT NOT NULL,     -- their text when proposed, for review
        content TEXT,
        category TEXT,
        scope TEXT,
        confidence REAL NOT NULL,
        rationale TEXT NOT NULL,
        evidence_json TEXT NOT NULL,
        risk_json TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'applied', 'rejected')),
        memory_id TEXT,                -- the entry it created, once applied
        PRIMARY KEY (proposal_id, op_id)
    )""",
    # Every change to memories, grouped by the revision that made it.
    """CREATE TABLE revisions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        proposal_id TEXT REFERENCES proposals (id),
        kind TEXT NOT NULL CHECK (kind IN ('apply', 'revert', 'import')),
        created_at TEXT NOT NULL
    )""",
    _refuse("revisions", "UPDATE", "revisions are append-only"),
    _refuse("revisions", "DELETE", "revisions are append-only"),
    """CREATE TABLE memory_changes (
        id INTEGER PRIMARY KEY,
        revision_id INTEGER NOT NULL REFERENCES revisions (id),
        memory_id TEXT NOT NULL REFERENCES memories (id),
        op_id TEXT,
        change TEXT NOT NULL CHECK (change IN ('insert', 'archive', 'restore')),
        before_json TEXT,              -- the row before (NULL for insert)
        after_json TEXT NOT NULL
    )""",
    "CREATE INDEX memory_changes_memory ON memory_changes (memory_id, revision_id)",
    _refuse("memory_changes", "UPDATE", "memory changes are append-only"),
    _refuse("memory_changes", "DELETE", "memory changes are append-only"),
]

m002_dream_briefs = [
    # What an `agent` dream hands the client's model to reflect on; NULL for other engines.
    "ALTER TABLE proposals ADD COLUMN brief TEXT",
]

m003_locks = [
    # Leases that keep processes sharing this file from doing the same work at once; one
    # row per lock name ("dream"). Taken and handed over by compare-and-set, never held
    # by SQLite itself, so a process that dies holding one blocks nobody past expires_at.
    """CREATE TABLE locks (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,          -- host, pid and a random tag of whoever holds it
        acquired_at TEXT NOT NULL,
        expires_at TEXT NOT NULL       -- from then on anyone may take it over
    )""",
]

m004_ranking_indexes = [
    # read_memory without a query takes the most confident and the most recent active
    # entries through these, instead of scoring every row.
    "CREATE INDEX memories_by_confidence ON memories (confidence DESC, observed_at DESC) WHERE valid_to IS NULL",
    "CREATE INDEX memories_by_observed ON memories (observed_at DESC) WHERE valid_to IS NULL",
]

m005_active_content_index = [
    # apply_dream asks, per operation, whether an active entry already says the same thing.
    "CREATE INDEX memories_active_content ON memories (lower(content)) WHERE valid_to IS NULL",
]

m006_empty_dreams = [
    # A dream that proposed nothing is 'empty', not 'applied': it changed nothing, so it
    # consolidates none of the sessions it reviewed (`store.sessions`). SQLite widens a
    # CHECK only by copying the table: the documented rebuild, run with foreign keys off
    # (`_REBUILDS`), since the old copy is dropped while other tables still point at it.
    """CREATE TABLE proposals_new (
        id TEXT PRIMARY KEY,
        engine TEXT NOT NULL,
        scope TEXT,
        status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN
            ('pending', 'applied', 'partially_applied', 'rejected', 'superseded', 'reverted', 'empty')),
        base_revision INTEGER NOT NULL,
        instructions TEXT,
        stats_json TEXT NOT NULL,
        created_at TEXT NOT NULL,
        decided_at TEXT,
        applied_revision INTEGER REFERENCES revisions (id),
        brief TEXT
    )""",
    """INSERT INTO proposals_new (id, engine, scope, status, base_revision, instructions, stats_json, created_at,
                                 decided_at, applied_revision, brief)
       SELECT id, engine, scope, status, base_revision, instructions, stats_json, created_at,
              decided_at, applied_revision, brief FROM proposals""",
    "DROP TABLE proposals",
    "ALTER TABLE proposals_new RENAME TO proposals",
    "CREATE INDEX proposals_status ON proposals (status, created_at)",
    # Dreams stored before this as 'applied' with nothing in them give their sessions back.
    """UPDATE proposals SET status = 'empty'
       WHERE status = 'applied' AND applied_revision IS NULL AND brief IS NULL AND engine != 'import'
         AND NOT EXISTS (SELECT 1 FROM operations o WHERE o.proposal_id = proposals.id)""",
]

MIGRATIONS: list[tuple[str, list[str]]] = [
    ("m001_initial", m001_initial),
    ("m002_dream_briefs", m002_dream_briefs),
    ("m003_locks", m003_locks),
    ("m004_ranking_indexes", m004_ranking_indexes),
    ("m005_active_content_index", m005_active_content_index),
    ("m006_empty_dreams", m006_empty_dreams),
]

# Migrations that rebuild a table other tables reference. Dropping the old copy would trip
# those references while foreign keys are on, and the pragma cannot change inside a
# transaction: these run with it off, and commit only if `foreign_key_check` then finds nothing.
_REBUILDS = frozenset({"m006_empty_dreams"})


async def migrate(connection: aiosqlite.Connection) -> list[str]:
    """Apply every migration not yet recorded; returns the names applied."""
    await connection.execute(
        "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    cursor = await connection.execute("SELECT name FROM _migrations")
    done = {row[0] for row in await cursor.fetchall()}
    applied = []
    for name, statements in MIGRATIONS:
        if name not in done:
            await _apply(connection, name, statements)
            applied.append(name)
    return applied


async def _apply(connection: aiosqlite.Connection, name: str, statements: list[str]) -> None:
    if name not in _REBUILDS:
        return await _apply_in_transaction(connection, name, statements)
    enforced = (await (await connection.execute("PRAGMA foreign_keys")).fetchone())[0]
    await connection.execute("PRAGMA foreign_keys = OFF")
    try:
        await _apply_in_transaction(connection, name, statements, check_keys=True)
    finally:
        await connection.execute(f"PRAGMA foreign_keys = {enforced}")


async def _apply_in_transaction(
    connection: aiosqlite.Connection, name: str, statements: list[str], check_keys: bool = False
) -> None:
    await connection.execute("BEGIN IMMEDIATE")
    try:
        # Another process may have migrated between our check and this lock.
        cursor = await connection.execute("SELECT 1 FROM _migrations WHERE name = ?", (name,))
        if await cursor.fetchone() is None:
            for statement in statements:
                await connection.execute(statement)
            if check_keys and await (await connection.execute("PRAGMA foreign_key_check")).fetchone():
                raise sqlite3.IntegrityError(f"{name} would leave rows pointing at rows that are gone")
            await connection.execute("INSERT INTO _migrations VALUES (?, ?)", (name, to_iso(utcnow())))
    except BaseException:
        await connection.execute("ROLLBACK")
        raise
    await connection.execute("COMMIT")

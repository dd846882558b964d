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
from dataclasses import dataclass

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

m007_project_scopes = [
    # The project a session was worked on in (`reverie.projects`): its key, or NULL for a
    # session from outside any project (another client, `reverie log FILE`, a session
    # logged before this). Sessions logged earlier are left NULL: only their free-text
    # titles hint at a folder, and guessing would file memory under the wrong project;
    # NULL keeps them, and the entries dreamt from them, visible in every project as before.
    "ALTER TABLE sessions ADD COLUMN project TEXT",
    "CREATE INDEX sessions_project ON sessions (project, started_at) WHERE project IS NOT NULL",
    _refuse("sessions", "UPDATE", "a session keeps its project", "WHEN NEW.project IS NOT OLD.project",
            name="sessions_project_kept"),
    # Which project root holds which key, so two folders with one name get two keys and a
    # key never moves to another folder once memory is kept under it.
    """CREATE TABLE projects (
        key TEXT PRIMARY KEY,          -- the scope is project:<key>
        root TEXT NOT NULL UNIQUE,     -- absolute path of the git root (or folder) it names
        created_at TEXT NOT NULL
    )""",
]


# --- m008: tamper evidence -------------------------------------------------------------------
#
# What the ledger (`store.ledger`) holds a digest of. Frozen with m008: a change to what is
# hashed is a new kind in a new migration, or old ledger rows would stop matching.


@dataclass(frozen=True)
class Ledgered:
    kind: str
    table: str
    key: tuple[str, ...]       # the columns that name the row, joined by a space
    columns: tuple[str, ...]   # the columns hashed
    when: str = ""             # which rows, as a condition on `{row}.`
    mutable: bool = False      # logged again on every change; the newest entry must match

    def key_sql(self, row: str) -> str:
        return " || ' ' || ".join(f"CAST({row}.{c} AS TEXT)" for c in self.key)

    def digest_sql(self, row: str) -> str:
        return f"reverie_digest('{self.kind}', {', '.join(f'{row}.{c}' for c in self.columns)})"

    def condition(self, row: str) -> str:
        return self.when.format(row=row) if self.when else "1"


_OPERATION = ("proposal_id", "op_id")
LEDGERED: tuple[Ledgered, ...] = (
    Ledgered("session", "sessions", ("id",), ("id", "agent_id", "started_at")),
    Ledgered("session_end", "sessions", ("id",), ("id", "agent_id", "title", "outcome", "outcome_summary",
             "content_hash", "started_at", "ended_at", "logged_at"), "{row}.ended_at IS NOT NULL"),
    Ledgered("event", "events", ("id",), ("id", "session_id", "idx", "role", "content", "tool_name", "is_error",
             "timestamp")),
    Ledgered("note", "notes", ("id",), ("id", "session_id", "idx", "content", "created_at")),
    Ledgered("proposal", "proposals", ("id",), ("id", "engine", "scope", "base_revision", "instructions",
             "stats_json", "created_at", "brief")),
    Ledgered("proposal_status", "proposals", ("id",), ("id", "status", "decided_at", "applied_revision"),
             mutable=True),
    Ledgered("proposal_session", "proposal_sessions", ("proposal_id", "session_id"), ("proposal_id", "session_id")),
    Ledgered("operation", "operations", _OPERATION, (*_OPERATION, "position", "kind", "targets_json", "before_json",
             "content", "category", "scope", "confidence", "rationale", "evidence_json", "risk_json")),
    Ledgered("operation_status", "operations", _OPERATION, (*_OPERATION, "status", "memory_id"), mutable=True),
    Ledgered("revision", "revisions", ("id",), ("id", "proposal_id", "kind", "created_at")),
    Ledgered("memory", "memories", ("id",), ("id", "content", "category", "scope", "confidence", "evidence_json",
             "created_at", "observed_at")),
    Ledgered("memory_change", "memory_changes", ("id",), ("id", "revision_id", "memory_id", "op_id", "change",
             "before_json", "after_json")),
)


def _ledger_entry(item: Ledgered, row: str) -> str:
    return (f"INSERT INTO ledger (kind, key, digest) "
            f"SELECT '{item.kind}', {item.key_sql(row)}, {item.digest_sql(row)}")


def _on_insert(item: Ledgered) -> str:
    when = f"WHEN {item.condition('NEW')}" if item.when else ""
    return (f"CREATE TRIGGER ledger_{item.kind} AFTER INSERT ON {item.table} {when} "
            f"BEGIN {_ledger_entry(item, 'NEW')}; END")


def _on_change(item: Ledgered, columns: tuple[str, ...], changed: str) -> str:
    return (f"CREATE TRIGGER ledger_{item.kind}_change AFTER UPDATE OF {', '.join(columns)} ON {item.table} "
            f"WHEN {changed} BEGIN {_ledger_entry(item, 'NEW')}; END")


def _backfill(item: Ledgered) -> str:
    """Rows stored before m008 enter the ledger as they are now, so an older database passes doctor."""
    return f"{_ledger_entry(item, 't')} FROM {item.table} t WHERE {item.condition('t')} ORDER BY {item.key_sql('t')}"


def _changed(columns: tuple[str, ...]) -> str:
    return " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in columns)


_BY_KIND = {item.kind: item for item in LEDGERED}
_PROPOSAL_FIXED = ("id", "engine", "scope", "base_revision", "instructions", "stats_json", "created_at", "brief")
_OPERATION_FIXED = _BY_KIND["operation"].columns

m008_tamper_evidence = [
    # One row per logged fact, never changed: kind (see LEDGERED), key (the row's id, or
    # "proposal op" for an operation), digest (sha256 of the hashed columns, `store.ledger`).
    """CREATE TABLE ledger (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        digest TEXT NOT NULL
    )""",
    "CREATE INDEX ledger_kind_key ON ledger (kind, key)",
    _refuse("ledger", "UPDATE", "the ledger is append-only"),
    _refuse("ledger", "DELETE", "the ledger is append-only"),
    # What a proposal is and what each operation would do (its risk flags included) never
    # change once stored; only statuses move, and each move is logged.
    _refuse("proposals", "UPDATE OF " + ", ".join(_PROPOSAL_FIXED), "a proposal keeps what it proposed",
            name="proposals_immutable"),
    _refuse("proposals", "DELETE", "proposals are kept"),
    _refuse("operations", "UPDATE OF " + ", ".join(_OPERATION_FIXED), "an operation keeps what it proposed",
            name="operations_immutable"),
    _refuse("operations", "DELETE", "operations are kept"),
    _refuse("proposal_sessions", "UPDATE", "a proposal keeps the sessions it reviewed"),
    _refuse("proposal_sessions", "DELETE", "a proposal keeps the sessions it reviewed"),
    *(_backfill(item) for item in LEDGERED),
    *(_on_insert(item) for item in LEDGERED),
    _on_change(_BY_KIND["session_end"], ("ended_at",), "OLD.ended_at IS NULL AND NEW.ended_at IS NOT NULL"),
    _on_change(_BY_KIND["proposal_status"], ("status", "decided_at", "applied_revision"),
               _changed(("status", "decided_at", "applied_revision"))),
    _on_change(_BY_KIND["operation_status"], ("status", "memory_id"), _changed(("status", "memory_id"))),
]

m009_session_authors = [
    # The grants of whoever wrote the session (a JSON list); a session appended to by several
    # callers keeps only the grants every one of them held. A dream's change lands in a scope
    # without a person's approval only if whoever wrote its evidence may write that scope
    # (`service.access.beyond_authors`). NULL: logged before this column existed, by a caller
    # nobody recorded, so it counts as holding no grants.
    "ALTER TABLE sessions ADD COLUMN author_grants_json TEXT",
]


m010_history_indexes = [
    # Indexes only (no table is rebuilt: sessions carries m008's ledger triggers). They let
    # the queries every read and every log runs stop early, or count an index, instead of
    # growing with the history (`store.sessions`):
    # `pending_notes` walks notes newest first and stops at its limit, instead of sorting
    # every note of every undreamed session.
    "CREATE INDEX notes_by_created ON notes (created_at DESC, idx)",
    # Ended sessions, per agent and in the order they were logged: `count_unconsolidated`
    # and `undreamed` count them from the index alone, and find the oldest undreamed one
    # walking from the oldest.
    "CREATE INDEX sessions_ended ON sessions (agent_id, logged_at) WHERE ended_at IS NOT NULL",
    "CREATE INDEX sessions_ended_by_logged ON sessions (logged_at) WHERE ended_at IS NOT NULL",
]


MIGRATIONS: list[tuple[str, list[str]]] = [
    ("m001_initial", m001_initial),
    ("m002_dream_briefs", m002_dream_briefs),
    ("m003_locks", m003_locks),
    ("m004_ranking_indexes", m004_ranking_indexes),
    ("m005_active_content_index", m005_active_content_index),
    ("m006_empty_dreams", m006_empty_dreams),
    ("m007_project_scopes", m007_project_scopes),
    ("m008_tamper_evidence", m008_tamper_evidence),
    ("m009_session_authors", m009_session_authors),
    ("m010_history_indexes", m010_history_indexes),
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

"""The PostgreSQL schema: the same tables, invariants and ledger as SQLite's (`store.migrations`).

Numbered migrations, each run in one transaction with the row in `_migrations` that
records it, under the write lock, so servers starting together migrate once. Never edit
one that has shipped; add the next number.

What differs from SQLite, and why:
- Full-text search is a generated `tsvector` column with a GIN index (`english`
  stemming, as SQLite's porter tokenizer stems), not an FTS5 table, so it cannot drift.
- Triggers are functions: `reverie_refuse` keeps history append-only (and refuses
  TRUNCATE, which skips row triggers); one `ledger_<kind>` function per ledgered kind.
- The ledger's digests are computed in SQL exactly as `store.ledger.digest` computes them
  in Python (sha256 over the values as compact JSON), so `reverie doctor` checks both
  backends alike and a ledger copied from SQLite verifies here. `reverie_json` spells
  each value as Python's `json.dumps` does (a float with no fraction as `1.0`).
- The two foreign keys between proposals and revisions point at each other; they are
  checked at commit, so a copy from SQLite can insert either first.
- `julianday(text)` and the two-argument `max(a, b)` exist as functions, so the store's
  ranking SQL reads the same on both backends.
"""

from __future__ import annotations

from psycopg import AsyncConnection

from reverie.clock import to_iso, utcnow
from reverie.store.migrations import LEDGERED, Ledgered
from reverie.store.search import WORD_SLICE

WRITE_LOCK = 0x7265766572696521  # the advisory lock every write transaction takes first ("reverie!")
SEARCH_CONFIG = "english"


def _refuse(table: str, action: str, message: str, when: str = "", name: str = "") -> str:
    """A trigger that refuses `action` on `table` (optionally only `when` a condition holds)."""
    name = name or f"{table}_no_{action.split()[0].lower()}"
    when = f"WHEN ({when})" if when else ""
    return (f"CREATE TRIGGER {name} BEFORE {action} ON {table} FOR EACH ROW {when} "
            f"EXECUTE FUNCTION reverie_refuse('{message}')")


def _append_only(table: str, message: str) -> list[str]:
    return [_refuse(table, "UPDATE", message), _refuse(table, "DELETE", message),
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} FOR EACH STATEMENT "
            f"EXECUTE FUNCTION reverie_refuse('{message}')"]


_FUNCTIONS = [
    """CREATE FUNCTION reverie_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION '%', TG_ARGV[0] USING ERRCODE = 'integrity_constraint_violation'; END $$""",
    # Python's json.dumps(value, ensure_ascii=False) for each type a ledgered column has.
    "CREATE FUNCTION reverie_json(v text) RETURNS text LANGUAGE sql IMMUTABLE AS "
    "$$ SELECT coalesce(to_json(v)::text, 'null') $$",
    "CREATE FUNCTION reverie_json(v integer) RETURNS text LANGUAGE sql IMMUTABLE AS "
    "$$ SELECT coalesce(v::text, 'null') $$",
    "CREATE FUNCTION reverie_json(v bigint) RETURNS text LANGUAGE sql IMMUTABLE AS "
    "$$ SELECT coalesce(v::text, 'null') $$",
    """CREATE FUNCTION reverie_json(v double precision) RETURNS text LANGUAGE sql IMMUTABLE AS $$
       SELECT CASE WHEN v IS NULL THEN 'null'
                   WHEN v = trunc(v) AND abs(v) < 1e16 THEN trunc(v)::bigint::text || '.0'
                   ELSE v::text END $$""",
    "CREATE FUNCTION reverie_digest(json text) RETURNS text LANGUAGE sql IMMUTABLE AS "
    "$$ SELECT encode(sha256(convert_to(json, 'UTF8')), 'hex') $$",
    # SQLite's julianday and scalar max, for the ranking prior (`store.memories`).
    "CREATE FUNCTION julianday(t text) RETURNS double precision LANGUAGE sql IMMUTABLE AS "
    "$$ SELECT extract(epoch FROM t::timestamptz)::double precision / 86400.0 + 2440587.5 $$",
    "CREATE FUNCTION max(a double precision, b double precision) RETURNS double precision "
    "LANGUAGE sql IMMUTABLE AS $$ SELECT greatest(a, b) $$",
]

_TABLES = [
    """CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        agent_id TEXT NOT NULL,
        title TEXT,
        outcome TEXT NOT NULL DEFAULT 'unknown' CHECK (outcome IN ('success', 'failure', 'partial', 'unknown')),
        outcome_summary TEXT,
        content_hash TEXT NOT NULL,
        started_at TEXT NOT NULL,
        ended_at TEXT,
        logged_at TEXT NOT NULL,
        project TEXT,
        author_grants_json TEXT
    )""",
    "CREATE INDEX sessions_agent ON sessions (agent_id, started_at)",
    "CREATE INDEX sessions_project ON sessions (project, started_at) WHERE project IS NOT NULL",
    "CREATE INDEX sessions_ended ON sessions (agent_id, logged_at) WHERE ended_at IS NOT NULL",
    "CREATE INDEX sessions_ended_by_logged ON sessions (logged_at) WHERE ended_at IS NOT NULL",
    _refuse("sessions", "DELETE", "sessions are append-only"),
    _refuse("sessions", "UPDATE", "an ended session is final", "OLD.ended_at IS NOT NULL"),
    _refuse("sessions", "UPDATE", "a session keeps its id, agent and start",
            "NEW.id IS DISTINCT FROM OLD.id OR NEW.agent_id IS DISTINCT FROM OLD.agent_id"
            " OR NEW.started_at IS DISTINCT FROM OLD.started_at", name="sessions_identity"),
    _refuse("sessions", "UPDATE", "a session keeps its project", "NEW.project IS DISTINCT FROM OLD.project",
            name="sessions_project_kept"),
    f"""CREATE TABLE events (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions (id),
        idx INTEGER NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'tool', 'system')),
        content TEXT NOT NULL,
        tool_name TEXT,
        is_error INTEGER NOT NULL DEFAULT 0 CHECK (is_error IN (0, 1)),
        timestamp TEXT,
        search TSVECTOR GENERATED ALWAYS AS (to_tsvector('{SEARCH_CONFIG}', content)) STORED,
        UNIQUE (session_id, idx)
    )""",
    "CREATE INDEX events_search ON events USING gin (search)",
    *_append_only("events", "events are append-only"),
    """CREATE TABLE notes (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions (id),
        idx INTEGER NOT NULL,
        content TEXT NOT NULL,
        created_at TEXT NOT NULL,
        UNIQUE (session_id, idx)
    )""",
    "CREATE INDEX notes_by_created ON notes (created_at DESC, idx)",
    *_append_only("notes", "notes are append-only"),
    f"""CREATE TABLE memories (
        seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        content TEXT NOT NULL,
        category TEXT NOT NULL CHECK (category IN ('fact', 'preference', 'workflow', 'pitfall', 'insight')),
        scope TEXT NOT NULL,
        confidence DOUBLE PRECISION NOT NULL CHECK (confidence BETWEEN 0 AND 1),
        evidence_json TEXT NOT NULL DEFAULT '[]',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        observed_at TEXT NOT NULL,
        valid_to TEXT,
        archived_reason TEXT,
        last_read_at TEXT,
        read_count INTEGER NOT NULL DEFAULT 0,
        search TSVECTOR GENERATED ALWAYS AS (to_tsvector('{SEARCH_CONFIG}', content)) STORED
    )""",
    "CREATE INDEX memories_search ON memories USING gin (search)",
    "CREATE INDEX memories_active ON memories (scope, category) WHERE valid_to IS NULL",
    "CREATE INDEX memories_by_confidence ON memories (confidence DESC, observed_at DESC) WHERE valid_to IS NULL",
    "CREATE INDEX memories_by_observed ON memories (observed_at DESC) WHERE valid_to IS NULL",
    # A hash index: a B-tree refuses entries past ~2.7 kB, and this is only ever asked "equal?".
    "CREATE INDEX memories_active_content ON memories USING hash (lower(content)) WHERE valid_to IS NULL",
    _refuse("memories", "DELETE", "memories are archived, never deleted"),
    _refuse("memories", "UPDATE OF id, content, category, scope, confidence, evidence_json, created_at, observed_at",
            "a memory keeps its text; archive it and add a new one", name="memories_immutable"),
    """CREATE TABLE revisions (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        proposal_id TEXT,
        kind TEXT NOT NULL CHECK (kind IN ('apply', 'revert', 'import')),
        created_at TEXT NOT NULL
    )""",
    *_append_only("revisions", "revisions are append-only"),
    """CREATE TABLE proposals (
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
        applied_revision BIGINT REFERENCES revisions (id) DEFERRABLE INITIALLY DEFERRED,
        brief TEXT
    )""",
    "CREATE INDEX proposals_status ON proposals (status, created_at)",
    """ALTER TABLE revisions ADD FOREIGN KEY (proposal_id) REFERENCES proposals (id)
       DEFERRABLE INITIALLY DEFERRED""",
    """CREATE TABLE proposal_sessions (
        proposal_id TEXT NOT NULL REFERENCES proposals (id),
        session_id TEXT NOT NULL REFERENCES sessions (id),
        PRIMARY KEY (proposal_id, session_id)
    )""",
    "CREATE INDEX proposal_sessions_session ON proposal_sessions (session_id)",
    *_append_only("proposal_sessions", "a proposal keeps the sessions it reviewed"),
    """CREATE TABLE operations (
        proposal_id TEXT NOT NULL REFERENCES proposals (id),
        op_id TEXT NOT NULL,
        position INTEGER NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('add', 'update', 'merge', 'prune', 'promote')),
        targets_json TEXT NOT NULL,
        before_json TEXT NOT NULL,
        content TEXT,
        category TEXT,
        scope TEXT,
        confidence DOUBLE PRECISION NOT NULL,
        rationale TEXT NOT NULL,
        evidence_json TEXT NOT NULL,
        risk_json TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'applied', 'rejected')),
        memory_id TEXT,
        PRIMARY KEY (proposal_id, op_id)
    )""",
    """CREATE TABLE memory_changes (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        revision_id BIGINT NOT NULL REFERENCES revisions (id),
        memory_id TEXT NOT NULL REFERENCES memories (id),
        op_id TEXT,
        change TEXT NOT NULL CHECK (change IN ('insert', 'archive', 'restore')),
        before_json TEXT,
        after_json TEXT NOT NULL
    )""",
    "CREATE INDEX memory_changes_memory ON memory_changes (memory_id, revision_id)",
    *_append_only("memory_changes", "memory changes are append-only"),
    """CREATE TABLE locks (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        acquired_at TEXT NOT NULL,
        expires_at TEXT NOT NULL
    )""",
    """CREATE TABLE projects (
        key TEXT PRIMARY KEY,
        root TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL
    )""",
]

_FIXED = {"proposals": ("id", "engine", "scope", "base_revision", "instructions", "stats_json", "created_at", "brief"),
          "operations": next(item.columns for item in LEDGERED if item.kind == "operation")}
_PROTECTED = [
    _refuse("proposals", "UPDATE OF " + ", ".join(_FIXED["proposals"]), "a proposal keeps what it proposed",
            name="proposals_immutable"),
    _refuse("proposals", "DELETE", "proposals are kept"),
    _refuse("operations", "UPDATE OF " + ", ".join(_FIXED["operations"]), "an operation keeps what it proposed",
            name="operations_immutable"),
    _refuse("operations", "DELETE", "operations are kept"),
    """CREATE TABLE ledger (
        seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        digest TEXT NOT NULL
    )""",
    "CREATE INDEX ledger_kind_key ON ledger (kind, key)",
    *_append_only("ledger", "the ledger is append-only"),
]


# --- the ledger's triggers, from the same list SQLite's are made from ----------------------


def digest_sql(item: Ledgered, row: str) -> str:
    """`store.ledger.digest(kind, *columns)` in SQL."""
    values = ", ".join([f"reverie_json('{item.kind}'::text)", *(f"reverie_json({row}.{c})" for c in item.columns)])
    return f"reverie_digest('[' || concat_ws(',', {values}) || ']')"


def _ledger_function(item: Ledgered) -> str:
    # A copy from SQLite (`reverie migrate --from`) brings the ledger itself, entry for
    # entry; the rows it inserts must not be logged a second time.
    return f"""CREATE FUNCTION ledger_{item.kind}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF current_setting('reverie.copying', true) = 'on' THEN RETURN NULL; END IF;
            INSERT INTO ledger (kind, key, digest) VALUES ('{item.kind}', {item.key_sql('NEW')}, {digest_sql(item, 'NEW')});
            RETURN NULL;
        END $$"""


def _ledger_triggers(item: Ledgered) -> list[str]:
    when = f"WHEN ({item.condition('NEW')})" if item.when else ""
    made = [_ledger_function(item),
            f"CREATE TRIGGER ledger_{item.kind} AFTER INSERT ON {item.table} FOR EACH ROW {when} "
            f"EXECUTE FUNCTION ledger_{item.kind}()"]
    if changed := _CHANGES.get(item.kind):
        columns, condition = changed
        made.append(f"CREATE TRIGGER ledger_{item.kind}_change AFTER UPDATE OF {', '.join(columns)} "
                    f"ON {item.table} FOR EACH ROW WHEN ({condition}) EXECUTE FUNCTION ledger_{item.kind}()")
    return made


def _changed(columns: tuple[str, ...]) -> str:
    return " OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in columns)


_CHANGES = {
    "session_end": (("ended_at",), "OLD.ended_at IS NULL AND NEW.ended_at IS NOT NULL"),
    "proposal_status": (("status", "decided_at", "applied_revision"), _changed(("status", "decided_at",
                                                                                  "applied_revision"))),
    "operation_status": (("status", "memory_id"), _changed(("status", "memory_id"))),
}

p001_initial = [*_FUNCTIONS, *_TABLES, *_PROTECTED, *(s for item in LEDGERED for s in _ledger_triggers(item))]


# --- p002: the ledger logs each INSERT statement's rows at once -----------------------------
#
# A row trigger runs its INSERT INTO ledger once per row, through the executor each time:
# 0.2 ms an event, more than storing the event itself (its tsvector, indexes and checks), so
# logging a session of 200 turns spent most of its time here. A statement trigger sees the
# statement's rows as a transition table and logs them in one INSERT … SELECT (0.03 ms a row);
# the digests are the same. Rows are logged in key order; nothing reads meaning into the
# order within one statement. Status changes stay row triggers: PostgreSQL allows no
# transition table beside `UPDATE OF` columns, and they come a few at a time.


def _ledger_rows_function(item: Ledgered) -> str:
    where = f"WHERE {item.condition('n')}" if item.when else ""
    order = ", ".join(f"n.{column}" for column in item.key)
    return f"""CREATE FUNCTION ledger_{item.kind}_rows() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF current_setting('reverie.copying', true) = 'on' THEN RETURN NULL; END IF;
            INSERT INTO ledger (kind, key, digest)
                SELECT '{item.kind}', {item.key_sql('n')}, {digest_sql(item, 'n')} FROM new_rows n {where} ORDER BY {order};
            RETURN NULL;
        END $$"""


def _ledger_statement_trigger(item: Ledgered) -> list[str]:
    # Written as pg_get_triggerdef prints it back, which `reverie doctor` compares against.
    return [_ledger_rows_function(item), f"DROP TRIGGER ledger_{item.kind} ON {item.table}",
            f"CREATE TRIGGER ledger_{item.kind} AFTER INSERT ON {item.table} REFERENCING NEW TABLE AS new_rows "
            f"FOR EACH STATEMENT EXECUTE FUNCTION ledger_{item.kind}_rows()"]


p002_ledger_per_statement = [s for item in LEDGERED for s in _ledger_statement_trigger(item)]

# --- p003: searches that do not slow down as the memory is read ------------------------------
#
# A GIN index takes new entries into a "pending list" that every search reads through, until
# vacuum or the list's size limit (4 MB by default) merges it into the index. Each read of
# memory marks the entries it returned as read, and an UPDATE that has to move the row to
# another page gives it new entries in every index, its tsvector's too: at 100k memories the
# pending list held 3 MB after a few hundred reads, and each word searched read it through
# (counting matches took twice as long as once vacuumed). So:
# - memories' pages keep a fifth free, so a read count's update stays on its page and touches
#   no index (a HOT update: none of the indexed columns changes);
# - both search indexes merge their pending list at 256 kB; logging sessions was no slower.

p003_search_stays_fast = [
    "ALTER TABLE memories SET (fillfactor = 80)",
    "ALTER INDEX memories_search SET (gin_pending_list_limit = 256)",
    "ALTER INDEX events_search SET (gin_pending_list_limit = 256)",
]

# --- p004: cheaper triggers ---------------------------------------------------------------------
#
# - The ledger's digest, computed inline. PostgreSQL writes a SQL function's body into the
#   statement that calls it, rather than calling it once per row, only if the body is no more
#   volatile than the function is declared. `to_json` and `convert_to` are STABLE (they depend
#   on type output functions and encoding conversions), so `reverie_json(text)` and
#   `reverie_digest`, declared IMMUTABLE, were called row by row, five to eight times per row:
#   the digest of an event cost ~14 µs, ~5 µs inline. STABLE is also what they are. Same
#   bodies, same digests; no index or generated column uses them.
# - A memory's fixed columns are guarded AFTER the update. Any BEFORE UPDATE row trigger on a
#   table makes PostgreSQL recompute its stored generated columns on every update, whatever
#   it changed: each archive, restore and read count re-derived the memory's `tsvector`
#   (~36 µs for a 300-character memory, the update itself ~6). An AFTER trigger refuses the
#   same updates; its error aborts the statement just the same, so nothing is changed.

_MEMORY_FIXED = "id, content, category, scope, confidence, evidence_json, created_at, observed_at"

p004_cheaper_triggers = [
    "ALTER FUNCTION reverie_json(text) STABLE",
    "ALTER FUNCTION reverie_digest(text) STABLE",
    "DROP TRIGGER memories_immutable ON memories",
    f"CREATE TRIGGER memories_immutable AFTER UPDATE OF {_MEMORY_FIXED} ON memories FOR EACH ROW "
    "EXECUTE FUNCTION reverie_refuse('a memory keeps its text; archive it and add a new one')",
]

# --- p005: memories' words counted as they are written ------------------------------------------
#
# A read counts how many of the newest memories hold each word of its query (`store.search`).
# FTS5 counts a word's rows inside its index; PostgreSQL has no index-only GIN scan, so it
# visited each candidate row and tested its tsvector: ~35 ms of a read at 100k memories.
# Here each INSERT statement adds its memories' lexemes to `memory_words`, per scope and
# slice of WORD_SLICE rows (by `seq`), and a count is a sum over the slices the newest rows
# fill (`search` starts its window on a slice's edge). Memories are never deleted and keep
# their scope and text, so the sums stay exact. The copy from SQLite (`reverie.copying`)
# fills it too: it is derived from the memories, not history. Events stay counted by
# walking their newest rows: thousands of lexemes a session would cost more at ingest than
# the read saves.

# Each (word, slice, scope) of the memories and how many memories hold it: what the migration
# fills `memory_words` with, and what `reverie doctor` recounts it against.
MEMORY_WORDS_RECOUNT = (f"SELECT w.lexeme AS word, (m.seq - 1) / {WORD_SLICE} AS slice, m.scope, count(*) AS rows "
                        "FROM memories m, unnest(m.search) w GROUP BY 1, 2, 3")

p005_memory_words = [
    """CREATE TABLE memory_words (
        word TEXT NOT NULL,
        slice BIGINT NOT NULL,
        scope TEXT NOT NULL,
        rows INTEGER NOT NULL,
        PRIMARY KEY (word, slice, scope)
    )""",
    f"""CREATE FUNCTION memory_words_rows() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO memory_words (word, slice, scope, rows)
                SELECT w.lexeme, (n.seq - 1) / {WORD_SLICE}, n.scope, count(*) FROM new_rows n, unnest(n.search) w
                GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
            ON CONFLICT (word, slice, scope) DO UPDATE SET rows = memory_words.rows + excluded.rows;
            RETURN NULL;
        END $$""",
    "CREATE TRIGGER memory_words AFTER INSERT ON memories REFERENCING NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION memory_words_rows()",
    f"INSERT INTO memory_words (word, slice, scope, rows) {MEMORY_WORDS_RECOUNT}",
]

MIGRATIONS: list[tuple[str, list[str]]] = [("p001_initial", p001_initial),
                                           ("p002_ledger_per_statement", p002_ledger_per_statement),
                                           ("p003_search_stays_fast", p003_search_stays_fast),
                                           ("p004_cheaper_triggers", p004_cheaper_triggers),
                                           ("p005_memory_words", p005_memory_words)]


async def migrate(connection: AsyncConnection) -> list[str]:
    """Apply every migration not yet recorded (on an autocommit connection); returns the names applied."""
    applied = []
    for name, statements in MIGRATIONS:
        async with connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            await connection.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, "
                                     "applied_at TEXT NOT NULL)")
            # Another server may have migrated between starting and taking the lock.
            if await (await connection.execute("SELECT 1 FROM _migrations WHERE name = %s", (name,))).fetchone():
                continue
            for statement in statements:
                await connection.execute(statement.replace("%", "%%"), ())
            await connection.execute("INSERT INTO _migrations VALUES (%s, %s)", (name, to_iso(utcnow())))
            applied.append(name)
    return applied

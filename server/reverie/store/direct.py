"""The Claude Code hooks' own way into a SQLite memory file, with the standard library's
`sqlite3` alone: the reads SessionStart makes, and the log of a conversation SessionEnd
hands over, when nothing of it is stored yet.

Each hook starts a process, at every session start and end, and the regular store costs
~200 ms to load before it does anything: aiosqlite and asyncio under it, pydantic models
out of it. These are the statements the hooks run through the regular store, synchronous,
taking and returning plain records: the same SQL, SQLite's spelling only, and the same
rows written, ledger digests and content hash included. `reverie.session_start` builds
SessionStart's text from the reads, `reverie.hooks` what SessionEnd logs; tests hold
both to what the service prints and stores, on the same files.

Only for a file migrated to exactly the schema these statements were written for
(`SCHEMA`) and in WAL mode, as `store.sqlite` leaves it. `open_migrated` answers None
for anything else — no file yet, an older or a newer schema, a file that is not a
database — and the caller goes through the service, which creates, migrates or refuses
it. A migration added to `store.migrations` fails a test until `SCHEMA` names it too,
after these statements were checked against it.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from json.encoder import encode_basestring_ascii as _quote
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, TypeAlias, TypeVar

from reverie.clock import from_iso, to_iso
from reverie.projects import base_key, claimed_key
from reverie.store import ranking

if TYPE_CHECKING:
    from reverie.claude_transcript import Said

T = TypeVar("T")
Look: TypeAlias = sqlite3.Connection  # one connection to the file, used by one thread

SCHEMA = frozenset({
    "m001_initial", "m002_dream_briefs", "m003_locks", "m004_ranking_indexes", "m005_active_content_index",
    "m006_empty_dreams", "m007_project_scopes", "m008_tamper_evidence", "m009_session_authors",
    "m010_history_indexes",
})
BUSY_TIMEOUT_S = 10.0  # store.database.BUSY_TIMEOUT_MS

# The records are NamedTuples: a frozen dataclass takes ~0.5 ms to define (it compiles its
# methods), paid by every hook process for each.


class Session(NamedTuple):
    """An ended session, as a recap line shows it."""

    id: str
    title: str | None
    outcome: str
    outcome_summary: str | None
    started_at: datetime


class Entry(NamedTuple):
    """An active memory, as `read_memory` shows it."""

    id: str
    content: str
    category: str
    sources: tuple[str, ...]
    observed_at: datetime


class Note(NamedTuple):
    """A note of the agent's that no dream has reviewed yet, as `read_memory` shows it."""

    session_id: str
    idx: int  # its place among the session's notes (`models.NoteEntry.index`; a tuple's `index` is a method)
    content: str
    created_at: datetime


class Notice(NamedTuple):
    """A dream proposal awaiting the user's review."""

    proposal_id: str
    operations: int
    flagged: int


def run(path: Path, work: Callable[[Look], T | None]) -> T | None:
    """`work` on the memory file at `path`; None when the file is not one these statements
    are for (`open_migrated`), or SQLite failed one of them (a write was rolled back). The
    service then does the work, and says what is wrong with the file in its own words."""
    look = open_migrated(path)
    if look is None:
        return None
    try:
        return work(look)
    except sqlite3.Error:
        return None
    finally:
        look.close()


def open_migrated(path: Path) -> Look | None:
    """A connection to the memory file at `path` if it holds exactly SCHEMA in WAL mode; else None."""
    if not path.is_file():
        return None  # connecting would create it, unmigrated
    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    try:
        mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
        done = {row[0] for row in connection.execute("SELECT name FROM _migrations")}
    except sqlite3.Error:  # not a database, no _migrations table, damaged, locked for good
        connection.close()
        return None
    if mode != "wal" or done != SCHEMA:
        connection.close()
        return None
    connection.execute("PRAGMA foreign_keys = ON")  # as store.sqlite sets them
    connection.execute("PRAGMA synchronous = NORMAL")
    return connection


# --- store.projects ---------------------------------------------------------------------


def project_key(look: Look, root: Path) -> str:
    """As `service.projects.key_for`: the key of the project at `root`, else the one it would claim."""
    return _scalar(look, "SELECT key FROM projects WHERE root = ?", (str(root),)) or claimed_key(
        root, _scalar(look, "SELECT root FROM projects WHERE key = ?", (base_key(root),)))


def claim_project(look: Look, root: Path, now: datetime) -> str:
    """As `service.projects.claim`: the key of the project at `root`, recorded for good."""
    with _writing(look):
        key = project_key(look, root)
        if _scalar(look, "SELECT root FROM projects WHERE key = ?", (key,)) is None:
            look.execute("INSERT INTO projects (key, root, created_at) VALUES (?, ?, ?)", (key, str(root), to_iso(now)))
    return key


# --- store.sessions ---------------------------------------------------------------------

_CONSOLIDATED = """EXISTS (
    SELECT 1 FROM proposal_sessions ps JOIN proposals p ON p.id = ps.proposal_id
    WHERE ps.session_id = s.id AND p.status IN ('applied', 'partially_applied'))"""
_IN_PROJECT = "(:project IS NULL OR s.project IS NULL OR s.project = :project)"
_ENDED = "s.ended_at IS NOT NULL"


def recent_in_project(look: Look, agent_id: str, project: str, limit: int) -> list[Session]:
    rows = look.execute(
        """SELECT id, title, outcome, outcome_summary, started_at FROM sessions
           WHERE project = ? AND agent_id = ? AND ended_at IS NOT NULL
           ORDER BY started_at DESC, logged_at DESC LIMIT ?""",
        (project, agent_id, limit),
    ).fetchall()
    return [Session(r[0], r[1], r[2], r[3], _moment(r[4])) for r in rows]


def pending_notes(look: Look, agent_id: str, project: str | None, limit: int = 200) -> list[Note]:
    rows = look.execute(
        f"""SELECT n.session_id, n.idx, n.content, n.created_at
            FROM notes n INDEXED BY notes_by_created CROSS JOIN sessions s ON s.id = n.session_id
            WHERE s.agent_id = :agent AND {_IN_PROJECT} AND NOT {_CONSOLIDATED}
            ORDER BY n.created_at DESC, n.idx LIMIT :limit""",
        {"agent": agent_id, "project": project, "limit": limit},
    ).fetchall()
    return [Note(r[0], r[1], r[2], _moment(r[3])) for r in rows]


class FirstPart(NamedTuple):
    """A conversation nothing of which is stored yet, its turns redacted, as one call of
    `service.ingest.log` stores it: a new session, ended."""

    id: str
    agent_id: str
    turns: Sequence[Said]
    title: str
    summary: str | None
    project: str | None
    author_grants: frozenset[str]
    started_at: datetime
    ended_at: datetime
    logged_at: datetime


def log_first_part(look: Look, part: FirstPart) -> bool:
    """Store `part` in one write transaction; False, writing nothing, when a session
    `part.id` is stored already (its conversation is the service's to continue)."""
    look.create_function(DIGEST_FUNCTION, -1, digest, deterministic=True)  # the ledger's triggers call it
    with _writing(look):
        if _scalar(look, "SELECT id FROM sessions WHERE id = ?", (part.id,)) is not None:
            return False
        look.execute("INSERT INTO sessions (id, agent_id, content_hash, started_at, logged_at, project) "
                     "VALUES (?, ?, '', ?, ?, ?)",
                     (part.id, part.agent_id, to_iso(part.started_at), to_iso(part.logged_at), part.project))
        look.execute("UPDATE sessions SET author_grants_json = ? WHERE id = ?",
                     (json.dumps(sorted(part.author_grants)), part.id))
        _append_events(look, part.id, part.turns)
        # One statement, as `sessions.update_session` ends a session: the ledger's session_end
        # entry digests the row as this leaves it.
        look.execute("UPDATE sessions SET title = ?, outcome_summary = ?, content_hash = ?, ended_at = ? WHERE id = ?",
                     (part.title, part.summary, chain_hash("", part.turns), to_iso(part.ended_at), part.id))
    return True


# As `sessions.append_events`: many rows per INSERT (FTS5 flushes at the end of each statement).
_EVENT_COLUMNS = ("session_id", "idx", "role", "content", "tool_name", "is_error", "timestamp")
_EVENTS_PER_INSERT = 999 // len(_EVENT_COLUMNS)


def _append_events(look: Look, session_id: str, turns: Sequence[Said]) -> None:
    row = f"({', '.join('?' * len(_EVENT_COLUMNS))})"
    for start in range(0, len(turns), _EVENTS_PER_INSERT):
        batch = turns[start : start + _EVENTS_PER_INSERT]
        values: list[object] = []
        for i, t in enumerate(batch, start):
            values += (session_id, i, t.role, t.content, t.tool_name, int(t.is_error),
                       to_iso(t.timestamp) if t.timestamp else None)
        look.execute(f"INSERT INTO events ({', '.join(_EVENT_COLUMNS)}) VALUES {', '.join([row] * len(batch))}", values)


def chain_hash(previous: str, turns: Sequence[Said]) -> str:
    """As `service.ingest.chain_hash`: sha256 chained over the turns (a test holds the two to the same hex)."""
    import hashlib  # here and in `digest`: OpenSSL's takes ~3 ms to load, and SessionStart writes no digest

    digest = previous
    for turn in turns:
        tool_name = "null" if turn.tool_name is None else _quote(turn.tool_name)
        line = (f'{{"content": {_quote(turn.content)}, "is_error": {"true" if turn.is_error else "false"}, '
                f'"role": {_quote(turn.role)}, "tool_name": {tool_name}}}')
        digest = hashlib.sha256((digest + line).encode()).hexdigest()
    return digest


DIGEST_FUNCTION = "reverie_digest"
# What `json.dumps(values, ensure_ascii=False, separators=(",", ":"))` would build at every call:
# the ledger's triggers call `digest` for every row written, 200 times for a 200-turn session.
_DIGEST_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def digest(*values: object) -> str:
    """As `store.ledger.digest`, which the ledger's triggers call (a test holds the two to the same hex)."""
    import hashlib

    plain = [{"blob": v.hex()} if isinstance(v, bytes) else v for v in values]
    return hashlib.sha256(_DIGEST_JSON.encode(plain).encode()).hexdigest()


@contextlib.contextmanager
def _writing(look: Look) -> Iterator[None]:
    """A write transaction, as `Database.transaction`: BEGIN IMMEDIATE, commit, or roll back on anything."""
    look.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            look.execute("ROLLBACK")
        raise
    look.execute("COMMIT")


def undreamed(look: Look) -> tuple[int, datetime | None]:
    """Every agent's ended sessions no dream has reviewed yet: how many, and when the oldest was logged."""
    row = look.execute(
        f"""SELECT (SELECT count(*) FROM sessions s INDEXED BY sessions_ended WHERE {_ENDED})
                   - (SELECT count(DISTINCT ps.session_id) FROM proposals p
                      CROSS JOIN proposal_sessions ps ON ps.proposal_id = p.id
                      CROSS JOIN sessions s ON s.id = ps.session_id WHERE p.brief IS NULL AND {_ENDED}),
                   (SELECT s.logged_at FROM sessions s WHERE {_ENDED} AND NOT EXISTS (
                        SELECT 1 FROM proposal_sessions ps JOIN proposals p ON p.id = ps.proposal_id
                        WHERE ps.session_id = s.id AND p.brief IS NULL)
                    ORDER BY s.logged_at LIMIT 1)"""
    ).fetchone()
    return row[0], from_iso(row[1])


# --- store.memories ---------------------------------------------------------------------

def by_prior(look: Look, now: datetime, scopes: Sequence[str], limit: int) -> list[Entry]:
    """The active entries in `scopes` best by prior: the most confident and the most recent, rescored."""
    where = f"m.valid_to IS NULL AND m.scope IN ({','.join('?' * len(scopes))})"
    rows = look.execute(ranking.by_prior("m.id, m.content, m.category, m.evidence_json, m.observed_at", where),
                        (to_iso(now), *scopes, limit, *scopes, limit, limit)).fetchall()
    return [Entry(r[0], r[1], r[2], _sources(r[3]), _moment(r[4])) for r in rows]


def _sources(evidence_json: str) -> tuple[str, ...]:
    return tuple(sorted({evidence["session_id"] for evidence in json.loads(evidence_json)}))


def count_reads(look: Look, ids: Sequence[str], at: datetime) -> None:
    """Count one read of each entry, as `memories.mark_read` does when its deferred write runs.

    Waits for the write lock like any write; a file that stays busy or refuses the write
    keeps its old counts, as the service's close does (`Database.close`).
    """
    if not ids:
        return
    with contextlib.suppress(sqlite3.Error), _writing(look):  # counts only rank later reads: never worth failing for
        look.executemany("UPDATE memories SET last_read_at = ?, read_count = read_count + 1 WHERE id = ?",
                         [(to_iso(at), memory_id) for memory_id in ids])


# --- store.proposals --------------------------------------------------------------------


def pending_notices(look: Look) -> list[Notice]:
    """Proposals waiting for a person (briefs wait for the agent, not the user), newest first."""
    rows = look.execute(
        """SELECT p.id, count(o.op_id), count(nullif(o.risk_json, '[]'))
           FROM proposals p LEFT JOIN operations o ON o.proposal_id = p.id
           WHERE p.status = 'pending' AND p.brief IS NULL GROUP BY p.id ORDER BY p.created_at DESC"""
    ).fetchall()
    return [Notice(r[0], r[1], r[2]) for r in rows]


def last_dream_at(look: Look) -> datetime | None:
    """When the latest dream (any engine, any outcome) was proposed; imports and briefs aside."""
    return from_iso(_scalar(look, "SELECT max(created_at) FROM proposals WHERE engine != 'import' AND brief IS NULL"))


def _scalar(look: Look, sql: str, params: Sequence[object] = ()) -> str | None:
    row = look.execute(sql, params).fetchone()
    return None if row is None else row[0]


def _moment(text: str) -> datetime:
    moment = from_iso(text)
    assert moment is not None  # NOT NULL columns
    return moment

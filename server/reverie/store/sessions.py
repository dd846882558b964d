"""Sessions, their events and notes: the append-only record of what happened.

A session is "consolidated" once a proposal that reviewed it has been applied; reverting
that proposal makes it unconsolidated again, so its notes come back to the next dream. A
dream that proposed nothing (`empty`), or whose every change was rejected, consolidates
nothing: only what changed memory uses up history.
"""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import datetime

from reverie.clock import from_iso, to_iso
from reverie.models import Episode, Event, Note, NoteEntry, SessionRecord, Turn
from reverie.store.database import Database, Row
from reverie.store.search import SEARCH_CONFIG, fts5, ts_rank, tsquery

_CONSOLIDATED = """EXISTS (
    SELECT 1 FROM proposal_sessions ps JOIN proposals p ON p.id = ps.proposal_id
    WHERE ps.session_id = s.id AND p.status IN ('applied', 'partially_applied'))"""


async def get_session(db: Database, session_id: str) -> SessionRecord | None:
    """The session's own fields, without its events and notes."""
    row = await db.fetchone("SELECT * FROM sessions WHERE id = ?", (session_id,))
    return None if row is None else _head(row)


def _head(row: Row) -> SessionRecord:
    return SessionRecord(
        id=row["id"], agent_id=row["agent_id"], title=row["title"], outcome=row["outcome"],
        outcome_summary=row["outcome_summary"], content_hash=row["content_hash"],
        started_at=from_iso(row["started_at"]), ended_at=from_iso(row["ended_at"]), project=row["project"],
    )


async def create_session(
    db: Database, session_id: str, agent_id: str, started_at: datetime, logged_at: datetime,
    project: str | None = None,
) -> None:
    await db.execute(
        "INSERT INTO sessions (id, agent_id, content_hash, started_at, logged_at, project) VALUES (?, ?, '', ?, ?, ?)",
        (session_id, agent_id, to_iso(started_at), to_iso(logged_at), project),
    )


async def record_author(db: Database, session_id: str, grants: frozenset[str], first: bool) -> None:
    """Note who wrote into the session: the first writer's grants, narrowed by every later one's.

    Narrowing, never widening: a session's turns are only as trusted as the least trusted
    caller that wrote any of them, and one already unknown (NULL) stays unknown.
    """
    stored = None if first else await db.scalar("SELECT author_grants_json FROM sessions WHERE id = ?", (session_id,))
    if not first and (stored is None or set(json.loads(stored)) <= grants):
        return
    kept = grants if first else grants & set(json.loads(stored))
    await db.execute("UPDATE sessions SET author_grants_json = ? WHERE id = ?", (json.dumps(sorted(kept)), session_id))


async def authors(db: Database, session_ids: Sequence[str]) -> dict[str, tuple[str, frozenset[str]]]:
    """Who wrote each session: its agent and the grants recorded for it (none if unknown); unknown ids left out."""
    found = {}
    for chunk in _chunks(list(dict.fromkeys(session_ids))):
        rows = await db.fetchall(
            f"SELECT id, agent_id, author_grants_json FROM sessions WHERE id IN ({_marks(chunk)})", chunk)
        for row in rows:
            found[row[0]] = (row[1], frozenset(json.loads(row[2]) if row[2] else ()))
    return found


async def update_session(db: Database, session_id: str, **fields: object) -> None:
    """Set title, outcome, outcome_summary, content_hash or ended_at on an open session."""
    allowed = {"title", "outcome", "outcome_summary", "content_hash", "ended_at"}
    assignments = {k: v for k, v in fields.items() if k in allowed and v is not None}
    if unknown := set(fields) - allowed:
        raise ValueError(f"not a session field: {sorted(unknown)}")
    if assignments:
        columns = ", ".join(f"{name} = ?" for name in assignments)
        values = [to_iso(v) if isinstance(v, datetime) else v for v in assignments.values()]
        await db.execute(f"UPDATE sessions SET {columns} WHERE id = ?", (*values, session_id))


# On SQLite, events go in as multi-row INSERTs, not one statement per row: FTS5 flushes what
# the events_fts trigger indexed at the end of every statement, so row-at-a-time inserts made
# the index ~3x slower to fill. 999 bound values is SQLite's limit before 3.32. On PostgreSQL
# they go in as one COPY (`executemany` of a plain INSERT, see store.postgres).
_EVENT_COLUMNS = ("session_id", "idx", "role", "content", "tool_name", "is_error", "timestamp")
_EVENTS_PER_INSERT = 999 // len(_EVENT_COLUMNS)


async def append_events(db: Database, session_id: str, first_index: int, turns: Sequence[Turn]) -> None:
    if db.backend == "postgresql":
        await db.executemany(_insert_events(1), [
            (session_id, i, t.role, t.content, t.tool_name, int(t.is_error), to_iso(t.timestamp) if t.timestamp else None)
            for i, t in enumerate(turns, first_index)])
        return
    for start in range(0, len(turns), _EVENTS_PER_INSERT):
        batch = turns[start : start + _EVENTS_PER_INSERT]
        values = []
        for i, t in enumerate(batch, first_index + start):
            values += (session_id, i, t.role, t.content, t.tool_name, int(t.is_error),
                       to_iso(t.timestamp) if t.timestamp else None)
        await db.execute(_insert_events(len(batch)), values)


@functools.cache
def _insert_events(rows: int) -> str:
    row = f"({', '.join('?' * len(_EVENT_COLUMNS))})"
    return f"INSERT INTO events ({', '.join(_EVENT_COLUMNS)}) VALUES {', '.join([row] * rows)}"


async def append_notes(
    db: Database, session_id: str, first_index: int, notes: Sequence[tuple[str, datetime]]
) -> None:
    """Append (text, written at) notes."""
    await db.executemany(
        "INSERT INTO notes (session_id, idx, content, created_at) VALUES (?, ?, ?, ?)",
        [(session_id, first_index + i, text, to_iso(at)) for i, (text, at) in enumerate(notes)],
    )


async def counts(db: Database, session_id: str) -> tuple[int, int]:
    """(events, notes) stored for a session."""
    row = await db.fetchone(
        """SELECT (SELECT count(*) FROM events WHERE session_id = ?),
                  (SELECT count(*) FROM notes WHERE session_id = ?)""",
        (session_id, session_id),
    )
    return row[0], row[1]


async def count_unconsolidated(db: Database, agent_id: str | None = None) -> int:
    """Ended sessions no applied dream has consolidated: every agent's, or only `agent_id`'s.

    Counted as ended sessions less consolidated ones, not by testing every session: the
    first count reads only the `sessions_ended` index (m010), and the second grows with
    what dreams consolidated, never with the sessions still waiting (every log asks).
    """
    ended = _ended_of(agent_id)
    return await db.scalar(f"SELECT {_count_ended(ended)} - {_named_by_proposals(_CONSOLIDATING, ended)}",
                           {"agent": agent_id})


async def undreamed(db: Database, agent_id: str | None = None) -> tuple[int, datetime | None]:
    """Ended sessions no dream has reviewed yet (every agent's, or `agent_id`'s): how many,
    and when the oldest was logged.

    "Reviewed" means named by any proposal, whatever became of it, so sessions a person
    rejected, or a dream found nothing in, do not make the next dream due by themselves
    (they still join it). A dream brief does not count until the agent's answer to it is stored.
    Counted like `count_unconsolidated`; the oldest is found walking from the oldest logged,
    which stops at the first one no dream reviewed (every log asks whether a dream is due).
    """
    ended = _ended_of(agent_id)
    row = await db.fetchone(
        f"""SELECT {_count_ended(ended)} - {_named_by_proposals("p.brief IS NULL", ended)},
                   (SELECT s.logged_at FROM sessions s WHERE {ended} AND NOT EXISTS (
                        SELECT 1 FROM proposal_sessions ps JOIN proposals p ON p.id = ps.proposal_id
                        WHERE ps.session_id = s.id AND p.brief IS NULL)
                    ORDER BY s.logged_at LIMIT 1)""",
        {"agent": agent_id},
    )
    return row[0], from_iso(row[1])


def _ended_of(agent_id: str | None) -> str:
    """Ended sessions of :agent, or every agent's: two forms, so that SQLite searches the
    m010 index by agent rather than testing every entry of it."""
    return "s.ended_at IS NOT NULL" + ("" if agent_id is None else " AND s.agent_id = :agent")


def _count_ended(ended: str) -> str:
    return f"(SELECT count(*) FROM sessions s INDEXED BY sessions_ended WHERE {ended})"


def _named_by_proposals(which: str, ended: str) -> str:
    """How many of the `ended` sessions a proposal matching `which` named.

    CROSS JOIN keeps proposals the outer loop: left to itself, SQLite walks every session
    of an agent and looks each one up, which grows with the sessions still waiting.
    """
    return f"""(SELECT count(DISTINCT ps.session_id) FROM proposals p
        CROSS JOIN proposal_sessions ps ON ps.proposal_id = p.id CROSS JOIN sessions s ON s.id = ps.session_id
        WHERE {which} AND {ended})"""


_CONSOLIDATING = "p.status IN ('applied', 'partially_applied')"


async def unconsolidated_sessions(db: Database, agent_id: str | None, limit: int) -> list[SessionRecord]:
    """The `limit` most recent ended, unconsolidated sessions, oldest first, with events and notes."""
    rows = await db.fetchall(
        f"""SELECT * FROM sessions s WHERE ended_at IS NOT NULL AND NOT {_CONSOLIDATED}
            AND (? IS NULL OR agent_id = ?) ORDER BY started_at DESC, logged_at DESC, id DESC LIMIT ?""",
        (agent_id, agent_id, limit),
    )
    return await _records(db, rows[::-1])


async def session_records(db: Database, session_ids: Sequence[str]) -> list[SessionRecord]:
    """Sessions with their events and notes, in the order asked for (unknown ids are left out)."""
    rows = []
    for chunk in _chunks(list(dict.fromkeys(session_ids))):
        rows += await db.fetchall(f"SELECT * FROM sessions WHERE id IN ({_marks(chunk)})", chunk)
    found = {r.id: r for r in await _records(db, rows)}
    return [found[i] for i in session_ids if i in found]


async def ids_under(db: Database, base_id: str) -> set[str]:
    """`base_id` and the ids that extend it after a dot (`<base_id>.<anything>`), those stored."""
    # The range, not LIKE or GLOB with a built pattern, so the primary key's index is used.
    rows = await db.fetchall("SELECT id FROM sessions WHERE id = ? OR (id > ? AND id < ?)",
                             (base_id, f"{base_id}.", f"{base_id}/"))
    return {r[0] for r in rows}


# An event's columns by name, not *: PostgreSQL's `search` vector would come along, spelt out as text.
_EVENT_ROW = "id, session_id, idx, role, content, tool_name, is_error, timestamp"


async def _records(db: Database, rows: Sequence[Row]) -> list[SessionRecord]:
    """The sessions of `rows`, in that order, with their events and notes: two queries, not two per session."""
    ids = [row["id"] for row in rows]
    events: dict[str, list[Event]] = defaultdict(list)
    notes: dict[str, list[Note]] = defaultdict(list)
    for chunk in _chunks(ids):
        for e in await db.fetchall(f"SELECT {_EVENT_ROW} FROM events WHERE session_id IN ({_marks(chunk)}) "
                                   "ORDER BY session_id, idx", chunk):
            events[e["session_id"]].append(_event(e))
        for n in await db.fetchall(f"SELECT * FROM notes WHERE session_id IN ({_marks(chunk)}) "
                                   "ORDER BY session_id, idx", chunk):
            notes[n["session_id"]].append(Note(session_id=n["session_id"], index=n["idx"], content=n["content"],
                                               created_at=from_iso(n["created_at"])))
    return [_head(row).model_copy(update={"events": events[row["id"]], "notes": notes[row["id"]]})
            for row in rows]


# SQLite before 3.32 allows 999 bound values per statement.
_IDS_PER_QUERY = 900


def _chunks(ids: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(ids), _IDS_PER_QUERY):
        yield ids[start : start + _IDS_PER_QUERY]


def _marks(values: Sequence[object]) -> str:
    return ",".join("?" * len(values))


def _event(row: Row) -> Event:
    # Built without validation: the row was validated when it was written, and a dream
    # reads tens of thousands of events (validating them again cost a tenth of its time).
    return Event.model_construct(
        session_id=row["session_id"],
        index=row["idx"],
        role=row["role"],
        content=row["content"],
        tool_name=row["tool_name"],
        is_error=bool(row["is_error"]),
        timestamp=from_iso(row["timestamp"]),
    )


# In a project, what was said in that project or in none (`reverie.projects`); never in another.
_IN_PROJECT = "(:project IS NULL OR s.project IS NULL OR s.project = :project)"


async def pending_notes(
    db: Database, agent_id: str, limit: int = 200, project: str | None = None
) -> list[NoteEntry]:
    """Notes from the agent's sessions (in `project`, see _IN_PROJECT) that no applied dream has
    consolidated yet, newest first."""
    # Walked newest first along notes_by_created (m010), stopping at `limit`: sorting every
    # undreamed note instead cost 17 ms with 5,000 sessions waiting for a dream. Ties go by
    # n.id, which that index holds last (SQLite's rowid), so the walk still needs no sort.
    rows = await db.fetchall(
        f"""SELECT n.session_id, n.idx, n.content, n.created_at
            FROM notes n INDEXED BY notes_by_created CROSS JOIN sessions s ON s.id = n.session_id
            WHERE s.agent_id = :agent AND {_IN_PROJECT} AND NOT {_CONSOLIDATED}
            ORDER BY n.created_at DESC, n.idx, n.id LIMIT :limit""",
        {"agent": agent_id, "project": project, "limit": limit},
    )
    # Built without validation, like `_event`: written valid, and read on every read_memory.
    return [NoteEntry.model_construct(session_id=r[0], index=r[1], content=r[2], created_at=from_iso(r[3]))
            for r in rows]


# FTS5's own top-k, before any join: joining every match to its event and session first
# cost ~4 ms for a common word in 20k turns. BM25 scores only the newest SCORED_TURNS
# matches, so a search costs the same however long the history grows. Other agents' turns
# (or tool turns, or another project's) can crowd this agent's out of the top-k; then the
# matches are joined and filtered newest first, and the newest SCORED_TURNS that pass are
# scored: a word rare in recent turns may match many older ones (`search.focus` counts
# among the newest rows), and scoring its whole match would grow with the history.
SCORED_TURNS = 2_000
# A turn without its own time was said when its session started, as far as anyone knows.
_EPISODE_COLUMNS = "e.session_id, e.idx, e.role, e.content, coalesce(e.timestamp, s.started_at)"
# Only what the user and the assistant said: a tool call's arguments (a TodoWrite list, a Bash
# command) and a tool's output are the tooling's words — noisy, and written by whoever
# controls the tool's data — while what was asked, decided and concluded is in the turns.
_SAID = f"""s.agent_id = :agent AND {_IN_PROJECT} AND e.role IN ('user', 'assistant') AND e.tool_name IS NULL"""
_TOP_EVENTS = f"""SELECT {_EPISODE_COLUMNS}
    FROM (SELECT rowid, bm25(events_fts) AS relevance FROM events_fts
          WHERE events_fts MATCH :match AND rowid >= (
              SELECT min(rowid) FROM (SELECT rowid FROM events_fts WHERE events_fts MATCH :match
                                      ORDER BY rowid DESC LIMIT :scored))
          ORDER BY relevance LIMIT :top) AS f
    JOIN events e ON e.id = f.rowid JOIN sessions s ON s.id = e.session_id
    WHERE {_SAID} ORDER BY f.relevance LIMIT :limit"""
_ALL_EVENTS = f"""SELECT session_id, idx, role, content, said_at FROM (
        SELECT {_EPISODE_COLUMNS} AS said_at, bm25(events_fts) AS relevance FROM events_fts
        JOIN events e ON e.id = events_fts.rowid JOIN sessions s ON s.id = e.session_id
        WHERE events_fts MATCH :match AND {_SAID} ORDER BY events_fts.rowid DESC LIMIT :scored)
    ORDER BY relevance LIMIT :limit"""
# The same two on PostgreSQL, over the events' own `search` column. Common words, matched
# densely among the newest turns, are found by walking the newest rows:
_TS_MATCH = f"websearch_to_tsquery('{SEARCH_CONFIG}', :match)"
_TOP_EVENTS_PG = f"""SELECT {_EPISODE_COLUMNS}
    FROM (SELECT n.id, {ts_rank('n.search', _TS_MATCH)} AS relevance
          FROM (SELECT id, search FROM events WHERE search @@ {_TS_MATCH} ORDER BY id DESC LIMIT :scored) AS n
          ORDER BY relevance DESC, n.id LIMIT :top) AS f
    JOIN events e ON e.id = f.id JOIN sessions s ON s.id = e.session_id
    WHERE {_SAID} ORDER BY f.relevance DESC, e.id LIMIT :limit"""
# Rare words (in the newest turns; `search.focus`) are matched through the GIN index, every
# match at once, and only then cut to the newest: walking the newest rows, the planner's
# choice for a word common across the whole history, read 85,000 rows to find 2,000 matches
# of a word rare lately, and 270,000 to find 2,000 said turns (~300 ms of a read at 1M).
_RARE_TOP_EVENTS_PG = f"""WITH matched AS MATERIALIZED (SELECT id FROM events WHERE search @@ {_TS_MATCH})
    SELECT {_EPISODE_COLUMNS}
    FROM (SELECT n.id, {ts_rank('n.search', _TS_MATCH)} AS relevance
          FROM (SELECT e.id, e.search FROM (SELECT id FROM matched ORDER BY id DESC LIMIT :scored) AS t
                JOIN events e ON e.id = t.id) AS n
          ORDER BY relevance DESC, n.id LIMIT :top) AS f
    JOIN events e ON e.id = f.id JOIN sessions s ON s.id = e.session_id
    WHERE {_SAID} ORDER BY f.relevance DESC, e.id LIMIT :limit"""
_ALL_EVENTS_PG = f"""WITH matched AS MATERIALIZED (
        SELECT id FROM events WHERE search @@ {_TS_MATCH} AND role IN ('user', 'assistant') AND tool_name IS NULL)
    SELECT session_id, idx, role, content, said_at FROM (
        SELECT {_EPISODE_COLUMNS} AS said_at, e.id, {ts_rank('e.search', _TS_MATCH)} AS relevance
        FROM (SELECT id FROM matched ORDER BY id DESC) AS m JOIN events e ON e.id = m.id
        JOIN sessions s ON s.id = e.session_id
        WHERE {_SAID} ORDER BY e.id DESC LIMIT :scored) AS n
    ORDER BY relevance DESC, id LIMIT :limit"""
TOP_EVENTS_SHARE = 5  # FTS5 returns this many times `limit` best matches before the agent filter


async def search_events(
    db: Database, terms: list[str], agent_id: str, limit: int = 20, project: str | None = None,
    scored: int | None = None, common: bool = False,
) -> list[Episode]:
    """The agent's past user and assistant turns (in `project`, see _IN_PROJECT) with any of `terms`
    (words, as `search.query_terms` gives them), best by BM25 among the newest `scored` (default
    SCORED_TURNS) matches,
    each whole (`reverie.excerpt` cuts them down to what a reader is shown).

    `common`: the terms match a large share of all turns, so the whole match is never joined
    and scored, even when other agents' turns or tool turns crowd the top-k out.
    """
    if not terms:
        return []
    postgres = db.backend == "postgresql"
    match = tsquery([terms])[1][0] if postgres else fts5([terms])
    found = {"match": match, "agent": agent_id, "project": project, "limit": limit}
    found["scored"] = scored or SCORED_TURNS
    top = (_TOP_EVENTS_PG if common else _RARE_TOP_EVENTS_PG) if postgres else _TOP_EVENTS
    rows = await db.fetchall(top, {**found, "top": limit * TOP_EVENTS_SHARE})
    if len(rows) < limit and not common:
        rows = await db.fetchall(_ALL_EVENTS_PG if postgres else _ALL_EVENTS, found)
    return [Episode(session_id=r[0], event_index=r[1], role=r[2], text=r[3], timestamp=from_iso(r[4])) for r in rows]


async def turns_at(db: Database, places: Sequence[tuple[str, int]]) -> dict[tuple[str, int], Episode]:
    """The turns at these (session id, index) places, by place; places with no turn are left out."""
    found: dict[tuple[str, int], Episode] = {}
    for start in range(0, len(places), _IDS_PER_QUERY // 2):  # two bound values a place
        chunk = places[start : start + _IDS_PER_QUERY // 2]
        pairs = " OR ".join("(e.session_id = ? AND e.idx = ?)" for _ in chunk)
        rows = await db.fetchall(f"SELECT {_EPISODE_COLUMNS} FROM events e JOIN sessions s ON s.id = e.session_id "
                                 f"WHERE {pairs}", [value for place in chunk for value in place])
        for r in rows:
            found[(r[0], r[1])] = Episode(session_id=r[0], event_index=r[1], role=r[2], text=r[3],
                                          timestamp=from_iso(r[4]))
    return found


async def recent_in_project(db: Database, agent_id: str, project: str, limit: int) -> list[SessionRecord]:
    """The agent's `limit` latest ended sessions in `project`, newest first, without events or notes."""
    rows = await db.fetchall(
        """SELECT * FROM sessions WHERE project = ? AND agent_id = ? AND ended_at IS NOT NULL
           ORDER BY started_at DESC, logged_at DESC, id DESC LIMIT ?""",
        (project, agent_id, limit),
    )
    return [_head(row) for row in rows]


async def started_at(db: Database, session_ids: Sequence[str]) -> dict[str, datetime]:
    if not session_ids:
        return {}
    marks = ",".join("?" * len(session_ids))
    rows = await db.fetchall(f"SELECT id, started_at FROM sessions WHERE id IN ({marks})", tuple(session_ids))
    return {r[0]: from_iso(r[1]) for r in rows}


async def consolidated_ids(db: Database) -> list[str]:
    rows = await db.fetchall(f"SELECT id FROM sessions s WHERE {_CONSOLIDATED} ORDER BY started_at, id")
    return [r[0] for r in rows]


async def export_sessions(db: Database) -> list[dict]:
    rows = await db.fetchall("SELECT * FROM sessions ORDER BY started_at, id")
    return [json.loads(record.model_dump_json()) for record in await _records(db, rows)]

"""The curated memory: active rows have no `valid_to`; archived rows stay for history.

Rows are immutable apart from their archive and read-tracking columns (the schema refuses
the rest), so "the memory as it was" is always recoverable from the rows plus the
revision log.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from weakref import WeakKeyDictionary

from pydantic import ConfigDict, TypeAdapter

from reverie.clock import from_iso, to_iso
from reverie.models import Evidence, Memory, MemoryEntry
from reverie.store import ranking
from reverie.store.database import Database, Row
from reverie.store.search import Focus, Groups, Readable, focus, fts5, query_terms, ts_rank, tsquery

_EVIDENCE = TypeAdapter(list[Evidence], config=ConfigDict(defer_build=True))  # built on first use

FTS_CANDIDATES = 5  # FTS5 returns this many times `limit` best matches before scopes and blending
# BM25 scores at most this many matches, the newest. Distinctive words rarely match this
# many rows; a query of only common words would otherwise score tens of thousands of rows
# (~15 ms at 100k memories) to order rows its words barely tell apart.
SCORED_MATCHES = 2_000
# The rowid from which the newest SCORED_MATCHES matches of the query start (FTS5 walks
# a match backwards by rowid without scoring; the outer query then scores only from there).
_NEWEST_MATCHES = "SELECT min(rowid) FROM (SELECT rowid FROM memories_fts WHERE memories_fts MATCH ? ORDER BY rowid DESC LIMIT ?)"
# What a read shows of a memory: building whole `Memory` models for every candidate was
# a good part of a read's cost.
_ENTRY_COLUMNS = "m.id, m.content, m.category, m.scope, m.confidence, m.evidence_json, m.updated_at, m.observed_at"


# A memory's columns by name, not *: PostgreSQL's `search` vector would come along, spelt out as text.
_MEMORY_ROW = ("m.seq, m.id, m.content, m.category, m.scope, m.confidence, m.evidence_json, m.created_at, m.updated_at, "
               "m.observed_at, m.valid_to, m.archived_reason, m.last_read_at, m.read_count")


def _filters(scopes: Sequence[str] | None, categories: Sequence[str] | None) -> tuple[str, list]:
    sql, params = "m.valid_to IS NULL", []
    for column, values in (("scope", scopes), ("category", categories)):
        if values:
            sql += f" AND m.{column} IN ({','.join('?' * len(values))})"
            params.extend(values)
    return sql, params


async def active_memories(
    db: Database, scopes: Sequence[str] | None = None, categories: Sequence[str] | None = None
) -> list[Memory]:
    where, params = _filters(scopes, categories)
    rows = await db.fetchall(f"SELECT {_MEMORY_ROW} FROM memories m WHERE {where} ORDER BY m.seq", params)
    return [_memory(r) for r in rows]


async def count_active(db: Database) -> int:
    return await db.scalar("SELECT count(*) FROM memories WHERE valid_to IS NULL")


async def get_memories(db: Database, ids: Sequence[str]) -> dict[str, Memory]:
    """Memories by id, active or archived."""
    if not ids:
        return {}
    rows = await db.fetchall(f"SELECT {_MEMORY_ROW} FROM memories m WHERE id IN ({','.join('?' * len(ids))})",
                             tuple(ids))
    return {r["id"]: _memory(r) for r in rows}


async def ranked_entries(
    db: Database,
    now: datetime,
    query: str | None,
    scopes: Sequence[str] | None,
    categories: Sequence[str] | None,
    limit: int,
) -> list[MemoryEntry]:
    """Active memories as `read_memory` shows them, best first.

    With a query, BM25 relevance (squashed to [0, 1]) counts for 60% and the prior for 40%;
    entries that do not match the query are not returned. Both paths read a bounded set of
    candidates through an index and blend only those, so a read costs about the same at
    1k or 100k memories: without a query the two prior indexes; with one, FTS5 scores at
    most SCORED_MATCHES rows, matched by the query's rare words and scored by all
    its words (see `search.focus`).
    """
    if not (query and query_terms(query)):
        return await _by_prior(db, now, scopes, categories, limit)
    where, params = _filters(scopes, categories)
    rows = []
    readable = Readable(scopes=None if scopes is None else tuple(scopes))
    for groups in _matches(await focus(db, "memories_fts", query, readable)):
        rows = await _ranked(db, now, groups, where, params, limit)
        if rows:
            break
    return [_entry(r) for r in rows]


async def _ranked(db: Database, now: datetime, groups: Groups, where: str, params: list, limit: int) -> list[Row]:
    if db.backend == "postgresql":
        match, words = tsquery(groups)
        # Matched by `match`, scored by any of its words, as BM25 scores every word of the
        # MATCH: scored by `match` itself, an entry with one word of each group would rank
        # level with one holding them all.
        scoring, every = tsquery([list(dict.fromkeys(word for group in groups for word in group))])
        # ts_rank_cd grows with relevance from 0; squashed to [0, 1) as SQLite's BM25 is.
        return await db.fetchall(
            f"""SELECT {_ENTRY_COLUMNS}, 0.6 * (f.relevance / (1.0 + f.relevance)) + 0.4 * {ranking.PRIOR} AS score
                FROM (SELECT n.seq, {ts_rank('n.search', scoring)} AS relevance
                      FROM (SELECT seq, search FROM memories WHERE search @@ {match} ORDER BY seq DESC LIMIT ?) AS n
                      ORDER BY relevance DESC, n.seq LIMIT ?) AS f
                JOIN memories m ON m.seq = f.seq
                WHERE {where} ORDER BY score DESC, m.seq LIMIT ?""",
            (to_iso(now), *every, *words, SCORED_MATCHES, limit * FTS_CANDIDATES, *params, limit),
        )
    match = fts5(groups)
    return await db.fetchall(
        f"""SELECT {_ENTRY_COLUMNS}, 0.6 * (-f.relevance / (1.0 - f.relevance)) + 0.4 * {ranking.PRIOR} AS score
            FROM (SELECT rowid, bm25(memories_fts) AS relevance FROM memories_fts
                  WHERE memories_fts MATCH ? AND rowid >= ({_NEWEST_MATCHES}) ORDER BY relevance LIMIT ?) AS f
            JOIN memories m ON m.seq = f.rowid
            WHERE {where} ORDER BY score DESC LIMIT ?""",
        (to_iso(now), match, match, SCORED_MATCHES, limit * FTS_CANDIDATES, *params, limit),
    )


def _matches(words: Focus) -> list[Groups]:
    """Full-text queries to rank by, in order, until one finds entries.

    The rare words, if the query has any. Otherwise the entries with both of the two
    rarest words (these head a ranking by all the words), then those with the rarest.
    """
    if words.rare:
        # Matched by the rare words, scored by all: an entry holding the common words too
        # comes first (scoring them costs a few ms at 100k, matching by them far more).
        return [[words.rare, words.rare + words.common]]
    if not words.common:
        return []
    both = [[t] for t in words.common[:2]]
    return [both] if len(both) == 1 else [both, both[:1]]


async def _by_prior(
    db: Database, now: datetime, scopes: Sequence[str] | None, categories: Sequence[str] | None, limit: int
) -> list[MemoryEntry]:
    """The best by prior: the union of the most confident and the most recent, rescored."""
    where, params = _filters(scopes, categories)
    rows = await db.fetchall(ranking.by_prior(_ENTRY_COLUMNS, where),
                             (to_iso(now), *params, limit, *params, limit, limit))
    return [_entry(r) for r in rows]


async def find_active_by_content(db: Database, content: str) -> str | None:
    """The id of an active memory with exactly this text (case and spacing aside)."""
    return await db.scalar(
        "SELECT id FROM memories WHERE valid_to IS NULL AND lower(content) = lower(?) LIMIT 1",
        (normalize_space(content),),
    )


async def insert_memory(db: Database, memory: Memory) -> None:
    await db.execute(
        """INSERT INTO memories (id, content, category, scope, confidence, evidence_json,
               created_at, updated_at, observed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        (memory.id, normalize_space(memory.content), memory.category, memory.scope, memory.confidence,
         _EVIDENCE.dump_json(memory.evidence).decode(), to_iso(memory.created_at),
         to_iso(memory.updated_at), to_iso(memory.observed_at)),
    )


async def archive_memory(db: Database, memory_id: str, reason: str, at: datetime) -> bool:
    """Archive an active memory; False if it was not active (someone got there first)."""
    changed = await db.execute(
        "UPDATE memories SET valid_to = ?, archived_reason = ?, updated_at = ? WHERE id = ? AND valid_to IS NULL",
        (to_iso(at), reason, to_iso(at), memory_id),
    )
    return changed == 1


async def restore_memory(db: Database, memory: Memory) -> None:
    """Put an archived memory's archive columns back exactly as `memory` has them."""
    await db.execute(
        "UPDATE memories SET valid_to = ?, archived_reason = ?, updated_at = ? WHERE id = ?",
        (to_iso(memory.valid_to) if memory.valid_to else None, memory.archived_reason,
         to_iso(memory.updated_at), memory.id),
    )


async def mark_read(db: Database, ids: Sequence[str], at: datetime) -> None:
    """Count a read of these entries (`read_count`, `last_read_at`).

    Deferred to the next write transaction (`Database.defer`): read_memory is a read, and
    taking the write lock for its bookkeeping cost every read ~1 ms, more while another
    process was writing. Counts only rank later dreams (staleness), so losing a few to a
    rolled-back transaction or a killed process costs nothing anyone reads.
    """
    if not ids:
        return
    waiting = _UNCOUNTED.setdefault(db, {})
    for memory_id in ids:
        waiting[memory_id] = (waiting.get(memory_id, (0, ""))[0] + 1, to_iso(at))
    db.defer("memories.reads", _write_reads)


# Reads not yet written, per open database: id → (reads, last read at).
_UNCOUNTED: WeakKeyDictionary[Database, dict[str, tuple[int, str]]] = WeakKeyDictionary()


async def _write_reads(db: Database) -> None:
    if waiting := _UNCOUNTED.pop(db, None):
        await db.executemany("UPDATE memories SET last_read_at = ?, read_count = read_count + ? WHERE id = ?",
                             [(at, count, memory_id) for memory_id, (count, at) in waiting.items()])


def normalize_space(text: str) -> str:
    return " ".join(text.split())


def _memory(row: Row) -> Memory:
    # Built without validation, like `sessions._event`: written valid, and read by the
    # thousand for every dream and search.
    return Memory.model_construct(
        id=row["id"],
        content=row["content"],
        category=row["category"],
        scope=row["scope"],
        confidence=row["confidence"],
        evidence=_EVIDENCE.validate_json(row["evidence_json"]),
        created_at=from_iso(row["created_at"]),
        updated_at=from_iso(row["updated_at"]),
        observed_at=from_iso(row["observed_at"]),
        valid_to=from_iso(row["valid_to"]),
        archived_reason=row["archived_reason"],
        last_read_at=from_iso(row["last_read_at"]),
        read_count=row["read_count"],
    )


def _entry(row: Row) -> MemoryEntry:
    # json.loads, not the Evidence adapter: only the session ids are shown, and the
    # evidence was validated when the row was written.
    sessions = {evidence["session_id"] for evidence in json.loads(row["evidence_json"])}
    return MemoryEntry(
        id=row["id"], content=row["content"], category=row["category"], scope=row["scope"],
        confidence=row["confidence"], sources=sorted(sessions), updated_at=from_iso(row["updated_at"]),
        observed_at=from_iso(row["observed_at"]),
    )

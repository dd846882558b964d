"""The curated memory: active rows have no `valid_to`; archived rows stay for history.

Rows are immutable apart from their archive and read-tracking columns (the schema refuses
the rest), so "the memory as it was" is always recoverable from the rows plus the
revision log.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime

from pydantic import TypeAdapter

from reverie.clock import from_iso, to_iso
from reverie.models import Evidence, Memory
from reverie.store.database import Database
from reverie.store.search import fts_query

_EVIDENCE = TypeAdapter(list[Evidence])

# A prior for ranking: confidence, then recency with a 30-day decay (see `prior`).
FTS_CANDIDATES = 5  # FTS5 returns this many times `limit` best matches before scopes and blending
_PRIOR = "(0.6 * m.confidence + 0.4 / (1.0 + (julianday(?) - julianday(m.observed_at)) / 30.0))"


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
    rows = await db.fetchall(f"SELECT * FROM memories m WHERE {where} ORDER BY m.seq", params)
    return [_memory(r) for r in rows]


async def count_active(db: Database) -> int:
    return await db.scalar("SELECT count(*) FROM memories WHERE valid_to IS NULL")


async def get_memories(db: Database, ids: Sequence[str]) -> dict[str, Memory]:
    """Memories by id, active or archived."""
    if not ids:
        return {}
    rows = await db.fetchall(f"SELECT * FROM memories WHERE id IN ({','.join('?' * len(ids))})", tuple(ids))
    return {r["id"]: _memory(r) for r in rows}


async def ranked_memories(
    db: Database,
    now: datetime,
    query: str | None,
    scopes: Sequence[str] | None,
    categories: Sequence[str] | None,
    limit: int,
) -> list[tuple[Memory, float]]:
    """Active memories, best first, with a score in [0, 1].

    With a query, BM25 relevance (squashed to [0, 1]) counts for 60% and the prior for 40%;
    entries that do not match the query are not returned. Both paths read a bounded set of
    candidates through an index (FTS5's own top-k, or the two prior indexes) and blend only
    those, so a read costs the same at 1k or 100k memories.
    """
    match = fts_query(query) if query else None
    if match is None:
        return await _by_prior(db, now, scopes, categories, limit)
    where, params = _filters(scopes, categories)
    rows = await db.fetchall(
        f"""SELECT m.*, 0.6 * (-f.relevance / (1.0 - f.relevance)) + 0.4 * {_PRIOR} AS score
            FROM (SELECT rowid, bm25(memories_fts) AS relevance FROM memories_fts
                  WHERE memories_fts MATCH ? ORDER BY relevance LIMIT ?) AS f
            JOIN memories m ON m.seq = f.rowid
            WHERE {where} ORDER BY score DESC LIMIT ?""",
        (to_iso(now), match, limit * FTS_CANDIDATES, *params, limit),
    )
    return [(_memory(r), r["score"]) for r in rows]


async def _by_prior(
    db: Database, now: datetime, scopes: Sequence[str] | None, categories: Sequence[str] | None, limit: int
) -> list[tuple[Memory, float]]:
    """The best by prior: the union of the most confident and the most recent, rescored."""
    where, params = _filters(scopes, categories)
    found: dict[str, Memory] = {}
    # INDEXED BY: left to itself SQLite filters by scope through memories_active and then
    # sorts every matching row (75 ms at 100k); walking the ordered index takes ~1 ms.
    for index, order in (("memories_by_confidence", "m.confidence DESC, m.observed_at DESC"),
                         ("memories_by_observed", "m.observed_at DESC")):
        rows = await db.fetchall(
            f"SELECT m.* FROM memories m INDEXED BY {index} WHERE {where} ORDER BY {order} LIMIT ?", (*params, limit))
        found.update((r["id"], _memory(r)) for r in rows)
    scored = sorted(((m, prior(m, now)) for m in found.values()), key=lambda pair: -pair[1])
    return scored[:limit]


def prior(memory: Memory, now: datetime) -> float:
    """Confidence, then recency with a 30-day decay: the same blend as _PRIOR in SQL."""
    days = max((now - memory.observed_at).total_seconds() / 86_400, 0.0)
    return 0.6 * memory.confidence + 0.4 / (1.0 + days / 30.0)


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
    if ids:
        await db.execute(
            f"UPDATE memories SET last_read_at = ?, read_count = read_count + 1 WHERE id IN ({','.join('?' * len(ids))})",
            (to_iso(at), *ids),
        )


def normalize_space(text: str) -> str:
    return " ".join(text.split())


def _memory(row: sqlite3.Row) -> Memory:
    return Memory(
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

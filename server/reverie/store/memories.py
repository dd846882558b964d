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

# Rank without a query: confidence, then recency with a 30-day half-life-ish decay.
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
    entries that do not match the query are not returned.
    """
    where, params = _filters(scopes, categories)
    match = fts_query(query) if query else None
    if match is None:
        rows = await db.fetchall(
            f"SELECT m.*, {_PRIOR} AS score FROM memories m WHERE {where} ORDER BY score DESC LIMIT ?",
            (to_iso(now), *params, limit),
        )
    else:
        rows = await db.fetchall(
            f"""SELECT m.*, 0.6 * (-bm25(memories_fts) / (1.0 - bm25(memories_fts))) + 0.4 * {_PRIOR} AS score
                FROM memories_fts JOIN memories m ON m.seq = memories_fts.rowid
                WHERE memories_fts MATCH ? AND {where} ORDER BY score DESC LIMIT ?""",
            (to_iso(now), match, *params, limit),
        )
    return [(_memory(r), r["score"]) for r in rows]


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

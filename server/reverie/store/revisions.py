"""The revision log: every change to memories, with the row before and after.

Reverting a revision replays its changes backwards, which is exact because memory rows
only ever move between active and archived.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from reverie.clock import to_iso
from reverie.models import Memory
from reverie.store.database import Database, Row

Change = Literal["insert", "archive", "restore"]


async def current_revision(db: Database) -> int:
    return await db.scalar("SELECT coalesce(max(id), 0) FROM revisions")


async def create_revision(db: Database, proposal_id: str | None, kind: str, at: datetime) -> int:
    return await db.scalar("INSERT INTO revisions (proposal_id, kind, created_at) VALUES (?, ?, ?) RETURNING id",
                           (proposal_id, kind, to_iso(at)))


async def record_change(
    db: Database, revision: int, op_id: str | None, change: Change, before: Memory | None, after: Memory
) -> None:
    await db.execute(
        "INSERT INTO memory_changes (revision_id, memory_id, op_id, change, before_json, after_json)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (revision, after.id, op_id, change, before.model_dump_json() if before else None, after.model_dump_json()),
    )


async def changes(db: Database, revision: int) -> list[Row]:
    """A revision's changes in the order they were made."""
    return await db.fetchall("SELECT * FROM memory_changes WHERE revision_id = ? ORDER BY id", (revision,))


async def changed_since(db: Database, memory_ids: Sequence[str], revision: int) -> set[str]:
    """Which of these memories a revision after `revision` touched and that still stands.

    Changes by a dream that was later reverted (its apply and its revert) cancel out, so
    they do not count: memory is as it was before that dream.
    """
    if not memory_ids:
        return set()
    rows = await db.fetchall(
        f"""SELECT DISTINCT mc.memory_id FROM memory_changes mc
            JOIN revisions r ON r.id = mc.revision_id LEFT JOIN proposals p ON p.id = r.proposal_id
            WHERE mc.revision_id > ? AND coalesce(p.status, '') != 'reverted'
            AND mc.memory_id IN ({','.join('?' * len(memory_ids))})""",
        (revision, *memory_ids),
    )
    return {r[0] for r in rows}


async def dreams_since(db: Database, memory_ids: Sequence[str], revision: int) -> list[str]:
    """The dreams (proposal ids, newest first) whose revisions after `revision` touched these
    memories and still stand: what must be reverted before the dream at `revision` can be."""
    if not memory_ids:
        return []
    rows = await db.fetchall(
        f"""SELECT coalesce(r.proposal_id, 'revision ' || r.id) AS made_by FROM memory_changes mc
            JOIN revisions r ON r.id = mc.revision_id LEFT JOIN proposals p ON p.id = r.proposal_id
            WHERE mc.revision_id > ? AND coalesce(p.status, '') != 'reverted'
            AND mc.memory_id IN ({','.join('?' * len(memory_ids))})
            GROUP BY made_by ORDER BY max(r.id) DESC""",
        (revision, *memory_ids),
    )
    return [r[0] for r in rows]

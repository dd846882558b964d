"""Export and import: moving memory and sessions between machines as one JSON document.

Import never overwrites: sessions whose id exists are skipped, memories whose id or text
is already active are skipped. What is added is recorded as one applied proposal (engine
"import") whose revision holds the new memories and whose reviewed sessions are those the
exporting memory had already consolidated — so their notes do not come back to the next
dream, and `revert_dream` on that proposal undoes the import.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import ValidationError

from reverie.errors import InvalidInput
from reverie.models import DreamStats, Memory, Proposal, SessionRecord, Turn
from reverie.safety import redact
from reverie.service.ingest import chain_hash, redacted_turns
from reverie.store import Database, memories, proposals, revisions, sessions

FORMAT = "reverie-export"
VERSION = 1


async def export(db: Database, now: datetime) -> dict:
    async with db.snapshot():
        active = await memories.active_memories(db)
        recorded = await sessions.export_sessions(db)
        consolidated = await sessions.consolidated_ids(db)
    return {
        "format": FORMAT, "version": VERSION, "exported_at": now.isoformat(),
        "memories": [m.model_dump(mode="json") for m in active], "sessions": recorded,
        "consolidated_sessions": consolidated,
    }


def parse(document: dict) -> tuple[list[Memory], list[SessionRecord]]:
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise InvalidInput(f"Not a Reverie export: expected a JSON object with \"format\": \"{FORMAT}\".")
    try:
        found = [Memory.model_validate(m) for m in document.get("memories", [])]
        recorded = [SessionRecord.model_validate(s) for s in document.get("sessions", [])]
    except ValidationError as error:
        raise InvalidInput(f"The export does not validate: {error.errors()[0]['loc']}: {error.errors()[0]['msg']}") from None
    return found, recorded


async def import_(db: Database, document: dict, now: datetime) -> dict[str, int]:
    found, recorded = parse(document)
    async with db.transaction():
        added = [s for s in recorded if await _import_session(db, s, now)]
        fresh = await _new_memories(db, found)
        consolidated = set(document.get("consolidated_sessions", [])) & {s.id for s in added}
        if fresh or consolidated:
            await _record_import(db, fresh, sorted(consolidated), now)
    return {"sessions": len(added), "memories": len(fresh)}


async def _import_session(db: Database, record: SessionRecord, now: datetime) -> bool:
    if await sessions.get_session(db, record.id) is not None:
        return False
    turns, _ = redacted_turns([Turn(**e.model_dump(exclude={"session_id", "index"})) for e in record.events])
    notes = [redact(n.content)[0] for n in record.notes]
    await sessions.create_session(db, record.id, record.agent_id, record.started_at, now)
    await sessions.append_events(db, record.id, 0, turns)
    await sessions.append_notes(db, record.id, 0, list(zip(notes, (n.created_at for n in record.notes))))
    await sessions.update_session(
        db, record.id, title=record.title and redact(record.title)[0], outcome=record.outcome,
        outcome_summary=record.outcome_summary and redact(record.outcome_summary)[0],
        content_hash=chain_hash("", turns), ended_at=record.ended_at or now,
    )
    return True


async def _new_memories(db: Database, found: list[Memory]) -> list[Memory]:
    existing = await memories.get_memories(db, [m.id for m in found])
    fresh = [m for m in found if m.id not in existing and not await memories.find_active_by_content(db, m.content)]
    return [
        m.model_copy(update={"content": redact(m.content)[0], "valid_to": None, "archived_reason": None,
                             "last_read_at": None, "read_count": 0})
        for m in fresh
    ]


async def _record_import(db: Database, fresh: list[Memory], consolidated: list[str], now: datetime) -> None:
    base, before = await revisions.current_revision(db), await memories.count_active(db)
    record = Proposal(
        id=f"imp_{uuid.uuid4().hex[:10]}", engine="import", scope=None, status="applied", base_revision=base,
        created_at=now, session_ids=consolidated, operations=[],
        stats=DreamStats(sessions_reviewed=len(consolidated), memories_before=before,
                         memories_after=before + len(fresh), tokens_before=0, tokens_after=0),
    )
    await proposals.insert_proposal(db, record, None)
    revision = await revisions.create_revision(db, record.id, "import", now)
    for memory in fresh:
        await memories.insert_memory(db, memory)
        stored = (await memories.get_memories(db, [memory.id]))[memory.id]
        await revisions.record_change(db, revision, None, "insert", None, stored)
    await proposals.stamp_applied(db, record.id, revision, now)

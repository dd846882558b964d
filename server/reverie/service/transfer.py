"""Export and import: moving memory and sessions between machines as one JSON document.

Import never overwrites: sessions whose id exists are skipped, memories whose id or text
is already active are skipped, and what is added forms one revision, so an import can be
inspected with `show` and its memories told apart in the revision log.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import ValidationError

from reverie.errors import InvalidInput
from reverie.models import Memory, SessionRecord, Turn
from reverie.safety import redact
from reverie.service.ingest import chain_hash, redacted_texts, redacted_turns
from reverie.store import Database, memories, revisions, sessions

FORMAT = "reverie-export"
VERSION = 1


async def export(db: Database, now: datetime) -> dict:
    async with db.snapshot():
        active = await memories.active_memories(db)
        recorded = await sessions.export_sessions(db)
    return {
        "format": FORMAT, "version": VERSION, "exported_at": now.isoformat(),
        "memories": [m.model_dump(mode="json") for m in active], "sessions": recorded,
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
        added_sessions = sum([await _import_session(db, s, now) for s in recorded])
        added_memories = await _import_memories(db, found, now)
    return {"sessions": added_sessions, "memories": added_memories}


async def _import_session(db: Database, record: SessionRecord, now: datetime) -> int:
    if await sessions.get_session(db, record.id) is not None:
        return 0
    turns, _ = redacted_turns([Turn(**e.model_dump(exclude={"session_id", "index"})) for e in record.events])
    notes, _ = redacted_texts([n.content for n in record.notes])
    await sessions.create_session(db, record.id, record.agent_id, record.started_at, now)
    await sessions.append_events(db, record.id, 0, turns)
    await sessions.append_notes(db, record.id, 0, notes, now)
    await sessions.update_session(
        db, record.id, title=record.title and redact(record.title)[0], outcome=record.outcome,
        outcome_summary=record.outcome_summary and redact(record.outcome_summary)[0],
        content_hash=chain_hash("", turns), ended_at=record.ended_at or now,
    )
    return 1


async def _import_memories(db: Database, found: list[Memory], now: datetime) -> int:
    existing = await memories.get_memories(db, [m.id for m in found])
    fresh = [m for m in found if m.id not in existing and not await memories.find_active_by_content(db, m.content)]
    if not fresh:
        return 0
    revision = await revisions.create_revision(db, None, "import", now)
    for memory in fresh:
        clean = memory.model_copy(update={"content": redact(memory.content)[0], "valid_to": None,
                                          "archived_reason": None, "last_read_at": None, "read_count": 0})
        await memories.insert_memory(db, clean)
        stored = (await memories.get_memories(db, [clean.id]))[clean.id]
        await revisions.record_change(db, revision, None, "insert", None, stored)
    return len(fresh)

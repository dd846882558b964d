"""Export and import: moving memory and sessions between machines as one JSON document.

An export is untrusted input like any transcript: an import passes the checks the tools
apply, and adds nothing to memory by itself.

- Validation first, before anything is written: the document's shape, every session and
  agent id (`config.IDENTIFIER`), every scope (`config.SCOPE`), the sizes `log_session`
  accepts (`ingest.check_sizes`) and an entry's length. A bad document is refused with
  a message naming the item and field, never a traceback.
- Sessions are history: appended as `log_session` would, redacted; ids that exist are
  skipped. The sessions the exporting memory had already consolidated are recorded as
  one applied, memory-less proposal (engine "import"), so their notes do not come back
  to the next dream.
- Memory entries become a *pending* proposal (engine "import", one `add` per new entry,
  ids and text already active skipped) that went through the dream gate
  (`dreams.finalize`): redaction and every risk flag. A person approves it like a dream
  (`apply_dream`, `reverie review`); auto mode never applies it. What it keeps of each
  entry beyond the operation — its id, when it was made, changed and last observed — is held with the
  proposal (`proposals.staged_entries`), so an approved entry keeps its place in time.
- Importing the same thing again adds nothing twice: an entry whose id exists (active or
  archived), whose text is active, or whose text a pending proposal already adds, is left out.
- Other tools' formats (`reverie.formats`) arrive here translated into this document; their
  `source` names them in each operation's rationale.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime

from pydantic import ValidationError

from reverie import config
from reverie.errors import InvalidInput
from reverie.models import DreamStats, Memory, OperationDraft, Proposal, SessionRecord, Turn
from reverie.safety import redact
from reverie.service import dreams
from reverie.service.ingest import chain_hash, check_sizes, redacted_turns
from reverie.store import Database, memories, proposals, revisions, sessions

FORMAT = "reverie-export"
VERSION = 1
EXPORT = "an export"  # the source of a Reverie export; another format's importer names its own


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


async def curated(db: Database, scopes: list[str] | None) -> list[Memory]:
    """The active entries of `scopes` (None: every scope), what a format's export writes."""
    async with db.snapshot():
        return await memories.active_memories(db, scopes)


def parse(document: dict) -> tuple[list[Memory], list[SessionRecord]]:
    """The document's entries and sessions, each checked as the tools check them."""
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise InvalidInput(f"Not a Reverie export: expected a JSON object with \"format\": \"{FORMAT}\".")
    found = [_validated(Memory, item, f"memories[{i}]") for i, item in enumerate(_listed(document, "memories"))]
    recorded = [_validated(SessionRecord, item, f"sessions[{i}]") for i, item in enumerate(_listed(document, "sessions"))]
    for i, memory in enumerate(found):
        _check_memory(memory, f"memories[{i}]")
    for i, session in enumerate(recorded):
        _check_session(session, f"sessions[{i}]")
    return found, recorded


def _listed(document: dict, key: str) -> list:
    items = document.get(key, [])
    if not isinstance(items, list):
        raise InvalidInput(f"The export's {key!r} must be a list; got {type(items).__name__}.")
    return items


def _validated(model, item, where: str):
    try:
        return model.model_validate(item)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(map(str, first["loc"]))
        raise InvalidInput(f"The export does not validate: {where}.{field}: {first['msg']}.") from None


def _check_memory(memory: Memory, where: str) -> None:
    _checked(config.check_identifier, memory.id, "entry id", where=f"{where}.id")
    if not config.SCOPE.fullmatch(memory.scope):
        raise InvalidInput(f"{where}.scope {memory.scope!r} is not 'shared', 'user', 'agent:<id>' or 'project:<key>'.")
    if not memory.content.strip() or len(memory.content) > config.MAX_OPERATION_CHARS:
        raise InvalidInput(f"{where}.content must be 1-{config.MAX_OPERATION_CHARS} characters.")
    for evidence in memory.evidence:
        _checked(config.check_identifier, evidence.session_id, "session id", where=f"{where}.evidence")


def _check_session(session: SessionRecord, where: str) -> None:
    _checked(config.check_identifier, session.id, "session id", where=f"{where}.id")
    _checked(config.check_identifier, session.agent_id, "agent id", where=f"{where}.agent_id")
    turns = [Turn(**e.model_dump(exclude={"session_id", "index"})) for e in session.events]
    _checked(check_sizes, turns, [n.content for n in session.notes], session.title, session.outcome_summary,
             where=where)


def _checked(check, *arguments, where: str) -> None:
    """Run a tool's own check, naming the document's item in what it refuses."""
    try:
        check(*arguments)
    except InvalidInput as error:
        raise InvalidInput(f"The export's {where}: {error}") from None


async def import_(
    db: Database, document: dict, now: datetime, source: str = EXPORT
) -> dict[str, int | str | None]:
    """Add the document's new sessions; propose its new entries for review. Counts and the proposal's id."""
    found, recorded = parse(document)
    async with db.transaction():
        added = [s for s in recorded if await _import_session(db, s, now)]
        listed = {sid for sid in _listed(document, "consolidated_sessions") if isinstance(sid, str)}
        consolidated = listed & {s.id for s in added}
        if consolidated:
            await _record_consolidated(db, sorted(consolidated), now)
        fresh = await _new_memories(db, found)
        titles = {} if source == EXPORT else _titles(recorded)  # a format's session titles name its files
        proposal = await _propose(db, fresh, now, titles, source) if fresh else None
    return {"sessions": len(added), "memories": len(fresh), "proposal_id": proposal}


async def _import_session(db: Database, record: SessionRecord, now: datetime) -> bool:
    if await sessions.get_session(db, record.id) is not None:
        return False
    turns, _ = redacted_turns([Turn(**e.model_dump(exclude={"session_id", "index"})) for e in record.events])
    notes = [redact(n.content)[0] for n in record.notes]
    await sessions.create_session(db, record.id, record.agent_id, record.started_at, now)
    await sessions.append_events(db, record.id, 0, turns)
    await sessions.append_notes(db, record.id, 0, list(zip(notes, (n.created_at for n in record.notes), strict=True)))
    await sessions.update_session(
        db, record.id, title=record.title and redact(record.title)[0], outcome=record.outcome,
        outcome_summary=record.outcome_summary and redact(record.outcome_summary)[0],
        content_hash=chain_hash("", turns), ended_at=record.ended_at or now,
    )
    return True


async def _new_memories(db: Database, found: list[Memory]) -> list[Memory]:
    existing = await memories.get_memories(db, [m.id for m in found])
    waiting = await proposals.pending_contents(db)
    unique = {m.id: m for m in found}.values()  # one id twice in a document: the last wins
    return [m for m in unique if m.id not in existing and " ".join(m.content.lower().split()) not in waiting
            and not await memories.find_active_by_content(db, m.content)]


def _titles(recorded: list[SessionRecord]) -> dict[str, str]:
    return {s.id: s.title for s in recorded if s.title}


async def _propose(db: Database, fresh: list[Memory], now: datetime, titles: dict[str, str], source: str) -> str:
    """One pending proposal adding `fresh`, checked and flagged as a dream's operations are."""
    cited = await sessions.session_records(db, sorted({e.session_id for m in fresh for e in m.evidence}))
    operations = dreams.finalize([_draft(m, titles, source) for m in fresh], {}, {s.id: s for s in cited})
    base, before = await revisions.current_revision(db), await memories.count_active(db)
    proposal = Proposal(
        id=f"imp_{uuid.uuid4().hex[:10]}", engine="import", scope=None, status="pending", base_revision=base,
        created_at=now, session_ids=[], operations=operations,
        stats=DreamStats(sessions_reviewed=0, memories_before=before, memories_after=before + len(operations),
                         tokens_before=0, tokens_after=0),
    )
    staged = {op.op_id: _origin(memory) for op, memory in zip(operations, fresh, strict=True)}
    await proposals.insert_proposal(db, proposal, json.dumps({"staged": staged}))
    return proposal.id


def _draft(memory: Memory, titles: dict[str, str], source: str) -> OperationDraft:
    places = sorted({titles[e.session_id] for e in memory.evidence if e.session_id in titles})
    origin = "; ".join(places[:3]) if places else f"{source} (entry {memory.id})"  # titles name their source
    return OperationDraft(kind="add", content=memory.content, category=memory.category, scope=memory.scope,
                          confidence=memory.confidence, evidence=memory.evidence, rationale=f"Imported from {origin}.")


def _origin(memory: Memory) -> dict[str, str]:
    times = {field: getattr(memory, field).isoformat() for field in ("created_at", "updated_at", "observed_at")}
    return {"id": memory.id, **times}


async def _record_consolidated(db: Database, consolidated: list[str], now: datetime) -> None:
    """The exporter's dreams already consolidated these sessions: an applied record that changes no memory."""
    base, before = await revisions.current_revision(db), await memories.count_active(db)
    record = Proposal(
        id=f"imp_{uuid.uuid4().hex[:10]}", engine="import", scope=None, status="applied", base_revision=base,
        created_at=now, session_ids=consolidated, operations=[],
        stats=DreamStats(sessions_reviewed=len(consolidated), memories_before=before, memories_after=before,
                         tokens_before=0, tokens_after=0),
    )
    await proposals.insert_proposal(db, record, None)
    revision = await revisions.create_revision(db, record.id, "import", now)
    await proposals.stamp_applied(db, record.id, revision, now)

"""Proposing, applying and reverting dreams.

- propose: snapshot memory + unconsolidated sessions within the caller's reach
  (`access.Reach`: a curator's dream may span agents, anyone else's covers its own
  sessions), let an engine draft operations,
  then validate, redact and risk-flag every one before it is stored as a pending proposal.
  Whatever an engine returns, this is the one gate to review. The whole of it holds the
  "dream" lock (a lease row, `store.locks`), so two dreams — in this process or in two
  servers sharing the file — never review the same memory at once; the second is
  refused with `DreamRunning`. A holder that dies leaves a lease that lapses after
  `config.DREAM_LOCK_TTL`.
- a dream that proposes nothing is stored as `empty`. It changed nothing, so it uses up
  no history: only an applied dream consolidates sessions (`store.sessions`), and these
  stay for the next dream, where another engine (an `agent` brief, `anthropic`) may find
  what this one missed; its report says what it looked at and why nothing qualified.
  It still counts as having reviewed them for the schedule (`sessions.undreamed`), so a
  scheduled dream that found nothing does not run again on every log for the same
  sessions: the next is due when new ones arrive, and reviews the old ones with them. It
  supersedes no pending proposal: finding nothing is no reason to drop another's findings.
- apply: one transaction. It refuses a proposal the caller may not see, operations
  touching scopes it may not write (`access`), a proposal whose targets changed after its base
  revision, or that would re-add an entry a newer dream already added, and flips the
  status pending → applied by compare-and-set, so a proposal is applied at most once.
- revert: replays the revision's changes backwards as a new revision; refused when a
  later revision built on what it changed (revert that one first).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Literal

import anyio

from reverie import collector, config, provenance
from reverie.engines import engine_named
from reverie.errors import (
    AlreadyDecided,
    DreamRunning,
    InvalidInput,
    NeedsDecision,
    NotFound,
    StaleProposal,
)
from reverie.models import (
    ApplyResult,
    DreamInput,
    DreamStats,
    DroppedOperation,
    Evidence,
    Identity,
    LookedAt,
    Memory,
    Operation,
    OperationDraft,
    Proposal,
    RevertResult,
    SessionRecord,
)
from reverie.report import proposal_markdown
from reverie.safety import instruction_like, redact
from reverie.service import access, contradiction
from reverie.service.evidence import ToolOutputs, from_tool_output, submission_problems, with_quotes
from reverie.service.supersession import supersession_risks
from reverie.store import Database, locks, memories, proposals, revisions, sessions
from reverie.text import estimate_tokens

APPLIED = ("applied", "partially_applied")
DREAM_LOCK = "dream"
ARCHIVE_REASON = {"update": "superseded", "merge": "merged", "prune": "pruned", "promote": "promoted"}
MAX_PROVENANCE = 20

Approval = Literal["all"] | list[str]


# --- propose ---------------------------------------------------------------------------------


async def propose(
    db: Database, *, engine: str, max_sessions: int, reach: access.Reach, identity: Identity,
    instructions: str | None, stale_after_days: int, now: datetime,
) -> Proposal:
    check_dream_arguments(max_sessions, instructions)
    instructions = redact(instructions)[0] if instructions else None
    dreamer = engine_named(engine)
    scope = reach.scope
    async with dream_lock(db, now) as holder:
        with collector.paused():  # reading 10k entries and 100 sessions into models: see `collector`
            async with db.snapshot():
                base = await revisions.current_revision(db)
                current = await access.reach_memories(db, identity, scope)
                reviewed = await sessions.unconsolidated_sessions(db, reach.agent_id, max_sessions)
        dream = DreamInput(now=now, memories=current, sessions=reviewed, instructions=instructions,
                           stale_after_days=stale_after_days)
        drafted = await dreamer.propose(dream)
        by_id = {m.id: m for m in current}
        operations = finalize(routed(identity, drafted.operations, current, reviewed), by_id, {s.id: s for s in reviewed})
        operations = await access.beyond_authors(db, operations)
        dropped = [*drafted.dropped, *unusable(drafted.operations, by_id)]
        stats = _stats(current, operations, reviewed).model_copy(
            update={"usage": drafted.usage, "dropped": [_redacted(d) for d in dropped]})
        proposal = Proposal(
            id=f"drm_{uuid.uuid4().hex[:10]}", engine=dreamer.name, scope=scope,
            status="pending" if operations or drafted.brief else "empty", base_revision=base, created_at=now,
            session_ids=[s.id for s in reviewed], operations=operations, stats=stats, brief=drafted.brief,
        )
        async with db.transaction():
            await _check_still_held(db, holder)
            await proposals.insert_proposal(db, proposal, instructions)
            if proposal.status == "pending":
                await proposals.supersede_pending(db, proposal.id, scope, now)
    return with_report(proposal)


@asynccontextmanager
async def dream_lock(db: Database, now: datetime) -> AsyncIterator[str]:
    """Hold the dream lock for the body (yielding the holder's name); `DreamRunning` if taken.

    Released however the body ends — error, cancellation — except a crash, which the
    lease's expiry covers.
    """
    holder = f"{socket.gethostname()} pid {os.getpid()} #{uuid.uuid4().hex[:6]}"
    async with db.transaction():
        if not await locks.acquire(db, DREAM_LOCK, holder, now, config.DREAM_LOCK_TTL):
            raise _running(await locks.lease(db, DREAM_LOCK))
    try:
        yield holder
    finally:
        with anyio.CancelScope(shield=True):
            async with db.transaction():
                await locks.release(db, DREAM_LOCK, holder)


def _running(lease: locks.Lease) -> DreamRunning:
    # Not the holder's name: it holds this machine's host name and a process id, which are
    # nothing to a remote caller (`reverie doctor` and the locks table show them locally).
    return DreamRunning(
        f"A dream is already running (started {lease.acquired_at:%Y-%m-%d %H:%M:%S} UTC); "
        f"try again in a minute. If the process running it died, its lock lapses at {lease.expires_at:%H:%M:%S} UTC."
    )


async def _check_still_held(db: Database, holder: str) -> None:
    """Refuse to store a dream that outlived its lease and was overtaken by another one."""
    lease = await locks.lease(db, DREAM_LOCK)
    if lease is not None and lease.holder != holder:
        raise DreamRunning(
            f"This dream ran past its {config.format_duration(config.DREAM_LOCK_TTL)} lock and another dream "
            f"took over (started {lease.acquired_at:%Y-%m-%d %H:%M:%S} UTC); nothing was "
            "stored. Review that dream's proposal when it is ready."
        )


async def submit(
    db: Database, *, brief_id: str, drafts: list[OperationDraft], identity: Identity, now: datetime
) -> Proposal:
    """Store the operations the client's model wrote after reading brief `brief_id`."""
    async with db.transaction():
        brief = await _open_brief(db, brief_id)
        await access.check_visible(db, identity, brief)
        reviewed = {s.id: s for s in await sessions.session_records(db, brief.session_ids)}
        current = {m.id: m for m in await access.reach_memories(db, identity, brief.scope)}
        if problems := submission_problems(drafts, reviewed, current):
            raise InvalidInput("Nothing was stored. Fix these and submit again:\n- " + "\n- ".join(problems))
        quoted = [with_quotes(d, reviewed) for d in drafts]
        operations = finalize(routed(identity, quoted, list(current.values()), list(reviewed.values())),
                              current, reviewed)
        operations = await access.beyond_authors(db, operations)
        proposal = brief.model_copy(update={
            "id": f"drm_{uuid.uuid4().hex[:10]}", "operations": operations, "created_at": now, "brief": None,
            "stats": _stats(list(current.values()), operations, list(reviewed.values())),
        })
        await proposals.set_status(db, brief.id, ["pending"], "superseded", now)
        await proposals.insert_proposal(db, proposal, None)
    return with_report(proposal)


async def _open_brief(db: Database, brief_id: str) -> Proposal:
    brief = await load(db, brief_id)
    if brief.brief is None:
        raise InvalidInput(f"{brief_id} is not a dream brief. Call propose_dream(engine=\"agent\") for one.")
    if brief.status != "pending":
        raise AlreadyDecided(f"Brief {brief_id} is {brief.status}. Call propose_dream(engine=\"agent\") again.")
    return brief


def routed(
    identity: Identity, drafts: list[OperationDraft], current: list[Memory], reviewed: list[SessionRecord]
) -> list[OperationDraft]:
    """Each draft filed under the project its evidence comes from, whichever engine drafted it (`access.routed`)."""
    by_id, sessions_by_id = {m.id: m for m in current}, {s.id: s for s in reviewed}
    return [access.routed(identity, draft, sessions_by_id, by_id) for draft in drafts]


def check_dream_arguments(max_sessions: int, instructions: str | None) -> None:
    if not 1 <= max_sessions <= config.MAX_SESSIONS:
        raise InvalidInput(f"max_sessions must be between 1 and {config.MAX_SESSIONS}; got {max_sessions}.")
    if instructions and len(instructions) > config.MAX_INSTRUCTIONS_CHARS:
        raise InvalidInput(f"instructions are limited to {config.MAX_INSTRUCTIONS_CHARS} characters.")


def finalize(
    drafts: list[OperationDraft], current: dict[str, Memory], reviewed: dict[str, SessionRecord]
) -> list[Operation]:
    """Give drafts ids and the targets' text; drop ones that target nothing known (`unusable`
    lists them for the report); flag risks.

    The flags are the same whichever engine drafted: secrets and instructions (here), tool
    output (`evidence`), provenance and effect — tainted text, orders, destinations
    (`provenance`) — replacements that break the newest-wins rules (`supersession`), and
    operations that give one subject two values (`contradiction`).
    """
    with collector.paused():  # it indexes every word and run of the tool output: see `collector`
        operations = _checked_all(drafts, current, reviewed)
    return operations  # the collector resumes once that index is freed, with nothing of it left to walk


def _checked_all(
    drafts: list[OperationDraft], current: dict[str, Memory], reviewed: dict[str, SessionRecord]
) -> list[Operation]:
    sources = provenance.Provenance.of(reviewed.values())
    asked = [d.content for d in drafts if d.content] + [n.content for s in reviewed.values() for n in s.notes]
    operations, outputs = [], ToolOutputs(sources.outputs, expected=asked)  # the texts `from_tool_output` reads
    for draft in drafts:
        if _unusable_because(draft, current) is None:
            operations.append(_checked(draft, f"op{len(operations) + 1}", current, reviewed, outputs, sources))
    return contradiction.flagged(operations)


def unusable(drafts: list[OperationDraft], current: dict[str, Memory]) -> list[DroppedOperation]:
    """The drafts `finalize` drops, with why: listed in the report, never silently lost."""
    return [DroppedOperation(kind=d.kind, targets=d.targets, content=d.content, problems=[why])
            for d in drafts if (why := _unusable_because(d, current))]


def _unusable_because(draft: OperationDraft, current: dict[str, Memory]) -> str | None:
    if unknown := [t for t in draft.targets if t not in current]:
        return f"targets {', '.join(unknown)}, not an active entry the dream was shown"  # only entries it was shown
    if not draft.targets and draft.kind != "add":
        return f"a {draft.kind} with no targets"
    if draft.kind != "prune" and not (draft.content or "").strip():
        return f"a {draft.kind} with no content"
    return None


def _redacted(dropped: DroppedOperation) -> DroppedOperation:
    """Dropped text reaches the report and the database: no secret in it may."""
    content = redact(dropped.content)[0] if dropped.content else None
    return dropped.model_copy(update={"content": content, "problems": [redact(p)[0] for p in dropped.problems]})


def _checked(
    draft: OperationDraft, op_id: str, current: dict[str, Memory], reviewed: dict[str, SessionRecord],
    outputs: ToolOutputs, sources: provenance.Provenance,
) -> Operation:
    content, secrets = redact(draft.content) if draft.content else (None, 0)
    rationale, rationale_secrets = redact(draft.rationale)
    evidence = [e.model_copy(update={"quote": redact(e.quote)[0]}) for e in draft.evidence]
    risk = set(draft.risk)
    if from_tool_output(draft, reviewed, outputs):
        risk.add("from_tool_output")
    if secrets or rationale_secrets or "[REDACTED:" in (content or ""):
        risk.add("secret_redacted")
    if content and instruction_like(content):
        risk.add("instruction_like")
    if draft.kind in ("add", "update") and not evidence:
        risk.add("low_evidence")
    risk |= supersession_risks(draft, current, reviewed) | provenance.risks(draft, sources)
    return Operation(
        **draft.model_dump(exclude={"content", "evidence", "risk", "category", "rationale"}),
        op_id=op_id, content=content, rationale=rationale, evidence=evidence, risk=sorted(risk),
        category=draft.category or (current[draft.targets[0]].category if draft.targets else "fact"),
        before=[current[t].content for t in draft.targets],
    )


def _stats(current: list[Memory], operations: list[Operation], reviewed: list[SessionRecord]) -> DreamStats:
    return DreamStats(sessions_reviewed=len(reviewed), looked_at=looked_at(reviewed), **_sizes(current, operations))


def _sizes(current: list[Memory], operations: list[Operation]) -> dict[str, int]:
    """Entries and tokens in memory before and after `operations`."""
    archived = {t for op in operations for t in op.targets}
    added = [op.content for op in operations if op.content]
    kept = [m.content for m in current if m.id not in archived]
    return {
        "memories_before": len(current), "memories_after": len(kept) + len(added),
        "tokens_before": sum(estimate_tokens(m.content) for m in current),
        "tokens_after": sum(map(estimate_tokens, kept + added)),
    }


def looked_at(reviewed: list[SessionRecord]) -> LookedAt:
    """Counted here, not by the engine, so every engine's empty dream reports the same things."""
    return LookedAt(
        user_turns=sum(e.role == "user" for s in reviewed for e in s.events),
        notes=sum(len(s.notes) for s in reviewed),
        sessions_with_tool_errors=sum(any(e.is_error for e in s.events) for s in reviewed),
        successful_sessions=sum(s.outcome == "success" for s in reviewed),
    )


def with_report(proposal: Proposal) -> Proposal:
    return proposal.model_copy(update={"report": proposal_markdown(proposal)})


async def load(db: Database, proposal_id: str) -> Proposal:
    """The stored proposal, without its rendered report (`with_report` adds that for showing it)."""
    proposal = await proposals.get_proposal(db, proposal_id)
    if proposal is None:
        raise NotFound(f"No dream proposal {proposal_id!r}. read_memory (CLI: reverie show) lists the pending ones.")
    return await _with_edits(db, proposal)


async def _with_edits(db: Database, proposal: Proposal) -> Proposal:
    """Each applied op that the person edited, with the text it wrote (`edited`): memory rows
    never change, so the entry an op created holds exactly what was approved."""
    written = await memories.get_memories(db, [op.memory_id for op in proposal.operations if op.memory_id])
    ops = [op.model_copy(update={"edited": written[op.memory_id].content})
           if op.memory_id in written and written[op.memory_id].content != op.content else op
           for op in proposal.operations]
    return proposal.model_copy(update={"operations": ops})


# --- apply -----------------------------------------------------------------------------------


def choose(proposal: Proposal, approve: Approval | None, edits: dict[str, str] | None) -> list[Operation]:
    """The approved operations, with edits applied; validates every id the caller named."""
    if proposal.status != "pending":
        raise AlreadyDecided(f"Proposal {proposal.id} is {proposal.status}; only pending proposals can be applied. "
                             "Run propose_dream (CLI: reverie dream) for a fresh one.")
    ids = [op.op_id for op in proposal.operations]
    if approve is None:
        raise NeedsDecision(f"Show the user the report of {proposal.id} and pass their decisions: approve=\"all\" "
                            f"or a list of op ids from {ids} (the rest are rejected), edits={{op_id: text}} optional.")
    chosen = ids if approve == "all" else list(dict.fromkeys(approve))
    _check_known(chosen, ids, "approve")
    _check_known(list(edits or {}), chosen, "edits (only approved ops can be edited)")
    return [_edited(op, (edits or {}).get(op.op_id)) for op in proposal.operations if op.op_id in chosen]


def _check_known(named: list[str], known: list[str], field: str) -> None:
    if unknown := [i for i in named if i not in known]:
        raise NotFound(f"Unknown op id(s) in {field}: {', '.join(unknown)}. This proposal has: {', '.join(known)}.")


def _edited(op: Operation, text: str | None) -> Operation:
    if text is None:
        return op
    if op.kind == "prune":
        raise InvalidInput(f"{op.op_id} prunes entries; it has no text to edit. Approve or reject it.")
    if not text.strip() or len(text) > config.MAX_OPERATION_CHARS:
        raise InvalidInput(f"The edit for {op.op_id} must be 1-{config.MAX_OPERATION_CHARS} characters.")
    return op.model_copy(update={"content": redact(text)[0]})


async def apply(
    db: Database, proposal_id: str, approve: Approval | None, edits: dict[str, str] | None, now: datetime,
    identity: Identity,
) -> ApplyResult:
    async with db.transaction():
        proposal = await load(db, proposal_id)
        await access.check_visible(db, identity, proposal)
        chosen = choose(proposal, approve, edits)
        await access.check_may_apply(db, identity, proposal, chosen)
        return await _apply_chosen(db, proposal, chosen, now, identity)


async def apply_unflagged(db: Database, proposal_id: str, now: datetime, identity: Identity) -> ApplyResult:
    """Auto mode: apply what carries no risk flag; move the rest to a new pending proposal.

    Both happen in one transaction, so a flagged change is never lost between the two. The
    authors' rights are checked again here (`access.beyond_authors`), not only when the
    proposal was made: this is the gate every unattended change passes, whatever made the
    proposal and whenever.
    """
    async with db.transaction():
        proposal = await load(db, proposal_id)
        await access.check_visible(db, identity, proposal)
        proposal = proposal.model_copy(update={"operations": await access.beyond_authors(db, proposal.operations)})
        chosen = choose(proposal, unflagged(proposal), None)
        await access.check_may_apply(db, identity, proposal, chosen)
        result = await _apply_chosen(db, proposal, chosen, now, identity)
        held = [op.model_copy(update={"status": "pending"}) for op in proposal.operations if op.risk]
        if not held:
            return result
        kept = await _hold_for_review(db, proposal, held, result.revision, now)
    return result.model_copy(update={"held_for_review": kept, "message": result.message + f" {len(held)} flagged "
                                     f"change(s) wait for a person's review in proposal {kept}."})


async def _hold_for_review(db: Database, proposal: Proposal, held: list[Operation], revision: int, now) -> str:
    current = await memories.active_memories(db, [proposal.scope] if proposal.scope else None)
    waiting = proposal.model_copy(update={
        "id": f"drm_{uuid.uuid4().hex[:10]}", "status": "pending", "base_revision": revision, "created_at": now,
        "operations": held, "applied_revision": None,
        "stats": proposal.stats.model_copy(update={**_sizes(current, held), "usage": None}),  # the applied dream's cost
    })
    await proposals.insert_proposal(db, waiting, None)
    return waiting.id


async def _apply_chosen(
    db: Database, proposal: Proposal, chosen: list[Operation], now: datetime, identity: Identity | None = None
) -> ApplyResult:
    """Apply `chosen` inside the caller's transaction; every other op is rejected."""
    await _check_fresh(db, proposal, chosen, identity)
    revision = await revisions.create_revision(db, proposal.id, "apply", now)
    added, archived = [], []
    staged = await proposals.staged_entries(db, proposal.id) if proposal.engine == "import" else {}
    for op in chosen:
        archived += await _archive_targets(db, revision, op, now)
        if op.content is not None:
            added.append(await _insert_result(db, revision, op, proposal.id, now, staged.get(op.op_id)))
        else:
            await proposals.set_operation_result(db, proposal.id, op.op_id, "applied")
    rejected = [op.op_id for op in proposal.operations if op.op_id not in _ids(chosen)]
    for op_id in rejected:
        await proposals.set_operation_result(db, proposal.id, op_id, "rejected")
    status = "rejected" if not chosen else "partially_applied" if rejected else "applied"
    if not await proposals.set_status(db, proposal.id, ["pending"], status, now, revision):
        raise AlreadyDecided(f"Proposal {proposal.id} was decided by someone else meanwhile.")
    return ApplyResult(
        proposal_id=proposal.id, status=status, revision=revision, applied=_ids(chosen), rejected=rejected,
        memories_added=added, memories_archived=archived,
        message=f"Applied {len(chosen)} of {len(proposal.operations)} changes as revision {revision}; "
                f"revert_dream('{proposal.id}') (CLI: reverie revert {proposal.id}) undoes them.",
    )


def _listed(op_ids: list[str], most: int = 10) -> str:
    """Op ids in numeric order, at most `most` of them named."""
    ordered = sorted(set(op_ids), key=lambda op_id: int(op_id.removeprefix("op") or 0))
    rest = f" and {len(ordered) - most} more" if len(ordered) > most else ""
    return ", ".join(ordered[:most]) + rest


def _ids(ops: list[Operation]) -> list[str]:
    return [op.op_id for op in ops]


async def _check_fresh(db: Database, proposal: Proposal, chosen: list[Operation], identity: Identity | None) -> None:
    targets = [t for op in chosen for t in op.targets]
    changed = await revisions.changed_since(db, targets, proposal.base_revision)
    stale = [op.op_id for op in chosen if changed & set(op.targets)]
    for op in chosen:
        existing = await memories.find_active_by_content(db, op.content) if op.content else None
        # An identical entry in a scope the caller cannot see (another agent's) is no conflict:
        # refusing would tell the caller it exists, and keep it from remembering the same thing.
        if existing and existing not in op.targets and (
                identity is None or await access.may_see_memory(db, identity, existing)):
            stale.append(op.op_id)
    if stale:
        raise StaleProposal(
            f"Memory changed since proposal {proposal.id} was made (revision {proposal.base_revision}): "
            f"{_listed(stale)} would overwrite or re-add newer entries. Run propose_dream (CLI: reverie dream) again."
        )


async def _archive_targets(db: Database, revision: int, op: Operation, now: datetime) -> list[str]:
    before = await memories.get_memories(db, op.targets)
    for memory_id in op.targets:
        if not await memories.archive_memory(db, memory_id, ARCHIVE_REASON[op.kind], now):
            raise StaleProposal(f"{op.op_id}: entry {memory_id} is no longer active. Run propose_dream (CLI: reverie dream) again.")
        after = (await memories.get_memories(db, [memory_id]))[memory_id]
        await revisions.record_change(db, revision, op.op_id, "archive", before[memory_id], after)
    return list(op.targets)


async def _insert_result(
    db: Database, revision: int, op: Operation, proposal_id: str, now: datetime, origin: dict[str, str] | None = None
) -> str:
    """Insert what `op` adds; an imported entry (`origin`) keeps its exported id and time."""
    by_id = await memories.get_memories(db, op.targets)
    targets = [by_id[t] for t in op.targets if t in by_id]
    evidence = _provenance(op.evidence, [e for t in targets for e in t.evidence])
    seen = await sessions.started_at(db, [e.session_id for e in evidence])
    observed = max([*seen.values(), *(t.observed_at for t in targets)], default=now)
    times = {"created_at": now, "updated_at": now, "observed_at": observed}
    if origin:  # an imported entry keeps its place in time
        times = {field: datetime.fromisoformat(origin[field]) for field in times}
    memory = Memory(
        id=await _entry_id(db, origin), content=op.content, category=op.category or "fact",
        scope=access.entry_scope(op, by_id), confidence=op.confidence, evidence=evidence, **times,
    )
    await memories.insert_memory(db, memory)
    stored = (await memories.get_memories(db, [memory.id]))[memory.id]
    await revisions.record_change(db, revision, op.op_id, "insert", None, stored)
    await proposals.set_operation_result(db, proposal_id, op.op_id, "applied", memory.id)
    return memory.id


async def _entry_id(db: Database, origin: dict[str, str] | None) -> str:
    """A new id; an imported entry's own, unless an entry took it since the import was proposed."""
    if origin and not await memories.get_memories(db, [origin["id"]]):
        return origin["id"]
    return f"mem_{uuid.uuid4().hex[:12]}"


def _provenance(*groups: list[Evidence]) -> list[Evidence]:
    unique = {(e.session_id, e.event_index, e.note_index): e for group in groups for e in group}
    return list(unique.values())[:MAX_PROVENANCE]


def unflagged(proposal: Proposal) -> list[str]:
    """What auto mode may apply: operations with no risk flag at all."""
    return [op.op_id for op in proposal.operations if not op.risk]


# --- revert ----------------------------------------------------------------------------------


async def revert(db: Database, proposal_id: str, now: datetime, identity: Identity) -> RevertResult:
    async with db.transaction():
        proposal = await load(db, proposal_id)
        await access.check_visible(db, identity, proposal)
        if proposal.status not in APPLIED:
            raise AlreadyDecided(f"Proposal {proposal_id} is {proposal.status}; only applied dreams can be reverted.")
        changes = await revisions.changes(db, proposal.applied_revision) if proposal.applied_revision else []
        await access.check_may_revert(identity, proposal, [Memory.model_validate_json(c["after_json"]) for c in changes])
        await _check_nothing_built_on(db, proposal, changes)
        revision = await revisions.create_revision(db, proposal.id, "revert", now)
        restored, archived = [], []
        for change in reversed(changes):
            undone = await _undo(db, revision, change, now)
            (archived if change["change"] == "insert" else restored).append(undone)
        if not await proposals.set_status(db, proposal.id, list(APPLIED), "reverted", now):
            raise AlreadyDecided(f"Proposal {proposal_id} was reverted by someone else meanwhile.")
    return RevertResult(
        proposal_id=proposal_id, revision=revision, memories_restored=restored, memories_archived=archived,
        message=f"Reverted {proposal_id} as revision {revision}; memory is as it was before it was applied.",
    )


async def _check_nothing_built_on(db: Database, proposal: Proposal, changes) -> None:
    touched, since = [c["memory_id"] for c in changes], proposal.applied_revision or 0
    if not await revisions.changed_since(db, touched, since):
        return
    later = await revisions.dreams_since(db, touched, since)
    named = f"dream {later[0]}" if len(later) == 1 else f"dreams {', '.join(later)} (newest first)"
    raise StaleProposal(f"Cannot revert {proposal.id}: the later {named} changed entries it made or archived. "
                        f"Revert {'it' if len(later) == 1 else 'them'} first, then {proposal.id}.")


async def _undo(db: Database, revision: int, change, now: datetime) -> str:
    memory_id = change["memory_id"]
    current = (await memories.get_memories(db, [memory_id]))[memory_id]
    if change["change"] == "insert":
        await memories.archive_memory(db, memory_id, "reverted", now)
    else:
        await memories.restore_memory(db, Memory.model_validate_json(change["before_json"]))
    after = (await memories.get_memories(db, [memory_id]))[memory_id]
    await revisions.record_change(db, revision, None, "archive" if change["change"] == "insert" else "restore",
                                  current, after)
    return memory_id


"""`apply_dream` of a 500-operation proposal, then `revert_dream` of it.

N memories of which 500 pairs restate each other (the copy adds one word). The proposal
holds one `merge` per pair — archive both, insert one — the heaviest common operation.
It is written the way `propose_dream` writes one, but without running an engine: the
drafts pass the service's own gate (`dreams.finalize`: op ids, the targets' text, risk
flags) and are stored with `proposals.insert_proposal`. So the figure is apply and revert
alone, exactly 500 operations at any N (a heuristic dream's accidental clusters would
blur the count, and its own time is measured separately). Both calls go through the
service in-process, approving everything.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime

from reverie.models import DreamStats, Evidence, OperationDraft, Proposal
from reverie.service import dreams, open_reverie
from reverie.store import memories, proposals, revisions

from bench.backend import Backend, settings
from bench.perf.fixtures import with_memories


async def measure(backend: Backend, db: str, n: int, ops: int, seed: int, now: datetime) -> dict:
    """On the new, empty database `db`."""
    await with_memories(None, db, n, seed, now, duplicate_pairs=ops, stale_share=0.0, backend=backend)
    backend.settle(db)
    async with open_reverie(settings(db)) as reverie:
        proposal = await _store_proposal(reverie.db, [(f"mem_{seed}_{i}", f"mem_{seed}_dup{i}") for i in range(ops)], now)
        start = time.perf_counter()
        applied = await reverie.apply_dream(proposal.id, "all")
        apply_seconds = time.perf_counter() - start
        start = time.perf_counter()
        reverted = await reverie.revert_dream(proposal.id)
        revert_seconds = time.perf_counter() - start
    return {
        "memories": n, "operations": len(proposal.operations), "kinds": {"merge": len(proposal.operations)},
        "apply_seconds": round(apply_seconds, 3), "revert_seconds": round(revert_seconds, 3),
        "added": len(applied.memories_added), "archived": len(applied.memories_archived),
        "restored": len(reverted.memories_restored),
        "method": "merge drafts over planted duplicate pairs → dreams.finalize → proposals.insert_proposal",
    }


async def _store_proposal(db, pairs: list[tuple[str, str]], now: datetime) -> Proposal:
    targets = await memories.get_memories(db, [i for pair in pairs for i in pair])
    drafts = [_merge(targets[a], targets[b]) for a, b in pairs]
    operations = dreams.finalize(drafts, targets, {})
    async with db.transaction():
        proposal = Proposal(
            id=f"drm_{uuid.uuid4().hex[:10]}", engine="heuristic", scope=None, status="pending",
            base_revision=await revisions.current_revision(db), created_at=now, session_ids=[], operations=operations,
            stats=DreamStats(sessions_reviewed=0, memories_before=await memories.count_active(db),
                             memories_after=await memories.count_active(db) - len(pairs), tokens_before=0, tokens_after=0),
        )
        await proposals.insert_proposal(db, proposal, None)
    return proposal


def _merge(original, copy) -> OperationDraft:
    return OperationDraft(
        kind="merge", targets=[original.id, copy.id], content=copy.content, category=original.category,
        scope=original.scope, confidence=original.confidence, rationale="2 entries say the same thing; keeping one.",
        evidence=[Evidence(session_id=e.session_id, event_index=e.event_index, quote=e.quote) for e in original.evidence],
    )

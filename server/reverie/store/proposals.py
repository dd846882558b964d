"""Dream proposals and their operations.

Status changes are compare-and-set (`… WHERE status IN (…)` then check the row count), so
two reviewers, or two processes, can never both apply the same proposal.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from pydantic import ConfigDict, TypeAdapter

from reverie.clock import from_iso, to_iso
from reverie.models import DreamStats, Evidence, Operation, PendingNotice, Proposal
from reverie.store.database import Database, Row

_EVIDENCE = TypeAdapter(list[Evidence], config=ConfigDict(defer_build=True))  # built on first use


async def insert_proposal(db: Database, proposal: Proposal, instructions: str | None) -> None:
    await db.execute(
        """INSERT INTO proposals (id, engine, scope, status, base_revision, instructions, stats_json, created_at, brief)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        (proposal.id, proposal.engine, proposal.scope, proposal.status, proposal.base_revision, instructions,
         proposal.stats.model_dump_json(), to_iso(proposal.created_at), proposal.brief),
    )
    await db.executemany(
        "INSERT INTO proposal_sessions (proposal_id, session_id) VALUES (?, ?)",
        [(proposal.id, sid) for sid in proposal.session_ids],
    )
    await db.executemany(
        """INSERT INTO operations (proposal_id, op_id, position, kind, targets_json, before_json, content, category,
               scope, confidence, rationale, evidence_json, risk_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        [_operation_row(proposal.id, position, op) for position, op in enumerate(proposal.operations)],
    )


def _operation_row(proposal_id: str, position: int, op: Operation) -> tuple:
    return (
        proposal_id, op.op_id, position, op.kind, json.dumps(op.targets), json.dumps(op.before), op.content,
        op.category, op.scope, op.confidence, op.rationale, _EVIDENCE.dump_json(op.evidence).decode(),
        json.dumps(op.risk),
    )


async def get_proposal(db: Database, proposal_id: str) -> Proposal | None:
    row = await db.fetchone("SELECT * FROM proposals WHERE id = ?", (proposal_id,))
    if row is None:
        return None
    ops = await db.fetchall("SELECT * FROM operations WHERE proposal_id = ? ORDER BY position", (proposal_id,))
    sessions = await db.fetchall(
        """SELECT ps.session_id FROM proposal_sessions ps JOIN sessions s ON s.id = ps.session_id
           WHERE ps.proposal_id = ? ORDER BY s.started_at, s.id""",
        (proposal_id,),
    )
    return Proposal(
        id=row["id"],
        engine=row["engine"],
        scope=row["scope"],
        status=row["status"],
        base_revision=row["base_revision"],
        created_at=from_iso(row["created_at"]),
        session_ids=[r[0] for r in sessions],
        operations=[_operation(r) for r in ops],
        stats=DreamStats.model_validate_json(row["stats_json"]),
        applied_revision=row["applied_revision"],
        brief=row["brief"],
    )


def _operation(row: Row) -> Operation:
    return Operation(
        op_id=row["op_id"],
        kind=row["kind"],
        targets=json.loads(row["targets_json"]),
        before=json.loads(row["before_json"]),
        content=row["content"],
        category=row["category"],
        scope=row["scope"],
        confidence=row["confidence"],
        rationale=row["rationale"],
        evidence=_EVIDENCE.validate_json(row["evidence_json"]),
        risk=json.loads(row["risk_json"]),
        status=row["status"],
        memory_id=row["memory_id"],
    )


async def staged_entries(db: Database, proposal_id: str) -> dict[str, dict[str, str]]:
    """For an import: per op id, the exported entry's id and `observed_at`, which applying keeps.

    An import proposal has no instructions; its `instructions` column holds these instead.
    """
    text = await db.scalar("SELECT instructions FROM proposals WHERE id = ? AND engine = 'import'", (proposal_id,))
    return json.loads(text).get("staged", {}) if text else {}


async def pending_contents(db: Database) -> set[str]:
    """The texts, lower-cased, that pending proposals would add: an import does not propose them twice."""
    rows = await db.fetchall(
        """SELECT o.content FROM operations o JOIN proposals p ON p.id = o.proposal_id
           WHERE p.status = 'pending' AND o.content IS NOT NULL""")
    return {" ".join(r[0].lower().split()) for r in rows}


async def reach(db: Database, proposal_id: str) -> tuple[set[str], set[str]]:
    """Whose sessions a stored proposal reviewed, and the scopes of the entries it would archive.

    What deciding who may see it needs, read without loading its operations.
    """
    agents = await db.fetchall(
        """SELECT DISTINCT s.agent_id FROM proposal_sessions ps JOIN sessions s ON s.id = ps.session_id
           WHERE ps.proposal_id = ?""", (proposal_id,))
    scopes = await db.fetchall(_TARGET_SCOPES[db.backend], (proposal_id,))
    return {r[0] for r in agents}, {r[0] for r in scopes}


# The scopes of the entries a proposal's operations archive (their ids are a JSON list).
_TARGET_SCOPES = {
    "sqlite": """SELECT DISTINCT m.scope FROM operations o, json_each(o.targets_json) t JOIN memories m ON m.id = t.value
                 WHERE o.proposal_id = ?""",
    "postgresql": """SELECT DISTINCT m.scope FROM operations o, json_array_elements_text(o.targets_json::json) AS t(value)
                     JOIN memories m ON m.id = t.value WHERE o.proposal_id = ?""",
}


async def pending_notices(db: Database) -> list[PendingNotice]:
    """Proposals waiting for a person (briefs wait for the agent, not the user)."""
    rows = await db.fetchall(
        """SELECT p.id, p.created_at, count(o.op_id), count(nullif(o.risk_json, '[]'))
           FROM proposals p LEFT JOIN operations o ON o.proposal_id = p.id
           WHERE p.status = 'pending' AND p.brief IS NULL GROUP BY p.id ORDER BY p.created_at DESC"""
    )
    return [PendingNotice(proposal_id=r[0], created_at=from_iso(r[1]), operations=r[2], flagged=r[3]) for r in rows]


async def set_status(
    db: Database, proposal_id: str, expected: Sequence[str], status: str, at: datetime, revision: int | None = None
) -> bool:
    """Move a proposal to `status` if it is currently in one of `expected`."""
    changed = await db.execute(
        f"""UPDATE proposals SET status = ?, decided_at = ?, applied_revision = coalesce(?, applied_revision)
            WHERE id = ? AND status IN ({','.join('?' * len(expected))})""",
        (status, to_iso(at), revision, proposal_id, *expected),
    )
    return changed == 1


async def stamp_applied(db: Database, proposal_id: str, revision: int, at: datetime) -> None:
    """Record the revision a proposal inserted as applied (an import) made, once that revision exists."""
    await db.execute("UPDATE proposals SET applied_revision = ?, decided_at = ? WHERE id = ?",
                     (revision, to_iso(at), proposal_id))


async def set_operation_result(
    db: Database, proposal_id: str, op_id: str, status: str, memory_id: str | None = None
) -> None:
    await db.execute(
        "UPDATE operations SET status = ?, memory_id = ? WHERE proposal_id = ? AND op_id = ?",
        (status, memory_id, proposal_id, op_id),
    )


async def supersede_pending(db: Database, proposal_id: str, scope: str | None, at: datetime) -> int:
    """Mark as superseded the pending proposals that the newer `proposal_id` redid; returns how many.

    Redid: same scope, and every session they reviewed was reviewed again. The flagged
    changes auto mode holds back from an applied dream come from sessions that dream
    consolidated, which no later dream reviews, so superseding those would lose them.
    """
    # An import reviewed no sessions: no dream redoes it, so none supersedes it.
    return await db.execute(
        """UPDATE proposals SET status = 'superseded', decided_at = ?
           WHERE status = 'pending' AND engine != 'import' AND scope IS ? AND id != ? AND NOT EXISTS (
               SELECT 1 FROM proposal_sessions ps WHERE ps.proposal_id = proposals.id AND ps.session_id NOT IN (
                   SELECT session_id FROM proposal_sessions WHERE proposal_id = ?))""",
        (to_iso(at), scope, proposal_id, proposal_id),
    )


async def last_dream_at(db: Database) -> datetime | None:
    """When the latest dream (any engine, any outcome) was proposed; imports and briefs aside."""
    return from_iso(await db.scalar(
        "SELECT max(created_at) FROM proposals WHERE engine != 'import' AND brief IS NULL"))


async def newest_open_brief_at(db: Database, scope: str | None = None) -> datetime | None:
    """When the newest dream brief over `scope` (None: over every scope) still waiting for an
    agent's operations was handed out."""
    return from_iso(await db.scalar(
        "SELECT max(created_at) FROM proposals WHERE status = 'pending' AND brief IS NOT NULL AND scope IS ?",
        (scope,)))


async def waiting_over(db: Database, scope: str | None) -> bool:
    """Whether a proposal over `scope` (None: over every scope) waits for a person."""
    return await db.scalar(
        "SELECT EXISTS (SELECT 1 FROM proposals WHERE status = 'pending' AND brief IS NULL AND scope IS ?)",
        (scope,)) == 1

"""One scenario end to end: a fresh SQLite file, log, dream once, apply what is unflagged.

The database lives in a temporary directory that is scanned byte for byte for the
scenario's secrets (after a WAL checkpoint, so nothing hides in the log) and then deleted.
The clock starts a day after the last turn, so runs are repeatable and nothing is stale.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from reverie.config import Settings
from reverie.engines.candidates import from_statements
from reverie.models import Memory, Operation, Proposal
from reverie.service import Reverie, open_reverie
from reverie.store import memories, sessions

from bench.quality.corpus import Scenario
from bench.quality.engines import Dreamer


@dataclass
class Run:
    scenario: Scenario
    memory: list[Memory]            # active entries after applying
    operations: list[Operation]     # as proposed, with their risk flags
    applied: list[str]              # op ids applied in auto mode
    naive_log: list[str]            # every note and user preference sentence, as stored
    leaked: list[str]               # secrets found in the database files


async def run(scenario: Scenario, dreamer: Dreamer) -> Run:
    with tempfile.TemporaryDirectory(prefix="reverie-quality-") as directory:
        settings = Settings(db_path=Path(directory) / "memory.db", agent_id=scenario.sessions[0].agent_id)
        async with open_reverie(settings, clock=clock_after(scenario)) as reverie:
            await log_sessions(reverie, scenario)
            naive = await naive_log(reverie)
            proposal = await dreamer(reverie, scenario)
            applied = await apply_unflagged(reverie, proposal)
            active = await memories.active_memories(reverie.db)
            await reverie.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        leaked = leaked_secrets(Path(directory), scenario.expected.secrets)
    return Run(scenario, active, proposal.operations, applied, naive, leaked)


def clock_after(scenario: Scenario):
    """A clock a day after the last turn that ticks a second per call, like a real one."""
    last = max(t.timestamp for s in scenario.sessions for t in s.turns if t.timestamp)
    ticks = iter(range(10**9))
    return lambda: last + timedelta(days=1, seconds=next(ticks))


async def log_sessions(reverie: Reverie, scenario: Scenario) -> None:
    for s in scenario.sessions:
        await reverie.log_session(s.turns, session_id=s.id, agent_id=s.agent_id, title=s.title,
                                  notes=s.notes, outcome=s.outcome)


async def naive_log(reverie: Reverie) -> list[str]:
    """What an append-only memory would hold: every note and every user preference sentence."""
    logged = await sessions.unconsolidated_sessions(reverie.db, None, 100)
    notes = [n.content for s in logged for n in s.notes]
    return notes + [c.evidence[0].quote for s in logged for c in from_statements(s)]


async def apply_unflagged(reverie: Reverie, proposal: Proposal) -> list[str]:
    if proposal.status != "pending" or not proposal.operations:
        return []
    return (await reverie.apply_unflagged(proposal.id)).applied


def leaked_secrets(directory: Path, secrets: list[str]) -> list[str]:
    contents = [path.read_bytes() for path in directory.rglob("*") if path.is_file()]
    return [s for s in secrets if any(s.encode() in blob for blob in contents)]

"""`log_session` ingest: events per second, in-process through the service.

A fresh database; each session is one `Reverie.log_session` call with its 200 turns as
`Turn` models (what the MCP layer hands the service after validating the arguments) and
its notes, so the figure covers redaction, hashing, the inserts and both FTS indexes.
The file is kept: it is the base every sized database is copied from.
"""

from __future__ import annotations

import time
from pathlib import Path

from reverie.config import Settings
from reverie.service import open_reverie

from bench.perf.data import SessionData
from bench.perf.timing import percentile


async def measure(path: Path, sessions: list[SessionData]) -> dict:
    per_call = []
    async with open_reverie(Settings(db_path=path)) as reverie:
        start = time.perf_counter()
        for s in sessions:
            began = time.perf_counter()
            await reverie.log_session(s.turns, session_id=s.id, agent_id=s.agent_id, title=s.title, notes=s.notes,
                                      outcome=s.outcome)
            per_call.append((time.perf_counter() - began) * 1000)
        seconds = time.perf_counter() - start
    events = sum(len(s.turns) for s in sessions)
    return {
        "sessions": len(sessions), "events": events, "notes": sum(len(s.notes) for s in sessions),
        "characters": sum(len(t.content) for s in sessions for t in s.turns), "seconds": round(seconds, 3),
        "events_per_second": round(events / seconds), "call_p50_ms": percentile(per_call, 50),
        "call_p99_ms": percentile(per_call, 99), "db_bytes": path.stat().st_size,
    }

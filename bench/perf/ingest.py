"""`log_session` ingest: events per second, in-process through the service and over stdio.

In-process: a fresh database (a SQLite file, or a database on a PostgreSQL server); each session is one `Reverie.log_session` call with its 200
turns as `Turn` models (what the MCP layer hands the service after validating the
arguments) and its notes, so the figure covers redaction, hashing, the inserts and both
FTS indexes. The file is kept: it is the base every sized database is copied from.

Over stdio: the same sessions, each one `log_session` tool call from a real MCP client to
`reverie serve` on another fresh database, the turns as JSON objects — what an agent's
end-of-session call costs, with argument validation, the answer and the client's checks.

`python -m bench.perf.ingest [--backend sqlite|postgres] [--repeat N]` measures the in-process
figure alone (what `python -m bench.perf` reports first), on a new database each time, for
comparing a change on both backends in a minute rather than a full run.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from reverie.clock import utcnow
from reverie.service import open_reverie

from bench.backend import POSTGRES_URL_VARIABLE, Backend, backend_named, settings
from bench.perf import pin
from bench.perf.data import SessionData, generate_sessions
from bench.perf.timing import percentile


async def measure(backend: Backend, db: str, sessions: list[SessionData]) -> dict:
    per_call = []
    async with open_reverie(settings(db)) as reverie:
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
        "call_p99_ms": percentile(per_call, 99), "db_bytes": backend.size(db),
    }


def _arguments(s: SessionData) -> dict:
    turns = [t.model_dump(mode="json", exclude_none=True) for t in s.turns]
    return {"transcript": turns, "session_id": s.id, "agent_id": s.agent_id, "title": s.title, "notes": s.notes,
            "outcome": s.outcome}


async def stdio(db: str, sessions: list[SessionData], command: str) -> dict:
    """The same sessions through `reverie serve` on stdio, one `log_session` call each."""
    env = {"REVERIE_DB": db, "REVERIE_DREAM_MODE": "off"} | pin.environment()
    per_call = []
    async with Client(StdioServerParameters(command=command, args=["serve"], env=env)) as client:
        start = time.perf_counter()
        for s in sessions:
            began = time.perf_counter()
            result = await client.call_tool("log_session", _arguments(s))
            if result.is_error:
                raise RuntimeError(f"log_session failed: {result.content}")
            per_call.append((time.perf_counter() - began) * 1000)
        seconds = time.perf_counter() - start
    events = sum(len(s.turns) for s in sessions)
    return {"sessions": len(sessions), "events": events, "seconds": round(seconds, 3),
            "events_per_second": round(events / seconds), "call_p50_ms": percentile(per_call, 50),
            "call_p99_ms": percentile(per_call, 99)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.perf.ingest", description=__doc__.split("\n\n")[-1])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--postgres-url", default=os.environ.get(POSTGRES_URL_VARIABLE))
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=1, help="runs, each on a new database")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    made = generate_sessions(args.sessions, args.turns, args.seed, utcnow())
    with tempfile.TemporaryDirectory(prefix="reverie-ingest-") as scratch:
        backend = backend_named(args.backend, Path(scratch), args.postgres_url)
        try:
            for run in range(args.repeat):
                db = backend.new(f"ingest-{run}")
                figures = anyio.run(measure, backend, db, made)
                backend.remove(db)
                print(f"{backend.name}: {figures['events_per_second']:,} events/s ({figures['events']:,} events in "
                      f"{figures['seconds']} s; call p50 {figures['call_p50_ms']:.1f} ms), load {os.getloadavg()[0]:.2f}")
        finally:
            backend.close()


if __name__ == "__main__":
    main()

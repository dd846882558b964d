"""The run, step by step: ingest, then per memory size latency, reference and dream, then apply.

Sizes run smallest first. The history grows with the size, as a memory that has been
used long enough to hold N entries has also logged more: `history_for(n)` sessions of
200 turns (100 at 1k, 500 at 10k, 5,000 — a million events — at 100k), none dreamed
over, so at 100k the notes of 5,000 sessions wait (the "long-lived" profile). The
ingest database is extended to that size (older sessions, through the service, not
timed) before each size. Each sized database is a copy of it plus N memories; the dream
works on a copy of that (it writes a proposal, and the latency runs mark entries as read,
which changes what is stale). Stdio measurements of Reverie are each preceded by the
no-op floor in the same protocol, so both see the same machine state. The databases are
SQLite files in the work directory or databases on a PostgreSQL server (`bench.backend`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import datetime

from reverie.clock import utcnow
from reverie.service import open_reverie

from bench.backend import Backend, settings
from bench.perf import apply, data, dream, fixtures, history, ingest, latency, reference
from bench.perf.data import history_sessions
from bench.perf.timing import Sample


@dataclass
class Plan:
    sizes: list[int]
    reference_sizes: list[int]
    apply_sizes: list[int]
    sessions: int = 100
    turns: int = 200
    calls: int = 300
    warmup: int = 20
    apply_ops: int = 500
    dream_timeout: float = 420.0
    seed: int = 7
    with_reference: bool = True
    keep: bool = False          # keep every database in the work directory
    grow_history: bool = True   # history_for(n) sessions at n memories; else `sessions` at every size
    ingest_stdio: bool = True   # log_session over stdio too

    def history_for(self, n: int) -> int:
        """Sessions logged by the time memory holds `n` entries: one per 20 entries, at least `sessions`."""
        return max(self.sessions, n // 20) if self.grow_history else self.sessions


@dataclass
class Results:
    backend: str = "sqlite"
    ingest: dict = field(default_factory=dict)
    ingest_stdio: dict = field(default_factory=dict)
    history: dict[int, dict] = field(default_factory=dict)  # sessions, events, and the per-read/per-log queries
    loads: dict[int, dict] = field(default_factory=dict)
    latency: dict[int, dict[str, list[Sample]]] = field(default_factory=dict)
    reference: dict[int, tuple[list[Sample], dict]] = field(default_factory=dict)
    reference_skipped: str | None = None
    dreams: dict[int, dict] = field(default_factory=dict)
    applies: dict[int, dict] = field(default_factory=dict)


def say(message: str) -> None:
    print(f"… {message}", file=sys.stderr, flush=True)


async def run(plan: Plan, backend: Backend) -> Results:
    now, results = utcnow(), Results(backend=backend.name)
    say(f"ingest: {plan.sessions} sessions × {plan.turns} turns ({backend.name})")
    base = backend.new("sessions")
    made = data.generate_sessions(plan.sessions, plan.turns, plan.seed, now)
    results.ingest = await ingest.measure(backend, base, made)
    if plan.ingest_stdio:
        say(f"ingest over stdio: {plan.sessions} log_session calls to `reverie serve`")
        over_stdio = backend.new("stdio-ingest")
        results.ingest_stdio = await ingest.stdio(over_stdio, made, latency.reverie_command())
        backend.remove(over_stdio)
    calls = latency.calls_for(data.generate_queries(plan.calls, plan.seed))
    logged = plan.sessions
    for n in plan.sizes:
        logged = await _grow_history(plan, base, logged, plan.history_for(n), now)
        await _one_size(plan, results, backend, base, n, now, calls)
    for n in plan.apply_sizes:
        say(f"apply_dream / revert_dream of {plan.apply_ops} operations over {n:,} memories")
        applying = backend.new(f"apply-{n}")
        results.applies[n] = await apply.measure(backend, applying, n, plan.apply_ops, plan.seed, now)
        backend.remove(applying)
    return results


async def _grow_history(plan: Plan, base: str, logged: int, wanted: int, now: datetime) -> int:
    """Log older sessions into `base` until it holds `wanted` (untimed: ingest is measured above)."""
    if wanted > logged:
        say(f"history: logging sessions {logged:,}..{wanted:,} ({(wanted - logged) * plan.turns:,} more events)")
        async with open_reverie(settings(base)) as reverie:
            await data.log_sessions(reverie, history_sessions(logged, wanted, plan.turns, plan.seed, now))
    return max(logged, wanted)


async def _one_size(plan: Plan, results: Results, backend: Backend, base: str, n: int, now: datetime,
                    calls) -> None:
    say(f"{n:,} memories: loading")
    sized = backend.copy(base, f"memory-{n}")
    results.loads[n] = await fixtures.with_memories(None, sized, n, plan.seed, now, backend=backend)
    backend.settle(sized)
    dreaming = backend.copy(sized, f"dream-{n}")
    say(f"{n:,} memories: read_memory latency, {plan.calls} calls per path")
    results.latency[n] = await _latencies(sized, calls, plan.warmup)
    results.history[n] = {"sessions": plan.history_for(n), "events": plan.history_for(n) * plan.turns,
                          "queries": await history.measure(sized, 100)}
    if plan.with_reference and n in plan.reference_sizes:
        await _reference(plan, results, n, now, calls, sized)
    say(f"{n:,} memories: heuristic dream over {plan.sessions} sessions (subprocess)")
    results.dreams[n] = dream.measure(dreaming, plan.dream_timeout)
    backend.remove(dreaming)
    backend.remove(sized)


async def _latencies(db: str, calls, warmup: int) -> dict[str, list[Sample]]:
    count = len(calls)
    return {
        "floor stdio": await latency.floor(count, "auto", warmup),
        "read_memory stdio": await latency.stdio(db, calls, "auto", warmup),
        "floor legacy": await latency.floor(count, "legacy", warmup),
        "read_memory legacy": await latency.stdio(db, calls, "legacy", warmup),
        "read_memory in-process": await latency.in_process(db, calls, warmup),
        "read_memory direct": await latency.direct(db, calls, warmup),
    }


async def _reference(plan: Plan, results: Results, n: int, now: datetime, calls, sized: str) -> None:
    if reason := reference.unavailable():
        results.reference_skipped = reason
        return
    say(f"{n:,} memories: reference server (npx {reference.PACKAGE}), loading and searching")
    queries = [(kind, arguments["query"]) for kind, arguments in calls if "query" in arguments]
    items = data.generate_memories(n, plan.seed, now)
    theirs = await reference.measure(items, queries, plan.warmup)
    ours = [s for s in results.latency[n]["read_memory legacy"] if s.kind != "none"]
    results.reference[n] = (ours, theirs | {"reverie_db_bytes": results.loads[n]["db_bytes"],
                                            "reverie_backend": results.backend})

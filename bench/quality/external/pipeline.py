"""One case or one statement pair end to end, in a throwaway SQLite file.

A case: log every session, read every question, dream once and apply what is unflagged,
read every question again. A pair: log its two sessions, dream, and list what memory holds.
Each step is timed, so a slow change shows up next to the figures it buys.

With `every` (`--dream-every N`), dreams run on a schedule instead, as on a server that
dreams by itself: the sessions are logged in date order, a dream runs (its unflagged
operations applied) after every `every` sessions and a final one after the last, each at
a clock just after the sessions it reviews (`cases.dream_time`). The reads after come
after the last dream. The reads before — everything logged, no dream — are taken in a
second throwaway database, since no moment of a scheduled run has every session and no dream.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from bench.quality.external.agent import Agent, Dream, connect
from bench.quality.external.cases import Case, Clock, Session, batches, clock_after, dream_time
from bench.quality.external.pairs import Pair, outcome


class Stopwatch:
    def __init__(self) -> None:
        self.seconds: Counter = Counter()

    @contextmanager
    def lap(self, step: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[step] += time.perf_counter() - started


@dataclass
class CaseRun:
    case: Case
    before: list[str]  # what read_memory returned for each question, before any dream
    after: list[str]   # ... after the (last) dream
    dreams: list[Dream]  # in the order they ran: one, or one per batch of `every` sessions
    seconds: Counter = field(default_factory=Counter)  # log, read (both rounds), dream (all of them)


@dataclass
class PairRun:
    pair: Pair
    outcome: str
    entries: list[dict]
    dreams: list[Dream]


@contextmanager
def fresh_database() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="reverie-external-") as directory:
        yield Path(directory) / "memory.db"


async def run_case(case: Case, every: int | None = None) -> CaseRun:
    watch = Stopwatch()
    if every is None:
        with fresh_database() as db_path:
            async with connect(db_path, clock_after(case.sessions[-1].date)) as agent:
                with watch.lap("log"):
                    await log_all(agent, case.sessions)
                with watch.lap("read"):
                    before = await read_all(agent, case)
                with watch.lap("dream"):
                    dreams = [await dream(agent, len(case.sessions))]
                with watch.lap("read"):
                    after = await read_all(agent, case)
        return CaseRun(case, before, after, dreams, watch.seconds)
    with fresh_database() as db_path:
        async with connect(db_path, clock_after(case.sessions[-1].date)) as agent:
            with watch.lap("log (undreamed copy)"):
                await log_all(agent, case.sessions)
            with watch.lap("read"):
                before = await read_all(agent, case)
    with fresh_database() as db_path:
        clock = Clock(case.sessions[0].date)
        async with connect(db_path, clock) as agent:
            dreams = await log_and_dream(agent, case.sessions, every, clock, watch)
            with watch.lap("read"):
                after = await read_all(agent, case)
    return CaseRun(case, before, after, dreams, watch.seconds)


async def log_and_dream(agent: Agent, sessions: list[Session], every: int | None, clock: Clock,
                        watch: Stopwatch | None = None) -> list[Dream]:
    """Log `sessions` in order, `every` at a time, each batch followed by a dream that runs
    at `dream_time`; the clock stands at each session's date while it is logged."""
    watch = watch or Stopwatch()
    dreams, logged = [], 0
    for batch in batches(sessions, every):
        with watch.lap("log"):
            for session in batch:
                clock.move_to(session.date)
                await agent.log(session)
        logged += len(batch)
        clock.move_to(dream_time(batch[-1], sessions[logged] if logged < len(sessions) else None))
        with watch.lap("dream"):
            dreams.append(await dream(agent, logged, clock.now))
    return dreams


async def dream(agent: Agent, logged: int, at: datetime | None = None) -> Dream:
    done = await agent.dream()
    done.sessions_logged, done.at = logged, at
    return done


async def log_all(agent: Agent, sessions: list[Session]) -> None:
    for session in sessions:
        await agent.log(session)


async def read_all(agent: Agent, case: Case) -> list[str]:
    return [await agent.read(q.text) for q in case.questions]


async def run_pair(pair: Pair, every: int | None = None) -> PairRun:
    case = pair.case
    with fresh_database() as db_path:
        if every is None:
            async with connect(db_path, clock_after(case.sessions[-1].date)) as agent:
                await log_all(agent, case.sessions)
                dreams = [await dream(agent, len(case.sessions))]
                entries = await agent.entries()
        else:
            clock = Clock(case.sessions[0].date)
            async with connect(db_path, clock) as agent:
                dreams = await log_and_dream(agent, case.sessions, every, clock)
                entries = await agent.entries()
    return PairRun(pair, outcome(pair, entries), entries, dreams)

"""One case or one statement pair end to end, in a throwaway SQLite file.

A case: log every session, read every question, dream once and apply what is unflagged,
read every question again. A pair: log its two sessions, dream, and list what memory holds.
Each step is timed, so a slow change shows up next to the figures it buys.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.quality.external.agent import Agent, Dream, connect
from bench.quality.external.cases import Case, clock_after
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
    before: list[str]  # what read_memory returned for each question, before the dream
    after: list[str]
    dream: Dream
    seconds: Counter = field(default_factory=Counter)  # log, read (both rounds), dream


@dataclass
class PairRun:
    pair: Pair
    outcome: str
    entries: list[dict]
    dream: Dream


@contextmanager
def fresh_database() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="reverie-external-") as directory:
        yield Path(directory) / "memory.db"


async def run_case(case: Case) -> CaseRun:
    watch = Stopwatch()
    with fresh_database() as db_path:
        async with connect(db_path, clock_after(case.sessions[-1].date)) as agent:
            with watch.lap("log"):
                await log_all(agent, case)
            with watch.lap("read"):
                before = await read_all(agent, case)
            with watch.lap("dream"):
                dream = await agent.dream()
            with watch.lap("read"):
                after = await read_all(agent, case)
    return CaseRun(case, before, after, dream, watch.seconds)


async def log_all(agent: Agent, case: Case) -> None:
    for session in case.sessions:
        await agent.log(session)


async def read_all(agent: Agent, case: Case) -> list[str]:
    return [await agent.read(q.text) for q in case.questions]


async def run_pair(pair: Pair) -> PairRun:
    case = pair.case
    with fresh_database() as db_path:
        async with connect(db_path, clock_after(case.sessions[-1].date)) as agent:
            await log_all(agent, case)
            dream = await agent.dream()
            entries = await agent.entries()
    return PairRun(pair, outcome(pair, entries), entries, dream)

"""Two processes dreaming over the same memory at the same moment, then applying at once.

Each round starts from a copy of one corpus (`fixtures.dream_corpus`, memory empty, 100
sessions) and two worker processes (`worker.py`) that have both opened it:

1. Dream race: both are told to dream (heuristic engine) in the same instant. The dream
   lock must let exactly one proceed; the other is refused with `DreamRunning`. Each
   answer carries its start and end, so two dreams that both proceeded can be told apart
   as "overlapping" (the lock failed) or "one after the other" (no race happened).
2. Apply race: a second proposal over the same memory is made (scope `agent:bench`, so it
   does not supersede the first), and the two processes apply the two proposals at once.
   Exactly one may be applied; the other must be refused (it would re-add what the first
   added), and active memory must be exactly what the applied one produced. (Should both
   dreams have proceeded, one after the other, their two proposals race instead.)

After each round the file must pass `reverie doctor`.

`stale_lock` covers the lock's other promise: a dreamer SIGKILLed while it holds the lock
blocks the next dream (which is told who holds it and when the lease lapses) only until
the lease lapses; then the next dream proceeds.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections import Counter
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import anyio
from reverie.service.maintenance import diagnose

from bench.reliability import worker
from bench.reliability.fixtures import AGENT, dream_corpus


@dataclass
class RaceRound:
    number: int
    dreams: list[dict]
    applies: list[dict] = field(default_factory=list)
    memory_exact: bool = False   # active memory is exactly the applied proposal's result
    problems: list[str] = field(default_factory=list)  # what doctor found wrong afterwards

    @property
    def dream_winners(self) -> list[dict]:
        return [d for d in self.dreams if "proposal" in d]

    @property
    def dream_refusals(self) -> list[dict]:
        return [d for d in self.dreams if d.get("refused") == "DreamRunning"]

    @property
    def overlapped(self) -> bool:
        """Whether the two dream calls were running at the same time."""
        first, second = sorted(self.dreams, key=lambda d: d["started"])
        return second["started"] < first["ended"]

    @property
    def applied(self) -> int:
        return sum("status" in a for a in self.applies)


@dataclass
class RaceFigures:
    rounds: list[RaceRound] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def dreams_raced(self) -> int:
        return sum(len(r.dreams) for r in self.rounds)

    @property
    def one_proceeded_one_refused(self) -> int:
        return sum(len(r.dream_winners) == 1 and len(r.dream_refusals) == 1 for r in self.rounds)

    @property
    def both_proceeded_overlapping(self) -> int:
        return sum(len(r.dream_winners) == 2 and r.overlapped for r in self.rounds)

    @property
    def both_proceeded_apart(self) -> int:
        return sum(len(r.dream_winners) == 2 and not r.overlapped for r in self.rounds)

    @property
    def applies_raced(self) -> int:
        return sum(len(r.applies) for r in self.rounds)

    @property
    def applied_both(self) -> int:
        return sum(r.applied == 2 for r in self.rounds)

    @property
    def memory_exact(self) -> int:
        return sum(r.memory_exact for r in self.rounds)

    @property
    def unhealthy(self) -> int:
        return sum(bool(r.problems) for r in self.rounds)

    def refusals(self) -> Counter:
        return Counter(a.get("refused") for r in self.rounds for a in r.dreams + r.applies if "refused" in a)


async def dream_races(folder: Path, *, rounds: int = 10) -> RaceFigures:
    started = time.perf_counter()
    template = folder / "corpus.db"
    await dream_corpus(template)
    figures = RaceFigures()
    async with worker.started() as one, worker.started() as two:
        for number in range(rounds):
            db = folder / f"race-{number:02d}.db"
            shutil.copyfile(template, db)
            figures.rounds.append(await _round(number, db, one, two))
    figures.seconds = time.perf_counter() - started
    return figures


async def _round(number: int, db: Path, one: worker.Driver, two: worker.Driver) -> RaceRound:
    for process in (one, two):
        await process.ask({"action": "open", "db": str(db), "agent": AGENT})
    race = RaceRound(number, await _together((one, {"action": "dream"}), (two, {"action": "dream"})))
    proposals = [d["proposal"] for d in race.dream_winners]
    if len(proposals) == 1:  # the usual case: make a second proposal over the same memory to race it
        proposals.append((await one.ask({"action": "dream", "scope": f"agent:{AGENT}"}))["proposal"])
    race.applies = await _together((one, {"action": "apply", "proposal": proposals[0]}),
                                   (two, {"action": "apply", "proposal": proposals[1]}))
    winner = [p for p, a in zip(proposals, race.applies, strict=True) if "status" in a]
    race.memory_exact = len(winner) == 1 and _active(db) == _proposed(db, winner[0])
    report = await diagnose(db)
    race.problems = [f"{c.name}: {p}" for c in report.checks for p in c.problems]
    return race


@dataclass
class StaleLock:
    holder: str | None      # the lease the killed dreamer left behind (None: it never took one)
    while_held: dict        # the next dream's answer while that lease stands
    after_lapse: dict       # its answer once the lease has lapsed

    @property
    def recovered(self) -> bool:
        return (self.holder is not None and self.while_held.get("refused") == "DreamRunning"
                and "proposal" in self.after_lapse)


KILL_AFTER = (0.03, 0.06, 0.1, 0.15)  # seconds into the dream; the first that finds the lock held is used


async def stale_lock(folder: Path) -> StaleLock:
    template = folder / "corpus.db"
    if not template.exists():
        await dream_corpus(template)
    for attempt, delay in enumerate(KILL_AFTER):
        db = folder / f"stale-{attempt}.db"
        shutil.copyfile(template, db)
        async with worker.started() as dreamer:
            await dreamer.ask({"action": "open", "db": str(db), "agent": AGENT})
            await dreamer.send({"action": "dream"})
            await anyio.sleep(delay)
            dreamer.kill()
            await dreamer.process.wait()
        if holder := _lease_holder(db):
            break
    async with worker.started() as next_one:
        await next_one.ask({"action": "open", "db": str(db), "agent": AGENT})
        while_held = await next_one.ask({"action": "dream"})
        _lapse_lease(db)
        after_lapse = await next_one.ask({"action": "dream"})
    return StaleLock(holder, while_held, after_lapse)


def _lease_holder(db: Path) -> str | None:
    with _reading(db) as connection:
        row = connection.execute("SELECT holder FROM locks WHERE name = 'dream'").fetchone()
    return row and row[0]


def _lapse_lease(db: Path) -> None:
    """Stand in for the lease's ten minutes passing: move its expiry into the past."""
    with _reading(db) as connection, connection:
        connection.execute("UPDATE locks SET expires_at = '2000-01-01T00:00:00.000000+00:00' WHERE name = 'dream'")


async def _together(*orders: tuple[worker.Driver, dict]) -> list[dict]:
    """Send every order before reading any answer, so the processes start within a moment of each other."""
    for process, order in orders:
        await process.send(order)
    return [await process.answer() for process, _ in orders]


def _active(db: Path) -> Counter:
    with _reading(db) as connection:
        return Counter(r[0] for r in connection.execute("SELECT content FROM memories WHERE valid_to IS NULL"))


def _proposed(db: Path, proposal_id: str) -> Counter:
    """What applying every operation of the proposal to empty memory leaves: the text of each."""
    with _reading(db) as connection:
        rows = connection.execute("SELECT content FROM operations WHERE proposal_id = ? AND content IS NOT NULL",
                                  (proposal_id,))
        return Counter(r[0] for r in rows)


def _reading(db: Path) -> closing[sqlite3.Connection]:
    return closing(sqlite3.connect(db))

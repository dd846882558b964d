"""Several processes dreaming over the same memory at the same moment, then two applying at once.

Each round starts from a copy of one corpus (`fixtures.dream_corpus`, memory empty, 100
sessions; a SQLite file or a database on a PostgreSQL server: `backend.py`) and
`dreamers` worker processes (`worker.py`, two unless told otherwise) that have all opened it:

1. Dream race: all are told to dream (heuristic engine) in the same instant. The dream
   lock (a lease row in `locks`) must let exactly one proceed; the others are refused with
   `DreamRunning`. Each answer carries its start and end, so two dreams that both
   proceeded can be told apart as "overlapping" (the lock failed) or "one after the other"
   (no race happened).
2. Apply race: a second proposal over the same memory is made (scope `agent:bench`, so it
   does not supersede the first), and two of the processes apply the two proposals at
   once. Exactly one may be applied; the other must be refused (it would re-add what the
   first added), and active memory must be exactly what the applied one produced. (Should
   two dreams have proceeded, one after the other, their two proposals race instead.)

After each round the database must pass `reverie doctor`.

`stale_lock` covers the lock's other promise: a dreamer SIGKILLed while it holds the lock
blocks the next dream (which is told who holds it and when the lease lapses) only until
the lease lapses; then the next dream proceeds.
"""

from __future__ import annotations

import time
from collections import Counter
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

import anyio
from reverie.service.maintenance import diagnose

from bench.backend import Backend
from bench.reliability import worker
from bench.reliability.fixtures import AGENT, dream_corpus


def _overlap(a: dict, b: dict) -> bool:
    return a["started"] < b["ended"] and b["started"] < a["ended"]


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
        """Whether the dream calls raced: one of them was running while each of the others ran."""
        return any(all(_overlap(a, b) for b in self.dreams if b is not a) for a in self.dreams)

    @property
    def winners_overlapped(self) -> bool:
        """Whether two dreams proceeded at the same time: the lock failed."""
        won = self.dream_winners
        return any(_overlap(a, b) for i, a in enumerate(won) for b in won[i + 1:])

    @property
    def applied(self) -> int:
        return sum("status" in a for a in self.applies)


@dataclass
class RaceFigures:
    backend: str = "sqlite"
    dreamers: int = 2
    corpus: str = ""  # the database every round copies, for `stale_lock` to reuse
    rounds: list[RaceRound] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def dreams_raced(self) -> int:
        return sum(len(r.dreams) for r in self.rounds)

    @property
    def one_proceeded_rest_refused(self) -> int:
        return sum(len(r.dream_winners) == 1 and len(r.dream_refusals) == len(r.dreams) - 1 for r in self.rounds)

    @property
    def proceeded_overlapping(self) -> int:
        """Rounds in which two dreams proceeded at the same time."""
        return sum(r.winners_overlapped for r in self.rounds)

    @property
    def proceeded_apart(self) -> int:
        """Rounds in which several dreams proceeded, one after the other (the calls did not race)."""
        return sum(len(r.dream_winners) > 1 and not r.winners_overlapped for r in self.rounds)

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


async def dream_races(backend: Backend, *, rounds: int = 10, dreamers: int = 2) -> RaceFigures:
    started = time.perf_counter()
    corpus = backend.new("corpus")
    await dream_corpus(corpus)
    figures = RaceFigures(backend=backend.name, dreamers=dreamers, corpus=corpus)
    async with AsyncExitStack() as stack:
        processes = [await stack.enter_async_context(worker.started()) for _ in range(dreamers)]
        for number in range(rounds):
            db = backend.copy(corpus, f"race-{number:02d}")
            figures.rounds.append(await _round(backend, number, db, processes))
    figures.seconds = time.perf_counter() - started
    return figures


async def _round(backend: Backend, number: int, db: str, processes: list[worker.Driver]) -> RaceRound:
    for process in processes:
        await process.ask({"action": "open", "db": db, "agent": AGENT})
    race = RaceRound(number, await _together(*((process, {"action": "dream"}) for process in processes)))
    proposals = [d["proposal"] for d in race.dream_winners][:2]
    if len(proposals) == 1:  # the usual case: make a second proposal over the same memory to race it
        proposals.append((await processes[0].ask({"action": "dream", "scope": f"agent:{AGENT}"}))["proposal"])
    one, two = processes[:2]
    race.applies = await _together((one, {"action": "apply", "proposal": proposals[0]}),
                                   (two, {"action": "apply", "proposal": proposals[1]}))
    winner = [p for p, a in zip(proposals, race.applies, strict=True) if "status" in a]
    race.memory_exact = len(winner) == 1 and _active(backend, db) == _proposed(backend, db, winner[0])
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


async def stale_lock(backend: Backend, corpus: str | None = None) -> StaleLock:
    """The scenario on copies of `corpus` (a `dream_corpus` database), made first when not given."""
    if corpus is None:
        corpus = backend.new("corpus")
        await dream_corpus(corpus)
    for attempt, delay in enumerate(KILL_AFTER):
        db = backend.copy(corpus, f"stale-{attempt}")
        async with worker.started() as dreamer:
            await dreamer.ask({"action": "open", "db": db, "agent": AGENT})
            await dreamer.send({"action": "dream"})
            await anyio.sleep(delay)
            dreamer.kill()
            await dreamer.process.wait()
        if holder := _lease_holder(backend, db):
            break
    async with worker.started() as next_one:
        await next_one.ask({"action": "open", "db": db, "agent": AGENT})
        while_held = await next_one.ask({"action": "dream"})
        _lapse_lease(backend, db)
        after_lapse = await next_one.ask({"action": "dream"})
    return StaleLock(holder, while_held, after_lapse)


def _lease_holder(backend: Backend, db: str) -> str | None:
    with backend.reading(db) as connection:
        row = connection.execute("SELECT holder FROM locks WHERE name = 'dream'").fetchone()
    return row and row[0]


def _lapse_lease(backend: Backend, db: str) -> None:
    """Stand in for the lease's ten minutes passing: move its expiry into the past."""
    with backend.reading(db) as connection:
        connection.execute("UPDATE locks SET expires_at = '2000-01-01T00:00:00.000000+00:00' WHERE name = 'dream'")


async def _together(*orders: tuple[worker.Driver, dict]) -> list[dict]:
    """Send every order before reading any answer, so the processes start within a moment of each other."""
    for process, order in orders:
        await process.send(order)
    return [await process.answer() for process, _ in orders]


def _active(backend: Backend, db: str) -> Counter:
    with backend.reading(db) as connection:
        return Counter(r[0] for r in connection.execute("SELECT content FROM memories WHERE valid_to IS NULL"))


def _proposed(backend: Backend, db: str, proposal_id: str) -> Counter:
    """What applying every operation of the proposal to empty memory leaves: the text of each."""
    with backend.reading(db) as connection:
        rows = connection.execute("SELECT content FROM operations WHERE proposal_id = ? AND content IS NOT NULL",
                                  (proposal_id,))
        return Counter(r[0] for r in rows)

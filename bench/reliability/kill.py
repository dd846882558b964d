"""`kill -9` of the process applying a dream, at seeded random moments of `apply_dream`.

A template database (a SQLite file, or a database on a PostgreSQL server: `backend.py`) holds a pending proposal of `ops` operations (`fixtures.apply_fixture`).
Two kinds of process apply it:

- `server`: `reverie serve` over stdio, sent the `apply_dream` tool call by an MCP client;
- `service`: a worker calling `Reverie.apply_dream`, what that tool calls, without the MCP
  stack (a quarter of the start-up cost, so CI affords more trials).

Calibration applies it uninterrupted CALIBRATIONS times: that gives the memory *after* and
the call's duration (the slowest run: a trial's call runs while the next process starts).
Each trial copies the template, starts a process, and
SIGKILLs it a delay after sending the call; the delays fall one in each of `trials` equal
slices of SPREAD × the duration (seeded jitter inside each slice), so the kills cover the
whole call: before the transaction starts, inside it, during the commit, after the answer.
Processes start up one ahead (WARM), but only one applies at a time, as in calibration.

Afterwards the database must pass `reverie doctor` and hold exactly the memory before
(proposal and its operations still pending) or exactly the memory after (all applied).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import anyio
from mcp import Client
from mcp.shared.exceptions import MCPError
from reverie.service.maintenance import diagnose

from bench.backend import Backend
from bench.reliability import worker
from bench.reliability.fixtures import AGENT, apply_fixture
from bench.reliability.processes import stdio_server

SPREAD = 1.25  # kill delays cover this multiple of the uninterrupted apply_dream call
CALIBRATIONS = 3  # uninterrupted runs; the slowest is "the" duration (trials run beside a starting process)
WARM = 2      # processes alive at once: the next one starts up while the current one applies

Outcome = Literal["before", "after", "neither"]
Worker = Literal["server", "service"]


@dataclass(frozen=True)
class MemorySnapshot:
    """Active memory as (text, category, scope), and which of the entries that existed before are still active.

    An apply inserts entries under fresh random ids, so new entries are compared by text;
    the entries it archives keep their ids, so those are compared exactly.
    """

    active: frozenset[tuple[str, str, str]]
    kept_ids: frozenset[str]
    proposal_status: str
    op_statuses: frozenset[str]


@dataclass
class KillTrial:
    number: int
    delay: float
    outcome: Outcome
    proposal_status: str
    problems: list[str] = field(default_factory=list)  # what doctor found wrong afterwards


@dataclass
class KillFigures:
    worker: Worker
    backend: str
    ops: int
    apply_seconds: float
    trials: list[KillTrial] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, outcome: Outcome) -> int:
        return sum(t.outcome == outcome for t in self.trials)

    @property
    def unhealthy(self) -> int:
        return sum(bool(t.problems) for t in self.trials)


async def kill_trials(
    backend: Backend, *, trials: int = 20, ops: int = 200, seed: int = 7, worker: Worker = "server",
    calibrations: int = CALIBRATIONS,
) -> KillFigures:
    started = time.perf_counter()
    template = backend.new(f"{worker}-template")
    proposal_id = await apply_fixture(template, ops=ops, seed=seed)
    before = snapshot(backend, template, proposal_id)
    apply, alive, turn = WORKERS[worker], anyio.Semaphore(WARM), anyio.Lock()
    calibrated = [backend.copy(template, f"{worker}-calibration-{n}") for n in range(calibrations)]
    durations = await _calibrate(apply, calibrated, proposal_id, alive, turn)
    after = snapshot(backend, calibrated[0], proposal_id)
    figures = KillFigures(worker=worker, backend=backend.name, ops=ops, apply_seconds=max(durations))
    rng = random.Random(seed)
    delays = [(i + rng.random()) / trials * SPREAD * figures.apply_seconds for i in range(trials)]
    rng.shuffle(delays)

    async def one(number: int, delay: float) -> None:
        async with alive:
            # In a thread: a server's CREATE DATABASE must not hold up the loop timing another trial's kill.
            db = await anyio.to_thread.run_sync(backend.copy, template, f"{worker}-trial-{number:02d}")
            await apply(db, proposal_id, delay, turn)
            figures.trials.append(await _inspect(backend, db, number, delay, proposal_id, before, after))

    async with anyio.create_task_group() as group:
        for number, delay in enumerate(delays):
            group.start_soon(one, number, delay)
    figures.trials.sort(key=lambda t: t.number)
    figures.seconds = time.perf_counter() - started
    return figures


async def _calibrate(apply: Apply, copies: list[str], proposal_id: str, alive: anyio.Semaphore,
                     turn: anyio.Lock) -> list[float]:
    """Apply uninterrupted on each copy, run as the trials run (one applies while the next starts)."""
    durations: list[float] = []

    async def one(db: str) -> None:
        async with alive:
            durations.append(await apply(db, proposal_id, None, turn))

    async with anyio.create_task_group() as group:
        for db in copies:
            group.start_soon(one, db)
    return durations


async def _through_server(db: str, proposal_id: str, kill_after: float | None, turn: anyio.Lock) -> float:
    """`apply_dream` over MCP to a `reverie serve` process; SIGKILL it `kill_after` seconds into the call.

    Without `kill_after` the call runs to its answer. The server starts up outside `turn`;
    the call and the kill happen holding it, one process at a time. Returns the seconds
    the call took, or ran until the kill.
    """
    with tempfile.TemporaryDirectory(prefix="reverie-kill-") as folder:
        pid_file = Path(folder) / "server.pid"
        async with Client(stdio_server(db, AGENT, pid_file), mode="legacy") as client:
            return await _apply_and_kill(client, int(pid_file.read_text()), proposal_id, kill_after, turn)


async def _apply_and_kill(client: Client, pid: int, proposal_id: str, kill_after: float | None,
                          turn: anyio.Lock) -> float:
    """The `apply_dream` call; SIGKILL the server `kill_after` seconds into it (None: let it answer).

    Held under `turn`, one process at a time. Returns the seconds the call took, or ran until the kill.
    """
    async with turn:
        started = time.perf_counter()
        if kill_after is None:
            result = await client.call_tool("apply_dream", {"proposal_id": proposal_id, "approve": "all"})
            if result.is_error:
                raise RuntimeError(f"the uninterrupted apply failed: {result.content}")
            return time.perf_counter() - started
        async with anyio.create_task_group() as group:
            group.start_soon(_apply_all, client, proposal_id)
            await anyio.sleep(kill_after)
            os.kill(pid, signal.SIGKILL)
        return time.perf_counter() - started


async def _apply_all(client: Client, proposal_id: str) -> None:
    # The server is killed under the call, so the connection closing is the expected ending.
    with contextlib.suppress(MCPError, anyio.BrokenResourceError, anyio.ClosedResourceError):
        await client.call_tool("apply_dream", {"proposal_id": proposal_id, "approve": "all"})


async def _through_service(db: str, proposal_id: str, kill_after: float | None, turn: anyio.Lock) -> float:
    """`Reverie.apply_dream` (what the tool calls) in a worker process; SIGKILL it `kill_after` seconds in."""
    async with worker.started() as process:
        await process.ask({"action": "open", "db": db, "agent": AGENT})
        async with turn:
            started = time.perf_counter()
            await process.send({"action": "apply", "proposal": proposal_id})
            if kill_after is None:
                if "status" not in (answer := await process.answer()):
                    raise RuntimeError(f"the uninterrupted apply failed: {answer}")
                return time.perf_counter() - started
            await anyio.sleep(kill_after)
            process.kill()
            await process.process.wait()
            return time.perf_counter() - started


Apply = Callable[[str, str, float | None, anyio.Lock], Awaitable[float]]
WORKERS: dict[str, Apply] = {"server": _through_server, "service": _through_service}


async def _inspect(backend: Backend, db: str, number: int, delay: float, proposal_id: str, before: MemorySnapshot,
                   after: MemorySnapshot) -> KillTrial:
    report = await diagnose(db)
    problems = [f"{c.name}: {p}" for c in report.checks for p in c.problems]
    found = snapshot(backend, db, proposal_id)
    outcome: Outcome = "before" if found == before else "after" if found == after else "neither"
    return KillTrial(number=number, delay=delay, outcome=outcome, proposal_status=found.proposal_status,
                     problems=problems)


def snapshot(backend: Backend, db: str, proposal_id: str) -> MemorySnapshot:
    """What the database holds now, read straight from it (a SQLite file recovering a killed writer's WAL)."""
    with backend.reading(db) as connection:
        active = connection.execute(
            "SELECT content, category, scope FROM memories WHERE valid_to IS NULL").fetchall()
        kept = connection.execute(
            "SELECT id FROM memories WHERE valid_to IS NULL AND id LIKE 'mem_seed_%'").fetchall()
        (status,) = connection.execute("SELECT status FROM proposals WHERE id = ?", (proposal_id,)).fetchone()
        ops = connection.execute("SELECT DISTINCT status FROM operations WHERE proposal_id = ?",
                                 (proposal_id,)).fetchall()
    return MemorySnapshot(frozenset(map(tuple, active)), frozenset(r[0] for r in kept), status,
                          frozenset(r[0] for r in ops))

"""Concurrency and crash safety against real `reverie` processes and real databases.

Bounded versions of the scenarios in `bench/reliability` (`python -m bench.reliability`
prints the full figures): two servers and eight clients writing to one database, kill -9
in the middle of apply_dream, three dreams started in the same instant by three processes
and two applies by two, a dreamer killed while it holds the dream lock. Each runs on a
SQLite file and again on fresh databases on a real PostgreSQL server (`postgres.py`):
servers on several machines share one memory there, so the same guarantees must hold.
Each test prints its figures (`pytest -s` shows them).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))  # bench/ sits beside tests/ at the repo root, not installed

from reverie.service.maintenance import diagnose

from bench.backend import Backend, PostgresDatabases, SqliteFiles
from bench.reliability import report
from bench.reliability.concurrency import WriteFigures, concurrent_writes
from bench.reliability.kill import KillFigures, kill_trials
from bench.reliability.race import RaceFigures, dream_races, stale_lock

# slow: each test runs several `reverie` processes against one database.
pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.both_backends]


@pytest.fixture(scope="module")
def backend(request) -> str:
    """Module-wide (conftest parametrizes it), so the module-scoped race below runs once per backend."""
    return request.param


def databases_on(backend: str, folder: Path, request) -> Backend:
    """Files in `folder`, or new databases on the server under test (dropped on close)."""
    if backend == "sqlite":
        return SqliteFiles(folder)
    server = request.getfixturevalue("postgres_server")
    return PostgresDatabases(server.url)


@pytest.fixture
def databases(backend, tmp_path, request) -> Iterator[Backend]:
    made = databases_on(backend, tmp_path, request)
    yield made
    made.close()


def shown(figures: report.Figures) -> None:
    print("\n" + report.markdown(figures))


async def assert_no_write_lost(figures: WriteFigures, writes: int) -> None:
    assert figures.errors == [], f"{len(figures.errors)} calls failed, e.g. {figures.errors[:3]}"
    assert figures.locked == 0
    assert figures.problems == []
    assert figures.attempted == figures.acknowledged == figures.present == writes
    assert figures.reads > 0 and figures.reads_missing_own_write == 0
    report_ = await diagnose(figures.database)
    assert report_.healthy, report_.markdown()


async def test_two_http_servers_and_eight_clients_on_one_database_lose_no_write_and_never_see_a_locked_database(
        databases):
    with anyio.fail_after(120):
        figures = await concurrent_writes(databases, writes=2000, clients=8, servers=2, transport="http")
    shown(report.Figures(writes=[figures]))

    await assert_no_write_lost(figures, 2000)


async def test_two_stdio_servers_each_carrying_four_concurrent_clients_lose_no_write(databases):
    with anyio.fail_after(90):
        figures = await concurrent_writes(databases, writes=400, clients=8, servers=2, transport="stdio")
    shown(report.Figures(writes=[figures]))

    await assert_no_write_lost(figures, 400)


def assert_exactly_before_or_after(figures: KillFigures, trials: int) -> None:
    assert len(figures.trials) == trials
    assert [t for t in figures.trials if t.problems] == [], "a killed apply left a database doctor rejects"
    assert figures.count("neither") == 0, [t for t in figures.trials if t.outcome == "neither"]
    assert all(t.proposal_status == {"before": "pending", "after": "applied"}[t.outcome] for t in figures.trials)


async def test_kill_9_of_a_process_applying_a_dream_leaves_exactly_the_memory_before_or_after(databases):
    with anyio.fail_after(120):
        figures = await kill_trials(databases, trials=20, ops=200, seed=7, worker="service")
    shown(report.Figures(kills=[figures]))

    assert_exactly_before_or_after(figures, 20)
    # The delays span the call, so some kills land before the commit and some after it.
    assert figures.count("before") >= 1 and figures.count("after") >= 1


async def test_kill_9_of_reverie_serve_during_the_apply_dream_tool_call_leaves_the_memory_before_or_after(databases):
    with anyio.fail_after(120):
        figures = await kill_trials(databases, trials=4, ops=200, seed=8, worker="server", calibrations=2)
    shown(report.Figures(kills=[figures]))

    assert_exactly_before_or_after(figures, 4)


@pytest.fixture(scope="module")
def anyio_backend():
    return "asyncio"  # module scope, for the module-scoped race below; aiosqlite runs on asyncio only


@pytest.fixture(scope="module")
async def races(backend, tmp_path_factory, request) -> RaceFigures:
    databases = databases_on(backend, tmp_path_factory.mktemp("races"), request)
    try:
        with anyio.fail_after(180):
            figures = await dream_races(databases, rounds=3, dreamers=3)
    finally:
        databases.close()
    shown(report.Figures(races=figures))
    return figures


async def test_three_dreams_started_at_once_in_three_processes_one_proceeds_and_the_others_are_told_one_is_running(
        races):
    raced = [race for race in races.rounds if race.overlapped]
    assert raced, "in no round did the dream calls run at the same time; nothing was tested"
    for race in raced:
        assert len(race.dreams) == 3
        assert len(race.dream_winners) == 1, race.dreams
        assert len(race.dream_refusals) == 2, race.dreams
        for refused in race.dream_refusals:
            assert refused["message"].startswith("A dream is already running"), refused
    assert races.proceeded_overlapping == 0


async def test_two_processes_applying_two_proposals_over_one_memory_at_once_apply_exactly_one(races):
    for race in races.rounds:
        assert race.applied == 1, race.applies
        (refused,) = [a for a in race.applies if "refused" in a]
        assert refused["refused"] in ("StaleProposal", "AlreadyDecided"), refused
        assert race.memory_exact, "active memory is not exactly what the applied proposal made"
        assert race.problems == []


async def test_a_dreamer_killed_holding_the_dream_lock_blocks_the_next_dream_only_until_its_lease_lapses(databases):
    with anyio.fail_after(60):
        lock = await stale_lock(databases)
    shown(report.Figures(stale_lock=lock))

    assert lock.holder is not None, "no kill landed while the dreamer held the lock"
    assert lock.while_held["refused"] == "DreamRunning"
    # Callers may be remote: the message says when the lock lapses, not which host and process hold it.
    assert lock.holder not in lock.while_held["message"] and "lapses at" in lock.while_held["message"]
    assert "proposal" in lock.after_lapse, lock.after_lapse

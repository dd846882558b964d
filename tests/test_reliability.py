"""Concurrency and crash safety against real `reverie` processes and real database files.

Bounded versions of the scenarios in `bench/reliability` (`python -m bench.reliability`
prints the full figures): two servers and eight clients writing to one file, kill -9 in
the middle of apply_dream, two dreams and two applies started in the same instant by two
processes, a dreamer killed while it holds the dream lock. Each test prints its figures
(`pytest -s` shows them).
"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))  # bench/ sits beside tests/ at the repo root, not installed

from reverie.service.maintenance import diagnose

from bench.reliability import report
from bench.reliability.concurrency import WriteFigures, concurrent_writes
from bench.reliability.kill import KillFigures, kill_trials
from bench.reliability.race import RaceFigures, dream_races, stale_lock

# slow: each test runs several `reverie` processes against one database file.
pytestmark = [pytest.mark.anyio, pytest.mark.slow]



def shown(figures: report.Figures) -> None:
    print("\n" + report.markdown(figures))


async def assert_no_write_lost(figures: WriteFigures, folder: Path, writes: int) -> None:
    assert figures.errors == [], f"{len(figures.errors)} calls failed, e.g. {figures.errors[:3]}"
    assert figures.locked == 0
    assert figures.problems == []
    assert figures.attempted == figures.acknowledged == figures.present == writes
    assert figures.reads > 0 and figures.reads_missing_own_write == 0
    report_ = await diagnose(folder / f"shared-{figures.transport}.db")
    assert report_.healthy, report_.markdown()


async def test_two_http_servers_and_eight_clients_on_one_file_lose_no_write_and_never_see_a_locked_database(tmp_path):
    with anyio.fail_after(120):
        figures = await concurrent_writes(tmp_path, writes=2000, clients=8, servers=2, transport="http")
    shown(report.Figures(writes=[figures]))

    await assert_no_write_lost(figures, tmp_path, 2000)


async def test_two_stdio_servers_each_carrying_four_concurrent_clients_lose_no_write(tmp_path):
    with anyio.fail_after(90):
        figures = await concurrent_writes(tmp_path, writes=400, clients=8, servers=2, transport="stdio")
    shown(report.Figures(writes=[figures]))

    await assert_no_write_lost(figures, tmp_path, 400)


def assert_exactly_before_or_after(figures: KillFigures, trials: int) -> None:
    assert len(figures.trials) == trials
    assert [t for t in figures.trials if t.problems] == [], "a killed apply left a file doctor rejects"
    assert figures.count("neither") == 0, [t for t in figures.trials if t.outcome == "neither"]
    assert all(t.proposal_status == {"before": "pending", "after": "applied"}[t.outcome] for t in figures.trials)


async def test_kill_9_of_a_process_applying_a_dream_leaves_exactly_the_memory_before_or_after(tmp_path):
    with anyio.fail_after(120):
        figures = await kill_trials(tmp_path, trials=20, ops=200, seed=7, worker="service")
    shown(report.Figures(kills=[figures]))

    assert_exactly_before_or_after(figures, 20)
    # The delays span the call, so some kills land before the commit and some after it.
    assert figures.count("before") >= 1 and figures.count("after") >= 1


async def test_kill_9_of_reverie_serve_during_the_apply_dream_tool_call_leaves_the_memory_before_or_after(tmp_path):
    with anyio.fail_after(120):
        figures = await kill_trials(tmp_path, trials=4, ops=200, seed=8, worker="server", calibrations=2)
    shown(report.Figures(kills=[figures]))

    assert_exactly_before_or_after(figures, 4)


@pytest.fixture(scope="module")
def anyio_backend():
    return "asyncio"  # module scope, for the module-scoped race below; aiosqlite runs on asyncio only


@pytest.fixture(scope="module")
async def races(tmp_path_factory) -> RaceFigures:
    with anyio.fail_after(120):
        figures = await dream_races(tmp_path_factory.mktemp("races"), rounds=3)
    shown(report.Figures(races=figures))
    return figures


async def test_two_dreams_started_at_once_in_two_processes_one_proceeds_and_the_other_is_told_one_is_running(races):
    raced = [race for race in races.rounds if race.overlapped]
    assert raced, "in no round did the two dream calls run at the same time; nothing was tested"
    for race in raced:
        assert len(race.dream_winners) == 1, race.dreams
        (refused,) = race.dream_refusals
        assert refused["message"].startswith("A dream is already running"), refused
    assert races.both_proceeded_overlapping == 0


async def test_two_processes_applying_two_proposals_over_one_memory_at_once_apply_exactly_one(races):
    for race in races.rounds:
        assert race.applied == 1, race.applies
        (refused,) = [a for a in race.applies if "refused" in a]
        assert refused["refused"] in ("StaleProposal", "AlreadyDecided"), refused
        assert race.memory_exact, "active memory is not exactly what the applied proposal made"
        assert race.problems == []


async def test_a_dreamer_killed_holding_the_dream_lock_blocks_the_next_dream_only_until_its_lease_lapses(tmp_path):
    with anyio.fail_after(60):
        lock = await stale_lock(tmp_path)
    shown(report.Figures(stale_lock=lock))

    assert lock.holder is not None, "no kill landed while the dreamer held the lock"
    assert lock.while_held["refused"] == "DreamRunning"
    # Callers may be remote: the message says when the lock lapses, not which host and process hold it.
    assert lock.holder not in lock.while_held["message"] and "lapses at" in lock.while_held["message"]
    assert "proposal" in lock.after_lapse, lock.after_lapse

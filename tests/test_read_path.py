"""What a read costs the database: it never writes, and what it queries stops early.

read_memory is annotated read-only: its read counts are written with the next write
transaction (or on close), so a read goes through while another process holds the write
lock. The per-read and per-log queries over the history use the m010 indexes, so they do
not grow with thousands of sessions waiting for a dream.
"""

from __future__ import annotations

import contextlib
import sqlite3
import types
from collections.abc import Iterator

import anyio
import postgres
import pytest
from reverie.models import Memory, Turn
from reverie.store import memories, sessions

pytestmark = [pytest.mark.anyio, pytest.mark.both_backends]


async def remember(reverie, memory_id: str, content: str) -> None:
    now = reverie.clock()
    async with reverie.db.transaction():
        await memories.insert_memory(reverie.db, Memory(id=memory_id, content=content, category="fact", scope="shared", confidence=0.8,
                                                        created_at=now, updated_at=now, observed_at=now))


def read_counts(settings) -> dict[str, int]:
    """The read counts as another process sees them."""
    if settings.db_url:
        return dict(postgres.fetchall(settings.db_url, "SELECT id, read_count FROM memories"))
    with sqlite3.connect(settings.db_path) as other:
        return dict(other.execute("SELECT id, read_count FROM memories"))


@contextlib.contextmanager
def another_writer(settings) -> Iterator[None]:
    """Another process's write transaction, holding the write lock until the block ends."""
    if settings.db_url:
        with postgres.another_writer(settings.db_url):
            yield
        return
    writer = sqlite3.connect(settings.db_path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        writer.execute("ROLLBACK")
        writer.close()


async def test_a_read_goes_through_while_another_process_holds_the_write_lock(reverie, settings):
    await remember(reverie, "mem_a", "The billing deploy needs the VPN.")
    with another_writer(settings), anyio.fail_after(2):  # well inside the 10 s a write would wait out
        view = await reverie.read_memory("billing deploy")
    assert [e.id for e in view.entries] == ["mem_a"]


async def test_read_counts_are_written_with_the_next_write_not_by_the_read(reverie, settings):
    await remember(reverie, "mem_a", "The billing deploy needs the VPN.")
    await reverie.read_memory("billing deploy")
    await reverie.read_memory("billing deploy")
    assert read_counts(settings) == {"mem_a": 0}

    await reverie.log_session([Turn(role="user", content="hello")])

    assert read_counts(settings) == {"mem_a": 2}


async def test_read_counts_still_waiting_are_written_when_the_database_closes(settings, clock):
    from reverie.service import open_reverie

    async with open_reverie(settings, clock) as reverie:
        await remember(reverie, "mem_a", "The billing deploy needs the VPN.")
        await reverie.read_memory()
    assert read_counts(settings) == {"mem_a": 1}


@pytest.mark.sqlite_only(reason="SQLite's query plan; PostgreSQL plans by its own statistics")
async def test_pending_notes_walk_the_notes_index_instead_of_sorting_every_note(reverie):
    plan = await reverie.db.fetchall("EXPLAIN QUERY PLAN " + _pending_notes_sql(), {"agent": "a", "project": None,
                                                                                      "limit": 200})
    steps = " / ".join(row[3] for row in plan)
    assert "USING INDEX notes_by_created" in steps and "TEMP B-TREE" not in steps


def _pending_notes_sql() -> str:
    return (f"SELECT n.session_id FROM notes n INDEXED BY notes_by_created CROSS JOIN sessions s ON s.id = n.session_id "
            f"WHERE s.agent_id = :agent AND {sessions._IN_PROJECT} AND NOT {sessions._CONSOLIDATED} "
            "ORDER BY n.created_at DESC, n.idx, n.id LIMIT :limit")


async def test_pending_notes_are_the_newest_unconsolidated_notes_of_the_agent_newest_first(reverie):
    for n in range(3):
        await reverie.log_session([Turn(role="user", content=f"turn {n}")], notes=[f"note {n}a", f"note {n}b"])
    await reverie.log_session([Turn(role="user", content="elsewhere")], notes=["not mine"], agent_id="other")

    found = await sessions.pending_notes(reverie.db, reverie.settings.agent_id, limit=3)

    assert [n.content for n in found] == ["note 2a", "note 2b", "note 1a"]


@pytest.mark.parametrize("agent", [None, "tester", "other"], ids=["every-agent", "one-agent", "other-agent"])
async def test_the_unconsolidated_count_is_ended_sessions_less_those_an_applied_dream_consolidated(reverie, agent):
    for n in range(4):
        await reverie.log_session([Turn(role="user", content=f"I prefer tabs {n}")], notes=[f"We use tabs {n}"])
    await reverie.log_session([Turn(role="user", content="open")], ended=False)
    await reverie.log_session([Turn(role="user", content="theirs")], agent_id="other")
    proposal = await reverie.propose_dream("heuristic")
    await reverie.apply_dream(proposal.id, "all")
    await reverie.log_session([Turn(role="user", content="after the dream")])

    counted = await sessions.count_unconsolidated(reverie.db, agent)

    assert counted == await _counted_one_by_one(reverie.db, agent)


async def _counted_one_by_one(db, agent: str | None) -> int:
    """The definition, row by row: the query before m010."""
    return await db.scalar(
        f"""SELECT count(*) FROM sessions s WHERE ended_at IS NOT NULL AND NOT {sessions._CONSOLIDATED}
            AND (? IS NULL OR agent_id = ?)""", (agent, agent))


async def test_reads_run_in_one_call_answer_as_the_same_reads_awaited_one_by_one(reverie):
    await remember(reverie, "mem_a", "The billing deploy needs the VPN.")
    await remember(reverie, "mem_b", "Staging runs PostgreSQL 16.")

    async def reads(db):
        return ([tuple(row) for row in await db.fetchall("SELECT id, content FROM memories ORDER BY id")],
                await db.scalar("SELECT count(*) FROM memories WHERE content LIKE ?", ("%billing%",)))

    async with reverie.db.snapshot():
        together = await reverie.db.in_one_call(reads)
        apart = await reads(reverie.db)

    assert together == apart == ([("mem_a", "The billing deploy needs the VPN."),
                                  ("mem_b", "Staging runs PostgreSQL 16.")], 1)


@types.coroutine
def _suspend():
    yield  # what an await on anything but the database (a lock, a sleep, a task) comes to


@pytest.mark.sqlite_only(reason="only SQLite runs the reads on its connection's thread, where nothing else can be awaited")
async def test_reads_run_in_one_call_that_wait_on_anything_but_the_database_fail_instead_of_hanging(reverie):
    async def waits(db):
        await _suspend()
        return await db.fetchall("SELECT 1")

    with anyio.fail_after(2), pytest.raises(RuntimeError, match="awaited something other than the database"):
        await reverie.db.in_one_call(waits)
    assert await reverie.db.scalar("SELECT 1") == 1  # the connection is still usable

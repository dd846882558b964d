"""Loading sessions whole: a fixed number of queries however many sessions, in each caller's order."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from conftest import chat
from reverie.service import ingest
from reverie.service.continuation import log_new_turns
from reverie.store import sessions

pytestmark = [pytest.mark.anyio, pytest.mark.both_backends]


@contextmanager
def counted_queries(db, monkeypatch):
    """Count the reads `db` runs in the body (fetchone and scalar read through fetchall)."""
    calls = []
    fetchall = db.fetchall

    async def counting(sql, params=()):
        calls.append(sql)
        return await fetchall(sql, params)

    monkeypatch.setattr(db, "fetchall", counting)
    yield calls
    monkeypatch.setattr(db, "fetchall", fetchall)


async def log_many(reverie, clock, count: int) -> list[str]:
    ids = []
    for i in range(count):
        clock.advance(minutes=1)
        logged = await reverie.log_session(chat(f"question {i}", f"answer {i}"), session_id=f"s{i:03d}",
                                           notes=[f"note {i}"])
        ids.append(logged.session_id)
    return ids


async def test_a_dream_loads_a_hundred_sessions_in_three_queries_oldest_first(reverie, clock, monkeypatch):
    ids = await log_many(reverie, clock, 100)

    with counted_queries(reverie.db, monkeypatch) as queries:
        loaded = await sessions.unconsolidated_sessions(reverie.db, None, 100)

    assert len(queries) == 3
    assert [s.id for s in loaded] == ids
    assert [[e.content for e in s.events] for s in loaded] == [[f"question {i}", f"answer {i}"] for i in range(100)]
    assert [[n.content for n in s.notes] for s in loaded] == [[f"note {i}"] for i in range(100)]


async def test_session_records_keep_the_order_asked_for_and_leave_unknown_ids_out(reverie, clock):
    await log_many(reverie, clock, 3)
    # More ids than one statement may bind on SQLite before 3.32.
    asked = ["s002", *(f"missing-{i}" for i in range(1500)), "s000", "s002"]

    loaded = await sessions.session_records(reverie.db, asked)

    assert [s.id for s in loaded] == ["s002", "s000", "s002"]
    assert [e.content for e in loaded[1].events] == ["question 0", "answer 0"]


async def test_the_export_holds_every_session_with_its_events_and_notes_in_start_order(reverie, clock):
    ids = await log_many(reverie, clock, 5)

    exported = (await reverie.export())["sessions"]

    assert [s["id"] for s in exported] == ids
    assert [n["content"] for n in exported[4]["notes"]] == ["note 4"]
    assert [e["index"] for e in exported[4]["events"]] == [0, 1]


async def test_sessions_whose_ids_only_start_like_a_base_are_not_taken_for_its_parts(reverie):
    for other in ("conv-1-x", "conv-1.x", "conv-10"):
        await reverie.log_session(chat("unrelated"), session_id=other)

    part = await log_new_turns(reverie, "conv-1", chat("a", "b"), agent_id=None, title="t")
    again = await log_new_turns(reverie, "conv-1", chat("a", "b", "c"), agent_id=None, title="t")

    assert (part.session_id, again.session_id, again.turns) == ("conv-1", "conv-1.2", 1)


async def test_a_log_result_is_answered_from_what_the_log_stored_without_reading_the_session(
    reverie, monkeypatch
):
    async with reverie.db.transaction():
        await ingest.log(reverie.db, chat("a"), [], session_id="open", agent_id="tester", title=None,
                         outcome=None, summary=None, ended=False, now=reverie.clock())
    async with reverie.db.transaction():
        logged = await ingest.log(reverie.db, chat("b", "c"), ["n"], session_id="open", agent_id="tester",
                                  title=None, outcome=None, summary=None, ended=True, now=reverie.clock())

    with counted_queries(reverie.db, monkeypatch) as queries:
        result = await ingest.log_result(reverie.db, logged, False)

    assert len(queries) == 1  # only the sessions awaiting a dream
    assert (result.agent_id, result.events_added, result.event_count, result.notes_added, result.ended) == (
        "tester", 2, 3, 1, True)

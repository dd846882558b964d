"""The schema: migrations from a blank file, and the invariants it enforces itself."""

from __future__ import annotations

import pytest
from conftest import chat
from reverie.store import Refused, open_database
from reverie.store.migrations import MIGRATIONS

pytestmark = [pytest.mark.anyio, pytest.mark.both_backends]

TABLES = {"sessions", "events", "notes", "memories", "proposals", "proposal_sessions", "operations",
          "revisions", "memory_changes", "events_fts", "memories_fts", "_migrations"}


async def names(db, kind: str) -> set[str]:
    rows = await db.fetchall("SELECT name FROM sqlite_master WHERE type = ?", (kind,))
    return {r[0] for r in rows}


async def test_migrations_on_a_blank_file_produce_the_expected_schema(tmp_path):
    async with open_database(tmp_path / "blank.db") as db:
        assert TABLES <= await names(db, "table")
        assert {"events_no_update", "events_no_delete", "memories_no_delete", "memories_immutable",
                "sessions_identity", "events_fts_insert"} <= await names(db, "trigger")
        assert [r[0] for r in await db.fetchall("SELECT name FROM _migrations")] == [n for n, _ in MIGRATIONS]
        assert await db.scalar("PRAGMA journal_mode") == "wal"
        assert await db.scalar("PRAGMA foreign_keys") == 1


async def test_reopening_a_migrated_file_applies_nothing_twice(tmp_path):
    for _ in range(2):
        async with open_database(tmp_path / "again.db") as db:
            assert await db.scalar("SELECT count(*) FROM _migrations") == len(MIGRATIONS)


@pytest.mark.parametrize(
    "statement",
    ["UPDATE events SET content = 'rewritten'", "DELETE FROM events", "UPDATE notes SET content = 'x'",
     "DELETE FROM sessions", "UPDATE sessions SET title = 'renamed'", "DELETE FROM memories",
     "UPDATE memories SET content = 'rewritten'", "DELETE FROM revisions", "UPDATE memory_changes SET op_id = 'x'"],
    ids=["update-event", "delete-event", "update-note", "delete-session", "update-ended-session",
         "delete-memory", "rewrite-memory", "delete-revision", "update-change"],
)
async def test_the_schema_refuses_to_rewrite_history(reverie, statement):
    await reverie.log_session(chat("hi", "hello"), notes=["Lunch is at noon"])
    proposal = await reverie.propose_dream("heuristic")
    await reverie.apply_dream(proposal.id, "all")
    # The trigger's own message: a foreign key would refuse some of these deletes anyway.
    with pytest.raises(Refused, match="append-only|final|never deleted|keeps its text"):
        await reverie.db.execute(statement)


async def test_an_open_session_can_still_take_its_outcome(reverie):
    logged = await reverie.log_session(chat("hi"), session_id="open-1", ended=False)
    await reverie.log_session(chat("bye"), session_id="open-1", outcome="success")
    row = await reverie.db.fetchone("SELECT outcome, ended_at FROM sessions WHERE id = ?", (logged.session_id,))
    assert row["outcome"] == "success" and row["ended_at"] is not None


@pytest.mark.parametrize("unit", ["transaction", "snapshot"])
async def test_a_failed_unit_of_work_keeps_its_own_error_even_when_the_rollback_fails_too(reverie, unit):
    with pytest.raises(RuntimeError, match="the body's own error"):
        async with getattr(reverie.db, unit)():
            await reverie.db.execute("ROLLBACK")  # ended early, as SQLite ends it after some errors
            raise RuntimeError("the body's own error")
    async with reverie.db.transaction():  # and the connection is usable again
        assert await reverie.db.scalar("SELECT count(*) FROM memories") == 0

"""Choosing and reaching the PostgreSQL backend: what `--db postgresql://…` does when things go wrong,
and how the store's SQL reads on PostgreSQL."""

from __future__ import annotations

import socket
import sys
from datetime import UTC, datetime

import anyio
import pytest
from conftest import memory_entry, remember
from reverie.clock import to_iso
from reverie.config import Settings
from reverie.errors import InvalidInput, Unreachable
from reverie.models import Memory, Turn
from reverie.service.ingest import chain_hash
from reverie.store import ledger, memories, open_database, sessions
from reverie.store.database import Refused
from reverie.store.postgres import translate

pytestmark = pytest.mark.anyio


def test_a_postgresql_url_names_a_server_and_a_path_names_a_file(tmp_path):
    on_server = Settings.resolve("postgresql://team:s3cret@db.internal:5432/reverie")
    assert on_server.db_url == "postgresql://team:s3cret@db.internal:5432/reverie"
    assert on_server.shown == "postgresql://team@db.internal:5432/reverie"  # never the password
    in_file = Settings.resolve(str(tmp_path / "memory.db"))
    assert in_file.db_url is None and in_file.database == tmp_path / "memory.db"


def test_the_store_sql_is_translated_without_touching_quoted_text():
    assert translate("SELECT * FROM t WHERE a = ? AND b = :name AND c = 'it?s :not %'") == (
        "SELECT * FROM t WHERE a = %s AND b = %(name)s AND c = 'it?s :not %%'")
    assert translate("SELECT x::json FROM t WHERE scope IS ? AND d IS NOT e.d AND v IS NULL") == (
        "SELECT x::json FROM t WHERE scope IS NOT DISTINCT FROM %s AND d IS DISTINCT FROM e.d AND v IS NULL")
    assert translate("SELECT 1 FROM m INDEXED BY m_idx CROSS JOIN s ON s.id = m.sid") == (
        "SELECT 1 FROM m  JOIN s ON s.id = m.sid")


async def test_a_server_that_is_not_there_is_reported_with_the_url_and_what_to_check():
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(Unreachable) as caught:
        async with open_database(f"postgresql://reverie:hunter2@127.0.0.1:{port}/reverie?connect_timeout=2"):
            pass
    message = str(caught.value)
    assert f"postgresql://reverie@127.0.0.1:{port}/reverie" in message and "hunter2" not in message
    assert "REVERIE_DB" in message


async def test_without_the_driver_a_postgresql_url_says_which_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if the [postgres] extra were not installed
    monkeypatch.delitem(sys.modules, "reverie.store.postgres", raising=False)
    with pytest.raises(InvalidInput, match=r"pip install 'reverie-mcp\[postgres\]'"):
        async with open_database("postgresql://reverie@127.0.0.1:1/reverie"):
            pass


@pytest.mark.both_backends
async def test_a_nul_character_is_kept_as_a_replacement_mark_on_either_backend(reverie):
    # PostgreSQL's text cannot hold U+0000; a transcript holding one must log all the same.
    logged = await reverie.log_session([Turn(role="user", content="binary\x00output: the build id is 7f3a")],
                                       notes=["build id\x00 7f3a"])
    stored = (await reverie.read_memory(query="build id")).notes
    assert logged.events_added == 1 and [n.content for n in stored] == ["build id\ufffd 7f3a"]


# --- rows many at a time go in by COPY (`PostgresDatabase.executemany`) --------------------------

AT = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
# What COPY's text format escapes or could misread: tabs, line ends, backslashes, `\N` (its NULL)
# and `\.` (its end of data), beside quotes, placeholders and text beyond ASCII.
AWKWARD = [
    Turn(role="user", content="tab\there, new\nline, cr\r, a backslash \\ and \\N and \\. alone", timestamp=AT),
    Turn(role="assistant", content="\\N", tool_name="bash", timestamp=None),
    Turn(role="tool", content="quotes ' \" and %s ? :name $$ \u2028 naïve – ✓ 😀\t", tool_name="bash", is_error=True,
         timestamp=AT),
    Turn(role="system", content="\\\\server\\share\\", timestamp=AT),
]
NOTES = [("a note\twith a tab \\N", AT), ("\\.", AT)]


def _event_rows(session_id: str) -> list[tuple]:
    return [(session_id, i, t.role, t.content, t.tool_name, int(t.is_error), to_iso(t.timestamp) if t.timestamp else None)
            for i, t in enumerate(AWKWARD)]


async def _copied_and_inserted(url: str) -> tuple[list, list, dict]:
    """The AWKWARD turns and NOTES stored twice: by `append_events`/`append_notes` (COPY) and by
    one INSERT a row; then every event, note and ledger entry."""
    async with open_database(url) as db:
        async with db.transaction():
            for session_id in ("copied", "inserted"):
                await sessions.create_session(db, session_id, "agent", AT, AT)
            await sessions.append_events(db, "copied", 0, AWKWARD)
            await sessions.append_notes(db, "copied", 0, NOTES)
            for row in _event_rows("inserted"):
                await db.execute("INSERT INTO events (session_id, idx, role, content, tool_name, is_error, timestamp) "
                                 "VALUES (?, ?, ?, ?, ?, ?, ?)", row)
            for i, (text, at) in enumerate(NOTES):
                await db.execute("INSERT INTO notes (session_id, idx, content, created_at) VALUES (?, ?, ?, ?)",
                                 ("inserted", i, text, to_iso(at)))
            for session_id in ("copied", "inserted"):  # as a log does, so the doctor's re-hash of turns holds
                await sessions.update_session(db, session_id, content_hash=chain_hash("", AWKWARD))
        events = await db.fetchall("SELECT id, session_id, idx, role, content, tool_name, is_error, timestamp, "
                                   "search::text FROM events ORDER BY id")
        notes = await db.fetchall("SELECT id, session_id, idx, content, created_at FROM notes ORDER BY id")
        logged = {(r[0], r[1]): (r[2], r[3]) for r in await db.fetchall("SELECT kind, key, seq, digest FROM ledger")}
    return [tuple(r) for r in events], [tuple(r) for r in notes], logged


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_events_and_notes_copied_in_are_stored_and_ledgered_as_inserted_ones_are(database_url, cli):
    events, notes, logged = anyio.run(_copied_and_inserted, database_url)

    copied, inserted = ([r[1:] for r in events if r[1] == s] for s in ("copied", "inserted"))
    assert [r[:7] for r in copied] == _event_rows("copied")
    assert [r[1:] for r in copied] == [r[1:] for r in inserted]  # the same text, flags and search vector
    assert [r[2:] for r in notes if r[1] == "copied"] == [r[2:] for r in notes if r[1] == "inserted"]
    assert [r[3] for r in notes if r[1] == "copied"] == [text for text, _ in NOTES]
    for kind, rows in (("event", events), ("note", notes)):
        values = [r[:8] for r in rows]
        assert [logged[(kind, str(v[0]))][1] for v in values] == [ledger.digest(kind, *v) for v in values]
        copied_seqs = [logged[(kind, str(v[0]))][0] for v in values if v[1] == "copied"]
        assert copied_seqs == sorted(copied_seqs)  # logged in id order
    assert cli("doctor", db=database_url).code == 0


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
@pytest.mark.parametrize(("content", "refused"), [
    ("a NUL \x00 in a copied row", InvalidInput), ("a lone surrogate \ud800 in a copied row", InvalidInput),
], ids=["nul", "surrogate"])
async def test_a_copied_row_postgresql_cannot_store_is_refused_and_nothing_of_its_copy_is_stored(
    database_url, content, refused
):
    turns = [Turn(role="user", content="fine"), Turn.model_construct(role="user", content=content, tool_name=None,
                                                                      is_error=False, timestamp=None)]
    async with open_database(database_url) as db:
        await sessions.create_session(db, "s", "agent", AT, AT)
        with pytest.raises(refused):
            await sessions.append_events(db, "s", 0, turns)
        with pytest.raises(Refused, match="foreign key"):
            await sessions.append_events(db, "no such session", 0, turns[:1])
        await sessions.append_events(db, "s", 0, turns[:1])
        with pytest.raises(Refused, match="duplicate key"):
            await sessions.append_events(db, "s", 0, turns[:1])
        assert [tuple(r) for r in await db.fetchall("SELECT session_id, idx, content FROM events")] == [("s", 0, "fine")]


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_a_refused_rewrite_of_a_memory_changes_nothing_and_archiving_it_keeps_its_search_vector(reverie):
    # The guard on a memory's fixed columns fires after the update (p004), so that archiving
    # does not re-derive the search vector; its refusal must still undo the whole statement.
    await remember(reverie, memory_entry("mem_kept", "Deploys go through the staging cluster first.", AT))
    columns = "content, valid_to, search::text"
    before = tuple(await reverie.db.fetchone(f"SELECT {columns} FROM memories WHERE id = 'mem_kept'"))
    with pytest.raises(Refused, match="keeps its text"):
        await reverie.db.execute("UPDATE memories SET content = 'rewritten', valid_to = ? WHERE id = 'mem_kept'",
                                 (to_iso(AT),))
    assert tuple(await reverie.db.fetchone(f"SELECT {columns} FROM memories WHERE id = 'mem_kept'")) == before

    assert await memories.archive_memory(reverie.db, "mem_kept", "pruned", AT)
    after = tuple(await reverie.db.fetchone(f"SELECT {columns} FROM memories WHERE id = 'mem_kept'"))
    assert after == (before[0], to_iso(AT), before[2])


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_memories_stored_before_their_words_were_counted_are_counted_when_the_count_is_made(database_url):
    # As a database from before p005: no memory_words, its memories already there.
    async with open_database(database_url) as db:
        for statement in ("DROP TRIGGER memory_words ON memories", "DROP FUNCTION memory_words_rows()",
                          "DROP TABLE memory_words", "DELETE FROM _migrations WHERE name = 'p005_memory_words'"):
            await db.execute(statement)
        async with db.transaction():
            for n, text in enumerate(["Deploys need staging first.", "Staging deploys are slow.", "The cache is Redis."]):
                await memories.insert_memory(db, Memory.model_validate(memory_entry(f"mem_{n}", text, AT)))
    async with open_database(database_url) as db:  # migrated again: p005 counts what is there
        counted = {tuple(r) for r in await db.fetchall("SELECT word, slice, scope, rows FROM memory_words")}
    assert counted == {("deploy", 0, "agent:tester", 2), ("stage", 0, "agent:tester", 2), ("first", 0, "agent:tester", 1),
                       ("need", 0, "agent:tester", 1), ("slow", 0, "agent:tester", 1), ("cach", 0, "agent:tester", 1),
                       ("redi", 0, "agent:tester", 1)}


async def _session_count_and_server(db) -> tuple[int, int]:
    return await db.scalar("SELECT count(*) FROM sessions"), await db.scalar("SELECT pg_backend_pid()")


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_reads_at_once_run_side_by_side_and_see_the_snapshots_moment(database_url):
    async with open_database(database_url) as db, open_database(database_url) as other:
        async with db.snapshot():
            seen = await db.scalar("SELECT count(*) FROM sessions")
            async with other.transaction():  # written after the snapshot began
                await sessions.create_session(other, "later", "agent", AT, AT)
            (first, server), (second, spare) = await db.at_once(_session_count_and_server, _session_count_and_server)
    assert first == second == seen == 0 and server != spare


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_reads_at_once_with_no_connection_to_spare_run_one_after_the_other(database_url):
    async with open_database(database_url) as db, db.snapshot():
        held = [await db.pool.getconn() for _ in range(db.pool.max_size - 1)]  # every other connection busy
        try:
            (_, server), (_, again) = await db.at_once(_session_count_and_server, _session_count_and_server)
        finally:
            for connection in held:
                await db.pool.putconn(connection)
    assert server == again


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_a_read_at_once_that_fails_raises_its_own_error(database_url):
    async def refuses(db):
        raise InvalidInput("no such thing")

    async with open_database(database_url) as db, db.snapshot():
        with pytest.raises(InvalidInput, match="no such thing"):
            await db.at_once(_session_count_and_server, refuses)
        assert await db.scalar("SELECT 1") == 1  # the snapshot's connection still serves

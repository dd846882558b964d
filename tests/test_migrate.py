"""`reverie migrate`: a schema created or brought up to date, and a SQLite memory copied onto
PostgreSQL exactly — driven through `reverie.cli.main`, against real SQLite files and fresh
databases on the PostgreSQL server under test.

"Exactly" is checked row for row: every copied table reads the same through the store on
both backends (ids, sequence numbers, text, the ledger's digests); the memory an agent
loads is the same; and what Reverie writes next — a revert of a copied dream — writes the
same rows, ledger entries included, on both.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import anyio
import psycopg
import pytest
from conftest import Ran, chat
from reverie.cli import main
from reverie.config import Settings
from reverie.service import open_reverie
from reverie.service.ingest import chain_hash
from reverie.store import copy, integrity, open_database, postgres_schema, sessions
from test_doctor import lived_in, scalar
from test_tamper import with_a_flagged_dream

# slow: each case builds a dreamed-over memory and copies it onto a server.
pytestmark = pytest.mark.slow

AGENT = "default"  # who the CLI acts as in these tests
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SCHEMA = [name for name, _ in postgres_schema.MIGRATIONS]  # what a new PostgreSQL database gets


@pytest.fixture
def reverie(cli, capsys):
    """`reverie ARGS…` in process, with no --db added (`migrate --from --to` names both databases itself)."""

    def run(*argv: str) -> Ran:
        capsys.readouterr()
        code = main(list(argv))
        out, err = capsys.readouterr()
        return Ran(code, out, err)

    return run


@pytest.fixture
def move(reverie):
    """`reverie migrate --from SOURCE --to TARGET …`."""
    return lambda source, target, *more: reverie("migrate", "--from", str(source), "--to", target, *more)


@pytest.fixture
def empty_server(postgres_server):
    """A database on the server under test with nothing in it, as `createdb` leaves one."""
    url = postgres_server.create(migrated=False)
    yield url
    postgres_server.drop(url)


@pytest.fixture
def sqlite_memory(tmp_path, cli) -> Path:
    """A SQLite memory with the whole history: dreams applied and reverted, an import, a
    flagged dream pending, an open session, a claimed project, and text in many scripts."""
    path = with_a_flagged_dream(lived_in(tmp_path / "memory.db", cli), cli, tmp_path)
    anyio.run(more_history, path)
    return path


async def more_history(path: Path) -> None:
    async with open_reverie(settings(path)) as reverie:
        await reverie.log_session(chat("Ünïcödé — 🙂 “quoted” and a line\u2028separator, tab\there, back\\slash \x01",
                                       "D'accord ; ça coûte 3 € 50, 東京で"), ended=False,
                                  notes=["Le café est à 3 € 50 \"près\" de la gare"])
        await reverie.project_key(str(path.parent), claim=True)


def settings(target: Path | str) -> Settings:
    if isinstance(target, Path):
        return Settings(db_path=target, agent_id=AGENT)
    return Settings(db_path=Path("unused.db"), agent_id=AGENT, db_url=target)


def tables(target: Path | str) -> dict[str, list[tuple]]:
    """Every copied table's rows, read through the store, in the copy's order."""

    async def read() -> dict[str, list[tuple]]:
        async with open_reverie(settings(target)) as reverie:
            found = {}
            for table in copy.TABLES:
                columns = ", ".join(f'"{c}"' for c in await column_names(reverie.db, table.table))
                rows = await reverie.db.fetchall(f"SELECT {columns} FROM {table.table} ORDER BY {table.order}")
                found[table.table] = [tuple(row) for row in rows]
            return found

    return anyio.run(read)


async def column_names(db, table: str) -> list[str]:
    if db.backend == "sqlite":
        return [r[1] for r in await db.fetchall(f"PRAGMA table_info({table})")]
    return [r[0] for r in await db.fetchall(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = ? AND is_generated = 'NEVER' ORDER BY ordinal_position", (table,))]


def loaded(target: Path | str) -> dict:
    """The memory an agent loads (read_memory), at a fixed moment."""

    async def read() -> dict:
        async with open_reverie(settings(target), lambda: NOW) as reverie:
            return (await reverie.read_memory()).model_dump(mode="json")

    return anyio.run(read)


def checkpoint(target: Path | str) -> str:
    async def read() -> str:
        async with integrity.open_existing(target) as db:
            return str((await integrity.ledger_checkpoints(db))[0])

    return anyio.run(read)


def server_tables(url: str) -> int:
    with psycopg.connect(url) as connection:
        return connection.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0]


# --- the schema ------------------------------------------------------------------------------


def test_migrate_creates_the_schema_of_an_empty_postgresql_database_and_says_what_it_applied(empty_server, cli):
    first = cli("migrate", db=empty_server)

    assert first.code == 0, first.err
    assert first.out.startswith(f"Applied {len(SCHEMA)} migration(s) to {empty_server}: {', '.join(SCHEMA)}.")
    again = cli("migrate", "--json", db=empty_server).json()
    assert again == {"database": empty_server, "applied": [], "migrations": SCHEMA}
    assert cli("doctor", db=empty_server).code == 0


def an_older_schema(url: str) -> str:
    """Every PostgreSQL migration but the last, as an older Reverie left the database; the last one's name."""
    *older, (last, _) = postgres_schema.MIGRATIONS
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
        for name, statements in older:
            for statement in statements:
                connection.execute(statement)
            connection.execute("INSERT INTO _migrations VALUES (%s, '2026-11-01T00:00:00+00:00')", (name,))
    return last


@pytest.mark.skipif(len(SCHEMA) < 2, reason="the PostgreSQL schema has a single migration: none can be older")
def test_doctor_names_only_the_migration_an_older_schema_lacks_and_migrate_applies_it(empty_server, cli):
    last = an_older_schema(empty_server)

    before = cli("doctor", "--json", db=empty_server)

    assert before.code == 1
    report = before.json(code=1)
    assert [(c["name"], c["problems"]) for c in report["checks"] if not c["ok"]] == [
        ("postgresql", [f"migration {last} is not applied: run `reverie --db URL migrate`"])]
    upgraded = cli("migrate", db=empty_server)
    assert upgraded.out.startswith(f"Applied 1 migration(s) to {empty_server}: {last}.")
    assert cli("doctor", db=empty_server).code == 0


def test_migrate_on_a_new_sqlite_file_applies_every_migration_then_nothing(tmp_path, cli):
    path = tmp_path / "new.db"

    first = cli("migrate", "--json", db=path).json()

    assert first["applied"] == first["migrations"] and first["applied"][0] == "m001_initial"
    assert cli("migrate", db=path).out.startswith(f"Nothing to apply: {path} is up to date")


# --- the copy --------------------------------------------------------------------------------


def test_migrate_copies_a_sqlite_memory_onto_postgresql_row_for_row(sqlite_memory, empty_server, move):
    result = move(sqlite_memory, empty_server)

    assert result.code == 0, result.out + result.err
    source, target = tables(sqlite_memory), tables(empty_server)
    assert {table: len(rows) for table, rows in target.items()} == {table: len(rows) for table, rows in source.items()}
    assert target == source
    assert all(source[table] for table in ("sessions", "proposals", "revisions", "memory_changes", "projects"))
    assert checkpoint(empty_server) == checkpoint(sqlite_memory)


def test_the_copied_memory_loads_the_same_on_postgresql(sqlite_memory, empty_server, move):
    assert move(sqlite_memory, empty_server).code == 0

    assert loaded(empty_server) == loaded(sqlite_memory)


def test_a_copied_dream_reverts_on_postgresql_writing_the_same_rows_and_ledger_entries_as_on_sqlite(
        sqlite_memory, empty_server, cli, move):
    assert move(sqlite_memory, empty_server).code == 0
    applied = scalar(sqlite_memory, "SELECT id FROM proposals WHERE status = 'applied' ORDER BY created_at DESC")

    async def revert(target: Path | str) -> None:
        async with open_reverie(settings(target), lambda: NOW) as reverie:
            await reverie.revert_dream(applied)

    for target in (sqlite_memory, empty_server):
        anyio.run(revert, target)

    source, copied = tables(sqlite_memory), tables(empty_server)
    assert copied["revisions"][-1] == source["revisions"][-1] and copied["revisions"][-1][2] == "revert"
    assert copied == source
    assert cli("doctor", db=empty_server).code == 0
    assert checkpoint(empty_server) == checkpoint(sqlite_memory)


def test_new_sessions_on_the_copy_take_the_ids_after_the_copied_ones(sqlite_memory, empty_server, cli, tmp_path,
                                                                   move):
    assert move(sqlite_memory, empty_server).code == 0
    last_event = scalar(sqlite_memory, "SELECT max(id) FROM events")
    (tmp_path / "later.txt").write_text("User: the build runs nightly\nAssistant: ok\n", encoding="utf-8")

    assert cli("log", str(tmp_path / "later.txt"), db=empty_server).code == 0

    with psycopg.connect(empty_server) as connection:
        assert connection.execute("SELECT min(id) FROM events WHERE id > %s", (last_event,)).fetchone()[0] \
            == last_event + 1
    assert cli("doctor", db=empty_server).code == 0


def test_migrate_prints_the_rows_copied_per_table_and_the_checkpoint_both_share(sqlite_memory, empty_server, move):
    counts = {table: len(rows) for table, rows in tables(sqlite_memory).items()}

    result = move(sqlite_memory, empty_server)

    assert result.code == 0
    for table, n in counts.items():
        assert any(line.split() == [table, f"{n:,}"] for line in result.out.splitlines()), (table, result.out)
    assert f"Ledger checkpoint {checkpoint(sqlite_memory)}, the same on both" in result.out
    assert "passes `reverie doctor`" in result.out and f"reverie --db {empty_server} serve --http" in result.out
    assert f"Schema on {empty_server}: {', '.join(SCHEMA)}." in result.out


def test_migrate_json_reports_counts_checkpoint_and_the_targets_check(sqlite_memory, empty_server, move):
    moved = move(sqlite_memory, empty_server, "--json").json()

    assert moved["target"] == empty_server and moved["target_applied"] == SCHEMA
    assert moved["counts"]["ledger"] == int(moved["checkpoint"].split(":")[0])  # the ledger starts at 1, no gaps
    assert moved["check"]["healthy"] is True and moved["check"]["checkpoint"] == moved["checkpoint"]
    assert "locks" not in moved["counts"]


def test_migrate_brings_an_older_sqlite_file_up_to_date_before_copying_it(sqlite_memory, empty_server, move):
    with closing(sqlite3.connect(sqlite_memory, isolation_level=None)) as connection:
        for index in ("notes_by_created", "sessions_ended", "sessions_ended_by_logged"):
            connection.execute(f"DROP INDEX {index}")
        connection.execute("DELETE FROM _migrations WHERE name = 'm010_history_indexes'")

    result = move(sqlite_memory, empty_server)

    assert result.code == 0, result.err
    assert f"Migrated {sqlite_memory} first: m010_history_indexes." in result.out
    assert scalar(sqlite_memory, "SELECT count(*) FROM _migrations WHERE name = 'm010_history_indexes'") == 1


# --- refusals --------------------------------------------------------------------------------


def test_migrate_refuses_a_target_that_holds_a_memory_says_how_to_start_over_and_changes_nothing(
        sqlite_memory, postgres_server, cli, tmp_path, move):
    target = postgres_server.create()
    try:
        (tmp_path / "theirs.txt").write_text("User: this is theirs\nAssistant: ok\n", encoding="utf-8")
        assert cli("log", str(tmp_path / "theirs.txt"), db=target).code == 0
        before = tables(target)

        result = move(sqlite_memory, target)

        assert result.code == 1
        name = target.rpartition("/")[2]
        assert f"{target} already holds a memory (1 sessions, 2 events" in result.err
        assert f"DROP DATABASE {name}; CREATE DATABASE {name};" in result.err and "nothing was copied" in result.err
        assert tables(target) == before
    finally:
        postgres_server.drop(target)


def test_migrate_refuses_to_copy_twice_into_the_same_database(sqlite_memory, empty_server, move):
    assert move(sqlite_memory, empty_server).code == 0
    copied = tables(empty_server)

    again = move(sqlite_memory, empty_server)

    assert again.code == 1 and "already holds a memory" in again.err
    assert tables(empty_server) == copied


def test_migrate_refuses_text_postgresql_cannot_hold_naming_the_row_before_touching_the_target(
        tmp_path, empty_server, move):
    path = tmp_path / "memory.db"

    async def log() -> str:
        async with open_reverie(settings(path)) as reverie:
            await reverie.log_session(chat("fine", "also fine"))
        # Logging now stores U+0000 as U+FFFD; a file from an older Reverie may hold one as it was sent.
        turns, at = chat("a NUL\x00inside", "ok"), datetime(2026, 1, 2, tzinfo=UTC)
        async with open_database(path) as db, db.transaction():
            await sessions.create_session(db, "older", "tester", at, at)
            await sessions.append_events(db, "older", 0, turns)
            await sessions.update_session(db, "older", content_hash=chain_hash("", turns), ended_at=at)
        return "older"

    session = anyio.run(log)

    result = move(path, empty_server)

    assert result.code == 1
    assert f"the events row with session_id '{session}', idx 0 (in content) holds a NUL character" in result.err
    assert "Nothing was copied" in result.err
    assert server_tables(empty_server) == 0  # not even the schema


def test_migrate_refuses_a_sqlite_memory_that_fails_the_doctor_and_leaves_the_target_untouched(
        sqlite_memory, empty_server, move):
    with closing(sqlite3.connect(sqlite_memory, isolation_level=None)) as connection:
        (guard,) = connection.execute("SELECT sql FROM sqlite_master WHERE name = 'events_no_update'").fetchone()
        connection.execute("DROP TRIGGER events_no_update")
        connection.execute("UPDATE events SET content = 'User: forged' WHERE id = (SELECT min(id) FROM events)")
        connection.execute(guard)

    result = move(sqlite_memory, empty_server)

    assert result.code == 1
    assert f"{sqlite_memory} fails `reverie doctor`" in result.err and "not copied" in result.err
    assert server_tables(empty_server) == 0


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        (["--from", "memory.db"], "give both --from and --to"),
        (["--to", "postgresql://reverie@localhost/reverie"], "give both --from and --to"),
        (["--db", "{folder}/memory.db", "--from", "{folder}/memory.db", "--to", "postgresql://reverie@localhost/r"],
         "(and no --db)"),
        (["--from", "postgresql://reverie@localhost/a", "--to", "postgresql://reverie@localhost/b"],
         "--from names a SQLite file"),
        (["--from", "{folder}/memory.db", "--to", "{folder}/copy.db"], "--to names a PostgreSQL database"),
        (["--from", "{folder}/nowhere.db", "--to", "postgresql://reverie@localhost/reverie"],
         "There is no SQLite file at"),
    ],
    ids=["from-alone", "to-alone", "with-db-too", "from-a-server", "to-a-file", "from-a-missing-file"],
)
def test_migrate_says_what_to_give_it_when_the_arguments_cannot_work(arguments, said, tmp_path, reverie):
    (tmp_path / "memory.db").touch()

    result = reverie("migrate", *(argument.format(folder=tmp_path) for argument in arguments))

    assert result.code == 1
    assert said in result.err and "Traceback" not in result.err

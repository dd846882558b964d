"""The Claude Code hooks' direct way into a SQLite file (`store.direct`): SessionStart's text
and read counts (`session_start.from_file`) and the rows SessionEnd writes for a new
conversation (`hooks.log_new_conversation`) are the service's, on the same files; and the
service does the work whenever the file or the conversation is not one the direct way takes.

Each state is built through the service in a real file in tmp_path; the direct way and the
service then work on copies of it (SQLite's backup), as of the same moment, so that what
each one printed, counted and stored can be compared with the other's.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import chat, memory_entry, remember
from reverie.config import MAX_TURNS, Settings
from reverie.errors import InvalidInput, Unreachable
from reverie.hooks import (
    HookInput,
    NotDirect,
    SpoolItem,
    Stored,
    drain,
    log_item,
    log_new_conversation,
    log_spooled,
    redacted_transcript,
    spool_dir,
)
from reverie.service import Reverie, open_reverie
from reverie.service.continuation import log_new_turns
from reverie.session_start import from_file, session_start
from reverie.store import direct
from reverie.store.migrations import MIGRATIONS

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
OLD_PORT = "The staging database listens on port 5432."
NEW_PORT = "The staging database listens on port 5433 now."

pytestmark = pytest.mark.anyio


def entry(mid: str, content: str, scope: str, days_ago: int, confidence: float = 0.7) -> dict:
    return {**memory_entry(mid, content, NOW - timedelta(days=days_ago), confidence), "scope": scope}


async def in_project(reverie: Reverie, cwd: Path, session_id: str, asked: str, outcome: str | None = None) -> None:
    """A session ended in the project of `cwd`, as the SessionEnd hook logs one."""
    key = await reverie.project_key(str(cwd), claim=True)
    await log_new_turns(reverie, session_id, chat(asked, "Done."), agent_id=None, title=f"{cwd.name}: {asked}",
                        project=key, outcome=outcome)


async def memory_and_notes(reverie: Reverie, cwd: Path) -> None:
    """Entries in every kind of scope, many more than a small budget holds, notes, and recaps."""
    await remember(reverie, entry("m-old-port", OLD_PORT, "agent:tester", 60, 0.95),
                   *(entry(f"m-own-{i}", f"Billing job {i} retries {i + 2} times before paging.", "agent:tester",
                           i, 0.5 + i / 100) for i in range(40)),
                   entry("m-shared", "The team deploys on Tuesdays.", "shared", 3),
                   entry("m-user", "The user prefers short answers.", "user", 5, 0.9),
                   entry("m-here", "Billing invoices are rendered with WeasyPrint.", "project:billing", 2),
                   entry("m-there", "The website builds with Hugo.", "project:website", 1),
                   entry("m-other", "Another agent's private note on billing.", "agent:someone-else", 1))
    await reverie.log_session(chat("Where does staging listen?", "On 5433 since the move."),
                              notes=[NEW_PORT, "Invoices older than a year move to cold storage."])
    for n, outcome in enumerate(["success", None, "failure"]):
        await in_project(reverie, cwd, f"billing-{n}", f"Fix invoice rendering, take {n}", outcome)


async def a_proposal_waits(reverie: Reverie, cwd: Path) -> None:
    await memory_and_notes(reverie, cwd)
    await reverie.log_session(chat("Deploy please", "Deployed."), notes=["Deploys need the VPN connected."])
    proposal = await reverie.propose_dream("heuristic")
    assert proposal.status == "pending"


async def many_entries(reverie: Reverie, cwd: Path) -> None:
    """More short entries than a read fetches for a middling budget, and no notes to share it with."""
    await remember(reverie, *(entry(f"m-{i:02d}", f"Queue {i} drains nightly.", "agent:tester", i % 30, 0.6)
                              for i in range(80)))


async def only_recaps(reverie: Reverie, cwd: Path) -> None:
    await in_project(reverie, cwd, "billing-1", "Why did the invoice run fail last night?", "success")


async def another_project(reverie: Reverie, cwd: Path) -> None:
    await in_project(reverie, cwd.parent / "website", "website-1", "Deploy the website")


STATES: dict[str, Callable[[Reverie, Path], Awaitable[None]]] = {
    "memory-notes-and-recaps": memory_and_notes, "a-proposal-waits": a_proposal_waits,
    "many-entries": many_entries, "only-recaps": only_recaps, "nothing-in-this-project": another_project,
}


@pytest.fixture
def billing(tmp_path) -> Path:
    for name in ("billing", "website"):
        (tmp_path / name / ".git").mkdir(parents=True)
    return tmp_path / "billing"


async def built(settings: Settings, cwd: Path, state: str) -> None:
    async with open_reverie(settings, lambda: NOW - timedelta(days=1)) as reverie:
        await STATES[state](reverie, cwd)


def copy(db: Path, name: str) -> Path:
    """A copy of the database as it stands (SQLite's backup: what the -wal file holds too)."""
    target = db.with_name(name)
    with sqlite3.connect(db) as source, sqlite3.connect(target) as copied:
        source.backup(copied)
    return target


def read_counts(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as connection:
        return connection.execute("SELECT id, read_count, last_read_at FROM memories ORDER BY id").fetchall()


async def both_readers(settings: Settings, cwd: Path, budget: int) -> tuple[tuple[str | None, list], tuple[str, list]]:
    """(text, read counts after) of the direct read and of the service, each on its own copy, as of NOW."""
    direct, served = copy(settings.db_path, "direct.db"), copy(settings.db_path, "served.db")
    text = from_file(Settings(db_path=direct, agent_id=settings.agent_id, dream_every=settings.dream_every),
                     str(cwd), budget, NOW)
    async with open_reverie(Settings(db_path=served, agent_id=settings.agent_id, dream_every=settings.dream_every),
                            lambda: NOW) as service:
        expected = await session_start(service, str(cwd), None, budget)
    return (text, read_counts(direct)), (expected, read_counts(served))


@pytest.mark.parametrize("state", list(STATES))
@pytest.mark.parametrize("budget", [1500, 1000, 400, 160, 100_000], ids=["default", "middling", "small", "tiny",
                                                                        "huge"])
async def test_the_direct_read_prints_what_the_service_prints_and_counts_the_same_reads(
        tmp_path, billing, state, budget):
    settings = Settings(db_path=tmp_path / "memory.db", agent_id="tester")
    await built(settings, billing, state)

    (text, counted), (expected, served_counts) = await both_readers(settings, billing, budget)

    assert text == expected
    assert counted == served_counts


async def test_what_a_newer_note_replaces_is_left_out_and_what_is_shown_is_counted_as_read(tmp_path, billing):
    settings = Settings(db_path=tmp_path / "memory.db", agent_id="tester")
    await built(settings, billing, "memory-notes-and-recaps")

    text = from_file(settings, str(billing), 1500, NOW)

    assert text is not None and NEW_PORT in text and OLD_PORT not in text
    assert "The website builds with Hugo." not in text and "Another agent's" not in text
    counts = {row[0]: row[1:] for row in read_counts(settings.db_path)}
    assert counts["m-here"] == (1, NOW.isoformat(timespec="microseconds"))
    assert counts["m-old-port"][0] == counts["m-there"][0] == 0


async def test_another_agent_sees_only_the_shared_memory_and_its_own(tmp_path, billing):
    await built(Settings(db_path=tmp_path / "memory.db", agent_id="tester"), billing, "memory-notes-and-recaps")
    settings = Settings(db_path=tmp_path / "memory.db", agent_id="someone-else")

    (text, counted), (expected, served_counts) = await both_readers(settings, billing, 1500)

    assert text == expected and counted == served_counts
    assert "Another agent's private note" in text and "Billing job" not in text


async def test_a_dream_due_by_time_is_offered_as_the_service_offers_it(tmp_path, billing):
    settings = Settings(db_path=tmp_path / "memory.db", agent_id="tester", dream_every=timedelta(hours=6))
    await built(settings, billing, "only-recaps")

    (text, _), (expected, _) = await both_readers(settings, billing, 1500)

    assert text == expected
    assert "a dream is due (6h since the oldest session awaiting one)" in expected


def test_a_budget_the_service_refuses_is_left_to_the_service(tmp_path, billing, cli):
    db = tmp_path / "memory.db"
    assert cli("show", db=db).code == 0  # a migrated file, as the direct read wants

    assert from_file(Settings(db_path=db), str(billing), 60, NOW) is None
    ran = cli("recall", "--claude-code-hook", "--budget", "60", db=db, stdin=json.dumps({"cwd": str(billing)}))
    assert ran.code == 0 and ran.out == ""
    assert ran.err.startswith(f"reverie: no memory was loaded ({InvalidInput.__name__}: budget_tokens must be "
                              "between 100 and 100,000") and ran.err.count("\n") == 1


# --- when the service reads instead ------------------------------------------------------


def _garbage(db: Path) -> None:
    db.write_bytes(b"not a database, only 40 bytes of text....")


def _future_migration(db: Path) -> None:
    with sqlite3.connect(db) as connection:
        connection.execute("INSERT INTO _migrations VALUES ('m999_from_the_future', '2027-01-01T00:00:00+00:00')")


def _rollback_journal(db: Path) -> None:
    with sqlite3.connect(db) as connection:
        connection.execute("PRAGMA journal_mode = DELETE")


@pytest.mark.parametrize(
    "spoil", [lambda db: db.unlink(), _garbage, _future_migration, _rollback_journal],
    ids=["no-file-yet", "not-a-database", "a-newer-schema", "not-in-wal-mode"],
)
def test_a_file_the_direct_read_does_not_know_is_left_to_the_service_untouched(tmp_path, billing, cli, spoil):
    db = tmp_path / "memory.db"
    assert cli("show", db=db).code == 0
    spoil(db)
    before = db.read_bytes() if db.exists() else None

    assert from_file(Settings(db_path=db), str(billing), 1500, NOW) is None
    assert (db.read_bytes() if db.exists() else None) == before


def test_a_postgresql_memory_is_never_read_from_the_local_file(tmp_path, billing, cli):
    local = tmp_path / "memory.db"
    assert cli("show", db=local).code == 0  # a migrated file where the settings' local anchor points

    settings = Settings(db_path=local, db_url="postgresql://reverie@db.internal/memory")
    assert from_file(settings, str(billing), 1500, NOW) is None


def test_a_new_migration_keeps_the_hook_on_the_service_until_the_glance_is_checked_against_it():
    assert direct.SCHEMA == {name for name, _ in MIGRATIONS}


# --- the hook as Claude Code starts it --------------------------------------------------------

# Each costs a few ms at every session start or end, and neither hook uses it: the event loop
# (anyio, with inspect and ast under it), argparse (`cli.hook_arguments` reads the line) and the
# shutil that argparse's help formatter loads, the confusables only the injection screen reads.
NEVER_IN_A_HOOK = {"anyio", "argparse", "shutil", "reverie.confusables"}

_RUN_AND_LIST_MODULES = """
import io, json, sys
from reverie import cli
sys.stdin = io.StringIO(sys.argv[1])
cli.main(sys.argv[2:])
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


@pytest.mark.slow
async def test_the_session_start_hook_process_loads_neither_pydantic_nor_an_event_loop(tmp_path, billing):
    settings = Settings(db_path=tmp_path / "memory.db", agent_id="tester")
    await built(settings, billing, "memory-notes-and-recaps")
    hook = {"session_id": "s", "cwd": str(billing), "hook_event_name": "SessionStart", "source": "startup"}

    done = subprocess.run(
        [sys.executable, "-c", _RUN_AND_LIST_MODULES, json.dumps(hook), "--db", str(settings.db_path),
         "--agent", "tester", "recall", "--claude-code-hook"], capture_output=True, text=True, timeout=60, check=False)

    assert done.stdout.startswith("# Reverie memory (working in billing)\n")
    loaded = set(json.loads(done.stderr.strip().splitlines()[-1]))
    assert not ({"pydantic", "asyncio", "aiosqlite", "reverie.models", "reverie.service"} | NEVER_IN_A_HOOK
                | {"hashlib", "reverie.claude_transcript"}) & loaded  # no digest to make, no transcript to read


# --- SessionEnd: a new conversation ------------------------------------------------------

SAMPLE = Path(__file__).parent / "data" / "claude_code_session.jsonl"
KEY = "sk-ant-api03-" + "Q7w9E2r4T6y8U1i3O5p7" * 4
TABLES = {"sessions": "id", "events": "id", "notes": "id", "projects": "key", "ledger": "seq"}


def line(kind: str, content, *, at: str | None = "2026-10-15T08:00:00Z", cwd: str | None = "/home/maya/billing",
         session: str | None = "conv-1", **extra) -> str:
    """One Claude Code record (of conversation `session`; of none, and the hook's id is used)."""
    record = {"type": kind, "message": {"role": kind, "content": content}, **extra}
    for key, value in (("sessionId", session), ("timestamp", at), ("cwd", cwd)):
        record |= {key: value} if value else {}
    return json.dumps(record) + "\n"


def tool_session(at: str | None = "2026-10-15T08:00:00Z", cwd: str | None = "/home/maya/billing") -> str:
    return (line("user", "Run the billing tests, please.", at=at, cwd=cwd)
            + line("assistant", [{"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "pytest"}}],
                   at=at, cwd=cwd)
            + line("user", [{"type": "tool_result", "tool_use_id": "t1", "content": "2 failed", "is_error": True}],
                   at=at, cwd=cwd)
            + line("assistant", [{"type": "text", "text": "Two tests fail: the editable install is missing."}],
                   at=at, cwd=cwd))


RECAP = json.dumps({"type": "system", "subtype": "away_summary", "timestamp": "2026-10-15T09:30:00.000Z",
                    "content": f"Rotated the key {KEY} and fixed the tests."}) + "\n"
CONVERSATIONS = {
    "claude-code-sample": lambda cwd: (SAMPLE.read_text(encoding="utf-8"), str(cwd)),
    "tools-and-errors": lambda cwd: (tool_session(), str(cwd)),
    "secrets-in-turns-title-and-summary": lambda cwd: (
        line("user", f"Use {KEY} for the billing API.") + line("assistant", "Done.") + RECAP, str(cwd)),
    "not-ascii": lambda cwd: (line("user", "Déployer l’API « billing » — vite ✓")
                              + line("assistant", "C’est fait."), str(cwd)),
    "subagent-file": lambda cwd: (line("user", "Find every caller.", isSidechain=True, agentId="a7")
                                  + line("assistant", "Two callers.", isSidechain=True, agentId="a7"), str(cwd)),
    "cwd-from-the-transcript": lambda cwd: (tool_session(cwd=str(cwd)), None),
    "no-cwd-at-all": lambda cwd: (tool_session(cwd=None), None),
    "no-timestamps": lambda cwd: (tool_session(at=None), str(cwd)),
    "a-line-cut-in-half": lambda cwd: (tool_session() + '{"type": "user", "message": \n', str(cwd)),
}


def spool_item(transcript: str, cwd: str | None, session_id: str = "hook-session", redact: bool = True) -> SpoolItem:
    """As the SessionEnd hook spools a session; `redact=False`: as no hook writes it, its secrets left in."""
    hook = HookInput.of({"session_id": session_id, "transcript_path": "/tmp/t.jsonl", "cwd": cwd,
                         "hook_event_name": "SessionEnd", "reason": "prompt_input_exit"})
    return SpoolItem(hook, "claude-code", redacted_transcript(transcript) if redact else transcript, NOW.isoformat())


def stored_rows(db: Path) -> dict[str, list[tuple]]:
    with sqlite3.connect(db) as connection:
        connection.execute("INSERT INTO events_fts (events_fts) VALUES ('integrity-check')")  # the index holds the rows
        return {table: connection.execute(f"SELECT * FROM {table} ORDER BY {key}").fetchall()
                for table, key in TABLES.items()}


async def migrated(tmp_path: Path, other_billing: bool = False) -> Path:
    """A migrated memory file holding one earlier session (and the key `billing` held by another root)."""
    db = tmp_path / "memory.db"
    async with open_reverie(Settings(db_path=db), lambda: NOW - timedelta(days=2)) as reverie:
        await reverie.log_session(chat("Earlier", "Sure."), agent_id="claude-code")
        if other_billing:
            (tmp_path / "elsewhere" / "billing" / ".git").mkdir(parents=True)
            await reverie.project_key(str(tmp_path / "elsewhere" / "billing"), claim=True)
    return db


async def both_writers(db: Path, item: SpoolItem) -> tuple[tuple[Stored | None, dict], tuple[Stored | None, dict]]:
    """(what was stored, every row after) by the direct way and by the service, each on its own copy, as of NOW."""
    direct_db, served_db = copy(db, "direct.db"), copy(db, "served.db")
    stored = log_new_conversation(direct_db, item, NOW)
    async with open_reverie(Settings(db_path=served_db), lambda: NOW) as service:
        expected = await log_item(service, item)
    return (stored, stored_rows(direct_db)), (expected, stored_rows(served_db))


@pytest.mark.parametrize("redact", [True, False], ids=["spooled", "secrets-left-in-the-spool"])
@pytest.mark.parametrize("conversation", list(CONVERSATIONS))
async def test_a_new_conversation_is_stored_directly_row_for_row_as_the_service_stores_it(
        tmp_path, billing, conversation, redact):
    transcript, cwd = CONVERSATIONS[conversation](billing)
    db = await migrated(tmp_path, other_billing=conversation == "claude-code-sample")

    (stored, rows), (expected, expected_rows) = await both_writers(db, spool_item(transcript, cwd, redact=redact))

    assert stored == expected and stored is not None
    assert rows == expected_rows
    assert len(rows["events"]) > 1 and len(rows["ledger"]) > len(rows["events"])


def test_a_conversation_stored_directly_passes_the_doctors_checks(tmp_path, billing, cli):
    db = tmp_path / "memory.db"
    assert cli("show", db=db).code == 0
    transcript, cwd = CONVERSATIONS["secrets-in-turns-title-and-summary"](billing)

    stored = log_new_conversation(db, spool_item(transcript, cwd, redact=False), NOW)

    assert stored is not None and stored.redactions == 3
    checked = cli("doctor", db=db)
    assert checked.code == 0, checked.out
    rows = json.dumps(stored_rows(db))
    assert KEY not in rows and rows.count("[REDACTED:") == 3  # the request, the title made of it, the summary


async def test_a_conversation_with_a_part_stored_is_left_to_the_service_to_continue(tmp_path, billing):
    db = await migrated(tmp_path)
    first = spool_item(SAMPLE.read_text(encoding="utf-8"), str(billing))
    assert log_new_conversation(db, first, NOW) is not None
    before = stored_rows(db)

    with pytest.raises(NotDirect):
        log_new_conversation(db, first, NOW)
    assert stored_rows(db) == before


async def test_a_conversation_too_long_for_one_log_call_is_left_to_the_service(tmp_path, billing):
    db = await migrated(tmp_path)
    long = "".join(line("user" if i % 2 == 0 else "assistant", f"Turn {i}") for i in range(MAX_TURNS + 1))
    before = stored_rows(db)

    with pytest.raises(NotDirect):
        log_new_conversation(db, spool_item(long, str(billing)), NOW)
    after = stored_rows(db)
    assert after["projects"] != before["projects"]  # claimed first, as the service claims it before logging
    for table in ("sessions", "events", "ledger"):
        assert after[table] == before[table]


def test_no_memory_file_yet_is_left_to_the_service_to_create(tmp_path, billing):
    with pytest.raises(NotDirect):
        log_new_conversation(tmp_path / "memory.db", spool_item(tool_session(), str(billing)), NOW)
    assert not (tmp_path / "memory.db").exists()


def test_a_postgresql_memory_is_never_logged_into_the_local_file(tmp_path, billing, cli):
    local = tmp_path / "memory.db"
    assert cli("show", db=local).code == 0  # a migrated file where the settings' local anchor points
    spool = spool_dir(local)
    spool.mkdir()
    (spool / "20261015T080000000000Z-1.json").write_text(spool_item(tool_session(), str(billing)).dump())
    before = stored_rows(local)

    with pytest.raises(Unreachable):  # the service tried the server, as it should
        log_spooled(Settings(db_path=local, db_url="postgresql://reverie@127.0.0.1:1/memory"))
    assert stored_rows(local) == before
    assert len(list(spool.glob("*.json"))) == 1


@pytest.mark.parametrize(
    ("cwd", "session_id"),
    [("/home/maya/bil\u0000ling", "hook-session"), ("/home/maya/billing", f"leaked-{KEY}")],
    ids=["nul-in-cwd", "secret-in-session-id"],
)
async def test_an_item_the_service_would_refuse_is_set_aside_with_the_services_reason_and_the_rest_are_logged(
        tmp_path, cwd, session_id):
    db = await migrated(tmp_path)
    bad = spool_item(line("user", "Hello", session=None) + line("assistant", "Hi.", session=None), cwd, session_id)
    good = spool_item(tool_session(), "/home/maya/billing")
    reasons = []
    for copied in (copy(db, "direct.db"), copy(db, "served.db")):
        spool = spool_dir(copied)
        spool.mkdir()
        (spool / "20261015T080000000000Z-1.json").write_text(bad.dump())
        (spool / "20261015T080001000000Z-1.json").write_text(good.dump())
        drained = log_spooled(Settings(db_path=copied)) if copied.name == "direct.db" else \
            await drain(Settings(db_path=copied))
        assert drained.logged_lines() == ["Reverie: logged 4 turns to conv-1."]
        reasons.append([why for _, why in drained.failed])

    assert reasons[0] == reasons[1] and len(reasons[0]) == 1


@pytest.mark.slow
async def test_the_session_end_hook_process_loads_neither_pydantic_nor_an_event_loop(tmp_path, billing):
    db = await migrated(tmp_path)
    transcript = tmp_path / "claude" / "projects" / "billing" / "s1.jsonl"
    transcript.parent.mkdir(parents=True)
    transcript.write_text(tool_session(cwd=str(billing)))
    hook = {"session_id": "s1", "transcript_path": str(transcript), "cwd": str(billing),
            "hook_event_name": "SessionEnd"}

    done = subprocess.run([sys.executable, "-c", _RUN_AND_LIST_MODULES, json.dumps(hook), "--db", str(db), "log",
                           "--claude-code-hook"], capture_output=True, text=True, timeout=60, check=False)

    assert done.stdout == "Reverie: logged 4 turns to conv-1.\n"
    loaded = set(json.loads(done.stderr.strip().splitlines()[-1]))
    assert not ({"pydantic", "asyncio", "aiosqlite", "reverie.models", "reverie.service"} | NEVER_IN_A_HOOK
                | {"reverie.session_start", "reverie.claims"}) & loaded

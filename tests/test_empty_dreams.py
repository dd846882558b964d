"""A dream that finds nothing: it says what it looked at and why nothing qualified, and it
uses up no history — its sessions stay for a later dream with another engine.

The sessions here hold only questions and small talk, which no engine should turn into
memory, so the heuristic dream over them finds nothing however its rules improve.
"""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest
from conftest import chat, imported, tool_call
from reverie.engines import ENGINES
from reverie.errors import AlreadyDecided
from reverie.models import DreamInput, DreamStats, EngineResult, Evidence, OperationDraft, Proposal, Turn
from reverie.service import open_reverie
from reverie.service.ingest import chain_hash
from reverie.service.maintenance import diagnose
from reverie.service.schedule import Schedule, dream_due, dream_if_due
from reverie.store import migrations, sessions
from test_dreams import export_of
from test_mcp import call, error_of

pytestmark = [pytest.mark.anyio, pytest.mark.both_backends]

SMALL_TALK = [
    "User: can you explain what a monad is?\nAssistant: A monad wraps a value with a way to chain steps.",
    "User: thanks, that's all for today\nAssistant: You're welcome.",
    "User: what does HTTP 418 mean?\nAssistant: I'm a teapot, an April Fools' joke.",
    "User: good morning!\nAssistant: Good morning.",
]


async def log_small_talk(reverie, count: int = len(SMALL_TALK)) -> list[str]:
    return [(await reverie.log_session(text)).session_id for text in SMALL_TALK[:count]]


async def test_an_empty_dream_leaves_its_sessions_to_an_agent_brief_afterwards(reverie):
    logged = await log_small_talk(reverie)

    empty = await reverie.propose_dream("heuristic")
    brief = await reverie.propose_dream("agent")

    assert (empty.status, empty.operations, empty.session_ids) == ("empty", [], logged)
    assert brief.session_ids == logged and "what a monad is" in brief.brief
    assert await sessions.count_unconsolidated(reverie.db) == len(logged)


async def test_the_report_of_an_empty_dream_counts_what_it_looked_at_and_says_why_nothing_qualified(reverie):
    await imported(reverie, export_of(("mem_a", "The staging cluster is called kestrel", "ses_old")))
    await reverie.log_session(chat("good morning!", "Good morning.", "what time is it?", "Nine."))
    await reverie.log_session([*chat("can you list the files?"), *tool_call("ls", "-la", "ls: no such", error=True)])
    await reverie.log_session(chat("thanks, that's all"), outcome="success")

    report = (await reverie.propose_dream("heuristic")).report

    assert "Engine heuristic looked at 3 sessions (4 turns by the user, 0 notes) and 1 memory entry." in report
    for reason in ("no notes written down", "4 turns by the user, none read as a new fact or preference",
                   "no tool error repeated in two sessions",
                   "no tool sequence shared by two successful sessions (1 logged with outcome success)",
                   "1 memory entry, none duplicated, outdated or stale"):
        assert f"- {reason}\n" in report + "\n"
    assert "these 3 sessions stay available to the next dream" in report
    assert 'propose_dream(engine="agent")' in report and "reverie dream" not in report  # the report is for chat
    assert 'engine="heuristic"' not in report and "already consistent" not in report


async def test_a_model_engine_that_found_nothing_says_so_and_points_to_the_other_engines(reverie, monkeypatch):
    monkeypatch.setitem(ENGINES, "anthropic", FindsNothing)
    await log_small_talk(reverie, 2)

    report = (await reverie.propose_dream("anthropic")).report

    assert "Engine anthropic looked at 2 sessions (2 turns by the user, 0 notes)" in report
    assert "- the anthropic engine reviewed them and proposed no change" in report
    assert 'propose_dream(engine="heuristic")' in report and 'propose_dream(engine="agent")' in report
    assert 'engine="anthropic"' not in report


class FindsNothing:
    """A stand-in for a model engine whose model found nothing worth keeping."""

    name = "anthropic"

    async def propose(self, dream: DreamInput) -> EngineResult:
        return EngineResult(operations=[])


async def test_an_empty_dream_over_nothing_says_there_was_nothing_to_review(reverie):
    proposal = await reverie.propose_dream("heuristic")

    assert proposal.status == "empty" and "looked at 0 sessions" in proposal.report
    assert "No session awaited a dream" in proposal.report and "Why nothing qualified" not in proposal.report


async def test_an_empty_dream_cannot_be_applied_or_reverted(reverie):
    await log_small_talk(reverie, 1)
    empty = await reverie.propose_dream("heuristic")

    with pytest.raises(AlreadyDecided, match="is empty"):
        await reverie.apply_dream(empty.id, "all")
    with pytest.raises(AlreadyDecided, match="is empty"):
        await reverie.revert_dream(empty.id)


async def test_an_empty_dream_leaves_another_engines_pending_proposal_in_place(reverie):
    await log_small_talk(reverie, 1)
    pending = await agent_dream(reverie)

    assert (await reverie.propose_dream("heuristic")).status == "empty"
    assert (await reverie.proposal(pending.id)).status == "pending"


async def agent_dream(reverie) -> Proposal:
    """What a careful model answers to a brief over the first small-talk session."""
    brief = await reverie.propose_dream("agent")
    asked = Evidence(session_id=brief.session_ids[0], event_index=0, quote="what a monad is")
    answer = OperationDraft(kind="add", content="The user is learning about monads", category="fact",
                            rationale="asked what one is", evidence=[asked])
    return await reverie.propose_dream(operations=[answer], brief_id=brief.id)


async def test_after_an_empty_scheduled_dream_the_same_sessions_make_no_dream_due_but_join_the_next(reverie, clock):
    schedule = Schedule(after=2, every=timedelta(hours=1), idle=timedelta(0))
    first = await log_small_talk(reverie, 2)
    assert await dream_due(reverie, schedule, clock()) == "2 sessions await a dream"

    assert (await dream_if_due(reverie, schedule, None)).status == "empty"
    clock.advance(hours=2)
    assert await dream_if_due(reverie, schedule, None) is None, "nothing new: the same sessions are not dreamed again"

    logged = await reverie.log_session(SMALL_TALK[2])  # something new, an hour after the last dream
    assert logged.sessions_awaiting_dream == 3
    assert await dream_due(reverie, schedule, clock()) == "1h since the last dream"
    assert (await dream_if_due(reverie, schedule, None)).session_ids == [*first, logged.session_id]


async def test_through_mcp_an_empty_dream_explains_itself_and_leaves_the_sessions_to_the_agent(client):
    for text in SMALL_TALK:
        await call(client, "log_session", transcript=text)

    result = await client.call_tool("propose_dream", {"engine": "heuristic"})
    empty = Proposal.model_validate(result.structured_content)
    brief = await call(client, "propose_dream", engine="agent")

    assert empty.status == "empty" and empty.stats.looked_at.user_turns == len(SMALL_TALK)
    assert "looked at 4 sessions" in result.content[0].text and "Why nothing qualified" in result.content[0].text
    assert brief["session_ids"] == empty.session_ids
    assert "is empty" in await error_of(client, "apply_dream", proposal_id=empty.id, approve="all")


def test_as_a_user_in_a_terminal_an_empty_dream_is_followed_by_an_agent_brief_over_the_same_sessions(cli, tmp_path):
    for n, text in enumerate(SMALL_TALK):
        (tmp_path / f"s{n}.txt").write_text(text, encoding="utf-8")
        assert cli("log", str(tmp_path / f"s{n}.txt")).code == 0

    dreamed = cli("dream")
    brief = cli("dream", "--engine", "agent", "--json").json()

    assert dreamed.code == 0 and "found nothing to propose" in dreamed.out and "4 sessions" in dreamed.out
    assert len(brief["session_ids"]) == 4 and "what does HTTP 418 mean?" in brief["brief"]


@pytest.mark.sqlite_only(reason="an upgrade of a SQLite file from before m006; PostgreSQL's schema began after it")
async def test_an_empty_dream_stored_as_applied_before_the_upgrade_gives_its_sessions_back(settings, clock):
    logged = ["ses_talk1", "ses_talk2"]
    written_before_m006(settings.db_path, logged)

    async with open_reverie(settings, clock) as after:
        migrated = await after.proposal("drm_oldempty0")
        assert migrated.status == "empty" and "found nothing to propose" in migrated.report
        assert (await after.proposal("drm_oldreal00")).status == "applied"
        assert sorted((await after.propose_dream("agent")).session_ids) == logged
        assert await after.db.scalar("PRAGMA foreign_keys") == 1
    assert (await diagnose(settings.db_path)).healthy


def written_before_m006(path, talk: list[str]) -> None:
    """A file as versions before m006 left it: a real dream applied over one session, and an
    empty one stored as "applied" (no operations, no revision) over the small-talk sessions."""
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
        for name, statements in migrations.MIGRATIONS[:5]:
            for statement in statements:
                db.execute(statement)
            db.execute("INSERT INTO _migrations VALUES (?, ?)", (name, AT))
        for number, sid in enumerate(["ses_work", *talk]):
            said = Turn(role="user", content=SMALL_TALK[number])
            db.execute("INSERT INTO sessions (id, agent_id, title, content_hash, started_at, ended_at, logged_at) "
                       "VALUES (?, 'tester', ?, ?, ?, ?, ?)", (sid, sid, chain_hash("", [said]), AT, AT, AT))
            db.execute("INSERT INTO events (session_id, idx, role, content) VALUES (?, 0, 'user', ?)",
                       (sid, said.content))
        stats = DreamStats(sessions_reviewed=1, memories_before=0, memories_after=1, tokens_before=0,
                           tokens_after=8).model_dump_json()
        for pid, sids in (("drm_oldreal00", ["ses_work"]), ("drm_oldempty0", talk)):
            db.execute("INSERT INTO proposals (id, engine, status, base_revision, stats_json, created_at) "
                       "VALUES (?, 'heuristic', 'applied', 0, ?, ?)", (pid, stats, AT))
            db.executemany("INSERT INTO proposal_sessions VALUES (?, ?)", [(pid, sid) for sid in sids])
        db.execute("INSERT INTO operations VALUES ('drm_oldreal00', 'op1', 0, 'add', '[]', '[]', 'Deploys go out "
                   "on Tuesdays', 'fact', 'agent:tester', 0.8, 'said once', '[]', '[]', 'applied', 'mem_deploys')")


AT = "2026-05-01T09:00:00+00:00"

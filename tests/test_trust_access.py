"""Access and authority across agents: what one agent's words, ids and dreams can do to another's.

Real SQLite files and the service as token-holding agents call it (`Identity` with a
token's grants); the HTTP transport itself is tested in test_http.
"""

from __future__ import annotations

import os
import socket

import pytest
from conftest import chat
from reverie.config import DREAM_LOCK_TTL
from reverie.errors import DreamRunning, Unwritable
from reverie.models import TOKEN_DEFAULT_GRANTS, Identity
from reverie.service.schedule import Schedule, dream_if_due
from reverie.store import locks

pytestmark = [pytest.mark.anyio, pytest.mark.both_backends]

ALICE = Identity(agent_id="alice", grants=frozenset(TOKEN_DEFAULT_GRANTS))
BOB = Identity(agent_id="bob", grants=frozenset(TOKEN_DEFAULT_GRANTS))


async def test_whether_excerpts_come_back_does_not_tell_whether_another_agent_used_a_word(reverie):
    # "printer" is in over 500 of alice's turns: a common word, matched only when the query has no rare one.
    await reverie.log_session(chat(*[f"The printer on floor {n} jammed" for n in range(600)]), identity=ALICE)
    before = await reverie.read_memory("printer bramble", identity=ALICE)
    await reverie.log_session(chat("Deploy bramble with make ship", "Done."), identity=BOB)
    after = await reverie.read_memory("printer bramble", identity=ALICE)

    assert before.episodes
    assert [e.text for e in after.episodes] == [e.text for e in before.episodes]


PREFERENCE = "I prefer tabs over spaces"  # a user's statement: a heuristic dream files it under `user`


@pytest.mark.parametrize(("grants", "lands"), [(TOKEN_DEFAULT_GRANTS, False), (("write:user",), True)],
                         ids=["read-only-token", "token-granted-write-user"])
async def test_auto_mode_puts_a_change_into_user_memory_only_if_its_author_may_write_there(reverie, grants, lands):
    author = Identity(agent_id="bob", grants=frozenset(grants))
    for _ in range(2):
        await reverie.log_session(chat(PREFERENCE, "Noted."), identity=author)
    proposal = await reverie.propose_dream("heuristic")  # the server's own dream: it may write anywhere
    (op,) = [op for op in proposal.operations if op.scope == "user"]

    await reverie.apply_unflagged(proposal.id)

    in_user = [e.content for e in (await reverie.read_memory(scope="user")).entries]
    assert (op.content in in_user) is lands and PREFERENCE in op.content
    assert ("beyond_author_rights" in op.risk) is not lands
    if not lands:  # it waits, flagged, for someone who may write `user`
        (pending,) = (await reverie.read_memory()).pending_proposals
        (held,) = (await reverie.proposal(pending.proposal_id)).operations
        assert held.content == op.content and "beyond_author_rights" in held.risk


# --- background dreams ------------------------------------------------------------------------


async def log_facts(reverie, count: int) -> None:
    for n in range(count):
        await reverie.log_session(chat("a", "b"), notes=[f"Fact number {n} about the build"])


@pytest.mark.parametrize("left_open", ["brief", "proposal"])
async def test_another_agents_open_brief_or_undecided_proposal_does_not_stop_background_dreams(reverie, left_open):
    await reverie.log_session(chat("How do I deploy?", "make ship"), notes=["Deploys use make ship"], identity=BOB)
    await reverie.propose_dream("agent" if left_open == "brief" else "heuristic", identity=BOB)
    await log_facts(reverie, 2)

    dreamt = await dream_if_due(reverie, Schedule(after=1, mode="review"), None)

    assert dreamt is not None and dreamt.status == "pending" and dreamt.scope is None


async def test_a_dream_over_every_scope_still_waits_for_its_own_kind_to_be_decided(reverie):
    await log_facts(reverie, 2)
    first = await dream_if_due(reverie, Schedule(after=1, mode="review"), None)
    await log_facts(reverie, 1)

    assert first.status == "pending" and await dream_if_due(reverie, Schedule(after=1, mode="review"), None) is None


async def test_a_running_dream_is_refused_without_naming_the_host_or_process_holding_it(reverie):
    async with reverie.db.transaction():
        await locks.acquire(reverie.db, "dream", f"{socket.gethostname()} pid {os.getpid()} #abc123",
                            reverie.clock(), DREAM_LOCK_TTL)
    await reverie.log_session(chat("a", "b"), notes=["Deploys use make ship"], identity=BOB)

    with pytest.raises(DreamRunning) as refused:
        await reverie.propose_dream("heuristic", identity=BOB)

    assert "already running" in str(refused.value)
    assert socket.gethostname() not in str(refused.value) and str(os.getpid()) not in str(refused.value)


# --- session ids --------------------------------------------------------------------------------


async def test_an_agent_cannot_claim_a_session_id_before_another_agent_uses_it(reverie):
    squatted = await reverie.log_session(chat("taken first", "ok"), session_id="alice-open", ended=False,
                                         identity=BOB)
    opened = await reverie.log_session(chat("start", "ok"), session_id="alice-open", ended=False, identity=ALICE)
    closed = await reverie.log_session(chat("more", "ok"), session_id="alice-open", identity=ALICE)

    assert opened.session_id == closed.session_id != squatted.session_id
    assert (closed.agent_id, closed.event_count) == ("alice", 4)


async def test_probing_another_agents_session_id_reveals_nothing_and_changes_nothing(reverie):
    await reverie.log_session(chat("my work", "ok"), session_id="alice-open", ended=False, identity=ALICE)
    probed = await reverie.log_session(chat("probe", "ok"), session_id="alice-open", identity=BOB)
    ended = await reverie.log_session(chat("probe", "ok"), session_id="alice-done", identity=ALICE)
    after_end = await reverie.log_session(chat("probe", "ok"), session_id="alice-done", identity=BOB)
    resumed = await reverie.log_session(chat("back", "ok"), session_id="alice-open", identity=ALICE)

    assert (probed.agent_id, probed.event_count) == ("bob", 2) and "alice" not in probed.session_id.split("/")[0]
    assert after_end.event_count == 2 and after_end.session_id != ended.session_id
    assert resumed.event_count == 4


async def test_an_agent_appends_to_its_session_by_the_id_it_was_given(reverie):
    first = await reverie.log_session(chat("part one", "ok"), ended=False, identity=BOB)
    second = await reverie.log_session(chat("part two", "ok"), session_id=first.session_id, identity=BOB)

    assert second.session_id == first.session_id and second.event_count == 4


# --- a file that cannot be written ------------------------------------------------------------------


async def fill_the_disk(reverie) -> None:
    """SQLite's own page limit: the file can grow no further, as on a full disk."""
    if reverie.db.backend == "postgresql":
        pytest.skip("a test cannot fill a shared server's disk; the read-only case covers the refusal on PostgreSQL")
    pages = await reverie.db.scalar("PRAGMA page_count")
    await reverie.db.execute(f"PRAGMA max_page_count = {pages + 1}")


async def make_read_only(reverie) -> None:
    """Writes refused as for a read-only file (SQLite) or a read-only database (PostgreSQL)."""
    if reverie.db.backend == "sqlite":
        await reverie.db.execute("PRAGMA query_only = ON")
        return
    name = await reverie.db.scalar("SELECT current_database()")
    await reverie.db.execute(f"ALTER DATABASE {name} SET default_transaction_read_only = on")
    await reverie.db.pool.drain()  # the setting holds for connections made from now on


SAYS = {"sqlite": ("nothing was written", "Free disk space", "writable"),
        "postgresql": ("Nothing was written", "disk", "privileges")}


@pytest.mark.parametrize(("refuse", "says"), [(fill_the_disk, "is full"), (make_read_only, "read-only")],
                         ids=["full-disk", "read-only-file"])
async def test_a_write_the_file_refuses_says_what_happened_and_what_to_do(reverie, refuse, says):
    await reverie.log_session(chat("first", "ok"))
    await refuse(reverie)

    with pytest.raises(Unwritable) as refused:
        await reverie.log_session(chat("x" * 200_000, "ok"), notes=["kept?"])

    assert says in str(refused.value)
    assert all(advice in str(refused.value) for advice in SAYS[reverie.db.backend])
    assert await reverie.db.scalar("SELECT count(*) FROM sessions") == 1


async def test_memory_can_still_be_read_from_a_file_that_cannot_be_written(reverie):
    await reverie.log_session(chat("Where is the printer?", "Floor 3."), notes=["The printer is on floor 3"])
    dream = await reverie.propose_dream("heuristic")
    await reverie.apply_dream(dream.id, "all")
    await make_read_only(reverie)

    view = await reverie.read_memory("printer")

    assert [e.content for e in view.entries] == ["The printer is on floor 3"]

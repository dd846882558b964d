"""The scope rules in the service layer, whatever the transport: who reads and changes what.

Identities are built here as the HTTP layer builds them from a token; `tests/test_http.py`
checks the same rules end to end through bearer tokens.
"""

from __future__ import annotations

import pytest
from conftest import chat
from reverie import tokens
from reverie.errors import Forbidden, InvalidInput
from reverie.models import Identity
from reverie.service import access

pytestmark = [pytest.mark.anyio, pytest.mark.both_backends]

ALICE = Identity(agent_id="alice", grants=frozenset({"read:shared", "read:user"}))
CURATOR = Identity(agent_id="carol", grants=frozenset({"write:shared", "read:user"}))


@pytest.mark.parametrize(
    ("grants", "scope", "reads", "writes"),
    [
        ((), "agent:alice", True, True),
        (("read:shared", "read:user"), "shared", True, False),
        (("read:shared", "read:user"), "user", True, False),
        (("write:shared",), "shared", True, True),
        (("write:shared",), "agent:bob", False, False),
        (("project:acme",), "project:acme", True, True),
        (("read:project:acme",), "project:acme", True, False),
        (("project:acme",), "project:other", False, False),
        (("project:*",), "project:other", True, True),
        (("read:shared",), "user", False, False),
    ],
    ids=["own-scope", "read-shared", "read-user", "write-shared", "curator-not-bobs-reader", "project",
         "read-only-project", "other-project", "every-project", "ungranted-user"],
)
def test_a_token_reads_and_writes_exactly_what_its_grants_say(grants, scope, reads, writes):
    alice = Identity(agent_id="alice", grants=frozenset(grants))
    assert (alice.reads(scope), alice.writes(scope)) == (reads, writes)


@pytest.mark.parametrize("scope", ["shared", "user", "agent:bob", "project:anything"])
def test_the_local_caller_reads_and_writes_every_scope(scope):
    local = Identity.local("tester")
    assert local.reads(scope) and local.writes(scope) and access.acting_for(local, "bob").agent_id == "bob"


@pytest.mark.parametrize("grant", ["agent:bob", "agent:*", "read:agent:bob", "write:project:acme", "admin", "shared"],
                         ids=["another-agent", "every-agent", "read-another-agent", "write-prefix", "admin", "bare"])
def test_a_token_can_never_be_granted_another_agents_scope_or_an_unknown_right(grant):
    with pytest.raises(InvalidInput, match="not a scope a token can be granted"):
        tokens.check_grants([grant])


async def test_a_token_reads_only_its_view_and_refuses_a_scope_it_was_not_granted(reverie):
    await reverie.log_session(chat("where?", "here"), agent_id="alice", notes=["Alice's note"])
    await reverie.log_session(chat("where?", "there"), agent_id="bob", notes=["Bob's note"])

    view = await reverie.read_memory(identity=ALICE)

    assert [n.content for n in view.notes] == ["Alice's note"]
    with pytest.raises(Forbidden, match="cannot read scope 'project:acme'.*project:acme or read:project:acme"):
        await reverie.read_memory(scope="project:acme", identity=ALICE)
    with pytest.raises(Forbidden, match="cannot act as agent 'bob'"):
        await reverie.read_memory(agent_id="bob", identity=ALICE)


async def test_an_agent_is_told_only_about_its_own_sessions_awaiting_a_dream_and_a_curator_about_all(reverie):
    await reverie.log_session(chat("a", "b"), agent_id="bob")
    await reverie.log_session(chat("c", "d"), agent_id="bob")

    mine = await reverie.log_session(chat("e", "f"), identity=ALICE)
    team = await reverie.log_session(chat("g", "h"), identity=CURATOR)

    assert (mine.agent_id, mine.sessions_awaiting_dream) == ("alice", 1)
    assert (team.agent_id, team.sessions_awaiting_dream) == ("carol", 4)


async def test_without_write_shared_a_dream_covers_only_the_callers_own_sessions_and_scope(reverie):
    for agent in ("alice", "bob"):
        await reverie.log_session(chat("When is lunch?", "Noon."), agent_id=agent, notes=["Lunch is at noon"])

    mine = await reverie.propose_dream("heuristic", identity=ALICE)
    team = await reverie.propose_dream("heuristic", identity=CURATOR)

    assert mine.scope == "agent:alice" and [op.scope for op in mine.operations] == ["agent:alice"]
    assert team.scope is None and len(team.session_ids) == 2 and [op.scope for op in team.operations] == ["shared"]
    with pytest.raises(Forbidden, match="reviews sessions of bob"):
        await reverie.proposal(team.id, identity=ALICE)


async def test_an_agent_cannot_revert_a_dream_that_changed_shared_memory(reverie):
    await reverie.log_session(chat("When is lunch?", "Noon."), agent_id="alice", notes=["Lunch is at noon"])
    await reverie.log_session(chat("When is lunch?", "Noon."), agent_id="bob", notes=["Lunch is at noon"])
    team = await reverie.propose_dream("heuristic", identity=CURATOR)
    await reverie.apply_dream(team.id, "all", identity=CURATOR)

    with pytest.raises(Forbidden, match="not yours to see"):
        await reverie.revert_dream(team.id, identity=ALICE)
    reverted = await reverie.revert_dream(team.id, identity=CURATOR)

    assert reverted.memories_archived and (await reverie.read_memory(scope="shared")).entries == []


async def test_an_entry_another_agent_keeps_privately_does_not_block_the_same_entry_in_yours(reverie):
    await reverie.log_session(chat("printer?", "floor 3"), agent_id="bob", notes=["The printer is on floor 3"])
    bobs = await reverie.propose_dream("heuristic", scope="agent:bob")
    await reverie.apply_dream(bobs.id, "all")
    await reverie.log_session(chat("printer?", "floor 3"), identity=ALICE, notes=["The printer is on floor 3"])

    mine = await reverie.propose_dream("heuristic", identity=ALICE)
    applied = await reverie.apply_dream(mine.id, "all", identity=ALICE)

    entries = (await reverie.read_memory(identity=ALICE)).entries
    assert applied.memories_added and [(e.scope, e.content) for e in entries] == [("agent:alice", "The printer is on floor 3")]


async def test_a_pending_proposal_is_announced_to_the_agent_whose_sessions_it_reviews_and_to_no_other(reverie):
    bob = Identity(agent_id="bob", grants=frozenset({"read:shared"}))
    await reverie.log_session(chat("deploy?", "make ship"), agent_id="bob", notes=["Bramble deploys with make ship"])
    proposal = await reverie.propose_dream("heuristic", identity=bob)

    announced = {who.agent_id: [p.proposal_id for p in (await reverie.read_memory(identity=who)).pending_proposals]
                 for who in (bob, ALICE, CURATOR)}

    assert announced == {"bob": [proposal.id], "alice": [], "carol": [proposal.id]}

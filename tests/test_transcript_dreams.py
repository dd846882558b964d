"""Dreams from transcripts alone (what the Claude Code hooks log): facts the user states,
the newest value of one subject, restatements in other words — through the service,
against a real SQLite file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from conftest import chat
from reverie.store import memories as memory_store

pytestmark = [pytest.mark.anyio, pytest.mark.both_backends]

MAY_1 = datetime(2026, 5, 1, 9, tzinfo=UTC)


def said(text: str, days: int) -> list:
    return chat(text, "Noted.", timestamp=MAY_1 + timedelta(days=days))


async def contents(reverie) -> list[str]:
    return [m.content for m in await memory_store.active_memories(reverie.db)]


async def test_a_value_changed_in_a_later_session_is_remembered_only_as_the_newest(reverie):
    await reverie.log_session(said("Our API runs on port 8080.", 0))
    await reverie.log_session(said("We moved the API to port 9090 last night.", 9))
    proposal = await reverie.propose_dream("heuristic")
    (add,) = proposal.operations
    assert add.kind == "add" and "9090" in add.content and "supersedes" in add.rationale


async def test_the_newest_statement_wins_by_when_it_was_said_not_by_when_it_was_logged(reverie):
    await reverie.log_session(said("We moved the API to port 9090 last night.", 9))
    await reverie.log_session(said("Our API runs on port 8080.", 0))
    (add,) = (await reverie.propose_dream("heuristic")).operations
    assert "9090" in add.content


async def test_a_later_dream_updates_the_entry_an_earlier_dream_added(reverie):
    await reverie.log_session(said("I'm currently on page 200 of A Short History of Nearly Everything.", 0))
    await reverie.apply_dream((await reverie.propose_dream("heuristic")).id, "all")
    await reverie.log_session(said("I'm now on page 220 of A Short History of Nearly Everything.", 9))
    proposal = await reverie.propose_dream("heuristic")
    (update,) = proposal.operations
    assert update.kind == "update" and "220" in update.content and update.risk == []
    await reverie.apply_dream(proposal.id, "all")
    assert [text for text in await contents(reverie) if "page" in text] == [update.content]


async def test_a_rule_restated_in_other_words_becomes_one_entry(reverie):
    await reverie.log_session(said("Please always check that PR descriptions have a Testing section.", 0))
    await reverie.log_session(said("PR descriptions must include a Testing section, it's a team rule.", 5))
    (add,) = (await reverie.propose_dream("heuristic")).operations
    assert len({e.session_id for e in add.evidence}) == 2


async def test_questions_requests_and_chit_chat_leave_nothing_to_remember(reverie):
    await reverie.log_session(chat("Can you look at the flaky test?", "Sure.", "Thanks, that's great!", "Welcome."))
    await reverie.log_session(chat("Add date-fns to apps/web.", "Done."))
    proposal = await reverie.propose_dream("heuristic")
    assert proposal.operations == [] and proposal.status == "empty"


async def test_the_state_of_todays_task_is_not_a_lasting_fact(reverie):
    await reverie.log_session(chat("We shut at five today.", "OK.", "Ticket #7802 was charged twice, $740 each time.", "On it."))
    assert (await reverie.propose_dream("heuristic")).operations == []


async def test_two_customers_with_numbered_names_stay_two_facts(reverie):
    notes = [f"Customer {n} prefers invoices in {n % 3 + 1} copies, delivered to office {n}" for n in range(6)]
    await reverie.log_session(chat("bulk", "ok"), notes=notes)
    proposal = await reverie.propose_dream("heuristic")
    assert len(proposal.operations) == 6


@pytest.mark.parametrize("notes", [
    ["Codename 12345678 stands for abcdef12", "Codename 87654321 stands for 11223344",
     "Codename 55554444 stands for 99887766"],
    ["Codename 81249743 stands for 94984705", "Codename 201f326f stands for 1e620c8c",
     "Codename 7a3eda63 stands for b58bd59b"],
], ids=["numbers-masked-away", "names-against-numbers"])
async def test_notes_that_differ_only_in_their_names_are_never_folded_into_one(reverie, notes):
    await reverie.log_session(chat("Remember these codenames.", "ok"), notes=notes)
    proposal = await reverie.propose_dream("heuristic")
    assert sorted(op.content for op in proposal.operations) == sorted(notes)

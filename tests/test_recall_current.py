"""read_memory shows the current value: whole sentences, the newest statement of a subject,
and room for the evidence a question needs — on real SQLite files and through MCP clients."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from conftest import call, memory_entry, remember
from reverie.excerpt import EXCERPT_CHARS, Query, excerpt
from reverie.models import Turn

pytestmark = [pytest.mark.anyio, pytest.mark.both_backends]

MAY_20 = datetime(2026, 5, 20, 12, 0, tzinfo=UTC)
MAY_29 = MAY_20 + timedelta(days=9)

CHATTER = [
    "I'm trying to learn more about medical diagnosis with machine learning.",
    "Can you recommend some online resources or articles that might help me understand it better?",
    "I'd like something I can read on the train in the mornings, ideally not too technical.",
]


def said(text: str, at: datetime) -> list[dict]:
    return [{"role": "user", "content": text, "timestamp": at.isoformat()},
            {"role": "assistant", "content": "Thanks for sharing!", "timestamp": at.isoformat()}]


# --- excerpts: whole sentences ----------------------------------------------------------------


async def test_an_excerpt_keeps_the_whole_sentence_that_holds_the_value(client):
    value = "Since the reorg last month I now lead a team of 12 engineers across two sites."
    turn = " ".join([*CHATTER, "By the way, my role at the company changed quite a bit recently.", value, *CHATTER])
    assert len(turn) > EXCERPT_CHARS and turn.index(value) > 300  # where a cut at 300 characters lost the number
    await call(client, "log_session", transcript=said(turn, MAY_20))

    view = await call(client, "read_memory", query="How many engineers do I lead?", budget_tokens=500)

    assert [e["event_index"] for e in view["episodes"]] == [0]
    text = view["episodes"][0]["text"]
    assert value in text and value in view["markdown"]
    assert CHATTER[2] not in text and text.startswith("… ") and text.endswith(" …")  # skipped, and marked


async def test_a_turn_short_enough_is_shown_whole(reverie):
    turn = "Melanie: Wow! I just signed up for a pottery class yesterday. It's like therapy for me."
    await reverie.log_session([Turn(role="user", content=turn)])

    view = await reverie.read_memory("When did Melanie sign up for pottery?")

    assert [e.text for e in view.episodes] == [turn]


def test_sentences_apart_that_both_hold_the_query_are_joined_by_a_gap_mark():
    first, second = "The zebulon queue drains on Fridays.", "Zebulon releases wait until Monday."
    turn = " ".join([first, *CHATTER, *CHATTER, second])
    query = Query.weighted({"zebulon": 1, "releases": 2}, rows=100)

    # The best (both words) with the sentence it follows from; the other match after a gap.
    assert excerpt(turn, query).text == f"{first} … {CHATTER[2]} {second}"


def test_a_sentence_longer_than_an_excerpt_is_cut_at_clauses_away_from_its_value():
    clauses = [f"and then the {n}th stage of the pipeline ran its checks" for n in range(12)]
    value = "the zebulon build now takes 7:30 minutes on $1,000 hardware"
    sentence = ", ".join(clauses[:6] + [value] + clauses[6:]) + "."
    query = Query.weighted({"zebulon": 1, "build": 3}, rows=100)

    shown = excerpt(sentence, query).text

    assert value in shown and len(shown) <= EXCERPT_CHARS + 4
    assert shown.startswith("… ") and shown.endswith(" …")
    assert all(part.strip(" ,…") in sentence for part in shown.split("…"))


# --- the budget split ---------------------------------------------------------------------------


async def test_entries_sharing_only_a_common_word_do_not_crowd_out_the_excerpt_with_the_rare_one(reverie):
    await remember(reverie, *[memory_entry(f"mem_deploy{n}", f"Deploy checklist item {n}: verify the dashboards after a "
                                                      f"deploy and post in the channel", MAY_20, 0.95)
                              for n in range(30)])
    evidence = ("The zebulon worker cannot deploy on Fridays because its queue drains over the weekend, "
                "so we hold its releases until Monday morning and announce them in the channel.")
    await reverie.log_session([Turn(role="user", content=evidence)],
                              notes=[f"Reminder {n}: the office plants need water" for n in range(10)])

    view = await reverie.read_memory("When can the zebulon worker deploy?", budget_tokens=300)

    assert [e.text for e in view.episodes] == [evidence]
    assert view.entries and view.tokens_used <= 300  # the entries still get the room left


async def test_a_crowd_of_matching_excerpts_does_not_push_out_the_entry_that_answers(reverie):
    await reverie.log_session([Turn(role="user", content=f"The zebulon deploy log, part {n}: all green so far, "
                                                         f"nothing to report from the workers yet") for n in range(30)])
    await remember(reverie, memory_entry("mem_zebulon", "The zebulon worker deploys on Mondays only", MAY_29))

    view = await reverie.read_memory("When does the zebulon worker deploy?", budget_tokens=200)

    assert [e.id for e in view.entries] == ["mem_zebulon"] and view.episodes


async def test_with_a_query_notes_holding_none_of_it_come_after_those_that_do(reverie):
    await reverie.log_session([Turn(role="user", content="ok")],
                              notes=[*[f"Reminder {n}: water the office plants" for n in range(30)],
                                     "The zebulon worker releases on Mondays only"])

    view = await reverie.read_memory("zebulon releases", budget_tokens=150)

    assert view.notes[0].content == "The zebulon worker releases on Mondays only"


async def test_without_a_query_memory_leaves_room_for_the_notes(reverie):
    await remember(reverie, *[memory_entry(f"mem_{n}", f"Fact number {n} about the billing service", MAY_20)
                              for n in range(100)])
    await reverie.log_session([Turn(role="user", content="ok")], notes=["Invoices go out on the first"])

    view = await reverie.read_memory(budget_tokens=300)

    assert [n.content for n in view.notes] == ["Invoices go out on the first"] and view.truncated


# --- only the current value ---------------------------------------------------------------------


async def test_the_outdated_value_is_not_shown_beside_the_newer_one(client):
    await call(client, "log_session", transcript=said(
        "I've been reading 'A Short History of Nearly Everything' and I'm currently on page 200, "
        "which has some interesting insights on the history of medicine.", MAY_20))
    await call(client, "log_session", transcript=said(
        "I just finished reading about the discovery of DNA in 'A Short History of Nearly Everything' - "
        "I'm now on page 220, and it's amazing how much I've learned!", MAY_29))

    view = await call(client, "read_memory", query="What page am I on in A Short History of Nearly Everything?",
                      budget_tokens=500)

    assert "page 220" in view["markdown"] and not mentions(view["markdown"], "200")
    assert [e["timestamp"][:10] for e in view["episodes"]] == ["2026-05-29"]


async def test_a_newer_excerpt_replaces_an_older_curated_entry(reverie):
    await remember(reverie, memory_entry("mem_port", "The API runs on port 8080", MAY_20))
    await reverie.log_session(said_turns("We moved the API to port 9090 last night", MAY_29))

    view = await reverie.read_memory("Which port does the API run on?")

    assert view.entries == [] and "9090" in view.markdown and not mentions(view.markdown, "8080")


async def test_a_newer_curated_entry_replaces_older_excerpts(reverie):
    await reverie.log_session(said_turns("I'm currently on page 200 of A Short History of Nearly Everything", MAY_20))
    await remember(reverie, memory_entry("mem_page", "The user is on page 220 of A Short History of Nearly Everything",
                                  MAY_29))

    view = await reverie.read_memory("What page of A Short History of Nearly Everything am I on?")

    assert [e.id for e in view.entries] == ["mem_page"] and view.episodes == []
    assert "page 200" not in view.markdown


async def test_a_newer_excerpt_replaces_an_older_note(reverie):
    await reverie.log_session([Turn(role="user", content="setting up")], notes=["The API runs on port 8080"])
    # Untimed turns were said when their session started: after the note was written.
    await reverie.log_session([Turn(role="user", content="We moved the API to port 9090 last night")])

    view = await reverie.read_memory("Which port does the API run on?")

    assert view.notes == [] and "9090" in view.markdown and not mentions(view.markdown, "8080")


async def test_on_equal_times_the_later_turn_of_the_session_is_the_newer(reverie):
    book = "of A Short History of Nearly Everything"
    await reverie.log_session([Turn(role="user", content=f"I'm on page 200 {book}", timestamp=MAY_20),
                               Turn(role="assistant", content="Nice progress!", timestamp=MAY_20),
                               Turn(role="user", content=f"Sorry, I misread: I'm now on page 220 {book}",
                                    timestamp=MAY_20)])

    view = await reverie.read_memory("What page of A Short History of Nearly Everything am I on?")

    assert "page 220" in view.markdown and "page 200" not in view.markdown


async def test_two_subjects_that_only_look_alike_are_both_shown(reverie):
    await reverie.log_session(said_turns("The staging database runs Postgres 15", MAY_20))
    await reverie.log_session(said_turns("The prod database runs Postgres 16", MAY_29))

    view = await reverie.read_memory("Which Postgres version does the database run?")

    assert "Postgres 15" in view.markdown and "Postgres 16" in view.markdown


async def test_a_newer_value_for_another_sort_of_the_thing_asked_about_replaces_nothing(reverie):
    await remember(reverie, memory_entry("mem_yoga", "I feel calmer on the days I attend yoga classes, which is "
                                                     "three times a week, and it clears my head", MAY_20))
    await remember(reverie, memory_entry("mem_art", "I've been taking art classes on Saturdays at a studio nearby, "
                                                    "painting a still life in watercolors", MAY_29))

    view = await reverie.read_memory("How often do I attend yoga classes?")

    assert "mem_yoga" in [e.id for e in view.entries]


async def test_when_the_sort_is_what_is_asked_the_newest_sort_wins(reverie):
    await reverie.log_session(said_turns("Speaking of lenses, I recently got a new 50mm prime lens, which has "
                                         "been working out great for my street photography.", MAY_20))
    await reverie.log_session(said_turns("By the way, I've been getting some great shots for my street "
                                         "photography with my new 70-200mm zoom lens lately.", MAY_29))

    view = await reverie.read_memory("What type of camera lens did I buy most recently?")

    assert "70-200mm" in view.markdown and "50mm prime" not in view.markdown


# --- times --------------------------------------------------------------------------------------


async def test_excerpts_carry_their_turns_time_else_their_sessions_start(reverie, clock):
    await reverie.log_session([Turn(role="user", content="The zebulon deploy failed", timestamp=MAY_20)])
    started = clock.now + timedelta(seconds=1)  # the next tick: when the untimed session starts
    await reverie.log_session([Turn(role="user", content="The zebulon deploy passed")])

    view = await reverie.read_memory("zebulon deploy")

    assert {e.text: e.timestamp for e in view.episodes} == {"The zebulon deploy failed": MAY_20,
                                                           "The zebulon deploy passed": started}


async def test_entries_carry_when_their_newest_evidence_was_seen(reverie):
    await remember(reverie, memory_entry("mem_port", "The API runs on port 8080", MAY_20))

    assert [e.observed_at for e in (await reverie.read_memory()).entries] == [MAY_20]


def mentions(text: str, number: str) -> bool:
    """`number` as a whole number: not inside a session id such as ses_3a8080f1c2d4."""
    return re.search(rf"(?<![\w.]){number}(?![\w.])", text) is not None


def said_turns(text: str, at: datetime) -> list[Turn]:
    return [Turn(role="user", content=text, timestamp=at), Turn(role="assistant", content="Noted.", timestamp=at)]

"""read_memory finds the evidence a question needs and gives it the room: what a question's
own words would rank above it, the reply that answers a question, the room headings do not
take, and a dream's entries that repeat or only tie with it — on real SQLite files and
through MCP clients."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from conftest import call, memory_entry, remember
from reverie.excerpt import EXCERPT_CHARS
from reverie.models import Turn

pytestmark = [pytest.mark.anyio, pytest.mark.both_backends]

MAY_20 = datetime(2026, 5, 20, 12, 0, tzinfo=UTC)


def user(*texts: str) -> list[dict]:
    return [{"role": "user", "content": text, "timestamp": MAY_20.isoformat()} for text in texts]


def entry(mid: str, content: str, confidence: float = 0.9) -> dict:
    return memory_entry(mid, content, MAY_20, confidence)


# --- the question's words ---------------------------------------------------------------------


async def test_the_words_that_frame_a_question_do_not_rank_turns_above_the_answer(reverie):
    lunch = [Turn(role="user", content=f"We talked about lunch plans for day {n}.") for n in range(30)]
    asking = [Turn(role="user", content="How many followers should a new account expect? How many is normal?")] * 4
    answer = "By the way, I'm now at 600 followers on Instagram."
    await reverie.log_session([*lunch, *asking, Turn(role="user", content=answer)])

    view = await reverie.read_memory("How many followers do I have on Instagram?", budget_tokens=150)

    assert view.episodes[0].text == answer


# --- the reply to a question ------------------------------------------------------------------


async def test_the_reply_to_a_question_about_the_query_is_shown_after_it(client):
    question = "Wow, that adoption agency looks great! What made you pick that agency?"
    reply = "They really care about folks like me, and their support spoke to me."
    await call(client, "log_session", transcript=user("I've been busy with work.", question, reply, "Same here!"))

    view = await call(client, "read_memory", query="Why did she pick the adoption agency?", budget_tokens=300)

    assert [e["text"] for e in view["episodes"]] == [question, reply]
    day = view["episodes"][0]["timestamp"][:10]  # every excerpt is dated
    assert f"#1 {day} user: {question}\n- " in view["markdown"] and view["markdown"].endswith(f"#2 {day} user: {reply}")


async def test_a_reply_keeps_its_place_after_its_question_ahead_of_entries_that_match_less(reverie):
    question, reply = "What made you pick that adoption agency?", "They really care about folks like me."
    await reverie.log_session([Turn(role="user", content=question, timestamp=MAY_20),
                               Turn(role="user", content=reply, timestamp=MAY_20)])
    await remember(reverie, *[entry(f"mem_{n}", f"Adoption paperwork item {n} is filed.") for n in range(20)])

    view = await reverie.read_memory("Why did she pick the adoption agency?", budget_tokens=150)

    assert [e.text for e in view.episodes] == [question, reply] and view.entries  # the entries get the rest


async def test_no_reply_is_brought_in_after_a_long_turn_or_a_question_about_something_else(reverie):
    long_turn = ("Here is everything about the zebulon adoption agency. " * 8 + "Any other questions about the agency?")
    assert len(long_turn) > EXCERPT_CHARS
    await reverie.log_session([Turn(role="assistant", content=long_turn),
                               Turn(role="user", content="No thanks, let's talk about dinner."),
                               Turn(role="user", content="The agency called back today. Did you eat yet?"),
                               Turn(role="user", content="Yes, pasta with friends.")])

    view = await reverie.read_memory("Which adoption agency did I pick?", budget_tokens=500)

    assert {e.event_index for e in view.episodes} == {0, 2}  # neither turn after a question is a reply to it


async def test_a_long_reply_is_not_brought_in(reverie):
    reply = "They really care about folks like me. " * 12
    assert len(reply) > EXCERPT_CHARS
    await reverie.log_session([Turn(role="user", content="What made you pick that adoption agency?"),
                               Turn(role="user", content=reply)])

    view = await reverie.read_memory("Why did she pick the adoption agency?", budget_tokens=500)

    assert [e.event_index for e in view.episodes] == [0]


# --- the room -----------------------------------------------------------------------------------


async def test_a_read_with_a_query_leaves_no_room_another_excerpt_would_fit_in(reverie):
    places = "Oslo Lima Quito Accra Hanoi Dakar Perth Cusco Tartu Kyoto Porto Sucre Turin Varna Ghent Malmo".split()
    await reverie.log_session([Turn(role="user", content=f"The zebulon deploy to {place} went fine, all green.")
                               for place in places])

    view = await reverie.read_memory("zebulon deploy", budget_tokens=300)

    line = len(view.markdown.splitlines()[-1]) // 4 + 1
    assert view.tokens_used <= 300 and 300 - view.tokens_used < line


async def test_with_a_pending_review_the_read_still_stays_within_its_budget(client):
    await call(client, "log_session", transcript=user(*[f"The zebulon deploy to {place} went fine."
                                                         for place in "Oslo Lima Quito Accra Hanoi Dakar Perth".split()]),
               notes=["Zebulon deploys need a green build first", "The zebulon worker deploys on Mondays only"])
    await call(client, "propose_dream", engine="heuristic")

    for budget in (100, 150, 300, 500):
        view = await call(client, "read_memory", query="zebulon deploy", budget_tokens=budget)
        assert view["pending_proposals"] and view["tokens_used"] <= budget


async def test_an_entry_that_quotes_an_excerpt_shown_is_left_out(reverie):
    said = "I moved the zebulon worker to the night shift, so it deploys at 02:00 now."
    await reverie.log_session([Turn(role="user", content=f"Quick update. {said}", timestamp=MAY_20)])
    await remember(reverie, entry("mem_quote", f"The user said: “{said}”"))

    view = await reverie.read_memory("When does the zebulon worker deploy?", budget_tokens=500)

    assert [e.text for e in view.episodes] == [f"Quick update. {said}"]
    assert view.entries == [] and not view.truncated  # left out as shown already, not for want of room


async def test_entries_that_only_tie_with_an_excerpt_do_not_take_its_room(reverie):
    evidence = "The zebulon queue drains on Fridays."
    await reverie.log_session([Turn(role="user", content=evidence, timestamp=MAY_20)])
    await remember(reverie, *[entry(f"mem_{n}", f"Zebulon queue note {n}: all quiet on shift {n}.") for n in range(12)])

    view = await reverie.read_memory("zebulon queue", budget_tokens=150)

    assert [e.text for e in view.episodes] == [evidence] and view.entries  # the entries get the room left

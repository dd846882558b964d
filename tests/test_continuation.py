"""A transcript handed over whole, again and again, stored as parts holding only new turns.

Driven through `reverie.service.continuation.log_new_turns` on a real SQLite file; what
was stored is read back through the service's export.
"""

from __future__ import annotations

import anyio
import pytest
from conftest import chat
from reverie import config
from reverie.errors import InvalidInput
from reverie.models import Turn
from reverie.service import open_reverie
from reverie.service.continuation import log_new_turns

pytestmark = [pytest.mark.anyio, pytest.mark.both_backends]

BASE = "conv-1"
KEY = "sk-ant-api03-" + "A1b2C3d4E5f6G7h8I9j0" * 4  # a pasted Anthropic key: redacted before storing


async def stored(reverie) -> dict[str, list[str]]:
    """Each stored session's turn contents, by session id."""
    return {s["id"]: [e["content"] for e in s["events"]] for s in (await reverie.export())["sessions"]}


async def hand_over(reverie, turns: list[Turn]):
    return await log_new_turns(reverie, BASE, turns, agent_id=None, title="billing: fix the tests")


async def test_the_first_hand_over_stores_every_turn_under_the_base_id(reverie):
    part = await hand_over(reverie, chat("a", "b", "c"))

    assert (part.session_id, part.turns) == (BASE, 3)
    assert await stored(reverie) == {BASE: ["a", "b", "c"]}


async def test_the_same_transcript_handed_over_twice_is_stored_once(reverie):
    await hand_over(reverie, chat("a", "b", "c"))

    again = await hand_over(reverie, chat("a", "b", "c"))

    assert again is None
    assert await stored(reverie) == {BASE: ["a", "b", "c"]}


async def test_a_longer_transcript_adds_only_its_new_turns_as_the_next_part(reverie):
    await hand_over(reverie, chat("a", "b"))
    await hand_over(reverie, chat("a", "b", "c", "d"))

    third = await hand_over(reverie, chat("a", "b", "c", "d", "e"))

    assert (third.session_id, third.turns) == (f"{BASE}.3", 1)
    assert await stored(reverie) == {BASE: ["a", "b"], f"{BASE}.2": ["c", "d"], f"{BASE}.3": ["e"]}
    titles = {s["id"]: s["title"] for s in (await reverie.export())["sessions"]}
    assert titles[f"{BASE}.3"] == "billing: fix the tests (part 3)"


async def test_a_forked_conversation_keeps_its_own_turns_and_the_original_branch_still_continues(reverie):
    await hand_over(reverie, chat("a", "b", "c", "d"))
    await hand_over(reverie, chat("a", "b", "x", "y"))  # rewound after "b" and went elsewhere

    await hand_over(reverie, chat("a", "b", "c", "d", "e", "f"))  # the original branch, resumed

    assert await stored(reverie) == {BASE: ["a", "b", "c", "d"], f"{BASE}.2": ["a", "b", "x", "y"],
                                     f"{BASE}.3": ["e", "f"]}


async def test_a_transcript_that_ends_inside_a_stored_part_adds_nothing(reverie):
    await hand_over(reverie, chat("a", "b", "c", "d"))

    earlier_snapshot = await hand_over(reverie, chat("a", "b"))

    assert earlier_snapshot is None
    assert list(await stored(reverie)) == [BASE]


async def test_turns_are_matched_as_stored_after_redaction_so_a_pasted_secret_is_not_stored_twice(reverie):
    turns = chat(f"my key is {KEY}", "Please do not paste keys.")
    await hand_over(reverie, turns)

    again = await hand_over(reverie, turns)

    assert again is None
    assert KEY not in str(await stored(reverie))


async def test_a_transcript_beyond_one_calls_limits_is_stored_whole_as_one_ended_part(reverie, monkeypatch):
    monkeypatch.setattr(config, "MAX_TURNS", 3)

    part = await hand_over(reverie, chat(*"abcdefg"))

    assert part.turns == 7
    (session,) = (await reverie.export())["sessions"]
    assert [e["content"] for e in session["events"]] == list("abcdefg")
    assert session["ended_at"] is not None


async def test_a_base_id_that_is_not_a_valid_identifier_is_refused_before_anything_is_stored(reverie):
    with pytest.raises(InvalidInput):
        await log_new_turns(reverie, "not valid!", chat("a"), agent_id=None, title="t")

    assert await stored(reverie) == {}


async def test_two_hand_overs_of_the_same_transcript_at_once_store_its_turns_once(settings, clock):
    turns = chat("a", "b", "c")
    async with open_reverie(settings, clock) as one, open_reverie(settings, clock) as two:
        with anyio.fail_after(30):
            async with anyio.create_task_group() as both:
                both.start_soon(hand_over, one, turns)
                both.start_soon(hand_over, two, turns)

        assert await stored(one) == {BASE: ["a", "b", "c"]}

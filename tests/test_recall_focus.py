"""Ranking by a query's rare words: what keeps read_memory fast on a large memory.

Words in more than ~2% of the rows are "common" and left out of the ranking when the
query has rarer ones (see `store.search.focus`). The floor below which no word is common
is lowered here, so a few dozen rows behave like a large store.
"""

from __future__ import annotations

import pytest
from conftest import imported
from reverie.models import Memory, Turn
from reverie.store import memories, search, sessions

pytestmark = [pytest.mark.anyio, pytest.mark.both_backends]

FILLER = 40  # rows holding the common words; the threshold is set to a quarter of this


@pytest.fixture(autouse=True)
def small_store_counts_as_large(monkeypatch):
    monkeypatch.setattr(search, "COMMON_FLOOR", FILLER // 4)


def entry(mid: str, content: str, confidence: float = 0.6, observed: str = "2026-10-01") -> dict:
    at = f"{observed}T09:00:00+00:00"
    return {"id": mid, "content": content, "category": "fact", "scope": "agent:tester", "confidence": confidence,
            "evidence": [], "created_at": at, "updated_at": at, "observed_at": at}


async def remember(reverie, *entries: dict) -> None:
    await imported(reverie, {"format": "reverie-export", "sessions": [], "memories": list(entries)})


def filler(words: str, count: int = FILLER) -> list[dict]:
    """Confident, recent entries full of `words`: they would win on the prior alone."""
    prefix = "_".join(words.split())
    return [entry(f"mem_{prefix}{n}", f"{words} {words} note {n}", 0.95, "2026-10-31") for n in range(count)]


async def test_an_entry_with_the_rare_word_heads_a_query_whose_common_words_match_everything(reverie):
    await remember(reverie, *filler("deploy staging cache"),
                   entry("mem_rare", "The zebulon worker deploys to staging by hand", 0.5, "2025-01-01"))
    view = await reverie.read_memory("how do we deploy the zebulon worker to staging?")
    assert view.entries[0].id == "mem_rare"


async def test_among_entries_with_the_rare_word_those_with_the_common_words_too_come_first(reverie):
    # "database" is common (past the threshold) yet far from everywhere, as at scale.
    await remember(reverie, *filler("alpha"), *filler("database", FILLER // 3),
                   entry("mem_rare_only", "zebulon ships"),
                   entry("mem_rare_and_common", "zebulon database ships"))
    view = await reverie.read_memory("zebulon database")
    assert [e.id for e in view.entries[:2]] == ["mem_rare_and_common", "mem_rare_only"]


async def test_a_query_of_only_common_words_puts_entries_with_both_words_first(reverie):
    both = [entry(f"mem_both{n}", f"Alpha and beta meet in release {n}", 0.5, "2025-01-01") for n in range(2)]
    await remember(reverie, *filler("alpha"), *filler("beta"), *both)
    view = await reverie.read_memory("alpha beta")
    assert {e.id for e in view.entries[:2]} == {"mem_both0", "mem_both1"}


async def test_common_words_that_never_meet_still_find_entries_with_the_rarer_one(reverie):
    await remember(reverie, *filler("alpha"), *filler("gamma", FILLER + 5))
    view = await reverie.read_memory("alpha gamma")
    assert view.entries and all(e.id.startswith("mem_alpha") for e in view.entries)


async def test_a_query_of_common_words_stays_within_its_token_budget(reverie):
    await remember(reverie, *filler("deploy staging cache"), *filler("deploy cache", FILLER * 2))
    view = await reverie.read_memory("deploy cache staging", budget_tokens=300)
    assert view.tokens_used <= 300 and view.truncated and view.entries


@pytest.mark.parametrize("query", ["quux", "?!…"], ids=["word-in-no-entry", "no-words"])
async def test_a_query_reads_by_prior_only_when_it_has_no_words(reverie, query):
    await remember(reverie, *filler("alpha", 3))
    view = await reverie.read_memory(query)
    assert len(view.entries) == (0 if query == "quux" else 3)


async def test_a_past_turn_with_the_rare_word_is_found_among_turns_full_of_common_words(reverie):
    chatter = [Turn(role="tool", content=f"deploy staging cache log line {n}") for n in range(FILLER)]
    await reverie.log_session([*chatter, Turn(role="user", content="Why did the zebulon deploy fail on staging?")])
    view = await reverie.read_memory("zebulon deploy staging")
    assert [e.event_index for e in view.episodes][:1] == [FILLER]


async def test_another_agents_better_matches_do_not_crowd_out_this_agents_past_turn(reverie):
    crowd = [Turn(role="tool", content=f"zebulon zebulon zebulon {n}") for n in range(FILLER * 3)]
    await reverie.log_session(crowd, agent_id="other")
    await reverie.log_session([Turn(role="user", content="The zebulon deploy failed again, see the runbook")])
    view = await reverie.read_memory("zebulon")
    assert [(e.event_index, e.text[:10]) for e in view.episodes] == [(0, "The zebulo")]


async def test_past_turns_are_scored_among_the_newest_matches_only_so_a_long_history_costs_no_more(reverie, monkeypatch):
    monkeypatch.setattr(sessions, "SCORED_TURNS", 25)
    old = Turn(role="user", content="zebulon zebulon zebulon")
    newer = [Turn(role="assistant", content=f"zebulon came up in a long reply about other things {n}") for n in range(30)]
    await reverie.log_session([old, *newer])
    view = await reverie.read_memory("zebulon")
    assert view.episodes and 0 not in [e.event_index for e in view.episodes]


async def test_entries_matching_only_common_words_are_scored_among_the_newest_matches(reverie, monkeypatch):
    monkeypatch.setattr(memories, "SCORED_MATCHES", 25)
    await remember(reverie, entry("mem_oldest", "alpha alpha alpha"), *filler("alpha"))
    view = await reverie.read_memory("alpha")
    assert len(view.entries) == 25 and "mem_oldest" not in [e.id for e in view.entries]


# --- words are counted among the newest rows: a long history costs no more ----------------


def chatter(count: int, words: str = "status line") -> list[Turn]:
    return [Turn(role="tool", content=f"{words} {n}") for n in range(count)]


async def turn_words(reverie, query: str) -> search.Focus:
    readable = search.Readable(agent_id=reverie.settings.agent_id)
    return await search.focus(reverie.db, "events_fts", query, readable)


async def test_how_common_a_word_is_is_counted_among_the_newest_turns_only(reverie, monkeypatch):
    monkeypatch.setattr(search, "COUNTED_ROWS", FILLER)
    monkeypatch.setattr(search, "WINDOW_STEP", 1)
    await reverie.log_session(chatter(FILLER * 2, "deploy staging"))  # common long ago
    await reverie.log_session([*chatter(FILLER - 3), *chatter(3, "deploy")])  # rare in the newest turns
    words = await turn_words(reverie, "deploy")
    assert (words.rare, words.counts["deploy"], words.rows) == (["deploy"], 3, FILLER)


async def test_a_word_found_only_before_the_newest_turns_is_still_searched(reverie, monkeypatch):
    monkeypatch.setattr(search, "COUNTED_ROWS", FILLER)
    monkeypatch.setattr(search, "WINDOW_STEP", 1)
    await reverie.log_session([Turn(role="user", content="The zebulon rollout needs a second approver")])
    await reverie.log_session(chatter(FILLER * 2))
    assert (await turn_words(reverie, "zebulon")).rare == ["zebulon"]
    view = await reverie.read_memory("zebulon")
    assert [e.text[:11] for e in view.episodes] == ["The zebulon"]


async def test_a_word_only_another_agent_used_before_the_newest_turns_is_not_searched(reverie, monkeypatch):
    monkeypatch.setattr(search, "COUNTED_ROWS", FILLER)
    monkeypatch.setattr(search, "WINDOW_STEP", 1)
    await reverie.log_session([Turn(role="user", content="zebulon")], agent_id="other")
    await reverie.log_session(chatter(FILLER * 2))
    words = await turn_words(reverie, "zebulon status")
    assert (words.rare, words.common) == ([], ["status"])


async def test_past_turns_are_counted_without_the_per_row_filter_only_while_every_session_is_the_readers(reverie):
    mine = search.Readable(agent_id=reverie.settings.agent_id)
    await reverie.log_session(chatter(3))
    assert await search._counting_filter(reverie.db, "events_fts", mine) == search.Readable()
    await reverie.log_session(chatter(3), agent_id="other")
    assert await search._counting_filter(reverie.db, "events_fts", mine) == mine


async def test_when_other_agents_crowd_the_top_only_the_newest_readable_matches_are_scored(reverie, monkeypatch):
    # A word rare in recent turns may match many older ones: scoring them all would grow with the history.
    monkeypatch.setattr(sessions, "SCORED_TURNS", 25)
    await reverie.log_session([Turn(role="user", content="zebulon zebulon zebulon")])
    await reverie.log_session([Turn(role="assistant", content=f"zebulon came up in a reply about {n}") for n in range(30)])
    await reverie.log_session([Turn(role="tool", content=f"zebulon zebulon {n}") for n in range(FILLER)], agent_id="other")
    found = await sessions.search_events(reverie.db, ["zebulon"], reverie.settings.agent_id)
    assert len(found) == 20 and "zebulon zebulon zebulon" not in [t.text for t in found]


async def test_the_newest_rows_counted_start_on_a_steps_edge(reverie, monkeypatch):
    monkeypatch.setattr(search, "COUNTED_ROWS", FILLER)
    monkeypatch.setattr(search, "WINDOW_STEP", 30)
    # 120 turns, "deploy" in the 66th to 70th: before the newest 40, but after the 60th, a step's edge.
    await reverie.log_session([*chatter(65), *chatter(5, "deploy"), *chatter(50)])
    words = await turn_words(reverie, "deploy")
    assert (words.rows, words.counts["deploy"]) == (60, 5)


async def test_entries_words_are_counted_exactly_among_the_newest_rows_and_the_readers_scopes(reverie, monkeypatch):
    # 2,100 entries, 1,000 counted: from the 1,000th (a slice's edge), so 1,100. On PostgreSQL
    # the counts are sums of `memory_words`; a word that stems to two lexemes is walked.
    monkeypatch.setattr(search, "COUNTED_ROWS", 1_000)
    old = [entry(f"mem_old{n}", f"alpha node_modules cleanup {n}") for n in range(1_050)]
    new = [entry(f"mem_new{n}", f"beta rollout {n}" + (" alpha" if n % 10 == 0 else "")) for n in range(1_050)]
    async with reverie.db.transaction():  # through the store: importing 2,100 entries takes seconds
        for one in [*old, *new]:
            await memories.insert_memory(reverie.db, Memory.model_validate(one))
    terms = ["alpha", "beta", "node_modules", "zebulon"]
    words = await search.focus(reverie.db, "memories_fts", " ".join(terms), search.Readable(scopes=("agent:tester",)))
    assert words.rows == 1_100

    async def counts(*scopes: str) -> dict[str, int]:
        return await search._match_counts(reverie.db, "memories_fts", terms, 10_000, search.Readable(scopes=scopes),
                                          after=1_000)

    assert await counts("agent:tester", "shared") == {"alpha": 50 + 105, "beta": 1_050, "node_modules": 50, "zebulon": 0}
    assert await counts("shared") == dict.fromkeys(terms, 0)

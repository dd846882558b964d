"""What an agent loads at session start: ranked memory, fresh notes and past excerpts,
cut to a token budget, with only the current value of anything that changed.

**Current values only.** Before the budget is filled, the candidates that could be shown
(each section's best, as many as fill JUDGED_SHARE budgets) are judged together by
`claims.outdated`: an entry, a note, or one sentence of an excerpt that gives some subject
a value a newer one replaces is left out, so an old "page 200" is never shown beside the
new "page 220", whichever section each is in. An entry's time is its newest evidence, a
note's when it was written, an excerpt's its turn's (its session's start when the turn has
none). Statements reach `outdated` oldest first, by time, then session, then turn and
sentence, so on equal times the later turn is the newer.

**Excerpts** are the whole sentences of a matching turn that hold the query's words
(`reverie.excerpt`), never a cut inside a value.

**The budget.** Without a query: curated memory first (up to 60% when there are notes),
then the notes; what one leaves unused passes on. With a query, all three sections are
filled in one order — how much of the query an item holds (the rarity-weighted query words
it contains, `excerpt.Query`), curated entries before notes before excerpts when equal,
each section keeping its own order among equals — and an item too big for the room left is
passed over, not the end of the fill. So entries that share only the query's common words
never crowd out the excerpt holding its distinctive words: the best evidence for a
question is shown first whichever section holds it, and a section gets room only for what
matches. Notes holding none of the query's words come after everything that does. The
output never exceeds the budget however large memory grows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from reverie import claims, config
from reverie.errors import InvalidInput
from reverie.excerpt import Excerpt, Query, excerpt
from reverie.models import Category, Episode, Identity, MemoryEntry, MemoryView, NoteEntry
from reverie.report import (
    entry_line,
    episode_line,
    memory_markdown,
    note_line,
    pending_line,
)
from reverie.service import access
from reverie.store import Database, memories, proposals, search, sessions
from reverie.text import estimate_tokens, within_budget

T = TypeVar("T")


def candidates(budget_tokens: int) -> int:
    """Ranked entries to fetch before cutting to the budget: about what it can hold.

    An entry line takes at least ~20 tokens, so more would be built and then thrown away
    (building rows is a good part of a read's cost at 2,000 tokens).
    """
    return min(max(budget_tokens // 20, 50), 5_000)
MEMORY_SHARE = 0.6
MIN_BUDGET = 100  # below this not even the headings fit
HEADINGS = 60     # tokens kept back for section headings and the pending-review hint
# Each section's best items, as many as fill this many budgets, are judged for outdated
# values: leaving one out makes room for the next, and `claims.outdated` compares every
# pair, so judging the whole candidate list would cost a read far more than it shows.
JUDGED_SHARE = 1.5


def check_budget(budget_tokens: int) -> None:
    if not MIN_BUDGET <= budget_tokens <= config.MAX_BUDGET_TOKENS:
        raise InvalidInput(f"budget_tokens must be between {MIN_BUDGET} and {config.MAX_BUDGET_TOKENS:,}; got {budget_tokens}.")


def fit(items: Sequence[T], render: Callable[[T], str], budget: int) -> tuple[list[T], int]:
    """The longest prefix of `items` whose rendered lines fit `budget` tokens."""
    return within_budget(items, lambda item: cost(render(item)), budget)


def cost(line: str) -> int:
    return estimate_tokens(line) + 1  # the line break


@dataclass(frozen=True)
class Excerpted:
    """A past turn that matched the query, and the sentences of it a reader is shown."""

    turn: Episode
    excerpt: Excerpt

    @property
    def episode(self) -> Episode:
        return self.turn.model_copy(update={"text": self.excerpt.text})


@dataclass(frozen=True)
class Candidates:
    entries: list[MemoryEntry]
    notes: list[NoteEntry]
    excerpts: list[Excerpted]


async def read(
    db: Database, *, identity: Identity, query: str | None, scope: str | None, categories: list[Category] | None,
    budget_tokens: int, include_notes: bool, now: datetime,
) -> MemoryView:
    """The memory `identity` loads: only scopes it reads, notes and excerpts of its own sessions,
    and the pending proposals it may see."""
    check_budget(budget_tokens)
    scopes, agent_id = access.readable_scopes(identity, scope), identity.agent_id
    async with db.snapshot():
        entries = await memories.ranked_entries(db, now, query, scopes, categories, candidates(budget_tokens))
        notes = await sessions.pending_notes(db, agent_id) if include_notes else []
        asked, turns = await _matching_turns(db, query, agent_id) if query else (None, [])
        pending = await access.visible_notices(db, identity, await proposals.pending_notices(db))
    budget = max(budget_tokens - sum(estimate_tokens(pending_line(p)) for p in pending) - HEADINGS, 0)
    found = Candidates(entries, notes, [Excerpted(t, excerpt(t.text, asked)) for t in turns] if asked else [])
    if asked is not None:
        found = _with_matching_notes_first(found, asked)
    judged = _judged(found, budget)
    current = _current(judged, query, asked)
    shown = _fill_by_relevance(current, asked, budget) if asked else _fill_by_share(current, budget)
    outdated = len(judged.entries) - len(current.entries)
    if shown.entries:
        async with db.transaction():
            await memories.mark_read(db, [e.id for e in shown.entries], now)
    episodes = [x.episode for x in shown.excerpts]
    markdown = memory_markdown(shown.entries, shown.notes, episodes, pending)
    return MemoryView(
        entries=shown.entries, notes=shown.notes, episodes=episodes, pending_proposals=pending,
        budget_tokens=budget_tokens, tokens_used=estimate_tokens(markdown),
        truncated=len(shown.entries) + outdated < len(entries), markdown=markdown,
    )


async def _matching_turns(db: Database, query: str, agent_id: str) -> tuple[Query | None, list[Episode]]:
    """The query's words weighted by rarity (None if it has none), and the past turns with
    its rare words, or else its rarest word.

    Transcripts repeat common words in thousands of turns: matching by the rare words
    keeps the turns BM25 scores few, and the excerpts specific to what was asked.
    """
    words = await search.focus(db, "events_fts", query)
    if not words.counts:
        return None, []
    terms = words.rare or words.common[:1]
    return Query.weighted(words.counts, words.rows), await sessions.search_events(db, terms, agent_id) if terms else []


def _with_matching_notes_first(found: Candidates, asked: Query) -> Candidates:
    """Notes, which come newest first, best-matching first (equals stay newest first).
    Entries and excerpts are already ranked by relevance, by BM25 that knows their lengths."""
    return Candidates(found.entries, sorted(found.notes, key=lambda n: -asked.score(n.content)), found.excerpts)


def _judged(found: Candidates, budget: int) -> Candidates:
    room = int(budget * JUDGED_SHARE)
    return Candidates(
        fit(found.entries, entry_line, room)[0],
        fit(found.notes, note_line, room)[0],
        fit(found.excerpts, lambda x: episode_line(x.episode), room)[0],
    )


def _current(found: Candidates, query: str | None, asked: Query | None) -> Candidates:
    """`found` without what a newer entry, note or excerpt sentence replaces (see the module doc).

    An excerpt left with none of the query's words is left out too: what it had to say
    about the query is outdated.
    """
    statements = sorted(
        [((e.observed_at, "", -1, 0), e.content, (0, i, 0)) for i, e in enumerate(found.entries)]
        + [((n.created_at, n.session_id, -1, n.index), n.content, (1, i, 0)) for i, n in enumerate(found.notes)]
        + [((x.turn.timestamp, x.turn.session_id, x.turn.event_index, position), sentence, (2, i, position))
           for i, x in enumerate(found.excerpts) for position, sentence in x.excerpt.parts],
        key=lambda statement: statement[0],
    )
    stale = {statements[i][2] for i in claims.outdated([(text, key[0]) for key, text, _ in statements], query)}
    if not stale:
        return found
    excerpts = [Excerpted(x.turn, x.excerpt.without({p for s, i, p in stale if (s, i) == (2, k)}))
                for k, x in enumerate(found.excerpts)]
    return Candidates(
        [e for i, e in enumerate(found.entries) if (0, i, 0) not in stale],
        [n for i, n in enumerate(found.notes) if (1, i, 0) not in stale],
        [x for x in excerpts if x.excerpt.parts and (asked is None or asked.score(x.excerpt.text) > 0)],
    )


def _fill_by_share(found: Candidates, budget: int) -> Candidates:
    """Curated memory first, up to MEMORY_SHARE when notes wait; then the notes."""
    share = int(budget * MEMORY_SHARE) if found.notes else budget
    entries, used = fit(found.entries, entry_line, share)
    return Candidates(entries, fit(found.notes, note_line, budget - used)[0], [])


def _fill_by_relevance(found: Candidates, asked: Query, budget: int) -> Candidates:
    """The sections merged, each in its own order, by how much of the query each still
    holds at best (see the module doc); what does not fit the room left is passed over."""
    import os
    measure = asked.relevance if os.environ.get("REL") else asked.score
    sections = [
        _best_still_to_come([(measure(e.content), entry_line(e), e) for e in found.entries]),
        _best_still_to_come([(measure(n.content), note_line(n), n) for n in found.notes]),
        _best_still_to_come([(measure(x.excerpt.text), episode_line(x.episode), x) for x in found.excerpts]),
    ]
    taken: list[list] = [[], [], []]
    heads = [0, 0, 0]
    while waiting := [s for s in range(3) if heads[s] < len(sections[s])]:
        section = max(waiting, key=lambda s: (sections[s][heads[s]][0], -s))  # equals: curated first
        _, line, item = sections[section][heads[section]]
        heads[section] += 1
        if cost(line) <= budget:
            taken[section].append(item)
            budget -= cost(line)
    return Candidates(*taken)


def _best_still_to_come(section: list[tuple[float, str, T]]) -> list[tuple[float, str, T]]:
    """Each item with the best score of it and those after it: how good a section's rest is."""
    best, marked = 0.0, []
    for score, line, item in reversed(section):
        best = max(best, score)
        marked.append((best, line, item))
    return marked[::-1]

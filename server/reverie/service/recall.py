"""What an agent loads at session start: ranked memory, fresh notes and past excerpts,
cut to a token budget.

The budget is shared in a fixed order: curated memory first (up to 60% when there are
notes or a query to make room for), then notes logged since the last dream, then raw
excerpts of past sessions matching the query. Whatever a section leaves unused passes
to the next, so the output never exceeds the budget however large memory grows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar

from reverie import config
from reverie.errors import InvalidInput
from reverie.models import Category, Episode, Identity, MemoryView
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


def check_budget(budget_tokens: int) -> None:
    if not MIN_BUDGET <= budget_tokens <= config.MAX_BUDGET_TOKENS:
        raise InvalidInput(f"budget_tokens must be between {MIN_BUDGET} and {config.MAX_BUDGET_TOKENS:,}; got {budget_tokens}.")


def fit(items: Sequence[T], render: Callable[[T], str], budget: int) -> tuple[list[T], int]:
    """The longest prefix of `items` whose rendered lines fit `budget` tokens."""
    return within_budget(items, lambda item: estimate_tokens(render(item)) + 1, budget)


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
        episodes = await _episodes(db, query, agent_id) if query else []
        pending = await access.visible_notices(db, identity, await proposals.pending_notices(db))
    budget = budget_tokens - sum(estimate_tokens(pending_line(p)) for p in pending) - HEADINGS
    share = int(budget * MEMORY_SHARE) if (notes or episodes) else budget
    kept, used = fit(entries, entry_line, max(share, 0))
    kept_notes, used_notes = fit(notes, note_line, max(budget - used, 0) // (2 if episodes else 1))
    kept_episodes, used_episodes = fit(episodes, episode_line, max(budget - used - used_notes, 0))
    if kept:
        async with db.transaction():
            await memories.mark_read(db, [e.id for e in kept], now)
    markdown = memory_markdown(kept, kept_notes, kept_episodes, pending)
    return MemoryView(
        entries=kept, notes=kept_notes, episodes=kept_episodes, pending_proposals=pending,
        budget_tokens=budget_tokens, tokens_used=estimate_tokens(markdown),
        truncated=len(kept) < len(entries), markdown=markdown,
    )


async def _episodes(db: Database, query: str, agent_id: str) -> list[Episode]:
    """Past turns with the query's rare words, or else its rarest word.

    Transcripts repeat common words in thousands of turns: matching by the rare words
    keeps the turns BM25 scores few, and the excerpts specific to what was asked.
    """
    words = await search.focus(db, "events_fts", query)
    terms = words.rare or words.common[:1]
    return await sessions.search_events(db, terms, agent_id) if terms else []

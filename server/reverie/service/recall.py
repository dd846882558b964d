"""What an agent loads at session start: ranked memory, fresh notes and past excerpts,
cut to a token budget, showing only the current value of anything that changed.

**Current values only.** Before the budget is filled, the candidates that could be shown
(each section's best, as many as fill JUDGED_SHARE budgets) are judged together by
`claims.outdated`: an entry, a note, or one sentence of an excerpt that gives some subject
a value a newer one replaces is left out, so an old "page 200" is never shown beside the
new "page 220", whichever sections they are in. An entry's time is its newest evidence's,
a note's when it was written, an excerpt's its turn's (its session's start when the turn
has none). Each statement's moment is (time, session, turn or note, sentence), so among
equal times the later turn of a session is the newer. An excerpt left with none of the
query's words is left out whole.

**Excerpts** are the whole sentences of a matching turn that hold the query's words
(`reverie.excerpt`), never a cut inside a value.

**The budget.** Without a query: curated memory first (up to MEMORY_SHARE when there are
notes), then the notes; what one leaves unused passes on. With a query, relevance decides
across sections, so nothing that matches the query less takes the room of its only
evidence:

- each section keeps its own ranking: entries by BM25 blended with confidence and recency,
  excerpts by BM25 over their whole turn, notes by how much of the query they hold;
- the sections are merged by how much of the query (`excerpt.Query.score`: the rarity of
  the query's words it holds) their next item holds — for excerpts, the best of those
  still waiting, since BM25 already ranked them by more than the words shown;
- curated entries go first among equals, then notes; an item too big for the room left
  is passed over, not the end of the fill.

So a crowd of entries sharing only a common word or a name with the query never pushes
out the excerpt holding its distinctive words: an entry goes ahead of that excerpt only by
holding at least as much of the query. The output never exceeds the budget however large memory grows.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from reverie import claims, config
from reverie.errors import InvalidInput
from reverie.excerpt import Excerpt, Query, excerpt
from reverie.models import Category, Episode, Identity, MemoryEntry, MemoryView, NoteEntry, PendingNotice
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
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_STAND_IN_NOTE = NoteEntry(session_id="s", index=0, content="x", created_at=_EPOCH)
_STAND_IN_EPISODE = Episode(session_id="s", event_index=0, role="user", text="x", timestamp=_EPOCH)
MEMORY_SHARE = 0.6
MIN_BUDGET = 100  # below this not even the headings fit
HEADINGS = 60     # tokens kept back for section headings and the pending-review hint
# Each section's best, as many as fill this many budgets, are judged for outdated values:
# leaving one out makes room for the next, and `claims.outdated` compares every pair, so
# judging every candidate would cost a large read far more than it could show.
JUDGED_SHARE = float(__import__("os").environ.get("JS", "1.25"))


def _frame(notes: bool, excerpts: bool, pending: list[PendingNotice]) -> int:
    """Tokens the markdown spends besides the lines of entries, notes and excerpts: the
    headings of the sections that may appear and the pending-review hint."""
    rendered = memory_markdown([], [_STAND_IN_NOTE] if notes else [], [_STAND_IN_EPISODE] if excerpts else [], pending)
    lines = (cost(note_line(_STAND_IN_NOTE)) if notes else 0) + (cost(episode_line(_STAND_IN_EPISODE)) if excerpts else 0)
    return estimate_tokens(rendered) - lines + 2


def check_budget(budget_tokens: int) -> None:
    if not MIN_BUDGET <= budget_tokens <= config.MAX_BUDGET_TOKENS:
        raise InvalidInput(f"budget_tokens must be between {MIN_BUDGET} and {config.MAX_BUDGET_TOKENS:,}; got {budget_tokens}.")


def fit(items: Iterable[T], render: Callable[[T], str], budget: int) -> tuple[list[T], int]:
    """The longest prefix of `items` whose rendered lines fit `budget` tokens (read no further)."""
    return within_budget(items, lambda item: cost(render(item)), budget)


def cost(line: str) -> int:
    return estimate_tokens(line) + 1  # and its line break


@dataclass(frozen=True)
class Excerpted:
    """A past turn that matched the query, and the sentences of it a reader is shown."""

    turn: Episode
    excerpt: Excerpt

    @functools.cached_property
    def episode(self) -> Episode:
        return self.turn.model_copy(update={"text": self.excerpt.text})

    @functools.cached_property
    def line(self) -> str:
        return episode_line(self.episode)


@dataclass(frozen=True)
class Candidates:
    """What a read may show, section by section, each in its own order."""

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
    budget = max(budget_tokens - _frame(bool(notes), bool(turns), pending), 0)
    shown, outdated = select(entries, notes, turns, query, asked, budget)
    if shown.entries:
        async with db.transaction():
            await memories.mark_read(db, [e.id for e in shown.entries], now)
    return _view(shown, pending, budget_tokens, truncated=len(shown.entries) + outdated < len(entries))


async def _matching_turns(db: Database, query: str, agent_id: str) -> tuple[Query | None, list[Episode]]:
    """The query's words weighted by rarity (None if it has no words), and the past turns
    with its rare words, or else its rarest word.

    Transcripts repeat common words in thousands of turns: matching by the rare words
    keeps the turns BM25 scores few, and the excerpts specific to what was asked.
    """
    words = await search.focus(db, "events_fts", query)
    if not words.counts:
        return None, []
    terms = words.rare or words.common[:1]
    turns = await sessions.search_events(db, terms, agent_id) if terms else []
    asked = Query.weighted(words.counts, words.rows)
    if os.environ.get("REPLY", "0") == "1":
        turns = await _with_replies(db, turns, asked)
    return asked, turns


_REPLIES = set()
REPLY_CHARS = int(os.environ.get("RC", "400"))


def _asks(text, asked):
    last = (claims.sentences(text) or [""])[-1]
    return last.endswith("?") and (os.environ.get("QH", "1") == "0" or asked.score(last) > 0) and len(text) <= int(os.environ.get("QC", "100000"))


async def _with_replies(db: Database, turns: list[Episode], asked) -> list[Episode]:
    asking = [(t.session_id, t.event_index + 1) for t in turns if _asks(t.text, asked)]
    if not asking:
        return turns
    replies = await sessions.turns_at(db, asking)
    seen = {(t.session_id, t.event_index) for t in turns}
    result = []
    for t in turns:
        if (t.session_id, t.event_index) in seen and any((r.session_id, r.event_index) == (t.session_id, t.event_index) for r in result):
            continue
        result.append(t)
        reply = replies.get((t.session_id, t.event_index + 1))
        if reply is not None and len(reply.text) <= REPLY_CHARS and all((r.session_id, r.event_index) != (reply.session_id, reply.event_index) for r in result):
            result.append(reply)
            _REPLIES.add((reply.session_id, reply.event_index))
    return result


def select(
    entries: list[MemoryEntry], notes: list[NoteEntry], turns: list[Episode], query: str | None, asked: Query | None,
    budget: int,
) -> tuple[Candidates, int]:
    """What fits `budget` of the current values among the candidates, and how many entries were outdated."""
    if asked is not None:  # notes come newest first: with a query, the matching ones first
        notes = sorted(notes, key=lambda n: -asked.score(n.content))
    judged = _judged(entries, notes, turns, asked, budget)
    current = _current(judged, query, asked)
    shown = _fill_by_relevance(current, asked, budget) if asked else _fill_by_share(current, budget)
    return shown, len(judged.entries) - len(current.entries)


def _judged(
    entries: list[MemoryEntry], notes: list[NoteEntry], turns: list[Episode], asked: Query | None, budget: int
) -> Candidates:
    """Each section's best that fill JUDGED_SHARE budgets; turns are excerpted only as far as that."""
    room = int(budget * JUDGED_SHARE)
    excerpts = (Excerpted(t, excerpt(t.text, asked)) for t in turns) if asked else ()
    return Candidates(fit(entries, entry_line, room)[0], fit(notes, note_line, room)[0],
                      fit(excerpts, lambda x: x.line, room)[0])


def _current(found: Candidates, query: str | None, asked: Query | None) -> Candidates:
    """`found` without what a newer entry, note or excerpt sentence replaces (see the module doc)."""
    statements = sorted(
        [((e.observed_at, "", -1, 0), e.content, (0, i, 0)) for i, e in enumerate(found.entries)]
        + [((n.created_at, n.session_id, -1, n.index), n.content, (1, i, 0)) for i, n in enumerate(found.notes)]
        + [((x.turn.timestamp, x.turn.session_id, x.turn.event_index, position), sentence, (2, i, position))
           for i, x in enumerate(found.excerpts) for position, sentence in x.excerpt.parts],
        key=lambda statement: statement[0],
    )
    stale = {statements[i][2] for i in claims.outdated([(text, key) for key, text, _ in statements], query)}
    if not stale:
        return found
    excerpts = [Excerpted(x.turn, x.excerpt.without({p for s, i, p in stale if (s, i) == (2, k)}))
                for k, x in enumerate(found.excerpts)]
    return Candidates(
        [e for i, e in enumerate(found.entries) if (0, i, 0) not in stale],
        [n for i, n in enumerate(found.notes) if (1, i, 0) not in stale],
        [x for x in excerpts if x.excerpt.parts and (asked is None or asked.score(x.excerpt.text) > 0 or (x.turn.session_id, x.turn.event_index) in _REPLIES)],
    )


def _fill_by_share(found: Candidates, budget: int) -> Candidates:
    """Curated memory first, up to MEMORY_SHARE when notes wait; then the notes."""
    share = int(budget * MEMORY_SHARE) if found.notes else budget
    entries, used = fit(found.entries, entry_line, share)
    return Candidates(entries, fit(found.notes, note_line, budget - used)[0], [])


def _fill_by_relevance(found: Candidates, asked: Query, budget: int) -> Candidates:
    """The sections merged by how much of the query their next items hold (see the module
    doc); an item too big for the room left is passed over, and an entry that quotes an
    excerpt shown is left out (the excerpt holds its words, in context)."""
    sections = [
        [(asked.score(e.content), entry_line(e), e) for e in found.entries],
        [(asked.score(n.content), note_line(n), n) for n in found.notes],
        _order([(asked.score(x.excerpt.text), x.line, x) for x in found.excerpts]),
    ]
    taken: list[list] = [[], [], []]
    heads = [0, 0, 0]
    while waiting := [s for s in range(3) if heads[s] < len(sections[s])]:
        section = max(waiting, key=lambda s: (sections[s][heads[s]][0], -s if os.environ.get("TIE") != "x" else s))  # equals: curated first
        _, line, item = sections[section][heads[section]]
        heads[section] += 1
        if section == 0 and any(_quotes(item, x) for x in taken[2]):
            continue
        if section == 2 and os.environ.get("DEDUPE", "1") == "1":
            quoted = [e for e in taken[0] if _quotes(e, item)]
            budget += sum(cost(entry_line(e)) for e in quoted)
            taken[0] = [e for e in taken[0] if e not in quoted]
        if cost(line) <= budget:
            taken[section].append(item)
            budget -= cost(line)
    return Candidates(*taken)


def _quotes(entry: MemoryEntry, shown: Excerpted) -> bool:
    return os.environ.get("DEDUPE", "1") == "1" and claims.unquoted(entry.content).lower() in shown.excerpt.text.lower()


import os
def _order(ranked):
    if os.environ.get("ORDER") == "score":
        return sorted(ranked, key=lambda r: -r[0])
    if os.environ.get("ORDER") == "density":
        return sorted(ranked, key=lambda r: -r[0] / (20 + cost(r[1])) ** float(os.environ.get("DP", "0.5")))
    return _best_still_to_come(ranked)


def _best_still_to_come(ranked: list[tuple[float, str, T]]) -> list[tuple[float, str, T]]:
    """Each item scored with the best score from it on: what the rest of the ranking still
    holds, which the words shown of its first turns may undersell."""
    best, marked = 0.0, []
    for score, line, item in reversed(ranked):
        best = max(best, score)
        marked.append((best, line, item))
    return marked[::-1]


def _view(shown: Candidates, pending: list[PendingNotice], budget_tokens: int, truncated: bool) -> MemoryView:
    episodes = [x.episode for x in shown.excerpts]
    markdown = memory_markdown(shown.entries, shown.notes, episodes, pending)
    return MemoryView(
        entries=shown.entries, notes=shown.notes, episodes=episodes, pending_proposals=pending,
        budget_tokens=budget_tokens, tokens_used=estimate_tokens(markdown), truncated=truncated, markdown=markdown,
    )

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
query's words is left out whole (a reply, below, is kept for the question it answers).

**Excerpts** are the whole sentences of a matching turn that hold the query's words
(`reverie.excerpt`), never a cut inside a value. A short turn that ends by asking about
what the query asks ("What made you pick that agency?") is followed by its reply when the
reply is short too: the answer rarely repeats the question's words, so BM25 alone would
not find it. Excerpts come only from what the user and the assistant said (never tool
output: `store.sessions`); one that reads like an order to an AI (`safety.instruction_like`)
is left out, and each is dated in the markdown.

**The budget.** The headings and the pending-review hint take what they take; the rest
goes to lines. Without a query: curated memory first (up to MEMORY_SHARE when there are
notes), then the notes; what one leaves unused passes on. With a query, relevance decides
across sections, so nothing that matches the query less takes the room of its only
evidence:

- each section keeps its own ranking: entries by BM25 blended with confidence and recency,
  excerpts by BM25 over their whole turn, notes by how much of the query they hold;
- the sections are merged by how much of the query (`excerpt.Query.score`: the rarity of
  the query's words it holds) their next item holds — for excerpts, the best of those
  still waiting, since BM25 already ranked them by more than the words shown, and a reply
  counts as much as its question; an entry that quotes the user counts by their words;
- among equals what was said goes first (excerpts, then notes, then entries), so a dream's
  entries take an excerpt's room only by holding more of the query; an item too big for
  the room left is passed over, not the end of the fill;
- an entry that quotes an excerpt shown is left out: the excerpt holds its words, in context.

So a crowd of entries sharing only a common word or a name with the query never pushes
out the excerpt holding its distinctive words, and the output never exceeds the budget
however large memory grows.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from reverie import claims, config
from reverie.claims import sentences
from reverie.errors import InvalidInput
from reverie.excerpt import EXCERPT_CHARS, Excerpt, Query, excerpt
from reverie.models import Category, Episode, Identity, MemoryEntry, MemoryView, NoteEntry, PendingNotice
from reverie.report import entry_line, episode_line, memory_markdown, note_line
from reverie.safety import instruction_like
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
COMMON_TURNS = 200  # past turns BM25 scores for a query of only common words (see _matching_turns)
MIN_BUDGET = config.MIN_BUDGET_TOKENS
# Each section's best, as many as fill this many budgets, are judged for outdated values:
# leaving one out makes room for the next, and `claims.outdated` compares every pair, so
# judging every candidate would cost a large read far more than it could show.
JUDGED_SHARE = 1.25


_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # any time: the stand-ins are measured, never shown


@functools.cache
def _stand_ins() -> tuple[NoteEntry, Episode]:
    """Built on first use, not at import: a model's first instance builds its validator, which
    a process that never reads (the SessionEnd hook) should not pay for."""
    return (NoteEntry(session_id="s", index=0, content="x", created_at=_EPOCH),
            Episode(session_id="s", event_index=0, role="user", text="x", timestamp=_EPOCH))


def line_room(budget_tokens: int, notes: bool, excerpts: bool, pending: list[PendingNotice]) -> int:
    """Characters the lines may take: the budget less the headings of the sections that may
    appear and the pending-review hint (measured on the markdown with a stand-in line in
    each such section, less those lines)."""
    note, episode = _stand_ins()
    shown_notes = [note] if notes else []
    shown_episodes = [episode] if excerpts else []
    lines = sum(map(cost, map(note_line, shown_notes))) + sum(map(cost, map(episode_line, shown_episodes)))
    frame = len(memory_markdown([], shown_notes, shown_episodes, pending)) - lines
    return max(budget_tokens * CHARS_PER_TOKEN - frame, 0)


def check_budget(budget_tokens: int) -> None:
    if not MIN_BUDGET <= budget_tokens <= config.MAX_BUDGET_TOKENS:
        raise InvalidInput(f"budget_tokens must be between {MIN_BUDGET} and {config.MAX_BUDGET_TOKENS:,}; got {budget_tokens}.")


def fit(items: Iterable[T], render: Callable[[T], str], room: int) -> tuple[list[T], int]:
    """The longest prefix of `items` whose rendered lines fit `room` characters (read no further)."""
    return within_budget(items, lambda item: cost(render(item)), room)


# The budget is kept in characters, the way `text.estimate_tokens` counts the whole markdown
# (four to a token): counting each line in whole tokens, and its line break as one, left
# ~1.5 tokens a line unused, a 500-token read one short line less.
CHARS_PER_TOKEN = 4


def cost(line: str) -> int:
    """Characters a line takes, with its line break."""
    return len(line) + 1


Place = tuple[str, int]  # a turn's (session id, index)


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

    @property
    def place(self) -> Place:
        return self.turn.session_id, self.turn.event_index

    @functools.cached_property
    def lowered(self) -> str:
        return self.excerpt.text.lower()


@dataclass(frozen=True)
class Candidates:
    """What a read may show, section by section, each in its own order."""

    entries: list[MemoryEntry]
    notes: list[NoteEntry]
    excerpts: list[Excerpted]


@dataclass(frozen=True)
class Turns:
    """The past turns a query found, best first, and which of them are replies to a question found."""

    found: list[Episode]
    replies: frozenset[Place] = frozenset()


async def read(
    db: Database, *, identity: Identity, query: str | None, scope: str | None, categories: list[Category] | None,
    budget_tokens: int, include_notes: bool, now: datetime, project: str | None = None,
) -> MemoryView:
    """The memory `identity` loads: only scopes it reads, notes and excerpts of its own sessions,
    and the pending proposals it may see. In `project` (a key), that project's scope, and notes
    and excerpts of sessions in it or in none, never another project's (`access.project_view`)."""
    check_budget(budget_tokens)
    scopes, agent_id = access.readable_scopes(identity, scope, project), identity.agent_id
    async def memory(db: Database) -> tuple[list[MemoryEntry], list[NoteEntry], list[PendingNotice]]:
        entries = await memories.ranked_entries(db, now, query, scopes, categories, candidates(budget_tokens))
        notes = await sessions.pending_notes(db, agent_id, project=project) if include_notes else []
        return entries, notes, await access.visible_notices(db, identity, await proposals.pending_notices(db))

    async def history(db: Database) -> tuple[Query | None, Turns]:
        return await _matching_turns(db, query, agent_id, project) if query else (None, Turns([]))

    async with db.snapshot():  # a dozen SELECTs: on SQLite in one hand-off, on PostgreSQL in two halves at once
        (entries, notes, pending), (asked, turns) = await db.at_once(memory, history)
    room = line_room(budget_tokens, bool(notes), bool(turns.found), pending)
    shown, accounted = select(entries, notes, turns, query, asked, room)
    # Counted with the next write, never now: a read must not wait for the write lock.
    await memories.mark_read(db, [e.id for e in shown.entries], now)
    return _view(shown, pending, budget_tokens, truncated=len(shown.entries) + accounted < len(entries))


async def _matching_turns(
    db: Database, query: str, agent_id: str, project: str | None = None
) -> tuple[Query | None, Turns]:
    """The query's words weighted by rarity (None if it has no words), and the past turns
    with its rare words, or else its rarest word, with the replies to those that ask about it.

    Transcripts repeat common words in thousands of turns: matching by the rare words
    keeps the turns BM25 scores few, and the excerpts specific to what was asked.
    """
    words = await search.focus(db, "events_fts", query, search.Readable(agent_id=agent_id))
    if not words.counts:
        return None, Turns([])
    asked = Query.weighted(words.counts, words.rows)
    if words.rare:
        found = await sessions.search_events(db, words.rare, agent_id, project=project)
    elif words.common:
        # Only common words: the rarest of them, among its newest COMMON_TURNS matches. Its
        # matches are thousands of turns it barely tells apart; scoring 2,000 of them (and
        # the whole match when tool turns crowded the top out) was a third of a read.
        found = await sessions.search_events(db, words.common[:1], agent_id, project=project,
                                             scored=min(COMMON_TURNS, sessions.SCORED_TURNS), common=True)
    else:
        found = []
    return asked, await _with_replies(db, found, asked)


def _asks(turn: Episode, asked: Query) -> bool:
    """A turn short enough to be shown whole whose last sentence asks about what the query asks.

    Only a short one: a long turn that ends with a question ("Anything else I can help
    with?") is an assistant signing off, and the turn after it starts something new.
    """
    if len(turn.text) > EXCERPT_CHARS or not turn.text.rstrip().endswith("?"):
        return False
    return asked.score(sentences(turn.text)[-1]) > 0


async def _with_replies(db: Database, found: list[Episode], asked: Query) -> Turns:
    """`found` with each short reply to a turn of it that asks about the query right after
    that turn (moved up if `found` has it further down)."""
    asking = [(t.session_id, t.event_index + 1) for t in found if _asks(t, asked)]
    replies = {place: turn for place, turn in (await sessions.turns_at(db, asking) if asking else {}).items()
               if len(turn.text) <= EXCERPT_CHARS}
    if not replies:
        return Turns(found)
    seen: set[Place] = set()
    ordered = []
    for turn in found:
        for t in (turn, replies.get((turn.session_id, turn.event_index + 1))):
            if t is not None and (t.session_id, t.event_index) not in seen:
                seen.add((t.session_id, t.event_index))
                ordered.append(t)
    return Turns(ordered, frozenset(replies))


def select(
    entries: list[MemoryEntry], notes: list[NoteEntry], turns: Turns, query: str | None, asked: Query | None,
    room: int,
) -> tuple[Candidates, int]:
    """What fits `room` characters of the current values among the candidates, and how many entries
    were left out for a reason other than room (outdated, or quoted by an excerpt shown)."""
    if asked is not None:  # notes come newest first: with a query, the matching ones first
        notes = sorted(notes, key=lambda n: -asked.score(n.content))
    judged = _judged(entries, notes, turns.found, asked, room)
    current = _current(judged, query, asked, turns.replies)
    if asked is None:
        return _fill_by_share(current, room), len(judged.entries) - len(current.entries)
    shown = _fill_by_relevance(current, asked, turns.replies, room)
    quoted = sum(1 for e in current.entries if any(_quotes(e, x) for x in shown.excerpts))
    return shown, len(judged.entries) - len(current.entries) + quoted


def _judged(
    entries: list[MemoryEntry], notes: list[NoteEntry], turns: list[Episode], asked: Query | None, room: int
) -> Candidates:
    """Each section's best that fill JUDGED_SHARE times `room`; turns are excerpted only as far as that."""
    judged = int(room * JUDGED_SHARE)
    excerpts = (Excerpted(t, excerpt(t.text, asked)) for t in turns) if asked else ()
    # An excerpt that reads like an order to an AI (a page the assistant read out, a pasted
    # injection) is left out: a raw excerpt goes into the agent's context uncurated.
    excerpts = (x for x in excerpts if not instruction_like(x.excerpt.text))
    return Candidates(fit(entries, entry_line, judged)[0], fit(notes, note_line, judged)[0],
                      fit(excerpts, lambda x: x.line, judged)[0])


def _current(found: Candidates, query: str | None, asked: Query | None, replies: frozenset[Place]) -> Candidates:
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
        [x for x in excerpts if x.excerpt.parts
         and (asked is None or asked.score(x.excerpt.text) > 0 or x.place in replies)],
    )


def _fill_by_share(found: Candidates, room: int) -> Candidates:
    """Curated memory first, up to MEMORY_SHARE when notes wait; then the notes."""
    share = int(room * MEMORY_SHARE) if found.notes else room
    entries, used = fit(found.entries, entry_line, share)
    return Candidates(entries, fit(found.notes, note_line, room - used)[0], [])


EXCERPTS, NOTES, ENTRIES = 0, 1, 2  # the sections' places in the merge: ties go to the first


def _fill_by_relevance(found: Candidates, asked: Query, replies: frozenset[Place], room: int) -> Candidates:
    """The sections merged by how much of the query their next items hold (see the module
    doc); an item too big for the room left is passed over, and an entry an excerpt
    shown quotes is left out."""
    sections = [
        _best_still_to_come(_excerpt_scores(found.excerpts, asked, replies)),
        [(asked.score(n.content), note_line(n), n) for n in found.notes],
        [(asked.score(claims.unquoted(e.content)), entry_line(e), e) for e in found.entries],
    ]
    taken: list[list] = [[], [], []]
    heads = [0, 0, 0]
    while waiting := [s for s in range(3) if heads[s] < len(sections[s])]:
        section = max(waiting, key=lambda s: (sections[s][heads[s]][0], -s))  # equals: what was said first
        _, line, item = sections[section][heads[section]]
        heads[section] += 1
        # An excerpt holds every word of an entry it quotes (so at least as much of the query)
        # and wins ties, so it is taken, or passed over, before that entry comes up.
        if section == ENTRIES and any(_quotes(item, x) for x in taken[EXCERPTS]):
            continue
        if cost(line) <= room:
            taken[section].append(item)
            room -= cost(line)
    return Candidates(entries=taken[ENTRIES], notes=taken[NOTES], excerpts=taken[EXCERPTS])


def _excerpt_scores(
    excerpts: list[Excerpted], asked: Query, replies: frozenset[Place]
) -> list[tuple[float, str, Excerpted]]:
    """Each excerpt with how much of the query it holds; a reply right after its question
    with its question's."""
    scored, previous = [], None
    for x in excerpts:
        score = asked.score(x.excerpt.text)
        if x.place in replies and previous is not None and previous[2].place == (x.place[0], x.place[1] - 1):
            score = max(score, previous[0])
        previous = (score, x.line, x)
        scored.append(previous)
    return scored


def _quotes(entry: MemoryEntry, shown: Excerpted) -> bool:
    """Does the excerpt hold the entry's words (a statement the dream quoted from that turn)?"""
    return _said(entry.content) in shown.lowered


@functools.lru_cache(maxsize=1 << 12)
def _said(content: str) -> str:
    return claims.unquoted(content).lower()


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

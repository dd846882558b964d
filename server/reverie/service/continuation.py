"""Logging a transcript that keeps growing, as a chain of parts.

Some clients hand over the whole transcript every time a session ends, and again after it
was resumed and ended once more (Claude Code's SessionEnd hook does). An ended session is
final, so each hand-over becomes its own ended session — a *part* — holding only the turns
no earlier part holds: `<base>`, `<base>.2`, `<base>.3`, …

Which turns are already stored is decided by content, not by count: walking the parts in
order, a part is passed over unless the transcript, from the current offset, holds exactly
its turns (after redaction, as stored), or a beginning of them when the transcript ends
inside it. So a conversation that was rewound or forked, whose later turns differ from a
stored part, logs its own turns as a new part instead of having them skipped: the worst
case is a turn stored twice, never a turn lost. Reading the parts and writing the new one
happen in one write transaction, so two hooks handing over the same transcript at once
store its turns once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from reverie import config
from reverie.models import Outcome, SessionRecord, Turn
from reverie.service import ingest
from reverie.store import Database, sessions

if TYPE_CHECKING:
    from reverie.service import Reverie


@dataclass(frozen=True)
class Part:
    """A part just logged."""

    session_id: str
    turns: int
    redactions: int


@dataclass(frozen=True)
class About:
    """What a new part records besides its turns."""

    title: str
    summary: str | None = None  # the client's own summary of the conversation
    ended_at: datetime | None = None  # when the conversation ended; the time of logging if unknown
    notes: tuple[str, ...] = ()
    outcome: Outcome | None = None


Title = str | Callable[[list[Turn]], str]  # fixed, or made from the part's own turns


async def log_new_turns(
    reverie: Reverie, base_id: str, turns: list[Turn], *, agent_id: str | None, title: Title,
    project: str | None = None, summary: str | None = None, ended_at: datetime | None = None,
    notes: Sequence[str] = (), outcome: Outcome | None = None,
) -> Part | None:
    """Store the turns of `turns` that no part of `base_id` holds yet, in `project` (a key);
    None when there are none.

    A part's title is `title` — given the part's own turns when it is a function, so a
    resumed part is titled by what was asked in it, not by the conversation's first request
    — with " (part N)" after the first part. `ended_at`, `summary`, `notes` and `outcome`
    go to the new part.
    """
    config.check_identifier(base_id, "session_id")
    agent, db = reverie.agent(agent_id), reverie.db
    async with db.transaction():
        parts = await _parts(db, base_id)
        new = turns[_stored_prefix(turns, parts):]
        if not new:
            return None
        number = len(parts) + 1
        part_id = config.check_identifier(_part_id(base_id, number), "session_id")
        named = title(new) if callable(title) else title
        about = About(named if number == 1 else f"{named} (part {number})", summary, ended_at, tuple(notes), outcome)
        redactions = await _log_part(db, part_id, new, agent, about, reverie.clock, project,
                                     reverie.caller().grants)  # hooks run as the local user
    return Part(part_id, len(new), redactions)


async def _parts(db: Database, base_id: str) -> list[SessionRecord]:
    """Every stored part of `base_id` in order, with its events: the parts run from 1 to the first number missing."""
    stored, ids = await sessions.ids_under(db, base_id), []
    while (part_id := _part_id(base_id, len(ids) + 1)) in stored:
        ids.append(part_id)
    return await sessions.session_records(db, ids)


def _part_id(base_id: str, number: int) -> str:
    return base_id if number == 1 else f"{base_id}.{number}"


def _stored_prefix(turns: list[Turn], parts: list[SessionRecord]) -> int:
    """How many leading turns of `turns` the parts already hold; a part from another branch is passed over."""
    if not parts:
        return 0  # a new conversation (most hook runs): no need to redact its turns to compare them
    said = [_said(turn) for turn in ingest.redacted_turns(turns)[0]]
    offset = 0
    for part in parts:
        stored = [_said(event) for event in part.events]
        piece = said[offset:offset + len(stored)]
        if piece and piece == stored[:len(piece)]:
            offset += len(piece)
    return offset


def _said(turn: Turn) -> tuple[str, str, str | None, bool]:
    return turn.role, turn.content, turn.tool_name, turn.is_error


async def _log_part(db: Database, part_id: str, turns: list[Turn], agent: str, about: About,
                    clock: Callable[[], datetime], project: str | None = None,
                    author: frozenset[str] = frozenset()) -> int:
    """Store `turns` as one new ended session, in batches within the per-call limits; returns the redactions.

    Notes, outcome and summary go with the last batch, the one that ends the session.
    """
    batches = list(_batches(turns))
    redactions = 0
    for number, batch in enumerate(batches, 1):
        last = number == len(batches)
        notes, summary = (list(about.notes), about.summary) if last else ([], None)
        ingest.check_sizes(batch, notes, about.title, summary)
        logged = await ingest.log(
            db, batch, notes, session_id=part_id, agent_id=agent, title=about.title,
            outcome=about.outcome if last else None, summary=summary, ended=last, now=clock(),
            project=project, author=author, ended_at=about.ended_at,
        )
        redactions += logged.redactions
    return redactions


def _batches(turns: list[Turn]) -> Iterator[list[Turn]]:
    """Consecutive runs of turns, each within the turn and character limits of one log call."""
    batch: list[Turn] = []
    size = 0
    for turn in turns:
        if batch and (len(batch) == config.MAX_TURNS or size + len(turn.content) > config.MAX_TRANSCRIPT_CHARS):
            yield batch
            batch, size = [], 0
        batch.append(turn)
        size += len(turn.content)
    if batch:
        yield batch

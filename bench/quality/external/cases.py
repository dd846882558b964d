"""The shape every public data set is read into: dated sessions to log and questions to ask.

A `Case` is what one fresh database holds: LongMemEval gives one per question (each
question has its own haystack), LoCoMo one per conversation (its questions share it).
A question carries only what its measures need; a measure that does not apply to it is
left empty (no answer, no stale values, no evidence) and the question is not counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True)
class Session:
    id: str
    date: datetime
    turns: list[dict]  # {"role", "content"}; the session date becomes every turn's timestamp when logged


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    answer: str | None = None     # gold, scored by ans_hit only where the evidence states it verbatim
    current: str | None = None    # the value ku_fresh wants; None where there is no stale value
    stale: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()  # the evidence turns' text, for evid_hit
    category: int | None = None


@dataclass(frozen=True)
class Case:
    id: str
    sessions: list[Session]
    questions: list[Question] = field(default_factory=list)


def dated(sessions: list[tuple[datetime, list[dict]]]) -> list[Session]:
    """Sessions in date order (stable on ties), named by their place in it.

    Ids are ours, not random, so the text a read returns — which cites session ids — is
    the same on every run; and they carry no number that a whole-number match could take
    for a value ("session-17" normalises to one token).
    """
    ordered = sorted(sessions, key=lambda pair: pair[0])
    return [Session(f"session-{n}", date, turns) for n, (date, turns) in enumerate(ordered, 1) if turns]


def as_utc(moment: datetime) -> datetime:
    """The data's dates carry no zone; they are taken as UTC, like the server takes naive ones."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)


class Clock:
    """The server's clock, moved by the bench along the data: it ticks a second per reading
    and never goes back (a move to an earlier moment is ignored)."""

    def __init__(self, start: datetime):
        self.now = as_utc(start)

    def move_to(self, moment: datetime) -> None:
        self.now = max(self.now, as_utc(moment))

    def __call__(self) -> datetime:
        reading, self.now = self.now, self.now + SECOND
        return reading


def clock_after(last: datetime) -> Clock:
    """A clock a day after `last` that ticks a second per call: nothing in the data is stale yet."""
    return Clock(as_utc(last) + DAY)


def dream_time(last: Session, following: Session | None) -> datetime:
    """When a dream after `last` runs: a day after it, as for the single dream, or when the
    following session starts if that is sooner — a user's server dreams between sessions, so
    no dream is judged from a "now" later than a session it has not seen yet."""
    after = as_utc(last.date) + DAY
    return after if following is None else max(as_utc(last.date), min(after, as_utc(following.date)))


def batches(sessions: list[Session], every: int | None) -> list[list[Session]]:
    """The sessions logged before each dream: `every` at a time, the rest before the final
    dream; all of them before one dream when `every` is None."""
    if every is None:
        return [sessions]
    return [sessions[i : i + every] for i in range(0, len(sessions), every)]

"""When to dream without being asked, and the background loop that does it.

A dream is *due* when at least `after` ended sessions have not been reviewed by any dream
yet, or when it is `every` since the last dream and at least one such session exists.
With nothing new to review, nothing is due. That one rule, `dream_due`, answers both
`log_session` ("a dream is due") and the scheduler, so the two never disagree.

"Reviewed" counts every dream, while "consolidated" counts only applied ones: a dream that
found nothing leaves its sessions to the next dream (another engine may do better) but does
not make one due again, so the same engine is not re-run over the same sessions on every log.

`run_schedule` is the loop `reverie serve` runs beside the MCP server. It checks once a
minute (more often if `every` is shorter) and dreams (engine "auto") when a dream is due
and no tool call came in for `idle`, so a background dream never competes with a live
session:

- `review` mode: the proposal waits for a person; `read_memory` lists it, so the next
  session shows it to the user. While a proposal waits, no further one piles up.
- `auto` mode: operations with no risk flag are applied; flagged ones wait in a new
  pending proposal (`Reverie.apply_unflagged`).

A dream that another coroutine or process is running (it holds the dream lock) is
skipped, not waited for: the next check sees whether one is still due. So is one while
an agent answers a dream brief (`engine="agent"`) over every scope handed out within
`BRIEF_GRACE`: the lock covers only making the brief, and a new dream would supersede it
mid-answer.

Only what the background dream would redo holds it back: a proposal or brief over the
same reach as its own (every scope, as the local caller or a curator dreams). A dream over
one scope — all a token without `write:shared` can start — is never superseded by it, so
it does not block it either: no such token can stop background dreams for everyone by
leaving a brief open or a proposal undecided.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import anyio

from reverie.config import (
    DEFAULT_DREAM_AFTER,
    DEFAULT_DREAM_IDLE,
    DreamMode,
    Settings,
    format_duration,
    parse_duration,
)
from reverie.errors import DreamRunning, InvalidInput, ReverieError
from reverie.models import Proposal
from reverie.store import proposals, sessions

if TYPE_CHECKING:
    from reverie.service import Reverie

__all__ = ["Activity", "Schedule", "dream_due", "dream_if_due", "parse_duration", "run_schedule"]

CHECK_EVERY = timedelta(seconds=60)
RETRY_AFTER = timedelta(minutes=15)  # after a failed dream, e.g. the model API is down
ENGINE = "auto"                      # anthropic with ANTHROPIC_API_KEY set, else heuristic
BRIEF_GRACE = timedelta(minutes=15)  # time an agent gets to answer a brief before a dream may supersede it
SCOPE = None                         # the background dream's: every scope, as the local caller

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Schedule:
    every: timedelta | None = None       # due this long after the last dream (if anything is new)
    after: int | None = DEFAULT_DREAM_AFTER  # due once this many sessions await a dream
    mode: DreamMode = "review"           # off: no background dreams; review; auto
    idle: timedelta = DEFAULT_DREAM_IDLE  # no background dream until tools are quiet this long

    def __post_init__(self) -> None:
        if self.every is not None and self.every <= timedelta(0):
            raise InvalidInput("A dream schedule's `every` must be longer than zero.")
        if self.after is not None and self.after < 1:
            raise InvalidInput("A dream schedule's `after` must be 1 session or more.")
        if self.idle < timedelta(0):
            raise InvalidInput("A dream schedule's `idle` cannot be negative.")

    @classmethod
    def from_settings(cls, settings: Settings) -> Schedule:
        return cls(every=settings.dream_every, after=settings.dream_after, mode=settings.dream_mode,
                   idle=settings.dream_idle)

    @property
    def check_every(self) -> timedelta:
        return min(self.every, CHECK_EVERY) if self.every else CHECK_EVERY


class Activity:
    """When the MCP layer last served a tool call; it calls `touch(now)` on every one."""

    def __init__(self) -> None:
        self.last: datetime | None = None

    def touch(self, now: datetime) -> None:
        if self.last is None or now > self.last:
            self.last = now


async def dream_due(reverie: Reverie, schedule: Schedule, now: datetime, agent_id: str | None = None) -> str | None:
    """Why a dream is due ("5 sessions await a dream", "6h since the last dream"), or None.

    With `agent_id`, only that agent's sessions count: an agent that cannot dream across
    agents is told a dream is due when its own sessions make one due.
    """
    async with reverie.db.snapshot():
        waiting, oldest = await sessions.undreamed(reverie.db, agent_id)
        last = await proposals.last_dream_at(reverie.db)
    if not waiting:
        return None
    if schedule.after is not None and waiting >= schedule.after:
        return f"{waiting} {'session awaits' if waiting == 1 else 'sessions await'} a dream"
    if schedule.every is not None and now - (last or oldest) >= schedule.every:
        since = "the last dream" if last else "the oldest session awaiting one"
        return f"{format_duration(schedule.every)} since {since}"
    return None


async def dream_if_due(reverie: Reverie, schedule: Schedule, last_activity: datetime | None) -> Proposal | None:
    """Dream now if the schedule says so; the proposal as it stands afterwards, else None.

    None when: the mode is off, a tool call came in within `idle` of now, nothing is due,
    a proposal already waits for the user (review mode), an agent may still be answering
    a dream brief, or another dream holds the lock.
    """
    now = reverie.clock()
    if schedule.mode == "off" or last_activity is not None and now - last_activity < schedule.idle:
        return None
    reason = await dream_due(reverie, schedule, now)
    if reason is None or await _dream_in_hand(reverie, schedule, now):
        return None
    try:
        proposal = await reverie.propose_dream(ENGINE, scope=SCOPE)
    except DreamRunning:
        return None
    if schedule.mode == "auto" and proposal.status == "pending":
        result = await reverie.apply_unflagged(proposal.id)
        log.info("Dreamed (%s) and applied what carried no risk flag: %s", reason, result.message)
        return await reverie.proposal(proposal.id)
    log.info("Dreamed (%s): proposal %s is %s with %d change(s).", reason, proposal.id, proposal.status,
             len(proposal.operations))
    return proposal


async def _dream_in_hand(reverie: Reverie, schedule: Schedule, now: datetime) -> bool:
    """A proposal over every scope waiting for the user (review mode), or such a brief an agent
    may be answering: what this dream (over every scope too) would pile onto or supersede."""
    if schedule.mode == "review" and await proposals.waiting_over(reverie.db, SCOPE):
        return True
    brief_at = await proposals.newest_open_brief_at(reverie.db, SCOPE)
    return brief_at is not None and now - brief_at < BRIEF_GRACE


async def run_schedule(
    reverie: Reverie, schedule: Schedule, activity: Activity,
    *, sleep: Callable[[float], Awaitable[object]] = anyio.sleep,
) -> None:
    """Dream in the background whenever due and idle, until cancelled.

    Returns at once in mode "off". A failed dream is logged and the next attempt waits
    `RETRY_AFTER`, so a broken API key does not mean a paid call every minute.
    """
    if schedule.mode == "off":
        return
    retry_at: datetime | None = None
    while True:
        await sleep(schedule.check_every.total_seconds())
        if retry_at is not None and reverie.clock() < retry_at:
            continue
        retry_at = None
        try:
            await dream_if_due(reverie, schedule, activity.last)
        except ReverieError as error:
            log.warning("Background dream failed: %s (next try in %s)", error, format_duration(RETRY_AFTER))
            retry_at = reverie.clock() + RETRY_AFTER
        except Exception:  # the top of a background task: the MCP server must outlive a failed dream
            log.exception("Background dream failed (next try in %s)", format_duration(RETRY_AFTER))
            retry_at = reverie.clock() + RETRY_AFTER

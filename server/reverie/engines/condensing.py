"""Sessions and memory as a model reads them: numbered lines, cut to fit.

Both model-backed paths (the Claude engine's map calls and the agent engine's brief) show
sessions the same way, so evidence cites the same `#index` and `note index` whichever model
reflects. Each event is cut to a length and a session to a budget, keeping its head and
tail; lines inside an event are indented so transcript text cannot pose as a new event.

Times are shown because the newest statement of a subject wins: the header gives the
session's start (UTC, to the minute), and an event said at another time carries its own
(`#7 [16:40] user: …`, with the date when the day differs). An event without a mark was
said when the session started; notes carry none, as their time is their session's. Each
mark stands on its own, so a reader of a session cut in the middle never misdates a turn.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from reverie.clock import as_utc
from reverie.models import Event, Memory, SessionRecord
from reverie.text import within_budget


@dataclass(frozen=True)
class Cut:
    """How much of a session a reader gets, in characters."""

    event_chars: int = 2_000      # one event, or one note
    session_chars: int = 60_000   # one session's events
    notes_chars: int = 20_000     # one session's notes


FULL = Cut()


def condensed(session: SessionRecord, cut: Cut = FULL) -> str:
    """A header, then numbered events and notes, cut to fit."""
    lines = [event_line(e, cut, turn_time(e, session)) for e in session.events]
    events = fit(lines, cut.session_chars, "events") or ["(none)"]
    notes = fit([f"note {n.index}: {clipped(n.content, cut)}" for n in session.notes], cut.notes_chars, "notes")
    return "\n".join([session_header(session), "Events:", *events, *(["Notes:", *notes] if notes else [])])


def session_header(session: SessionRecord) -> str:
    title = f' "{session.title}"' if session.title else ""
    summary = f": {session.outcome_summary}" if session.outcome_summary else ""
    project = f", project {session.project}" if session.project else ""
    return (f"## Session {session.id}{title}, agent {session.agent_id}{project}, started {moment(session.started_at)} "
            f"UTC, outcome {session.outcome}{summary}")


def event_line(event: Event, cut: Cut = FULL, time: str = "") -> str:
    label = f"{event.role}[{event.tool_name}]" if event.tool_name else event.role
    error = " (error)" if event.is_error else ""
    when = f"[{time}] " if time else ""
    return f"#{event.index} {when}{label}{error}: {clipped(event.content, cut)}"


def turn_time(event: Event, session: SessionRecord) -> str:
    """When `event` was said, if not at its session's start: "16:40", or "2026-05-04 09:00"."""
    if event.timestamp is None:
        return ""
    said, started = as_utc(event.timestamp), as_utc(session.started_at)
    if said.replace(second=0, microsecond=0) == started.replace(second=0, microsecond=0):
        return ""
    return f"{said:%H:%M}" if said.date() == started.date() else moment(said)


def moment(when: datetime) -> str:
    return f"{as_utc(when):%Y-%m-%d %H:%M}"


def clipped(text: str, cut: Cut = FULL) -> str:
    """`text` cut to `cut.event_chars`, continuation lines indented."""
    limit = cut.event_chars
    kept = text if len(text) <= limit else f"{text[:limit]} …[{len(text) - limit} more characters]"
    return indented(kept)


def indented(text: str) -> str:
    return text.replace("\n", "\n    ")


def fit(lines: list[str], budget: int, noun: str) -> list[str]:
    """All lines if they fit in `budget` characters; else the head and the tail, the middle left out."""
    if sum(len(line) + 1 for line in lines) <= budget:
        return lines
    head = _within(lines, budget // 2)
    tail = _within(lines[len(head):][::-1], budget // 2)[::-1]
    return [*head, f"… {len(lines) - len(head) - len(tail)} {noun} left out to fit …", *tail]


def _within(lines: list[str], budget: int) -> list[str]:
    return within_budget(lines, lambda line: len(line) + 1, budget)[0]


def memory_snapshot(memories: list[Memory]) -> str:
    lines = [memory_line(m) for m in sorted(memories, key=lambda m: m.id)]
    return "# Current memory\n" + ("\n".join(lines) or "(empty)")


def memory_line(memory: Memory) -> str:
    read = memory.last_read_at.date() if memory.last_read_at else "never"
    return (f"- {memory.id} [{memory.category}, {memory.scope}, confidence {memory.confidence:.2f}, "
            f"observed {moment(memory.observed_at)}, last read {read}, {len(memory.sources)} source(s)]: "
            f"{indented(memory.content)}")

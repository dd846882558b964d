"""Logging sessions: validate, redact, append, hash.

Secrets are redacted here, before anything is written, so no later layer (memory,
notes, proposals, exports) can ever hold one. A transcript is appended whole or not
at all.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from json.encoder import encode_basestring_ascii

from reverie import config, safety
from reverie.clock import as_utc
from reverie.errors import Conflict, InvalidInput
from reverie.models import LogResult, Outcome, SessionRecord, Turn
from reverie.safety import redact
from reverie.store import Database
from reverie.store import sessions as store
from reverie.transcript import TranscriptError, parse_transcript


def turns_from(transcript: list[Turn] | str) -> list[Turn]:
    if isinstance(transcript, str):
        try:
            return parse_transcript(transcript)
        except TranscriptError as error:
            raise InvalidInput(str(error)) from None
    return list(transcript)


def check_sizes(turns: list[Turn], notes: list[str], title: str | None, summary: str | None = None) -> None:
    if not turns and not any(note.strip() for note in notes):
        raise InvalidInput("The transcript is empty: send at least one turn (or notes to add to an open session).")
    if len(turns) > config.MAX_TURNS:
        raise InvalidInput(f"{len(turns)} turns in one call; the limit is {config.MAX_TURNS}. Split the transcript "
                           "and send the rest with the same session_id and ended=false until the last part.")
    size = sum(len(t.content) + len(t.tool_name or "") for t in turns) + len(summary or "")
    if size > config.MAX_TRANSCRIPT_CHARS:
        raise InvalidInput(f"The transcript is {size:,} characters; the limit per call is "
                           f"{config.MAX_TRANSCRIPT_CHARS:,}. Send it in parts with the same session_id.")
    if len(notes) > config.MAX_NOTES or any(len(n) > config.MAX_NOTE_CHARS for n in notes):
        raise InvalidInput(f"At most {config.MAX_NOTES} notes of {config.MAX_NOTE_CHARS} characters each.")
    if title and len(title) > config.MAX_TITLE_CHARS:
        raise InvalidInput(f"The title is longer than {config.MAX_TITLE_CHARS} characters.")


def redacted_turns(turns: list[Turn]) -> tuple[list[Turn], int]:
    return safety.redacted_turns(turns, lambda turn, content, tool_name: turn.model_copy(
        update={"content": content, "tool_name": tool_name}))


def redacted_texts(texts: list[str]) -> tuple[list[str], int]:
    pairs = [redact(text) for text in texts if text.strip()]
    return [text for text, _ in pairs], sum(count for _, count in pairs)


def chain_hash(previous: str, turns: list[Turn]) -> str:
    """sha256 chained over events, so appending never needs to reread the session."""
    digest = previous
    for turn in turns:
        digest = hashlib.sha256((digest + _chain_line(turn)).encode()).hexdigest()
    return digest


def _chain_line(turn: Turn) -> str:
    """json.dumps(the turn without its timestamp, sort_keys=True), written out by hand.

    Stored hashes fix this format for good. Writing it out is ~3x faster than model_dump
    and json.dumps, which cost more than the hashing; test_ingest_speed_paths holds the two
    to the same bytes.
    """
    quote = encode_basestring_ascii
    tool_name = "null" if turn.tool_name is None else quote(turn.tool_name)
    return (f'{{"content": {quote(turn.content)}, "is_error": {"true" if turn.is_error else "false"}, '
            f'"role": {quote(turn.role)}, "tool_name": {tool_name}}}')


async def open_or_create(
    db: Database, session_id: str | None, agent_id: str, turns: list[Turn], now: datetime, project: str | None = None
) -> tuple[str, str]:
    """The session to append to (id, content hash so far), created if new (in `project`, a key;
    an open session keeps the project it was created in)."""
    if session_id is not None:
        found = await store.get_session(db, session_id)
        if found is not None:
            return _appendable(found, agent_id), found.content_hash
    new_id = session_id or f"ses_{uuid.uuid4().hex[:12]}"
    started = next((as_utc(t.timestamp) for t in turns if t.timestamp), now)
    await store.create_session(db, new_id, agent_id, started, now, project)
    return new_id, ""


def _appendable(session: SessionRecord, agent_id: str) -> str:
    if session.ended_at is not None:
        raise Conflict(f"Session {session.id} has ended and is final. Log a new session (omit session_id).")
    if session.agent_id != agent_id:
        raise Conflict(f"Session {session.id} belongs to agent {session.agent_id!r}, not {agent_id!r}.")
    return session.id


@dataclass(frozen=True)
class Logged:
    """What one log call stored, enough to answer it without reading the session back."""

    session_id: str
    agent_id: str
    content_hash: str
    events_added: int
    event_count: int  # the session's events, these included
    notes_added: int
    redactions: int
    ended: bool


async def log(
    db: Database, turns: list[Turn], notes: list[str], *, session_id: str | None, agent_id: str,
    title: str | None, outcome: Outcome | None, summary: str | None, ended: bool, now: datetime,
    project: str | None = None, author: frozenset[str] = frozenset(), ended_at: datetime | None = None,
) -> Logged:
    """Append turns and notes in the open transaction; a new session is created in `project` (a key).

    `author`: the grants of the caller writing them (none, unless the caller says so), which
    bound where a dream may put what they say without a person's approval.
    An ended session ended at `ended_at` (a transcript's last timestamp), or now if unknown.
    """
    turns, redactions = redacted_turns(turns)
    notes, note_redactions = redacted_texts(notes)
    title, title_redactions = redact(title) if title else (None, 0)
    summary, summary_redactions = redact(summary) if summary else (None, 0)
    sid, previous = await open_or_create(db, session_id, agent_id, turns, now, project)
    events, note_count = await store.counts(db, sid)
    await store.record_author(db, sid, author, first=events == note_count == 0)
    await store.append_events(db, sid, events, turns)
    await store.append_notes(db, sid, note_count, [(note, now) for note in notes])
    digest = chain_hash(previous, turns)
    await store.update_session(db, sid, title=title, outcome=outcome, outcome_summary=summary,
                               content_hash=digest, ended_at=(ended_at or now) if ended else None)
    return Logged(
        session_id=sid, agent_id=agent_id, content_hash=digest, events_added=len(turns),
        event_count=events + len(turns), notes_added=len(notes),
        redactions=redactions + note_redactions + title_redactions + summary_redactions, ended=ended,
    )


async def log_result(
    db: Database, logged: Logged, dream_due: bool, counted_agent: str | None = None
) -> LogResult:
    """The answer to a log call; sessions awaiting a dream are every agent's, or `counted_agent`'s."""
    awaiting = await store.count_unconsolidated(db, counted_agent)
    return LogResult(
        session_id=logged.session_id, agent_id=logged.agent_id, events_added=logged.events_added,
        event_count=logged.event_count, notes_added=logged.notes_added, content_hash=logged.content_hash,
        ended=logged.ended, redactions=logged.redactions, sessions_awaiting_dream=awaiting, dream_due=dream_due,
    )

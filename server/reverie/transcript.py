"""Transcripts as people hand them over, turned into `Turn`s.

`reverie log FILE` and `log_session(transcript=...)` accept three shapes, detected in this
order: a JSON array of turns (or `{"turns": [...]}`), a Claude Code JSONL transcript (one
JSON object per line), and plain text where `User:`, `Assistant:`, `System:`, `Tool:` or
`Tool(name):` start a turn. Text with none of those prefixes is one user turn.

JSON turns and plain text are read all-or-nothing: either every turn is returned or a
`TranscriptError` says which line or item is wrong and what was expected, because a stored
session is immutable and a half-read transcript would be worse than none. A Claude Code
transcript is the exception, read by `reverie.claude_transcript`: Claude Code appends to
it line by line, so a crash can cut its last line in half; such a line is skipped and
counted (`Transcript.skipped`) rather than costing the whole session.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, get_args

from reverie.claude_transcript import Transcript, read_claude_code
from reverie.models import Role, Turn

__all__ = ["Transcript", "TranscriptError", "parse_session", "parse_transcript"]

ROLES: tuple[str, ...] = get_args(Role)
FORMATS = (
    'Reverie reads a JSON array of turns ([{"role": "user", "content": "..."}]), '
    '{"turns": [...]}, a Claude Code JSONL transcript, or plain text with lines '
    "starting 'User:', 'Assistant:', 'System:', 'Tool:' or 'Tool(name):'."
)
TURN_SHAPE = '{"role": "user", "content": "..."} (optional: tool_name, is_error, timestamp)'

# `[{` or `[]` is a JSON array with a typo; `[10:02] User: hi` is plain text.
_JSON_ARRAY_START = re.compile(r"\[\s*[{\]]")
# Only unindented prefixes start a turn, so quoted dialogue inside a message stays put.
_SPEAKER = re.compile(r"(user|assistant|system|tool)\s*(?:\(\s*([^)]*?)\s*\))?\s*:\s?", re.IGNORECASE)


class TranscriptError(ValueError):
    """A transcript that cannot be read; the message says where and what to fix."""


def parse_transcript(text: str) -> list[Turn]:
    """Every turn of `text`, in order, whichever supported format it is in; at least one."""
    read = parse_session(text)
    if not read.turns:
        unreadable = f" {len(read.skipped)} line(s) could not be read: {read.skipped[0]}." if read.skipped else ""
        raise TranscriptError(f"The transcript has no user, assistant, tool or system turns.{unreadable} {FORMATS}")
    return read.turns


def parse_session(text: str) -> Transcript[Turn]:
    """`text` read whichever supported format it is in: its turns (perhaps none) and what the format tells besides."""
    text = text.strip()
    if not text:
        raise TranscriptError(f"The transcript is empty. {FORMATS}")
    document = _json_document(text)
    if isinstance(document, dict) and "type" not in document:
        document = _turns_list(document)
    if isinstance(document, list):
        return _session(_turns_from_json(document))
    if text.startswith("{"):
        return read_claude_code(text)
    return _session(_turns_from_plain_text(text))


def _session(turns: list[Turn]) -> Transcript[Turn]:
    return Transcript(turns, last_timestamp=max((t.timestamp for t in turns if t.timestamp), default=None))


def _json_document(text: str) -> Any:
    """The text as one JSON value, or None when it is JSONL or plain text."""
    if not text.startswith(("[", "{")):
        return None
    try:
        return json.loads(text)
    except RecursionError:
        if text.startswith("{"):
            return None  # a Claude Code line nested too deep: that reader skips and counts it
        raise TranscriptError("The transcript is JSON nested too deeply to read.") from None
    except json.JSONDecodeError as exc:
        if _JSON_ARRAY_START.match(text):
            where = f"line {exc.lineno}, column {exc.colno}"
            raise TranscriptError(f"The transcript looks like a JSON array but {where} is invalid: {exc.msg}.") from exc
        return None


def _validated(fields: dict[str, Any], where: str) -> Turn:
    try:
        return Turn.model_validate(fields)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        # pydantic's text is "N validation errors", then the field, then the message.
        problem = ": ".join(line.strip() for line in str(exc).splitlines()[1:3]).split(" [type=")[0]
        raise TranscriptError(f"{where} is not a valid turn: {problem}. Expected {TURN_SHAPE}.") from exc


def _json_kind(value: Any) -> str:
    kinds = {str: "string", list: "array", dict: "object", bool: "boolean", int: "number", float: "number"}
    return kinds.get(type(value), "null")


def _require_content(role: str, content: Any, where: str) -> None:
    # A tool may legitimately print nothing; anyone else saying nothing is a broken turn.
    if not isinstance(content, str) or (role != "tool" and not content.strip()):
        raise TranscriptError(f"{where} has no content: every {role} turn needs the text that was said.")


# --- JSON: [{"role": ..., "content": ...}] or {"turns": [...]} ------------------------


def _turns_list(document: dict[str, Any]) -> list[Any]:
    turns = document.get("turns")
    if not isinstance(turns, list):
        raise TranscriptError(f'A JSON object transcript needs a "turns" list of {TURN_SHAPE}.')
    return turns


def _turns_from_json(items: list[Any]) -> list[Turn]:
    return [_json_turn(item, f"Turn {number}") for number, item in enumerate(items, 1)]


def _json_turn(item: Any, where: str) -> Turn:
    if not isinstance(item, dict):
        raise TranscriptError(f"{where} is a JSON {_json_kind(item)}; expected an object like {TURN_SHAPE}.")
    role = item.get("role")
    if role not in ROLES:
        said = f"role {role!r}" if "role" in item else "no role"
        raise TranscriptError(f"{where} has {said}; the allowed roles are {', '.join(ROLES)}.")
    _require_content(role, item.get("content"), where)
    return _validated(item, where)


# --- plain text: "User: ..." / "Assistant: ..." ---------------------------------------


@dataclass
class _Draft:
    role: str
    tool_name: str | None
    line: int
    lines: list[str] = field(default_factory=list)


def _turns_from_plain_text(text: str) -> list[Turn]:
    drafts: list[_Draft] = []
    for number, line in enumerate(text.splitlines(), 1):
        speaker = _SPEAKER.match(line)
        if speaker:
            drafts.append(_Draft(speaker[1].lower(), speaker[2] or None, number, [line[speaker.end() :]]))
        elif drafts:
            drafts[-1].lines.append(line)
        else:
            drafts.append(_Draft("user", None, number, [line]))  # no prefix (yet): the user speaking
    return [_plain_turn(draft) for draft in drafts]


def _plain_turn(draft: _Draft) -> Turn:
    content = "\n".join(draft.lines).strip()
    where = f"Line {draft.line}"
    _require_content(draft.role, content, where)
    return _validated({"role": draft.role, "content": content, "tool_name": draft.tool_name}, where)

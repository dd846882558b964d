"""Transcripts as people hand them over, turned into `Turn`s.

`reverie log FILE` and `log_session(transcript=...)` accept three shapes, detected in this
order: a JSON array of turns (or `{"turns": [...]}`), a Claude Code JSONL transcript (one
JSON object per line), and plain text where `User:`, `Assistant:`, `System:`, `Tool:` or
`Tool(name):` start a turn. Text with none of those prefixes is one user turn.

Parsing is pure and all-or-nothing: either every turn is returned or a `TranscriptError`
says which line or item is wrong and what was expected, because a stored session is
immutable and a half-read transcript would be worse than none.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, get_args

from reverie.models import Role, Turn

__all__ = ["TranscriptError", "parse_transcript"]

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
    """Every turn of `text`, in order, whichever supported format it is in."""
    text = text.strip()
    if not text:
        raise TranscriptError(f"The transcript is empty. {FORMATS}")
    turns = _parse(text)
    if not turns:
        raise TranscriptError(f"The transcript has no user, assistant, tool or system turns. {FORMATS}")
    return turns


def _parse(text: str) -> list[Turn]:
    document = _json_document(text)
    if isinstance(document, dict) and "type" not in document:
        document = _turns_list(document)
    if isinstance(document, list):
        return _turns_from_json(document)
    if text.startswith("{"):
        return _turns_from_jsonl(text)
    return _turns_from_plain_text(text)


def _json_document(text: str) -> Any:
    """The text as one JSON value, or None when it is JSONL or plain text."""
    if not text.startswith(("[", "{")):
        return None
    try:
        return json.loads(text)
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


# --- Claude Code JSONL ----------------------------------------------------------------


def _turns_from_jsonl(text: str) -> list[Turn]:
    tool_names: dict[str, str] = {}  # tool_use id -> tool name, for the results that follow
    turns: list[Turn] = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            turns += _jsonl_turns(_jsonl_record(line, number), f"Line {number}", tool_names)
    return turns


def _jsonl_record(line: str, number: int) -> dict[str, Any]:
    expected = "a Claude Code transcript has one JSON object per line"
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise TranscriptError(f"Line {number} is not valid JSON ({exc.msg}, column {exc.colno}); {expected}.") from exc
    if not isinstance(record, dict):
        raise TranscriptError(f"Line {number} is a JSON {_json_kind(record)}, not an object; {expected}.")
    return record


def _jsonl_turns(record: dict[str, Any], where: str, tool_names: dict[str, str]) -> list[Turn]:
    if record.get("type") not in ("user", "assistant"):
        return []  # summaries, file snapshots and system lines are not conversation
    turns = []
    for block in _message_blocks(record, where):
        fields = _BLOCK_READERS.get(block.get("type"), _skipped)(block, record["type"], tool_names)
        if fields is not None:
            turns.append(_validated({**fields, "timestamp": record.get("timestamp")}, where))
    return turns


def _message_blocks(record: dict[str, Any], where: str) -> list[dict[str, Any]]:
    message = record.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list) or not all(isinstance(block, dict) for block in content):
        expected = "message.content must be a string or a list of content blocks"
        raise TranscriptError(f"{where} is a {record['type']!r} line but {expected}.")
    return content


def _text_fields(block: dict[str, Any], role: str, tool_names: dict[str, str]) -> dict[str, Any] | None:
    text = block.get("text")
    return {"role": role, "content": text} if isinstance(text, str) and text.strip() else None


def _tool_use_fields(block: dict[str, Any], role: str, tool_names: dict[str, str]) -> dict[str, Any]:
    tool_names[block.get("id", "")] = block.get("name")
    arguments = json.dumps(block.get("input", {}), ensure_ascii=False)
    return {"role": "assistant", "tool_name": block.get("name"), "content": arguments}


def _tool_result_fields(block: dict[str, Any], role: str, tool_names: dict[str, str]) -> dict[str, Any]:
    return {
        "role": "tool",
        "tool_name": tool_names.get(block.get("tool_use_id", "")),
        "content": _result_text(block.get("content")),
        "is_error": bool(block.get("is_error")),
    }


def _result_text(content: Any) -> str:
    if isinstance(content, list):
        texts = [block.get("text") for block in content if isinstance(block, dict) and block.get("type") == "text"]
        return "\n".join(text for text in texts if isinstance(text, str))
    return content if isinstance(content, str) else ""


def _skipped(block: dict[str, Any], role: str, tool_names: dict[str, str]) -> None:
    """Thinking, images and unknown blocks: private reasoning or not text, so not logged."""
    return None


_BlockReader = Callable[[dict[str, Any], str, dict[str, str]], "dict[str, Any] | None"]
_BLOCK_READERS: dict[str, _BlockReader] = {
    "text": _text_fields,
    "tool_use": _tool_use_fields,
    "tool_result": _tool_result_fields,
}


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

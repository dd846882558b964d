"""Reading memory out of markdown: frontmatter, list items and paragraphs, sizes that fit.

Memory files written by people and agents are loose markdown. Each list item or
paragraph is one memory; headings only say what the items under them are about;
HTML comments are not memory. Text longer than an entry may be is cut at sentence
ends into pieces (`pieces`), never dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_FRONTMATTER = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*(?:\n|\Z)", re.S)
_BULLET = re.compile(r"^\s{0,3}(?:[-*+]|\d+[.)])\s+(?:\[[ xX]\]\s+)?")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+")
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class Item:
    text: str
    heading: str  # the nearest heading above it ("" when none)
    listed: bool  # a list item, not a paragraph


def frontmatter(text: str) -> tuple[dict[str, str], str]:
    """The `key: value` lines of a leading `---` block, and the body after it."""
    found = _FRONTMATTER.match(text)
    if not found:
        return {}, text
    fields = {}
    for line in found.group(1).splitlines():
        key, colon, value = line.partition(":")
        if colon and key.strip():
            fields[key.strip().lower()] = value.strip().strip("\"'")
    return fields, text[found.end():]


def items(body: str) -> list[Item]:
    """Each list item and paragraph of `body`, with the heading it is under."""
    found: list[Item] = []
    heading, lines, listed = "", [], False
    for line in _COMMENT.sub("", body).splitlines():
        starts = _HEADING.match(line) or _BULLET.match(line) or not line.strip()
        if starts and lines:
            found.append(Item(" ".join(lines), heading, listed))
            lines = []
        if _HEADING.match(line):
            heading = _HEADING.sub("", line).strip().strip("#").strip()
        elif line.strip():
            listed = bool(_BULLET.match(line)) if not lines else listed
            lines.append(_BULLET.sub("", line).strip())
    if lines:
        found.append(Item(" ".join(lines), heading, listed))
    return found


def flat(text: str) -> str:
    """`text` on one line: comments dropped, whitespace collapsed."""
    return " ".join(_COMMENT.sub("", text).split())


def pieces(text: str, limit: int) -> list[str]:
    """`text` in parts of at most `limit` characters, cut after sentences where it can be."""
    parts, current = [], ""
    for sentence in _SENTENCE_END.split(text):
        while len(sentence) > limit:  # one sentence longer than an entry: cut it where it must be
            parts.append(sentence[:limit])
            sentence = sentence[limit:]
        if current and len(current) + 1 + len(sentence) > limit:
            parts.append(current)
            current = ""
        current = f"{current} {sentence}".strip()
    return [p for p in [*parts, current] if p.strip()]


def one_line(text: str, most: int) -> str:
    """`text` flattened and shortened to `most` characters, with an ellipsis when cut."""
    flattened = flat(text)
    return flattened if len(flattened) <= most else flattened[: most - 1].rstrip() + "…"

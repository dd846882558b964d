"""What an importer builds: a `reverie-export` document of history sessions and entries.

Every file read becomes history, as a session of notes (one per memory found in it, in
order), and every memory cites its note as evidence, so a reviewer sees where each
proposed entry came from and the dream gate (`service.dreams.finalize`) judges it as
what an agent wrote down: a plain fact passes, a rule or an order waits for a person.
The sessions are listed as consolidated: their notes are already in the proposal and
must not come back to the next dream.

Ids are digests, so reading the same thing again names the same things: a file's
session by its name and text (an edited file is a new session: history is never
rewritten), an entry by its scope and text (case and spacing aside). One text found
twice is one entry citing both places: duplicates merge.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from reverie import config
from reverie.formats.markdown import one_line, pieces
from reverie.models import Category

QUOTE_CHARS = 200
# Words in a file's name or a heading that say what sort of memory the items under it are.
HINTS: tuple[tuple[Category, tuple[str, ...]], ...] = (
    ("pitfall", ("pitfall", "gotcha", "debug", "bug", "mistake", "error", "avoid", "issue")),
    ("workflow", ("workflow", "command", "build", "deploy", "release", "process", "setup", "how-to", "howto")),
    ("preference", ("preference", "style", "convention", "feedback", "prefer")),
    ("insight", ("insight", "lesson", "learning")),
)


@dataclass(frozen=True)
class Found:
    """One memory as a format read it."""

    content: str
    category: Category
    scope: str


@dataclass(frozen=True)
class Source:
    """A file the memories were read from."""

    name: str  # how the person knows it: a file name or a path
    text: str  # all of it: the version it was read at
    modified: datetime
    found: list[Found]


def hinted_category(*names: str) -> Category:
    """The category the first of `names` (a heading, a file name) that suggests one suggests; else a fact."""
    for name in names:
        lowered = name.lower().replace("_", " ")
        found = next((category for category, hints in HINTS if any(h in lowered for h in hints)), None)
        if found:
            return found
    return "fact"


def digest(*parts: str, length: int = 16) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:length]


def entry_id(prefix: str, scope: str, content: str) -> str:
    """The same text in the same scope has the same id, whatever file it was read from."""
    return f"{prefix}_{digest(scope, ' '.join(content.lower().split()))}"


def build(sources: list[Source], *, prefix: str, label: str, agent_id: str) -> dict:
    """The document for `transfer.import_`: one session per file (per MAX_NOTES memories), entries merged."""
    sessions, entries = [], {}
    for source in sources:
        found = [Found(part, f.category, f.scope) for f in source.found
                 for part in pieces(f.content, config.MAX_OPERATION_CHARS)]
        for part in range(0, len(found), config.MAX_NOTES):
            chunk = found[part : part + config.MAX_NOTES]
            session = _session(source, chunk, prefix, label, agent_id, part // config.MAX_NOTES)
            sessions.append(session)
            for index, memory in enumerate(chunk):
                _merge(entries, prefix, memory, session["id"], index, source.modified)
    return {"format": "reverie-export", "version": 1, "memories": list(entries.values()), "sessions": sessions,
            "consolidated_sessions": [s["id"] for s in sessions]}


def _session(source: Source, chunk: list[Found], prefix: str, label: str, agent_id: str, part: int) -> dict:
    sid = f"{prefix}-{digest(source.name, source.text)}-{part + 1}"
    at = source.modified.isoformat()
    return {"id": sid, "agent_id": agent_id, "title": one_line(f"{label}: {source.name}", config.MAX_TITLE_CHARS),
            "started_at": at, "ended_at": at, "events": [],
            "notes": [{"session_id": sid, "index": i, "content": f.content, "created_at": at}
                      for i, f in enumerate(chunk)]}


def _merge(entries: dict, prefix: str, found: Found, session_id: str, index: int, at: datetime) -> None:
    mid = entry_id(prefix, found.scope, found.content)
    cited = {"session_id": session_id, "note_index": index, "quote": one_line(found.content, QUOTE_CHARS)}
    if mid in entries:  # a duplicate: one entry citing every place it was found, observed when last seen
        entries[mid]["evidence"].append(cited)
        entries[mid]["observed_at"] = max(entries[mid]["observed_at"], at.isoformat())
        return
    entries[mid] = {"id": mid, "content": found.content, "category": found.category, "scope": found.scope,
                    "confidence": 0.7, "evidence": [cited], "created_at": at.isoformat(),
                    "updated_at": at.isoformat(), "observed_at": at.isoformat()}

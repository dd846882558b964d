"""Managed Agents memory stores: path-addressed text documents, mirrored in a local folder.

A memory store holds text documents (each at most 100 kB) at paths such as
`/shared/preferences.md`, and keeps every version of each. The export writes one
document per scope and category into a folder, at the same path every time —
`shared/…`, `user/…`, `projects/<key>/…`, `agents/<id>/…`, named by category
(`facts.md`, `preferences.md`, …) — so uploading it again replaces a document with its
next version instead of adding a new one. A topic larger than a document may be
continues in `facts-2.md`, `facts-3.md`. The folder's relative path, with a leading `/`,
is the store path (`store_path`); client_examples/anthropic_store/upload.py uploads it.

The import reads such a folder back (downloaded, or written by the export): every list
item or paragraph is an entry, its scope named by the path's first segments and its
category by the file name; a document elsewhere goes to the caller's scope. Documents
the export wrote are read too — a store is how memory moves between machines — and
entries already in memory or waiting for review are left out (`service.transfer`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from reverie.errors import InvalidInput
from reverie.formats.document import Found, Source, build, hinted_category
from reverie.formats.markdown import flat, frontmatter, items
from reverie.models import CATEGORIES, Category, Memory

PREFIX, LABEL = "as", "the memory store"
DOCUMENT_BYTES = 100_000  # the store's limit is 100 kB (102,400 bytes): room for the marker line
_SCOPE_DIRS = {"projects": "project", "agents": "agent"}
_TEXT = (".md", ".txt", ".markdown")


def store_path(relative: str) -> str:
    """The memory store path of a file at `relative` in the export folder."""
    return "/" + relative.lstrip("/")


def scope_folder(scope: str) -> str:
    kind, _, name = scope.partition(":")
    return f"{kind}s/{name}" if name else kind


# --- writing ---------------------------------------------------------------------------


def render(entries: list[Memory]) -> dict[str, str]:
    """Relative path → document text (unmarked), one per scope and category, best entries first."""
    grouped: dict[tuple[str, Category], list[Memory]] = {}
    for memory in sorted(entries, key=lambda m: (-m.confidence, -m.observed_at.timestamp(), m.id)):
        grouped.setdefault((memory.scope, memory.category), []).append(memory)
    files = {}
    for (scope, category), ranked in grouped.items():
        for part, text in enumerate(_documents(scope, category, ranked)):
            suffix = f"-{part + 1}" if part else ""
            files[f"{scope_folder(scope)}/{category}s{suffix}.md"] = text
    return files


def _documents(scope: str, category: Category, ranked: list[Memory]) -> Iterable[str]:
    """The topic's text, in as many documents as the size limit needs."""
    head = f"# {category.capitalize()}s ({scope})\n\n"
    text = head
    for memory in ranked:
        line = f"- {flat(memory.content)}\n"
        if len((text + line).encode()) > DOCUMENT_BYTES and text != head:
            yield text
            text = head
        text += line
    yield text


# --- reading ---------------------------------------------------------------------------


def read(folder: Path, *, scope: str, agent_id: str) -> dict:
    """The documents under `folder` as an export document; `scope` for paths that name none."""
    if not folder.is_dir():
        raise InvalidInput(f"No folder at {folder}: download the store's documents into one (see "
                           "client_examples/anthropic_store/upload.py), or name the folder `reverie export "
                           "--anthropic-store` wrote.")
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in _TEXT)
    sources = [_source(path, path.relative_to(folder).as_posix(), scope) for path in paths]
    return build([s for s in sources if s.found], prefix=PREFIX, label=LABEL, agent_id=agent_id)


def _source(path: Path, relative: str, default: str) -> Source:
    text = path.read_text(encoding="utf-8", errors="replace")
    scope, category = _scope(relative) or default, _category(Path(relative).stem)
    found = [Found(item.text, category, scope) for item in items(frontmatter(text)[1])]
    return Source(store_path(relative), text, datetime.fromtimestamp(path.stat().st_mtime, UTC), found)


def _scope(relative: str) -> str | None:
    parts = relative.split("/")
    if parts[0] in ("shared", "user") and len(parts) > 1:
        return parts[0]
    if parts[0] in _SCOPE_DIRS and len(parts) > 2:
        return f"{_SCOPE_DIRS[parts[0]]}:{parts[1]}"
    return None


def _category(stem: str) -> Category:
    plain = re.sub(r"-\d+$", "", stem.lower()).removesuffix("s")
    return next((c for c in CATEGORIES if c == plain), None) or hinted_category(stem)

"""Writing export files into a folder other tools own, touching only what Reverie wrote.

Every file an export writes carries a marker line with a digest of the rest of its text
(after the frontmatter, which must stay first, or else on the first line). A file
without the marker is someone else's and is never overwritten or removed; a marked file
whose text no longer matches its digest was edited by hand since, and is left as it is
too, so nobody's edit is lost. Marked, unedited files are Reverie's: they are updated,
and removed when the memory they held is gone. Each write replaces the file whole
(write a temporary file, then rename), so a reader never sees half of one.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from reverie.errors import InvalidInput

MARK = "reverie:export"
NOTE = "written by `reverie export`: change memory with reverie; edits here stop its updates"
_MARKER = re.compile(rf"^<!-- {MARK} sha256=([0-9a-f]{{16}})\b.*-->\n?", re.M)
_FRONTMATTER_END = re.compile(r"\A---[ \t]*\n.*?\n---[ \t]*\n", re.S)

Action = Literal["created", "updated", "unchanged", "removed", "kept"]


@dataclass(frozen=True)
class Change:
    action: Action
    path: str  # relative to the folder
    why: str = ""

    def line(self) -> str:
        return f"{self.action} {self.path}" + (f" ({self.why})" if self.why else "")


def marked(text: str) -> str:
    """`text` with its marker line: after the frontmatter if it has one, else first."""
    line = f"<!-- {MARK} sha256={_digest(text)} {NOTE} -->\n"
    head = _FRONTMATTER_END.match(text)
    cut = head.end() if head else 0
    return text[:cut] + line + text[cut:]


def ownership(text: str) -> Literal["ours", "edited", "theirs"]:
    """Whose a file is: Reverie's as written, Reverie's but edited since, or someone else's."""
    found = _MARKER.search(text)
    if not found:
        return "theirs"
    return "ours" if _digest(text[: found.start()] + text[found.end():]) == found.group(1) else "edited"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def write_owned(folder: Path, files: dict[str, str], pattern: str = "*.md") -> list[Change]:
    """Write `files` (relative path → text, unmarked) into `folder`; remove Reverie's files (among
    those matching `pattern`) that are not in `files` any more. What happened to each file."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        changes = [_write(folder / name, name, text) for name, text in sorted(files.items())]
        stale = sorted(p for p in folder.rglob(pattern) if p.is_file() and _relative(p, folder) not in files)
        return changes + [c for c in (_remove(p, _relative(p, folder)) for p in stale) if c]
    except OSError as error:
        raise InvalidInput(f"Cannot write the export into {folder}: {error.strerror or error}.") from None


def _relative(path: Path, folder: Path) -> str:
    return path.relative_to(folder).as_posix()


def _write(path: Path, name: str, text: str) -> Change:
    if path.exists():
        whose = ownership(path.read_text(encoding="utf-8", errors="replace"))
        if whose != "ours":
            why = "edited since Reverie wrote it" if whose == "edited" else "not written by Reverie"
            return Change("kept", name, f"{why}: left as it is")
        if path.read_text(encoding="utf-8") == marked(text):
            return Change("unchanged", name)
    action: Action = "updated" if path.exists() else "created"
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.reverie-tmp")
    temporary.write_text(marked(text), encoding="utf-8")
    os.replace(temporary, path)
    return Change(action, name)


def _remove(path: Path, name: str) -> Change | None:
    whose = ownership(path.read_text(encoding="utf-8", errors="replace"))
    if whose == "theirs":
        return None  # someone else's file: not ours to mention
    if whose == "edited":
        return Change("kept", name, "edited since Reverie wrote it, and no longer exported: left as it is")
    path.unlink()
    return Change("removed", name, "its entries are no longer in memory")

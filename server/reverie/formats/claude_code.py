"""Claude Code's auto memory, read as an import and written as an export.

Claude Code keeps a project's auto memory in `~/.claude/projects/<project>/memory/`
(`<project>`: the git root's absolute path with every character but letters and digits
replaced by `-`; `CLAUDE_CONFIG_DIR` moves `~/.claude`). `MEMORY.md` is the index, and
only its first 200 lines or 25 KB, whichever is less, are loaded when a session starts;
topic files are read on demand. A topic file usually holds one memory under frontmatter
(`name`, `description`, `type`: user | feedback | project | reference); older ones, and
`MEMORY.md` itself, hold lists of one-line memories under headings.

Reading: every list item or paragraph is a memory, and a typed file is one; an index
line that only points to a topic file in the folder is not (the file is read itself);
files Reverie's export wrote and nobody edited are skipped, since they hold Reverie's
own memory. `user` memories go to the `user` scope; the rest to the project's scope.

Writing: one topic file per scope and category (`reverie_<scope>_<category>.md`, every
entry, best first) and a `MEMORY.md` index that shows the best entries of each topic
within LINE_LIMIT lines and BYTE_LIMIT bytes, so all of it is loaded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from reverie import config
from reverie.errors import InvalidInput
from reverie.formats.document import Found, Source, build, hinted_category
from reverie.formats.markdown import flat, frontmatter, items, one_line
from reverie.formats.written import ownership
from reverie.models import CATEGORIES, Category, Memory
from reverie.projects import project_root

INDEX = "MEMORY.md"
LINE_LIMIT, BYTE_LIMIT = 200, 25_000  # what Claude Code loads of MEMORY.md: 200 lines or 25 KB
ENTRY_CHARS = 240  # an index line: enough to state a memory, short enough to show many
PREFIX, LABEL = "cc", "Claude Code memory"
TYPE_OF = {"user": ("preference", "user"), "feedback": ("preference", None), "project": ("fact", None),
           "reference": ("fact", None)}  # type → (category, scope; None: the project's)
_LINK_ONLY = re.compile(r"^\[[^\]]*\]\(([^)\s]+\.md)\)\s*(?:[—–:-].*)?$")


def memory_dir(cwd: str | Path, environ: Mapping[str, str] | None = None) -> Path:
    """The auto memory folder Claude Code uses for the project `cwd` is in (`environ`: else Reverie's own)."""
    chosen = environ.get("CLAUDE_CONFIG_DIR") if environ is not None else config.claude_config_dir()
    home = Path(chosen or Path.home() / ".claude").expanduser()
    return home / "projects" / re.sub(r"[^A-Za-z0-9]", "-", str(project_root(cwd))) / "memory"


# --- reading ---------------------------------------------------------------------------


def read(folder: Path, *, scope: str, agent_id: str) -> dict:
    """The folder's memories as an export document (see `formats.document`); `scope`: the project's."""
    if not folder.is_dir():
        raise InvalidInput(f"No Claude Code memory folder at {folder}. Name the folder: "
                           "reverie import --claude-code ~/.claude/projects/<project>/memory")
    sources = [_source(path, folder, scope) for path in sorted(folder.rglob("*.md")) if path.is_file()]
    return build([s for s in sources if s and s.found], prefix=PREFIX, label=LABEL, agent_id=agent_id)


def _source(path: Path, folder: Path, scope: str) -> Source | None:
    text = path.read_text(encoding="utf-8", errors="replace")
    if ownership(text) == "ours":
        return None  # Reverie's own export, unedited: nothing in it is new
    name = path.relative_to(folder).as_posix()
    modified = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    return Source(name, text, modified, list(_memories(text, path, scope)))


def _memories(text: str, path: Path, scope: str) -> Iterable[Found]:
    fields, body = frontmatter(text)
    found = items(body)
    if fields.get("type") in TYPE_OF:
        category, typed_scope = TYPE_OF[fields["type"]]
        category, scope = _category(fields.get("category"), category), typed_scope or scope
        if len(found) > 1 and all(item.listed for item in found):  # a list of memories under one type
            yield from (Found(item.text, category, scope) for item in found)
            return
        # One memory per file, as Claude Code writes them now: the rule, then its why and how.
        content = " ".join(item.text for item in found) or fields.get("description", "")
        if content:
            yield Found(content, category, scope)
        return
    for item in found:
        linked = _LINK_ONLY.match(item.text)
        if linked and (path.parent / linked.group(1)).is_file():
            continue  # an index line: the topic file it points to is read on its own
        yield Found(item.text, hinted_category(item.heading, path.stem), scope)


def _category(named: str | None, otherwise: Category) -> Category:
    return next((c for c in CATEGORIES if c == named), otherwise)


# --- writing ---------------------------------------------------------------------------


def render(entries: list[Memory]) -> dict[str, str]:
    """File name → text (unmarked: `written.write_owned` marks it) for Claude Code's memory folder."""
    topics = _topics(entries)
    files = {name: _topic_text(scope, category, ranked) for (scope, category, name), ranked in topics.items()}
    return {**files, INDEX: _index(topics)}


def _topics(entries: list[Memory]) -> dict[tuple[str, Category, str], list[Memory]]:
    """(scope, category, file name) → entries best first, topics in a stable order."""
    grouped: dict[tuple[str, Category, str], list[Memory]] = {}
    for memory in sorted(entries, key=_rank):
        key = (memory.scope, memory.category, topic_file(memory.scope, memory.category))
        grouped.setdefault(key, []).append(memory)
    return dict(sorted(grouped.items(), key=lambda item: (_scope_order(item[0][0]), CATEGORIES.index(item[0][1]))))


def _rank(memory: Memory) -> tuple:
    return -memory.confidence, -memory.observed_at.timestamp(), memory.id


def _scope_order(scope: str) -> tuple[int, str]:
    return next((i for i, p in enumerate(("user", "shared", "project:", "agent:")) if scope.startswith(p)), 4), scope


def topic_file(scope: str, category: Category) -> str:
    return f"reverie_{re.sub(r'[^a-z0-9]+', '-', scope.lower()).strip('-')}_{category}.md"


def _title(scope: str, category: Category) -> str:
    kind, _, name = scope.partition(":")
    whose = {"user": "the user", "shared": "every agent"}.get(scope) or f"{kind} {name}"
    return f"{category.capitalize()}s for {whose}"


def _type(scope: str, category: Category) -> str:
    if scope == "user":
        return "user"
    return "feedback" if category in ("preference", "workflow", "pitfall") else "project"


def _topic_text(scope: str, category: Category, ranked: list[Memory]) -> str:
    head = (f"---\nname: {_title(scope, category)}\ndescription: {len(ranked)} {category} entries Reverie keeps "
            f"for {scope}, best first\ntype: {_type(scope, category)}\ncategory: {category}\n---\n")
    return head + f"\n# {_title(scope, category)}\n\n" + "".join(f"- {flat(m.content)}\n" for m in ranked)


def _index(topics: dict[tuple[str, Category, str], list[Memory]]) -> str:
    """MEMORY.md: every topic's heading, then as many best entries as Claude Code will load."""
    lines, size = LINE_LIMIT - 4, BYTE_LIMIT - 400  # room for the title and the marker line
    shown: dict[str, list[str]] = {name: [] for (_, _, name) in topics}
    lines -= 2 * len(topics)
    size -= sum(len(_heading(*key, len(ranked)).encode()) + 2 for key, ranked in topics.items())
    for name, memory in sorted(((n, m) for (_, _, n), r in topics.items() for m in r), key=lambda p: _rank(p[1])):
        line = f"- {one_line(memory.content, ENTRY_CHARS)}\n"
        if lines < 1 or size < len(line.encode()):
            break
        shown[name].append(line)
        lines, size = lines - 1, size - len(line.encode())
    parts = ["# Memory\n\nCurated by Reverie. Each heading links to its topic file, which holds every entry.\n"]
    parts += [f"\n{_heading(*key, len(ranked))}\n" + "".join(shown[key[2]]) for key, ranked in topics.items()]
    return "".join(parts)


def _heading(scope: str, category: Category, name: str, count: int) -> str:
    return f"## [{_title(scope, category)}]({name}) ({count})"


__all__ = ["INDEX", "memory_dir", "read", "render", "topic_file"]

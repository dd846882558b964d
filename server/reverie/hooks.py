"""Claude Code hooks: log every session when it ends, load memory when one starts.

`reverie log --claude-code-hook` is the SessionEnd hook and `reverie recall
--claude-code-hook` the SessionStart hook. Claude Code sends each a JSON object on stdin
(`session_id`, `transcript_path`, `cwd`, `hook_event_name`, and `reason` or `source`) and
adds what SessionStart prints to the model's context. A hook must never break or stall
Claude Code: both exit 0 whatever happens, say what went wrong in one line on stderr, and
give up on a busy database after `--timeout` seconds.

**Nothing is lost (a write-ahead spool).** The SessionEnd hook first copies the hook input
and the transcript text into `<database file>-spool/` (written whole, then renamed, so a
reader never sees half an item) and only then logs every spooled item, oldest first,
deleting each once it is stored. If the database is locked, or Claude Code kills the hook
halfway (it may, on exit), the item stays and the next SessionEnd hook, or
`reverie log --drain-spool`, logs it. Logging an item twice stores nothing twice (below).
An item that can never be logged — a transcript that does not parse, an invalid agent id —
moves to `failed/` beside a note of the reason, for a person; it is not retried.

**Session ids and resumed sessions.** Claude Code's session id becomes the Reverie session
id (`cc-` and a safe spelling of it if it is not a valid identifier). A conversation that
is resumed and ended again hands over its whole transcript again; only the turns no
earlier hand-over stored are logged, as `<id>.2`, `<id>.3`, … — each an ended session a
dream can review (`reverie.service.continuation`, which also keeps a rewound or forked
conversation's own turns). When a resumed conversation arrives under a new session id with
its history copied in, and the copied lines still carry the original `sessionId`, the
parts chain onto the original id; otherwise the copied history is stored once more under
the new id — twice, never lost.

**Agent id:** `--agent`, then `REVERIE_AGENT_ID`, then `claude-code`: the id the README's
`claude mcp add … -e REVERIE_AGENT_ID=claude-code` gives the MCP server (Claude Code does
not pass a server's `-e` variables to hooks), so hooks and server share one agent scope. A
spool item keeps the agent id it was written with.

**What SessionStart prints:** the memory as `read_memory` renders it (not filtered by the
project name: with a query, read_memory returns only entries that mention it, and
preferences and workflows rarely name a directory), within `--budget` tokens, preceded by a
line per dream proposal awaiting review. Nothing at all when there is nothing to say.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO, TypeVar

import anyio
from pydantic import BaseModel, ConfigDict, ValidationError

from reverie import config
from reverie.clock import utcnow
from reverie.config import Settings
from reverie.errors import ReverieError
from reverie.models import Turn
from reverie.service import Reverie, open_reverie
from reverie.service.continuation import Part, log_new_turns
from reverie.text import shorten
from reverie.transcript import TranscriptError, parse_transcript

T = TypeVar("T")

DEFAULT_AGENT = "claude-code"
LOG_TIMEOUT = 10.0     # seconds SessionEnd waits for a busy database; the session stays spooled after that
RECALL_TIMEOUT = 5.0   # SessionStart holds up the start of the session, so it gives up sooner
RECALL_BUDGET = 1500   # tokens of memory added to Claude Code's context
TITLE_CHARS = 120
BASE_ID_CHARS = 100    # leaves room for ".N" part suffixes within the 128-character identifier limit
_UNSAFE = re.compile(r"[^A-Za-z0-9._:@-]+")


class HookInputError(ValueError):
    """What Claude Code sent on stdin cannot be used."""


class HookTimeout(Exception):
    """The database did not answer within the hook's time limit."""


class HookInput(BaseModel):
    """The fields of Claude Code's hook input that Reverie uses; the rest are kept, unread."""

    model_config = ConfigDict(extra="allow")
    session_id: str = ""
    transcript_path: str | None = None
    cwd: str | None = None
    hook_event_name: str | None = None


class SpoolItem(BaseModel):
    """One ended session waiting to be logged: the hook input and a copy of its transcript."""

    hook: HookInput
    agent_id: str
    transcript: str
    spooled_at: str


@dataclass
class Drained:
    """What a drain of the spool did."""

    logged: list[Part] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)  # (where the item now is, why)

    def logged_lines(self) -> list[str]:
        return [f"Reverie: logged {part.turns} turns to {part.session_id}." for part in self.logged]

    def failed_lines(self) -> list[str]:
        return [f"could not log a session; it is kept in {path}: {why}" for path, why in self.failed]


# --- the hooks -------------------------------------------------------------------------


def log_hook(db: str | None, agent: str | None, stdin: TextIO, timeout: float = LOG_TIMEOUT) -> int:
    """SessionEnd: spool the session, then log everything spooled. Always returns 0."""
    try:
        settings = Settings.resolve(db, DEFAULT_AGENT)  # each item names its own agent
        hook = read_hook_input(stdin.read())
        if not hook.session_id:
            raise HookInputError("the hook input has no session_id.")
        transcript = read_transcript(hook)
        if transcript is not None:
            spool(settings.db_path, hook, agent_for_hooks(agent), transcript)
    except (HookInputError, ReverieError, OSError) as error:
        notice(f"nothing was logged: {error}")
        return 0
    try:
        drained = within(timeout, lambda: drain(settings))
    except HookTimeout:
        notice(f"the database stayed busy for {timeout:g}s; the session is spooled and will be logged next time.")
    except Exception as error:  # a hook's top level: the session is spooled, and Claude Code must go on
        notice(f"the session is spooled and will be logged next time ({type(error).__name__}: {error}).")
    else:
        for line in drained.logged_lines():
            print(line)
        for line in drained.failed_lines():
            notice(line)
    return 0


def recall_hook(db: str | None, agent: str | None, stdin: TextIO, *, query: str | None = None,
                budget: int = RECALL_BUDGET, timeout: float = RECALL_TIMEOUT) -> int:
    """SessionStart: print the memory for Claude Code to add to the context. Always returns 0."""
    try:
        hook = read_hook_input(stdin.read())
        settings = Settings.resolve(db, agent_for_hooks(agent))
        text = within(timeout, lambda: _recall(settings, project_name(hook.cwd), query, budget))
    except HookTimeout:
        notice(f"the database stayed busy for {timeout:g}s; no memory was loaded this time.")
    except Exception as error:  # a hook's top level: better a session without memory than none at all
        notice(f"no memory was loaded ({type(error).__name__}: {error}).")
    else:
        if text:
            print(text)
    return 0


async def _recall(settings: Settings, project: str, query: str | None, budget: int) -> str:
    async with open_reverie(settings) as reverie:
        return await recall_text(reverie, project, query, budget)


async def recall_text(reverie: Reverie, project: str, query: str | None, budget: int) -> str:
    """What an agent starting work in `project` should load; empty when there is nothing."""
    view = await reverie.read_memory(query, budget_tokens=budget)
    if not (view.entries or view.notes or view.episodes or view.pending_proposals):
        return ""
    waiting = [f"Reverie: dream proposal {p.proposal_id} awaits your review — ask me to show it."
               for p in view.pending_proposals]
    return "\n".join([f"# Reverie memory (working in {project})", *waiting, "", view.markdown])


def notice(text: str) -> None:
    print(f"reverie: {text}", file=sys.stderr)


def agent_for_hooks(flag: str | None) -> str:
    return flag or os.environ.get("REVERIE_AGENT_ID") or DEFAULT_AGENT


def within(seconds: float, work: Callable[[], Awaitable[T]]) -> T:
    """Run `work` on its own event loop, giving up after `seconds` (HookTimeout).

    A locked database makes SQLite wait out its busy timeout inside a C call that nothing
    can interrupt. So the work runs in a daemon thread — and aiosqlite's worker thread,
    started from it, inherits that — which the process simply abandons on exit. That is
    safe: SQLite rolls back a transaction its process left unfinished, exactly as when
    Claude Code kills the hook, and a session being logged is already in the spool.
    """
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = anyio.run(work)
        except BaseException as error:  # handed to the waiting thread, which re-raises it
            outcome["error"] = error

    worker = threading.Thread(target=run, name="reverie-hook", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise HookTimeout(f"no answer within {seconds:g}s")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


# --- hook input ------------------------------------------------------------------------


def read_hook_input(text: str) -> HookInput:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise HookInputError(f"the hook input on stdin is not JSON ({error.msg}).") from None
    if not isinstance(data, dict):
        raise HookInputError("the hook input on stdin is not a JSON object.")
    try:
        return HookInput.model_validate(data)
    except ValidationError as error:
        raise HookInputError(f"the hook input lacks what a Claude Code hook sends: {error.errors()[0]['msg']} "
                             f"({'.'.join(map(str, error.errors()[0]['loc']))}).") from None


def read_transcript(hook: HookInput) -> str | None:
    """The transcript's text; None when the session left none (closed before anything was said)."""
    if not hook.transcript_path:
        raise HookInputError("the hook input names no transcript_path.")
    try:
        text = Path(hook.transcript_path).expanduser().read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    return text if text.strip() else None


def project_name(cwd: str | None) -> str:
    return Path(cwd).name if cwd else "Claude Code"


# --- the spool -------------------------------------------------------------------------


def spool_dir(db_path: Path) -> Path:
    """Beside the database, named after it (like SQLite's own `-wal` file), so databases never share one."""
    return db_path.with_name(db_path.name + "-spool")


def spool(db_path: Path, hook: HookInput, agent_id: str, transcript: str) -> Path:
    folder = spool_dir(db_path)
    folder.mkdir(parents=True, exist_ok=True)
    now = utcnow()
    name = f"{now:%Y%m%dT%H%M%S%f}Z-{os.getpid()}"  # sorts oldest first
    item = SpoolItem(hook=hook, agent_id=agent_id, transcript=transcript, spooled_at=now.isoformat())
    partial = folder / f".{name}.tmp"
    partial.write_text(item.model_dump_json(), encoding="utf-8")
    os.replace(partial, folder / f"{name}.json")
    return folder / f"{name}.json"


def spooled(db_path: Path) -> list[Path]:
    folder = spool_dir(db_path)
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


async def drain(settings: Settings) -> Drained:
    """Log every spooled session, oldest first."""
    drained = Drained()
    if items := spooled(settings.db_path):
        async with open_reverie(settings) as reverie:
            for path in items:
                await _drain_one(reverie, path, drained)
    return drained


async def _drain_one(reverie: Reverie, path: Path, drained: Drained) -> None:
    """Log one item and delete it; set it aside if it can never be logged.

    Only a refusal is final: an item that is not a spool item, a transcript that does not
    parse, or input the service rejects. Anything else (a locked database, a full disk)
    propagates and leaves the item where it is, to be retried.
    """
    try:
        item = SpoolItem.model_validate_json(path.read_text(encoding="utf-8"))
        part = await log_item(reverie, item)
    except FileNotFoundError:
        return  # another hook logged it meanwhile
    except (ValidationError, UnicodeDecodeError, TranscriptError, ReverieError) as error:
        drained.failed.append((set_aside(path, str(error)), str(error)))
        return
    path.unlink(missing_ok=True)
    if part is not None:
        drained.logged.append(part)


def set_aside(path: Path, reason: str) -> Path:
    failed = path.parent / "failed"
    failed.mkdir(exist_ok=True)
    (failed / f"{path.stem}.reason.txt").write_text(reason + "\n", encoding="utf-8")
    os.replace(path, failed / path.name)
    return failed / path.name


async def log_item(reverie: Reverie, item: SpoolItem) -> Part | None:
    """Log the turns of a spooled session that no earlier part of its conversation holds."""
    turns = parse_transcript(item.transcript)
    base_id = session_key(first_session_id(item.transcript) or item.hook.session_id)
    return await log_new_turns(reverie, base_id, turns, agent_id=item.agent_id, title=title(item.hook.cwd, turns))


# --- naming ----------------------------------------------------------------------------


def session_key(raw: str) -> str:
    """Claude Code's session id if Reverie accepts it as one, else `cc-` and a safe, still unique spelling."""
    if config.IDENTIFIER.fullmatch(raw) and len(raw) <= BASE_ID_CHARS:
        return raw
    safe = _UNSAFE.sub("-", raw).strip("-.")[:BASE_ID_CHARS - 12]
    digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
    return f"cc-{safe}-{digest}" if safe else f"cc-{digest}"


def first_session_id(transcript: str) -> str | None:
    """The `sessionId` on the transcript's first line that has one (the conversation's original id)."""
    for line in transcript.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            return None  # not JSONL: plain text has no session ids
        if isinstance(record, dict) and isinstance(record.get("sessionId"), str) and record["sessionId"]:
            return record["sessionId"]
    return None


def title(cwd: str | None, turns: list[Turn]) -> str:
    """`<project dir>: <first thing the user asked>`; Claude Code's slash-command wrappers do not count."""
    asked = next((t.content for t in turns if t.role == "user" and not _is_wrapper(t.content)), None)
    project = project_name(cwd)
    return shorten(f"{project}: {asked}" if asked else project, TITLE_CHARS)


def _is_wrapper(content: str) -> bool:
    # `<command-name>/clear</command-name>`, `<local-command-stdout>…`, and the caveat Claude Code puts before them.
    return content.lstrip().startswith(("<", "Caveat:"))

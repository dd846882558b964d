"""Claude Code hooks: log every session when it ends, load memory when one starts.

`reverie log --claude-code-hook` is the SessionEnd hook and `reverie recall
--claude-code-hook` the SessionStart hook. Claude Code sends each a JSON object on stdin
(`session_id`, `transcript_path`, `cwd`, `hook_event_name`, and `reason` or `source`) and
adds what SessionStart prints to the model's context. A hook must never break or stall
Claude Code: both exit 0 whatever happens, say what went wrong in one line on stderr, and
give up on a busy database after `--timeout` seconds.

**Only Claude Code transcripts.** The hook reads `transcript_path` only if it names a
regular `.jsonl` file that is under a `.claude/projects` directory or starts with a Claude
Code record (symbolic links resolved first); anything else (`/etc/passwd`) is refused with
one line on stderr and nothing is stored. What is kept of a transcript, and what is not:
`reverie.claude_transcript`.

**Nothing is lost (a write-ahead spool).** The SessionEnd hook first copies the hook input
and the transcript text, its secrets already redacted, into `<database file>-spool/` (a
folder only its owner may open, files mode 0600, written whole, then renamed, so a reader
never sees half an item) and only then logs every spooled item, oldest first, deleting
each once it is stored. If the database is locked or unreadable, or Claude Code kills the
hook halfway (it may, on exit), the item stays and the next SessionEnd hook, or
`reverie log --drain-spool`, logs it. Logging an item twice stores nothing twice (below).
Any other failure on an item — input the service refuses, a transcript no reader can take,
an error no one foresaw — moves it to `failed/` beside a note of the reason, for a person,
and the rest drain: one bad item never holds up the sessions after it. `failed/` keeps
the newest `FAILED_KEPT` (50) items; older ones are deleted. A transcript with nothing to
log (only a summary, only file snapshots) is not a failure: it logs nothing.

**Session ids and resumed sessions.** Claude Code's session id becomes the Reverie session
id (`cc-` and a safe spelling of it if it is not a valid identifier). A conversation that
is resumed and ended again hands over its whole transcript again; only the turns no
earlier hand-over stored are logged, as `<id>.2`, `<id>.3`, … — each an ended session a
dream can review (`reverie.service.continuation`, which also keeps a rewound or forked
conversation's own turns). When a resumed conversation arrives under a new session id with
its history copied in, and the copied lines still carry the original `sessionId`, the
parts chain onto the original id; otherwise the copied history is stored once more under
the new id — twice, never lost. A subagent's own transcript (`agent-<id>.jsonl`) carries
its parent's `sessionId` but is a conversation of its own: it is stored apart, as
`<parent id>:agent-<agent id>`, never as a part of its parent. Each part is titled by its
own first request, ends at its transcript's last timestamp, and carries Claude Code's own
summary of the session (its latest recap or summary line) as the session's summary.
`reverie log FILE` logs a Claude Code transcript the same way, so logging a file twice
stores it once.

**Agent id:** `--agent`, then `REVERIE_AGENT_ID`, then `claude-code`: the id the README's
`claude mcp add … -e REVERIE_AGENT_ID=claude-code` gives the MCP server (Claude Code does
not pass a server's `-e` variables to hooks), so hooks and server share one agent scope. A
spool item keeps the agent id it was written with.

**Projects.** Each session is logged in the project of its `cwd` (`reverie.projects`: the
git root's name, as a key), so a dream files what it learns from it under `project:<key>`.

**What SessionStart prints:** what a session starting in this project should know, within
`--budget` tokens — dream proposals awaiting review, recaps of the last sessions here, and
this project's memory with the shared and the user's (`reverie.session_start`). Nothing at
all when there is nothing to say.

**Around the service where it can.** Loading the service (pydantic, asyncio, aiosqlite)
took two thirds of a hook's time. So SessionStart without `--query` reads a SQLite file
directly (`session_start.from_file`), and SessionEnd writes a conversation nothing of which
is stored yet directly (`log_new_conversation`), both through `store.direct` with the
standard library's `sqlite3`. Everything else goes through the service as before: a
resumed conversation, one too long for one log call, `--query`, a PostgreSQL memory, a
file not created or migrated yet, and whatever SQLite refuses the direct way. Tests hold
the two ways to the same text, rows and read counts (`tests/test_hooks_direct.py`).
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TextIO, TypeVar

from reverie import config
from reverie.clock import as_utc, utcnow
from reverie.config import Settings
from reverie.errors import Busy, Damaged, ReverieError
from reverie.projects import project_root
from reverie.safety import may_hold_secret, redact, redacted_turns
from reverie.text import shorten

# Each hook imports what only it uses when it runs (the transcript reader and the logging of
# parts for SessionEnd, the SessionStart text for SessionStart), and the service (with
# pydantic, anyio and aiosqlite) only once it has a database to open through it: every
# import here is paid at every session start and end.
if TYPE_CHECKING:
    from reverie.claude_transcript import Said, Transcript
    from reverie.models import Outcome, Turn
    from reverie.service import Reverie
    from reverie.store import direct

T = TypeVar("T")

DEFAULT_AGENT = "claude-code"
LOG_TIMEOUT = 10.0     # seconds SessionEnd waits for a busy database; the session stays spooled after that
RECALL_TIMEOUT = 5.0   # SessionStart holds up the start of the session, so it gives up sooner
RECALL_BUDGET = 1500   # tokens of memory added to Claude Code's context
TITLE_CHARS = 120
BASE_ID_CHARS = 100    # leaves room for ".N" part suffixes within the 128-character identifier limit
FAILED_KEPT = 50       # items kept in the spool's failed/ folder, the newest; older ones are deleted
_UNSAFE = re.compile(r"[^A-Za-z0-9._:@-]+")


class HookInputError(ValueError):
    """What Claude Code sent on stdin cannot be used."""


class HookTimeout(Exception):
    """The database did not answer within the hook's time limit."""


# The records below are NamedTuples (and `Drained` a plain class), not dataclasses: defining
# a dataclass takes ~0.5 ms, paid by every hook process for each.
class HookInput(NamedTuple):
    """The fields of Claude Code's hook input that Reverie uses; `sent` keeps the whole object, the rest unread."""

    session_id: str
    transcript_path: str | None
    cwd: str | None
    hook_event_name: str | None
    sent: dict[str, Any]

    @classmethod
    def of(cls, sent: dict[str, Any]) -> HookInput:
        """The fields of `sent`, each a string if present: HookInputError if not (null counts
        as absent, but for session_id, which is "" when absent)."""
        for name in _HOOK_FIELDS:
            if name in sent and not (isinstance(sent[name], str) or (sent[name] is None and name != "session_id")):
                raise HookInputError(f"the hook input lacks what a Claude Code hook sends: Input should be a valid "
                                     f"string ({name}).")
        return cls(sent.get("session_id", ""), sent.get("transcript_path"), sent.get("cwd"), sent.get("hook_event_name"),
                   sent)


_HOOK_FIELDS = ("session_id", "transcript_path", "cwd", "hook_event_name")


class SpoolItem(NamedTuple):
    """One ended session waiting to be logged: the hook input and a copy of its transcript."""

    hook: HookInput
    agent_id: str
    transcript: str
    spooled_at: str

    def dump(self) -> str:
        # ASCII: any string JSON can hold (a lone surrogate in the hook input too) can be written.
        return json.dumps({"hook": self.hook.sent, "agent_id": self.agent_id, "transcript": self.transcript,
                           "spooled_at": self.spooled_at})

    @classmethod
    def load(cls, text: str) -> SpoolItem:
        """The item `dump` wrote (ValueError if `text` is not one)."""
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("hook"), dict):
            raise ValueError("not a spool item: no hook input")
        if not all(isinstance(data.get(name), str) for name in ("agent_id", "transcript", "spooled_at")):
            raise ValueError("not a spool item: agent_id, transcript and spooled_at must be strings")
        return cls(HookInput.of(data["hook"]), data["agent_id"], data["transcript"], data["spooled_at"])


class Stored(NamedTuple):
    """A transcript just logged: the part stored (its session, turns and secrets redacted), and
    how many of the transcript's lines could not be read."""

    session_id: str
    turns: int
    redactions: int
    skipped: int = 0

    def line(self) -> str:
        unread = f"; {self.skipped} unreadable line(s) of its transcript were skipped" if self.skipped else ""
        return f"Reverie: logged {self.turns} turns to {self.session_id}{unread}."


class Drained:
    """What a drain of the spool did."""

    def __init__(self) -> None:
        self.logged: list[Stored] = []
        self.failed: list[tuple[Path, str]] = []  # (where the item now is, why)

    def logged_lines(self) -> list[str]:
        return [stored.line() for stored in self.logged]

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
        drained = within(timeout, lambda: log_spooled(settings))
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
        text = within(timeout, lambda: start_text(settings, hook.cwd or os.getcwd(), query, budget))
    except HookTimeout:
        notice(f"the database stayed busy for {timeout:g}s; no memory was loaded this time.")
    except Exception as error:  # a hook's top level: better a session without memory than none at all
        notice(f"no memory was loaded ({type(error).__name__}: {error}).")
    else:
        if text:
            print(text)
    return 0


def start_text(settings: Settings, cwd: str, query: str | None, budget: int) -> str:
    """What SessionStart prints. Without a query, read from the SQLite file directly when it can
    be (`session_start.from_file`: no pydantic, no event loop to load); else through the service."""
    if query is None:
        from reverie.session_start import from_file

        if (text := from_file(settings, cwd, budget, utcnow())) is not None:
            return text
    return on_event_loop(_recall, settings, cwd, query, budget)


async def _recall(settings: Settings, cwd: str, query: str | None, budget: int) -> str:
    from reverie.service import open_reverie

    async with open_reverie(settings) as reverie:
        return await recall_text(reverie, cwd, query, budget)


async def recall_text(reverie: Reverie, cwd: str, query: str | None, budget: int) -> str:
    """What an agent starting work in `cwd` should load; empty when there is nothing."""
    from reverie.session_start import session_start

    return await session_start(reverie, cwd, query, budget)


def notice(text: str) -> None:
    print(f"reverie: {text}", file=sys.stderr)


def agent_for_hooks(flag: str | None) -> str:
    return flag or config.agent_id() or DEFAULT_AGENT


def within(seconds: float, work: Callable[[], T]) -> T:
    """Run `work`, giving up after `seconds` (HookTimeout).

    A locked database makes SQLite wait out its busy timeout inside a C call that nothing
    can interrupt. So the work runs in a daemon thread — and aiosqlite's worker thread,
    started from it, inherits that — which the process simply abandons on exit. That is
    safe: SQLite rolls back a transaction its process left unfinished, exactly as when
    Claude Code kills the hook, and a session being logged is already in the spool.
    """
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
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


def on_event_loop(work: Callable[..., Awaitable[T]], *args: object) -> T:
    """`work(*args)` run to completion on an event loop of its own (anyio, loaded only here)."""
    import anyio

    return anyio.run(work, *args)


# --- hook input ------------------------------------------------------------------------


def read_hook_input(text: str) -> HookInput:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise HookInputError(f"the hook input on stdin is not JSON ({error.msg}).") from None
    if not isinstance(data, dict):
        raise HookInputError("the hook input on stdin is not a JSON object.")
    return HookInput.of(data)


def read_transcript(hook: HookInput) -> str | None:
    """The transcript's text; None when the session left none (closed before anything was said).

    Refuses (HookInputError) any file but a Claude Code transcript: the hook input is
    trusted no further than that, or `/etc/passwd` would be logged and kept.
    """
    if not hook.transcript_path:
        raise HookInputError("the hook input names no transcript_path.")
    path = Path(hook.transcript_path).expanduser()
    from reverie.claude_transcript import looks_like_claude_code

    refused = HookInputError(f"{path} is not a Claude Code transcript (a .jsonl file of Claude Code records).")
    try:
        if not path.exists():
            return None
        real = path.resolve()
    except (ValueError, RuntimeError):  # a NUL byte in the path, a loop of symbolic links
        raise refused from None
    if real.suffix != ".jsonl" or not real.is_file():  # never open a device, a FIFO or someone's key file
        raise refused
    text = real.read_text(encoding="utf-8", errors="replace")
    if text.strip() and not (_under_claude_projects(real) or looks_like_claude_code(text)):
        raise refused
    return text if text.strip() else None


def _under_claude_projects(path: Path) -> bool:
    parts = path.parts
    return any(parts[i:i + 2] == (".claude", "projects") for i in range(len(parts) - 1))


def project_name(cwd: str | None) -> str:
    """The folder name of the project `cwd` is in (its git root's), as titles start with it."""
    return project_root(cwd).name if cwd else "Claude Code"


# --- the spool -------------------------------------------------------------------------


def spool_dir(db_path: Path) -> Path:
    """Beside the database, named after it (like SQLite's own `-wal` file), so databases never share one."""
    return db_path.with_name(db_path.name + "-spool")


def spool(db_path: Path, hook: HookInput, agent_id: str, transcript: str) -> Path:
    """Write the item, secrets redacted, readable by its owner only."""
    folder = spool_dir(db_path)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)  # a folder an older version made world-readable
    now = utcnow()
    name = f"{now:%Y%m%dT%H%M%S%f}Z-{os.getpid()}"  # sorts oldest first
    item = SpoolItem(hook, agent_id, redacted_transcript(transcript), now.isoformat())
    partial = folder / f".{name}.tmp"
    _write_private(partial, item.dump())
    os.replace(partial, folder / f"{name}.json")
    return folder / f"{name}.json"


def _write_private(path: Path, text: str) -> None:
    # Created 0600, not chmod-ed after: no moment when another user could open it.
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as file:
        file.write(text)


def redacted_transcript(text: str) -> str:
    """`text` with every secret redacted; a JSON line stays JSON, with the secrets inside its strings replaced."""
    return "\n".join(_redacted_line(line) for line in text.split("\n"))


def _redacted_line(line: str) -> str:
    if line.isascii() and "\\" not in line and not may_hold_secret(line):
        # Without escapes (or invisible characters) every string in the line reads as
        # written, so none holds a secret the line does not: it is kept as the redaction
        # below would keep it, without taking it apart.
        return line
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):
        return redact(line)[0]  # plain text, a line cut in half: redacted as text
    try:
        clean, found = _redacted_value(record)
    except RecursionError:
        return redact(line)[0]
    if found:
        return json.dumps(clean, ensure_ascii=False)
    text, in_text = redact(line)  # a secret only its escaped spelling shows, if any such exists
    return text if in_text else line  # an untouched line keeps its bytes


def _redacted_value(value: object) -> tuple[object, int]:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        pairs = [_redacted_value(item) for item in value]
        return [item for item, _ in pairs], sum(found for _, found in pairs)
    if isinstance(value, dict):
        pairs = {key: _redacted_value(item) for key, item in value.items()}
        return {key: item for key, (item, _) in pairs.items()}, sum(found for _, found in pairs.values())
    return value, 0


def spooled(db_path: Path) -> list[Path]:
    folder = spool_dir(db_path)
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def log_spooled(settings: Settings) -> Drained:
    """Log every spooled session, oldest first: straight into the SQLite file while it can
    take them (`_logged_directly`), the rest through the service (`drain`)."""
    drained, items = Drained(), spooled(settings.db_path)
    while items and settings.db_url is None and _logged_directly(settings.db_path, items[0], drained):
        items.pop(0)
    if items:
        rest = on_event_loop(drain, settings)
        drained.logged += rest.logged
        drained.failed += rest.failed
    return drained


async def drain(settings: Settings) -> Drained:
    """Log every spooled session, oldest first, through the service."""
    from reverie.service import open_reverie

    drained = Drained()
    if items := spooled(settings.db_path):
        async with open_reverie(settings) as reverie:
            for path in items:
                await _drain_one(reverie, path, drained)
    return drained


async def _drain_one(reverie: Reverie, path: Path, drained: Drained) -> None:
    """Log one item and delete it; set it aside if logging it failed.

    Only the database's own trouble — locked (Busy), unreadable (Damaged), the disk (OSError)
    — leaves the item where it is, to be retried: it is no fault of the item. Any other
    failure is the item's, whatever it is (a RecursionError included), so the item moves to
    failed/ and the items after it still drain.
    """
    try:
        item = SpoolItem.load(path.read_text(encoding="utf-8"))
        stored = await log_item(reverie, item)
    except FileNotFoundError:
        return  # another hook logged it meanwhile
    except (Busy, Damaged, OSError):
        raise
    except Exception as error:  # the item's failure, whatever it is, must not stop the items after it
        drained.failed.append(_set_aside_for(path, error))
        return
    path.unlink(missing_ok=True)
    if stored is not None:
        drained.logged.append(stored)


def _set_aside_for(path: Path, error: Exception) -> tuple[Path, str]:
    why = redact(f"{type(error).__name__}: {error}" if not isinstance(error, ReverieError) else str(error))[0]
    return set_aside(path, why), why


def set_aside(path: Path, reason: str) -> Path:
    """Move the item to failed/ beside a note of `reason`; failed/ keeps the newest FAILED_KEPT items."""
    failed = path.parent / "failed"
    failed.mkdir(mode=0o700, exist_ok=True)
    _write_private(failed / f"{path.stem}.reason.txt", reason + "\n")
    os.replace(path, failed / path.name)
    for old in sorted(failed.glob("*.json"))[:-FAILED_KEPT]:  # names sort oldest first
        old.unlink(missing_ok=True)
        (failed / f"{old.stem}.reason.txt").unlink(missing_ok=True)
    return failed / path.name


async def log_item(reverie: Reverie, item: SpoolItem) -> Stored | None:
    """Log the turns of a spooled session that no earlier part of its conversation holds; None if there are none."""
    from reverie.claude_transcript import read_claude_code

    transcript = read_claude_code(item.transcript)  # the hook spools Claude Code transcripts only
    return await log_transcript(reverie, transcript, fallback_id=item.hook.session_id, agent_id=item.agent_id,
                                cwd=item.hook.cwd or transcript.cwd)


async def log_transcript(
    reverie: Reverie, transcript: Transcript[Turn], *, fallback_id: str, agent_id: str | None, cwd: str | None,
    title_text: str | None = None, notes: list[str] | None = None, outcome: Outcome | None = None,
) -> Stored | None:
    """Log a Claude Code transcript as a chain of parts (reverie.service.continuation); None if nothing is new.

    `fallback_id` is the session id to use when no line names one (the hook's); `title_text`
    replaces the title made from each part's own first request.
    """
    from reverie.service.continuation import log_new_turns

    if not transcript.turns:
        return None  # only summaries or snapshots: nothing to log, and no project to claim for it
    project = await reverie.project_key(cwd, claim=True) if cwd else None
    part = await log_new_turns(
        reverie, conversation_key(transcript, fallback_id), transcript.turns, agent_id=agent_id,
        title=title_text or (lambda turns: title(cwd, turns)), project=project, summary=transcript.summary,
        ended_at=transcript.last_timestamp, notes=notes or [], outcome=outcome,
    )
    return Stored(part.session_id, part.turns, part.redactions, len(transcript.skipped)) if part else None


# --- SessionEnd without the service ------------------------------------------------------


class NotDirect(Exception):
    """Only the service can log this item: a conversation with parts stored, one too large
    for one log call, a file `store.direct` does not write, or SQLite's trouble."""


def _logged_directly(db_path: Path, path: Path, drained: Drained) -> bool:
    """Settle the item at `path` as `_drain_one` does, written straight into the SQLite file;
    False, leaving it spooled, when only the service can log it (`NotDirect`)."""
    try:
        item = SpoolItem.load(path.read_text(encoding="utf-8"))
        stored = log_new_conversation(db_path, item, utcnow())
    except FileNotFoundError:
        return True  # another hook logged it meanwhile
    except (NotDirect, OSError):
        return False
    except Exception as error:  # the item's failure, as in `_drain_one`
        drained.failed.append(_set_aside_for(path, error))
        return True
    path.unlink(missing_ok=True)
    if stored is not None:
        drained.logged.append(stored)
    return True


def log_new_conversation(db_path: Path, item: SpoolItem, now: datetime) -> Stored | None:
    """`log_item` as of `now` for a conversation nothing of which is stored yet, with
    `store.direct`: the checks, the redaction and the rows of `log_transcript`,
    `continuation.log_new_turns` and `ingest.log`, in their order. Raises NotDirect when the
    service must log it."""
    from reverie.claude_transcript import read_said
    from reverie.store import direct

    transcript = read_said(item.transcript)
    if not transcript.turns:
        return None  # only summaries or snapshots: nothing to log, and no project to claim for it
    stored = direct.run(db_path, lambda look: _first_part(look, transcript, item, now))
    if stored is None:
        raise NotDirect(f"{db_path} is not a file store.direct writes, or SQLite failed")
    return stored


def _first_part(look: direct.Look, transcript: Transcript[Said], item: SpoolItem, now: datetime) -> Stored:
    from reverie.store import direct

    cwd = item.hook.cwd or transcript.cwd
    project = direct.claim_project(look, project_root(cwd), now) if cwd else None
    base_id = config.check_identifier(conversation_key(transcript, item.hook.session_id), "session_id")
    agent = config.check_identifier(item.agent_id, "agent_id")
    named = title(cwd, transcript.turns)
    if not _one_log_call(transcript, named):
        raise NotDirect("the service logs it in parts, or refuses it in its own words")
    turns, redactions = _redacted_turns(transcript.turns)
    summary, in_summary = redact(transcript.summary) if transcript.summary else (None, 0)
    named, in_title = redact(named)
    part = direct.FirstPart(
        base_id, agent, turns, named, summary, project, LOCAL_GRANTS, logged_at=now,
        started_at=next((as_utc(t.timestamp) for t in turns if t.timestamp), now),
        ended_at=transcript.last_timestamp or now,
    )
    if not direct.log_first_part(look, part):
        raise NotDirect(f"{base_id} is stored already: the service logs what is new, as a later part")
    return Stored(base_id, len(turns), redactions + in_summary + in_title, len(transcript.skipped))


# The grants `Identity.local` holds (`models.LOCAL_GRANTS`): the hooks log as the local user.
LOCAL_GRANTS = frozenset({"write:shared", "write:user", "project:*", "agent:*"})


def _one_log_call(transcript: Transcript[Said], title: str) -> bool:
    """Whether `ingest.check_sizes` takes the conversation as one call's worth."""
    size = sum(len(t.content) + len(t.tool_name or "") for t in transcript.turns) + len(transcript.summary or "")
    return (len(transcript.turns) <= config.MAX_TURNS and size <= config.MAX_TRANSCRIPT_CHARS
            and len(title) <= config.MAX_TITLE_CHARS)


def _redacted_turns(turns: list[Said]) -> tuple[list[Said], int]:
    """As `ingest.redacted_turns`, on plain records."""
    return redacted_turns(turns, lambda turn, content, tool_name: replace(turn, content=content, tool_name=tool_name))


# --- naming ----------------------------------------------------------------------------


def session_key(raw: str) -> str:
    """Claude Code's session id if Reverie accepts it as one, else `cc-` and a safe, still unique spelling."""
    if config.IDENTIFIER.fullmatch(raw) and len(raw) <= BASE_ID_CHARS:
        return raw
    import hashlib  # OpenSSL's, ~3 ms to load: here, for the rare id that needs it

    safe = _UNSAFE.sub("-", raw).strip("-.")[:BASE_ID_CHARS - 12]
    digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
    return f"cc-{safe}-{digest}" if safe else f"cc-{digest}"


def conversation_key(transcript: Transcript[Said] | Transcript[Turn], fallback_id: str) -> str:
    """The id a transcript's parts chain under.

    The conversation's original `sessionId` (its first line's, so a resumed copy chains
    onto the original), else `fallback_id`. A subagent's own file carries its parent's
    `sessionId`; it gets `<parent>:agent-<agent id>`, a conversation of its own.
    """
    base = transcript.session_id or fallback_id
    return session_key(f"{base}:agent-{transcript.subagent_id}" if transcript.subagent_id else base)


def title(cwd: str | None, turns: Sequence[Said | Turn]) -> str:
    """`<project dir>: <first thing the user asked>`; the reader leaves no wrapper or notice as a user turn."""
    asked = next((t.content for t in turns if t.role == "user"), None)
    project = project_name(cwd)
    return shorten(f"{project}: {asked}" if asked else project, TITLE_CHARS)

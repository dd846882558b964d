"""What a session starting in a folder is shown: `reverie recall` and Claude Code's SessionStart hook.

Within the token budget, in this order:

1. a line for each dream proposal awaiting review, so the agent can raise it; when none
   waits and a dream is due (`service.schedule.dream_due`), a line asking the agent to
   offer `/reverie:dream`;
2. the last RECAPS sessions in this project (`reverie.projects`), one line each: the
   session's summary when it has one (Claude Code writes its own), else its title — the
   first thing the user asked — and how it ended, if known. They take at most
   RECAP_SHARE of the budget, and are there before any dream has run;
3. the memory `read_memory` gives in this project: its entries with the shared ones and
   the user's, the agent's notes not yet dreamt over, and with a query the matching
   excerpts of what the user and the assistant said. No tool's call or output is shown:
   an earlier session's tooling does not speak here (`store.sessions.search_events`).

Nothing at all when there is nothing to say, so a new project starts with a clean context.

**Two readers, one text.** `session_start` reads through the service. The SessionStart
hook without a query — what Claude Code runs at every session start — reads a SQLite
file directly instead (`from_file`, through `store.direct`): loading the service
(pydantic, asyncio, aiosqlite) takes longer than the whole read. Both lay the text out
with the functions here; `from_file` repeats what `service.recall.read` does without a
query (the candidates, outdated values left out, each section's share of the budget) and
counts the reads the service counts. A test holds the two to the same text and the same
read counts on the same files.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from reverie import claims, config
from reverie.config import format_duration
from reverie.projects import project_root
from reverie.report import ShownEntry, ShownNote, ShownNotice, entry_line, episode_line, memory_markdown, note_line
from reverie.store import direct
from reverie.text import estimate_tokens, shorten, within_budget

if TYPE_CHECKING:
    from reverie.config import Settings
    from reverie.models import Episode
    from reverie.service import Reverie

T = TypeVar("T")

RECAPS = 5
RECAP_CHARS = 200
RECAP_SHARE = 0.3


class Recapped(Protocol):
    """What a recap shows of a session (`models.SessionRecord`, `store.direct.Session`)."""

    @property
    def id(self) -> str: ...
    @property
    def title(self) -> str | None: ...
    @property
    def outcome(self) -> str: ...
    @property
    def outcome_summary(self) -> str | None: ...
    @property
    def started_at(self) -> datetime: ...


async def session_start(reverie: Reverie, cwd: str, query: str | None, budget: int) -> str:
    """The text to load at the start of a session in `cwd`; empty when there is nothing."""
    project = await reverie.project_key(cwd)
    head, recent = opening(project, await reverie.recent_sessions(project, RECAPS), cwd, budget)
    view = await reverie.read_memory(query, budget_tokens=_left(budget, head, recent), project=project)
    waiting = _review(view.pending_proposals) or _dream_offer(await _due(reverie))
    return page(head, recent, waiting, _memory(view.entries, view.notes, view.episodes))


async def _due(reverie: Reverie) -> str | None:
    from reverie.service.schedule import dream_due  # the service's: loaded with it

    return await dream_due(reverie, reverie.schedule, reverie.clock())


def opening(project: str, recent: Sequence[Recapped], cwd: str, budget: int) -> tuple[str, str]:
    """The heading, and the recent sessions' section: empty if there are none, or if the
    budget cannot hold it beside the memory."""
    head = f"# Reverie memory (working in {project})"
    recaps = recap_lines(recent, project_root(cwd).name, budget)
    section = "\n".join(["## Recent sessions in this project", *recaps]) if recaps else ""
    if _left(budget, head, section) < config.MIN_BUDGET_TOKENS:
        section = ""  # too small a budget for both: the memory comes first
    return head, section


def page(head: str, recent: str, waiting: list[str], memory: list[str]) -> str:
    """The whole text; empty when nothing is waiting and there is nothing to show."""
    body = [section for section in [recent, *memory] if section]
    return "\n".join([head, *waiting, "", "\n\n".join(body)]) if body or waiting else ""


def _review(pending: Sequence[ShownNotice]) -> list[str]:
    return [f"Reverie: dream proposal {p.proposal_id} awaits your review — ask me to show it." for p in pending]


def _dream_offer(due: str | None) -> list[str]:
    """A line asking Claude to offer `/reverie:dream` (the plugin's skill: a dream written by
    the user's own model) when one is `due` and none awaits review."""
    return [f"Reverie: a dream is due ({due}) — offer the user /reverie:dream to consolidate memory."] if due else []


def _left(budget: int, *taken: str) -> int:
    """Tokens of `budget` the memory may take after `taken` and the line breaks around them."""
    return budget - sum(estimate_tokens(text) + 1 for text in taken if text)


def recap_lines(recent: Sequence[Recapped], folder: str, budget: int) -> list[str]:
    """One line per session, newest first, as many as fit RECAP_SHARE of `budget` tokens."""
    lines = [f"- {s.started_at:%Y-%m-%d}: {recap(s, folder)}" for s in recent]
    return within_budget(lines, lambda line: len(line) + 1, int(budget * RECAP_SHARE) * 4)[0]


def recap(session: Recapped, folder: str) -> str:
    """The session's summary, else its title (without the `<folder>: ` the hook puts first) and outcome."""
    if session.outcome_summary and session.outcome == "unknown":
        return shorten(session.outcome_summary, RECAP_CHARS)
    asked = (session.title or session.id).removeprefix(f"{folder}: ")
    ended = f" — {session.outcome}" if session.outcome != "unknown" else ""
    said = f": {session.outcome_summary}" if session.outcome_summary else ""
    return shorten(f"{asked}{ended}{said}", RECAP_CHARS)


def _memory(entries: Sequence[ShownEntry], notes: Sequence[ShownNote], episodes: Sequence[Episode]) -> list[str]:
    """The memory's sections, without `read_memory`'s pending-review section (the lines above say it)."""
    return [
        "## Memory\n" + "\n".join(map(entry_line, entries)) if entries else "",
        "## Notes since the last dream (not yet reviewed)\n" + "\n".join(map(note_line, notes)) if notes else "",
        "## From past sessions (what was said, not curated)\n" + "\n".join(map(episode_line, episodes))
        if episodes else "",
    ]


# --- the same text, read from the SQLite file (the SessionStart hook without a query) -----


def from_file(settings: Settings, cwd: str, budget: int, now: datetime) -> str | None:
    """`session_start` without a query, as of `now`, for the local caller: read from the
    SQLite file with `store.direct`. None when the service must read it instead: a
    PostgreSQL server, a file `store.direct` does not read, or a budget the service refuses."""
    if settings.db_url is not None:
        return None
    return direct.run(settings.db_path, lambda look: _from_file(look, settings, cwd, budget, now))


def _from_file(look: direct.Look, settings: Settings, cwd: str, budget: int, now: datetime) -> str | None:
    agent = settings.agent_id
    project = direct.project_key(look, project_root(cwd))
    head, recent = opening(project, direct.recent_in_project(look, agent, project, RECAPS), cwd, budget)
    memory_budget = _left(budget, head, recent)
    if not config.MIN_BUDGET_TOKENS <= memory_budget <= config.MAX_BUDGET_TOKENS:
        return None  # `service.recall.check_budget` refuses it, in its own words
    entries, notes, pending = _read_memory(look, agent, project, memory_budget, now)
    waiting = _review(pending) or _dream_offer(_due_in_file(look, settings, now))
    return page(head, recent, waiting, _memory(entries, notes, []))


def _read_memory(look: direct.Look, agent: str, project: str, budget: int, now: datetime
                 ) -> tuple[list[direct.Entry], list[direct.Note], list[direct.Notice]]:
    """As `service.recall.read` without a query for the local caller in `project`: the entries
    and notes that fit `budget`, and every proposal awaiting review; the entries' reads counted."""
    scopes = [f"agent:{agent}", "shared", "user", f"project:{project}"]  # `access.project_view` of the local caller
    entries = direct.by_prior(look, now, scopes, min(max(budget // 20, 50), 5_000))  # `recall.candidates`
    notes = direct.pending_notes(look, agent, project)
    pending = direct.pending_notices(look)  # the local caller sees every one (`access.visible_notices`)
    entries, notes = _fill(entries, notes, _line_room(budget, bool(notes), pending))
    direct.count_reads(look, [entry.id for entry in entries], now)
    return entries, notes, pending


# `service.recall`'s shares of the budget, which it keeps in characters, four to a token.
MEMORY_SHARE, JUDGED_SHARE, CHARS_PER_TOKEN = 0.6, 1.25, 4
_STAND_IN = direct.Note("s", 0, "x", datetime(2000, 1, 1, tzinfo=UTC))  # measured, never shown


def _line_room(budget: int, notes: bool, pending: list[direct.Notice]) -> int:
    """As `recall.line_room` without excerpts: the characters the lines may take."""
    shown = [_STAND_IN] if notes else []
    frame = len(memory_markdown([], shown, [], pending)) - sum(_cost(note_line(note)) for note in shown)
    return max(budget * CHARS_PER_TOKEN - frame, 0)


def _fill(entries: list[direct.Entry], notes: list[direct.Note], room: int
          ) -> tuple[list[direct.Entry], list[direct.Note]]:
    """As `recall.select` without a query: each section's best judged for outdated values,
    then the entries up to MEMORY_SHARE of `room` when notes wait, and the notes in what is left."""
    judged = int(room * JUDGED_SHARE)
    entries, notes = _current(_fit(entries, entry_line, judged)[0], _fit(notes, note_line, judged)[0])
    entries, used = _fit(entries, entry_line, int(room * MEMORY_SHARE) if notes else room)
    return entries, _fit(notes, note_line, room - used)[0]


def _current(entries: list[direct.Entry], notes: list[direct.Note]) -> tuple[list[direct.Entry], list[direct.Note]]:
    """As `recall._current`: without what a newer entry or note replaces."""
    statements: list[tuple[Any, str, tuple[int, int]]] = sorted(  # (moment, text, which): see recall._current
        [((e.observed_at, "", -1, 0), e.content, (0, i)) for i, e in enumerate(entries)]
        + [((n.created_at, n.session_id, -1, n.idx), n.content, (1, i)) for i, n in enumerate(notes)],
        key=lambda statement: statement[0],
    )
    stale = {statements[i][2] for i in claims.outdated([(text, key) for key, text, _ in statements])}
    return ([e for i, e in enumerate(entries) if (0, i) not in stale],
            [n for i, n in enumerate(notes) if (1, i) not in stale])


def _fit(items: list[T], render: Callable[[T], str], room: int) -> tuple[list[T], int]:
    return within_budget(items, lambda item: _cost(render(item)), room)


def _cost(line: str) -> int:
    return len(line) + 1


def _due_in_file(look: direct.Look, settings: Settings, now: datetime) -> str | None:
    """As `service.schedule.dream_due` over every agent's sessions: why a dream is due, or None."""
    waiting, oldest = direct.undreamed(look)
    if not waiting:
        return None
    if waiting >= settings.dream_after:
        return f"{waiting} {'session awaits' if waiting == 1 else 'sessions await'} a dream"
    last = direct.last_dream_at(look)
    since = last or oldest
    if settings.dream_every is None or since is None or now - since < settings.dream_every:
        return None
    since_what = "the last dream" if last else "the oldest session awaiting one"
    return f"{format_duration(settings.dream_every)} since {since_what}"

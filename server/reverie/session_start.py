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
"""

from __future__ import annotations

from reverie.models import MemoryView, SessionRecord
from reverie.projects import project_root
from reverie.report import entry_line, episode_line, note_line
from reverie.service import Reverie
from reverie.service.recall import MIN_BUDGET
from reverie.service.schedule import dream_due
from reverie.text import estimate_tokens, shorten, within_budget

RECAPS = 5
RECAP_CHARS = 200
RECAP_SHARE = 0.3


async def session_start(reverie: Reverie, cwd: str, query: str | None, budget: int) -> str:
    """The text to load at the start of a session in `cwd`; empty when there is nothing."""
    project = await reverie.project_key(cwd)
    recaps = recap_lines(await reverie.recent_sessions(project, RECAPS), project_root(cwd).name, budget)
    head = f"# Reverie memory (working in {project})"
    recent = "\n".join(["## Recent sessions in this project", *recaps]) if recaps else ""
    if _left(budget, head, recent) < MIN_BUDGET:
        recent = ""  # too small a budget for both: the memory comes first
    view = await reverie.read_memory(query, budget_tokens=_left(budget, head, recent), project=project)
    waiting = [f"Reverie: dream proposal {p.proposal_id} awaits your review — ask me to show it."
               for p in view.pending_proposals] or await _dream_offer(reverie)
    body = [section for section in [recent, *_memory(view)] if section]
    return "\n".join([head, *waiting, "", "\n\n".join(body)]) if body or waiting else ""


async def _dream_offer(reverie: Reverie) -> list[str]:
    """A line asking Claude to offer `/reverie:dream` (the plugin's skill: a dream written by
    the user's own model) when one is due and none awaits review."""
    due = await dream_due(reverie, reverie.schedule, reverie.clock())
    return [f"Reverie: a dream is due ({due}) — offer the user /reverie:dream to consolidate memory."] if due else []


def _left(budget: int, *taken: str) -> int:
    """Tokens of `budget` the memory may take after `taken` and the line breaks around them."""
    return budget - sum(estimate_tokens(text) + 1 for text in taken if text)


def recap_lines(recent: list[SessionRecord], folder: str, budget: int) -> list[str]:
    """One line per session, newest first, as many as fit RECAP_SHARE of `budget` tokens."""
    lines = [f"- {s.started_at:%Y-%m-%d}: {recap(s, folder)}" for s in recent]
    return within_budget(lines, lambda line: len(line) + 1, int(budget * RECAP_SHARE) * 4)[0]


def recap(session: SessionRecord, folder: str) -> str:
    """The session's summary, else its title (without the `<folder>: ` the hook puts first) and outcome."""
    if session.outcome_summary and session.outcome == "unknown":
        return shorten(session.outcome_summary, RECAP_CHARS)
    asked = (session.title or session.id).removeprefix(f"{folder}: ")
    ended = f" — {session.outcome}" if session.outcome != "unknown" else ""
    said = f": {session.outcome_summary}" if session.outcome_summary else ""
    return shorten(f"{asked}{ended}{said}", RECAP_CHARS)


def _memory(view: MemoryView) -> list[str]:
    """The view's sections, less its own pending-review section (the lines above say it)."""
    return [
        "## Memory\n" + "\n".join(map(entry_line, view.entries)) if view.entries else "",
        "## Notes since the last dream (not yet reviewed)\n" + "\n".join(map(note_line, view.notes))
        if view.notes else "",
        "## From past sessions (what was said, not curated)\n" + "\n".join(map(episode_line, view.episodes))
        if view.episodes else "",
    ]

"""`reverie demo`: the whole loop on bundled sessions, in a new database that it keeps.

Nine sessions of a support agent and a coding agent over three weeks of October: notes
repeated in different sessions, a database upgrade that changes a fact, a test command
that keeps failing the same way, a deploy routine, preferences the user keeps restating,
a pasted API key and an instruction smuggled in through a ticket's text.

The demo dreams, applies what carries no risk flag (as `reverie dream --auto` does), shows
what each agent reads next, and ends with the commands to try on the database it leaves:
the flagged changes still wait there for a person's review.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from reverie.config import Settings
from reverie.models import MemoryView, Turn
from reverie.report import applied_text, proposal_markdown
from reverie.service import Reverie, open_reverie

AGENTS = ("support-bot", "coding-agent")


def demo_sessions() -> list[dict[str, Any]]:
    sessions: list[dict[str, Any]] = json.loads(
        (resources.files("reverie") / "demo" / "sessions.json").read_text(encoding="utf-8"))
    return sessions


async def log_demo_sessions(reverie: Reverie) -> list[str]:
    """Log every bundled session; returns their ids."""
    ids = []
    for session in demo_sessions():
        result = await reverie.log_session(
            [Turn.model_validate(t) for t in session["turns"]], session_id=session["id"],
            agent_id=session["agent_id"], title=session["title"], notes=session["notes"],
            outcome=session["outcome"], outcome_summary=session.get("outcome_summary"),
        )
        ids.append(result.session_id)
    return ids


async def run_demo(path: Path, say: Callable[[str], None]) -> None:
    """Log the demo sessions into a new database at `path`, dream, auto-apply, and show the result."""
    async with open_reverie(Settings(db_path=path, agent_id=AGENTS[0])) as reverie:
        ids = await log_demo_sessions(reverie)
        say(f"# Logged {len(ids)} example sessions into {path}\n")
        proposal = await reverie.propose_dream("heuristic")
        say(proposal_markdown(proposal, "terminal") + "\n")
        result = await reverie.apply_unflagged(proposal.id)
        say(f"# The demo decides for you: it applies the changes without risk flags\n{applied_text(result)}\n")
        for agent in AGENTS:
            view = await reverie.read_memory(agent_id=agent, budget_tokens=1500)
            say(f"# What {agent} reads at its next session start\n{view.markdown}\n\n{reach(view)}\n")
    say(next_steps(path, result.proposal_id, result.held_for_review))


def reach(view: MemoryView) -> str:
    """Which of an agent's entries every agent reads: what the user said to one reaches all."""
    everyone = sum(entry.scope in ("user", "shared") for entry in view.entries)
    return (f"({everyone} of these {len(view.entries)} entries are in scope `user` or `shared`: every agent reads "
            "them, whichever agent heard them. Entries in scope `agent:<id>` reach only that agent.)")


def next_steps(path: Path, applied: str, held: str | None) -> str:
    commands = [
        ("reverie show --agent coding-agent", "what the coding agent reads"),
        *([(f"reverie review {held}", "decide the flagged changes the demo left for you")] if held else []),
        (f"reverie revert {applied}", "undo the dream the demo applied"),
        ("reverie log FILE && reverie dream", "log a transcript of your own, then dream over it"),
        ("reverie serve --help", "run it as the MCP server your agents connect to"),
    ]
    width = max(len(command) for command, _ in commands) + 3
    listed = "\n".join(f"  {command.ljust(width)}{purpose}" for command, purpose in commands)
    return (f"# Try it yourself\nThe database stays at {path}; delete its folder when you are done. "
            f"Point the commands at it:\n\n  export REVERIE_DB={path}\n\n{listed}")

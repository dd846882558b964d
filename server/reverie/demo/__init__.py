"""`reverie demo`: the whole loop on bundled sessions, in a throwaway database.

Nine sessions of a support agent and a coding agent over three weeks of October: notes
repeated in different sessions, a database upgrade that changes a fact, a test command
that keeps failing the same way, a deploy routine, preferences the user keeps restating,
a pasted API key and an instruction smuggled in through a ticket's text.
"""

from __future__ import annotations

import json
from importlib import resources

from reverie.models import Turn
from reverie.service import Reverie


def demo_sessions() -> list[dict]:
    return json.loads((resources.files("reverie") / "demo" / "sessions.json").read_text(encoding="utf-8"))


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

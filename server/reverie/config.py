"""Where the database lives, who is calling, and the documented limits on input.

Precedence: command-line flag, then environment (`REVERIE_DB`, `REVERIE_AGENT_ID`), then
the default (the user data dir from platformdirs, agent "default").
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from reverie.errors import InvalidInput

# Limits on what one call may send. Past these the call is refused whole, with a message.
MAX_TRANSCRIPT_CHARS = 2_000_000   # all turns of one log_session call together
MAX_TURNS = 5_000                  # turns in one log_session call
MAX_NOTES = 50                     # notes in one log_session call
MAX_NOTE_CHARS = 2_000
MAX_TITLE_CHARS = 200
MAX_BUDGET_TOKENS = 100_000
MAX_SESSIONS = 100                 # sessions one dream reviews
MAX_INSTRUCTIONS_CHARS = 4_096
MAX_OPERATION_CHARS = 2_000        # an operation's (or an edit's) content

IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")
SCOPE = re.compile(r"^(shared|user|agent:[A-Za-z0-9._:@-]{1,128}|project:[A-Za-z0-9._:@/-]{1,128})$")


def default_db_path() -> Path:
    return platformdirs.user_data_path("reverie", appauthor=False) / "memory.db"


@dataclass(frozen=True)
class Settings:
    db_path: Path
    agent_id: str = "default"
    dream_after: int = 5          # unconsolidated sessions that make a dream due
    stale_after_days: int = 90    # unread and unrestated this long → proposed for pruning

    @classmethod
    def resolve(cls, db: str | os.PathLike | None = None, agent: str | None = None) -> Settings:
        path = db or os.environ.get("REVERIE_DB") or default_db_path()
        agent_id = agent or os.environ.get("REVERIE_AGENT_ID") or "default"
        if not IDENTIFIER.match(agent_id):
            raise InvalidInput(f"Agent id {agent_id!r} is not valid (--agent / REVERIE_AGENT_ID): "
                               "use 1-128 letters, digits and . _ : @ - only.")
        return cls(db_path=Path(path).expanduser(), agent_id=agent_id)

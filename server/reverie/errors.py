"""Everything that can go wrong in a way a person or an agent can act on.

    ReverieError
    ├── InvalidInput        the caller sent something malformed or too large
    ├── NotFound            an id that does not exist (session, proposal, op)
    ├── Forbidden           the caller's identity may not read or change that (another
    │                       agent's private memory, sessions or proposals; a scope its
    │                       token was not granted)
    ├── Conflict            the request is valid but the state forbids it
    │   ├── StaleProposal   memory changed since the proposal was made
    │   ├── AlreadyDecided  the proposal was already applied, rejected or reverted
    │   └── DreamRunning    another dream (this process or another) holds the dream lock
    ├── NeedsDecision       apply_dream was called without the user's decisions
    ├── Damaged             the database file cannot be read or checked (missing, not
    │                       SQLite, damaged pages); `reverie doctor` reports it
    ├── Unwritable          the database cannot be written (a full disk, a read-only
    │                       file or folder); nothing was written
    ├── Unreachable         the PostgreSQL server holding the memory cannot be reached
    └── EngineFailed        a dream engine could not produce a proposal (no key, API
                            errors, invalid model output); nothing was stored

Each message says what to do next (and, where that step differs at a shell, `terminal`
says it as a command). The MCP layer turns these into tool errors, the CLI into a clean
message and exit code, and the background dream schedule into a log line;
nothing else catches them.
"""

from reverie.safety import redact


class ReverieError(Exception):
    """Base for every anticipated failure.

    Messages often quote what the caller sent (an id, a scope) and are echoed to clients
    and logs, so they are redacted like everything stored.
    """

    def __init__(self, message: object = "", *args: object, terminal: str | None = None) -> None:
        super().__init__(redact(str(message))[0], *args)
        # The same advice for a person at a shell, where the next step is a `reverie` command
        # rather than a tool call; the CLI prints it instead of the message when it is given.
        self.terminal = redact(terminal)[0] if terminal else None


class InvalidInput(ReverieError):
    pass


class NotFound(ReverieError):
    pass


class Forbidden(ReverieError):
    pass


class Conflict(ReverieError):
    pass


class StaleProposal(Conflict):
    pass


class AlreadyDecided(Conflict):
    pass


class DreamRunning(Conflict):
    pass


class NeedsDecision(ReverieError):
    pass


class Damaged(ReverieError):
    pass


class Unwritable(ReverieError):
    pass


class Unreachable(ReverieError):
    pass


class EngineFailed(ReverieError):
    pass


class Busy(Conflict):
    pass

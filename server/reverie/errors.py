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
    └── EngineFailed        a dream engine could not produce a proposal (no key, API
                            errors, invalid model output); nothing was stored

Each message says what to do next. The MCP layer turns these into tool errors, the CLI
into a clean message and exit code, and the background dream schedule into a log line;
nothing else catches them.
"""


class ReverieError(Exception):
    """Base for every anticipated failure."""


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


class EngineFailed(ReverieError):
    pass


class Busy(Conflict):
    pass

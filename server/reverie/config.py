"""Where the database lives, who is calling, when to dream, and the documented limits on input.

Precedence: command-line flag, then environment (`REVERIE_DB`, `REVERIE_AGENT_ID`,
`REVERIE_DREAM_EVERY`, `REVERIE_DREAM_AFTER`, `REVERIE_DREAM_MODE`, `REVERIE_DREAM_IDLE`),
then the default (the user data dir from platformdirs, agent "default", no background
dreams).

Background dreams are off unless asked for: a dream may call a paid model (engine "auto"
with an API key), so a server does not start one on its own accord. Setting how often
(`dream_every`) or after how many sessions (`dream_after`) turns them on in `review` mode.

The `openai` engine's settings (`REVERIE_OPENAI_*`, `OpenAISettings`) come from the environment
only, and are read when a dream starts.

This is the one module that reads the environment (`environment()`; a test holds every other
module to it), so every variable Reverie honours is found here: the ones above, `REVERIE_TOKENS`,
the anthropic engine's `ANTHROPIC_API_KEY`, `REVERIE_MODEL`, `REVERIE_MAP_MODEL`,
`REVERIE_MAP_CONCURRENCY`, and Claude Code's `CLAUDE_CONFIG_DIR`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Literal, NamedTuple, get_args

from reverie.errors import EngineFailed, InvalidInput
from reverie.safety import holds_secret

# Limits on what one call may send. Past these the call is refused whole, with a message.
MAX_TRANSCRIPT_CHARS = 2_000_000   # all turns of one log_session call together
MAX_TURNS = 5_000                  # turns in one log_session call
MAX_NOTES = 50                     # notes in one log_session call
MAX_NOTE_CHARS = 2_000
MAX_TITLE_CHARS = 200
MIN_BUDGET_TOKENS = 100            # below this not even read_memory's headings fit
MAX_BUDGET_TOKENS = 100_000
MAX_SESSIONS = 100                 # sessions one dream reviews
MAX_INSTRUCTIONS_CHARS = 4_096
MAX_OPERATION_CHARS = 2_000        # an operation's (or an edit's) content

# The dream lock: how long a dream may hold it before another process may take it over.
# Longer than any dream should take (a 100-session Claude dream takes a few minutes), short
# enough that a crashed server blocks dreaming only briefly.
DREAM_LOCK_TTL = timedelta(minutes=10)

# Check with .fullmatch: `$` alone also matches before a trailing newline ("abc\n").
# (Not \Z: these patterns also go into JSON schemas, whose regex dialect lacks it.)
IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")


def check_identifier(value: str, what: str) -> str:
    """`value` if it is a valid session or agent id; else InvalidInput naming `what` it is."""
    if not IDENTIFIER.fullmatch(value):
        raise InvalidInput(f"{what} {value!r} is not valid: use 1-128 letters, digits and . _ : @ - only.")
    if holds_secret(value):  # an id is looked up, so it cannot be redacted: it is refused instead
        raise InvalidInput(f"The {what} holds what looks like a secret (a key, token or password), so it was "
                           "not stored. Choose one without credentials in it; nothing was changed.")
    return value
SCOPE = re.compile(r"^(shared|user|agent:[A-Za-z0-9._:@-]{1,128}|project:[A-Za-z0-9._:@/-]{1,128})$")


# --- the "openai" dream engine: any OpenAI-compatible Chat Completions server -------------------
#
# Read when a dream starts (so a bad value fails that dream, not the server's start):
# REVERIE_OPENAI_BASE_URL (the API root, ending in /v1), REVERIE_OPENAI_MODEL (the reduce model),
# REVERIE_OPENAI_MAP_MODEL (default: the same model), REVERIE_OPENAI_API_KEY (only if the server
# wants one), REVERIE_OPENAI_TIMEOUT (seconds one call may take), REVERIE_OPENAI_STRUCTURED
# (json_schema or tools: how the answer's shape is asked for) and REVERIE_MAP_CONCURRENCY.
OPENAI_BASE_URL = "REVERIE_OPENAI_BASE_URL"
# A local model on a laptop writes a long reduce answer slowly, so the default is generous;
# it still bounds a hung server.
DEFAULT_OPENAI_TIMEOUT = 300.0
# A local server usually runs one generation at a time (Ollama, llama.cpp by default); more
# parallel calls only queue there and eat into each call's timeout.
DEFAULT_OPENAI_CONCURRENCY = 1
OpenAIStructured = Literal["json_schema", "tools"]


def environment(variable: str) -> str | None:
    """The variable's value without surrounding space; None when it is unset or blank."""
    return os.environ.get(variable, "").strip() or None


def child_environment(**extra: str) -> dict[str, str]:
    """This process's environment plus `extra`, for a program Reverie runs (`pg_dump`)."""
    return {**os.environ, **extra}


def openai_configured() -> bool:
    """Whether the user pointed Reverie at an OpenAI-compatible server (engine "auto" then uses it)."""
    return environment(OPENAI_BASE_URL) is not None


def anthropic_key() -> str | None:
    """The Anthropic API key, when set (engine "auto" then dreams with Claude)."""
    return environment("ANTHROPIC_API_KEY")


def tokens_file() -> str | None:
    """`REVERIE_TOKENS`: where `serve --http` keeps its bearer tokens, when not beside the database."""
    return environment("REVERIE_TOKENS")


def agent_id() -> str | None:
    """`REVERIE_AGENT_ID`: the calling agent, when no `--agent` names it."""
    return environment("REVERIE_AGENT_ID")


def claude_config_dir() -> str | None:
    """`CLAUDE_CONFIG_DIR`: where Claude Code keeps its files, when not in ~/.claude."""
    return environment("CLAUDE_CONFIG_DIR")


def map_concurrency(default: int) -> int:
    """`REVERIE_MAP_CONCURRENCY`: how many map calls a model engine keeps in flight at once."""
    raw = environment("REVERIE_MAP_CONCURRENCY")
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise EngineFailed(f"REVERIE_MAP_CONCURRENCY must be a whole number of at least 1; got {raw!r}.")
    return int(raw)


class OpenAISettings(NamedTuple):  # not a dataclass: defining one takes ~0.5 ms, paid by every hook process
    base_url: str
    model: str
    map_model: str
    api_key: str | None
    timeout: float
    concurrency: int
    structured: OpenAIStructured

    @classmethod
    def from_env(cls) -> OpenAISettings:
        base_url, model = environment(OPENAI_BASE_URL), environment("REVERIE_OPENAI_MODEL")
        if not base_url or not model:
            raise EngineFailed(
                "The openai engine needs REVERIE_OPENAI_BASE_URL (e.g. http://localhost:11434/v1) and "
                "REVERIE_OPENAI_MODEL (a model that server serves); or dream with engine='heuristic' (offline).")
        return cls(base_url.rstrip("/"), model, environment("REVERIE_OPENAI_MAP_MODEL") or model,
                   environment("REVERIE_OPENAI_API_KEY"), _seconds(environment("REVERIE_OPENAI_TIMEOUT")),
                   map_concurrency(DEFAULT_OPENAI_CONCURRENCY), _structured(environment("REVERIE_OPENAI_STRUCTURED")))


def _seconds(raw: str | None) -> float:
    try:
        seconds = float(raw) if raw else DEFAULT_OPENAI_TIMEOUT
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < 86_400:
        raise EngineFailed(f"REVERIE_OPENAI_TIMEOUT must be a number of seconds above 0; got {raw!r}.")
    return seconds


def _structured(raw: str | None) -> OpenAIStructured:
    if raw and raw not in get_args(OpenAIStructured):
        raise EngineFailed(f"REVERIE_OPENAI_STRUCTURED must be json_schema or tools; got {raw!r}.")
    return raw or "json_schema"


_SERVER_URL = re.compile(r"postgres(?:ql)?://", re.IGNORECASE)


def is_server_url(target: str | os.PathLike) -> bool:
    """Whether a `--db` / `REVERIE_DB` value names a PostgreSQL server rather than a SQLite file."""
    return bool(_SERVER_URL.match(str(target)))


def safe_url(url: str) -> str:
    """A server URL without its password, for messages and logs."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1@", url)


def default_db_path() -> Path:
    import platformdirs  # only without --db or REVERIE_DB: a hook given its database never loads it

    return platformdirs.user_data_path("reverie", appauthor=False) / "memory.db"


DreamMode = Literal["off", "review", "auto"]
DREAM_MODES: tuple[str, ...] = get_args(DreamMode)
DEFAULT_DREAM_AFTER = 5
DEFAULT_DREAM_IDLE = timedelta(seconds=60)

_DURATION = re.compile(r"(\d{1,6})([dhms])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


@dataclass(frozen=True)
class Settings:
    # The SQLite file; with `db_url` (a PostgreSQL server) the local file's place only
    # anchors what stays on this machine (the hooks' spool, the tokens file).
    db_path: Path
    agent_id: str = "default"
    dream_after: int = DEFAULT_DREAM_AFTER  # sessions no dream has reviewed that make one due
    stale_after_days: int = 90    # unread and unrestated this long → proposed for pruning
    dream_every: timedelta | None = None  # a dream is also due this long after the last one
    dream_mode: DreamMode = "off"  # background dreams: off, review (proposal waits), auto
    dream_idle: timedelta = DEFAULT_DREAM_IDLE  # no background dream until tools are quiet this long
    project_dir: Path | None = None  # read_memory over MCP shows this folder's project (`reverie.projects`)
    db_url: str | None = None  # a postgresql:// URL: the memory lives on that server

    @property
    def database(self) -> str | Path:
        """Where the memory is: the server's URL, else the SQLite file."""
        return self.db_url or self.db_path

    @property
    def shown(self) -> str:
        """Where the memory is, as a person is told it: the URL without its password, or the file's full path."""
        return safe_url(self.db_url) if self.db_url else str(self.db_path.resolve())

    @classmethod
    def resolve(
        cls, db: str | os.PathLike | None = None, agent: str | None = None, *, dream_every: str | None = None,
        dream_after: str | int | None = None, dream_mode: str | None = None, dream_idle: str | None = None,
        project: str | None = None,
    ) -> Settings:
        """Settings from flags (these arguments, as typed on the command line), else the environment."""
        path = db or environment("REVERIE_DB") or default_db_path()
        url = str(path) if is_server_url(path) else None
        agent = agent or agent_id() or "default"
        check_identifier(agent, "Agent id (--agent / REVERIE_AGENT_ID)")
        every = _flag_or_env(dream_every, "REVERIE_DREAM_EVERY")
        after = _flag_or_env(dream_after, "REVERIE_DREAM_AFTER")
        mode = _flag_or_env(dream_mode, "REVERIE_DREAM_MODE") or ("review" if every or after else "off")
        idle = _flag_or_env(dream_idle, "REVERIE_DREAM_IDLE")
        folder = _flag_or_env(project, "REVERIE_PROJECT")
        return cls(
            db_path=default_db_path() if url else Path(path).expanduser(), db_url=url, agent_id=agent,
            dream_after=_count(after, "--dream-after / REVERIE_DREAM_AFTER") if after else DEFAULT_DREAM_AFTER,
            dream_every=parse_duration(every, "--dream-every / REVERIE_DREAM_EVERY") if every else None,
            dream_mode=_mode(mode),
            dream_idle=parse_duration(idle, "--dream-idle / REVERIE_DREAM_IDLE") if idle else DEFAULT_DREAM_IDLE,
            project_dir=Path(folder).expanduser().resolve() if folder else None,
        )


def _flag_or_env(flag: str | int | None, variable: str) -> str | None:
    if flag is None:
        return environment(variable)
    return str(flag).strip() or None


def _count(text: str, source: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise InvalidInput(f"{source} must be a whole number of sessions, 1 or more; got {text!r}.")
    return int(text)


def _mode(text: str) -> DreamMode:
    if text not in DREAM_MODES:
        raise InvalidInput(f"--dream-mode / REVERIE_DREAM_MODE must be one of {', '.join(DREAM_MODES)}; got {text!r}.")
    return text


def parse_duration(text: str, source: str = "duration") -> timedelta:
    """'90s', '30m', '6h', '1d', or parts together ('1h30m') → a positive timedelta."""
    spelled = text.strip().lower()
    parts = _DURATION.findall(spelled)
    if not parts or "".join(n + u for n, u in parts) != spelled:
        raise InvalidInput(f"{source}: {text!r} is not a duration. Write a whole number and a unit, "
                           "s, m, h or d: 90s, 30m, 6h, 1d (or 1h30m).")
    total = sum((timedelta(**{_UNITS[unit]: int(number)}) for number, unit in parts), timedelta())
    if total <= timedelta(0):
        raise InvalidInput(f"{source}: {text!r} is no time at all; use at least 1s.")
    return total


def format_duration(span: timedelta) -> str:
    """The inverse of `parse_duration`, largest units first: 6h, 1d, 1h30m, 90s → 1m30s."""
    seconds, parts = int(span.total_seconds()), []
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"

"""Bearer tokens for `reverie serve --http`: a file of hashed tokens, each naming an agent and its grants.

The tokens file (`tokens.json` beside the database unless `--tokens PATH` or
`REVERIE_TOKENS` names another) maps sha256(token) to the agent the token speaks for, the
scopes it was granted (see `reverie.models.Identity`), when it was made and a label. The
token itself is printed once, by `reverie token add`, and never stored: reading the file
tells who may connect, not how. Revoking removes the entry; a running server re-reads the
file when it changes, so a revoked token is refused from its next request on.

Every write replaces the whole file — written beside it with mode 0600, then renamed over
it — under an exclusive lock, so a reader never sees half a file and two `token add`s run
at once keep both tokens.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import tempfile
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from reverie import config
from reverie.errors import InvalidInput, NotFound
from reverie.models import ALL_PROJECTS, TOKEN_DEFAULT_GRANTS

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; token changes are rare and made by one person
    fcntl = None

FORMAT = "reverie-tokens"
VERSION = 1
PREFIX = "rvt_"      # makes a pasted token recognisable to secret scanners
ID_LENGTH = 12       # hex digits of the hash shown as the token's id
MAX_LABEL_CHARS = 100
# What a token may be granted. Never `agent:*` or another agent's scope: those belong to the
# local caller alone (see reverie.service.access for what each grant allows).
FIXED_GRANTS = ("read:shared", "write:shared", "read:user", "write:user", ALL_PROJECTS)
GRANT_FORMS = ", ".join([*FIXED_GRANTS[:4], "project:<key>", "read:project:<key>", ALL_PROJECTS])


class TokenRecord(BaseModel):
    """What the file keeps about one token (under its sha256)."""

    model_config = ConfigDict(extra="forbid")

    agent_id: str = Field(pattern=config.IDENTIFIER.pattern)
    scopes: list[str]
    created_at: datetime
    label: str | None = Field(default=None, max_length=MAX_LABEL_CHARS)


class ListedToken(TokenRecord):
    """A token as `reverie token list` shows it: its id (a prefix of the hash), never the token."""

    id: str


def tokens_path(flag: str | os.PathLike | None, db_path: Path) -> Path:
    """`--tokens`, else `REVERIE_TOKENS`, else `tokens.json` in the database's directory."""
    chosen = flag or config.tokens_file()
    return Path(chosen).expanduser() if chosen else db_path.parent / "tokens.json"


def check_grants(grants: Iterable[str]) -> frozenset[str]:
    """The grants a bearer token may hold; anything else is refused with the valid forms."""
    checked = frozenset(grants)
    for grant in sorted(checked):
        if not _valid_grant(grant):
            hint = (" Another agent's private scope is never a token's to read."
                    if grant.removeprefix("read:").removeprefix("write:").startswith("agent:") else "")
            raise InvalidInput(f"{grant!r} is not a scope a token can be granted; use {GRANT_FORMS}.{hint}")
    return checked


def _valid_grant(grant: str) -> bool:
    if grant in FIXED_GRANTS:
        return True
    project = grant.removeprefix("read:")
    return project.startswith("project:") and project != ALL_PROJECTS and bool(config.SCOPE.fullmatch(project))


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def read_tokens(path: Path) -> dict[str, TokenRecord]:
    """sha256 → record; empty when the file does not exist. A damaged file is refused whole."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidInput(f"{path} is not a readable Reverie tokens file ({error}); restore it or remove it "
                           "and add the tokens again.") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT or not isinstance(document.get("tokens"), dict):
        raise InvalidInput(f"{path} is not a Reverie tokens file: expected {{\"format\": \"{FORMAT}\", \"tokens\": {{…}}}}.")
    try:
        found = {key: TokenRecord.model_validate(value) for key, value in document["tokens"].items()}
        for record in found.values():
            check_grants(record.scopes)
    except (ValidationError, InvalidInput) as error:
        raise InvalidInput(f"{path} holds an invalid token entry: {error}") from None
    return found


def find_token(records: dict[str, TokenRecord], token: str) -> TokenRecord | None:
    return records.get(digest(token)) if token.startswith(PREFIX) else None


def listing(records: dict[str, TokenRecord]) -> list[ListedToken]:
    return sorted((ListedToken(id=key[:ID_LENGTH], **record.model_dump()) for key, record in records.items()),
                  key=lambda t: (t.created_at, t.id))


def add_token(
    path: Path, agent_id: str, grants: list[str] | None, label: str | None, now: datetime
) -> tuple[str, ListedToken]:
    """Make a token for `agent_id`; returns it (shown once, never stored) and what the file keeps."""
    config.check_identifier(agent_id, "Agent id")
    scopes = sorted(check_grants(grants or TOKEN_DEFAULT_GRANTS))
    token = PREFIX + secrets.token_urlsafe(32)
    with _locked(path):
        records = read_tokens(path)
        if label is not None and any(r.label == label for r in records.values()):
            raise InvalidInput(f"A token labelled {label!r} exists already; pick another label, or revoke that one first.")
        try:
            record = TokenRecord(agent_id=agent_id, scopes=scopes, created_at=now, label=label)
        except ValidationError:
            raise InvalidInput(f"A label is at most {MAX_LABEL_CHARS} characters.") from None
        records[digest(token)] = record
        _write(path, records)
    return token, ListedToken(id=digest(token)[:ID_LENGTH], **record.model_dump())


def revoke_token(path: Path, key: str) -> ListedToken:
    """Remove the token whose id (or hash) or label is `key`."""
    with _locked(path):
        records = read_tokens(path)
        matches = [h for h, r in records.items() if key and (h.startswith(key) and len(key) >= ID_LENGTH
                                                            or r.label == key)]
        if not matches:
            known = ", ".join(f"{t.id} ({t.label or t.agent_id})" for t in listing(records)) or "none"
            raise NotFound(f"No token with id or label {key!r} in {path}. Tokens: {known}.")
        revoked = records.pop(matches[0])
        _write(path, records)
    return ListedToken(id=matches[0][:ID_LENGTH], **revoked.model_dump())


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    if fcntl is None:
        yield
        return
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _write(path: Path, records: dict[str, TokenRecord]) -> None:
    document = {"format": FORMAT, "version": VERSION,
                "tokens": {key: record.model_dump(mode="json") for key, record in records.items()}}
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:  # mkstemp makes it 0600
            json.dump(document, out, indent=2)
            out.write("\n")
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise

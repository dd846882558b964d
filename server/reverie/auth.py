"""Bearer auth over HTTP, on the MCP SDK's hooks: the tokens file as a `TokenVerifier`, and the
caller's `Identity` from the `AccessToken` it verified.

The SDK's `RequireAuthMiddleware` answers 401 to a request without a valid token before
the MCP server sees it. A verified token becomes an `AccessToken` whose `subject` is the
agent id and whose `scopes` are the grants; `client_id` is the token's id, so the SDK binds
each HTTP session to the token that opened it and no other token can ride on it.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from pathlib import Path

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken, TokenVerifier

from reverie import tokens
from reverie.errors import InvalidInput
from reverie.models import LOCAL_GRANTS, Identity

log = logging.getLogger(__name__)


class TokenFileVerifier(TokenVerifier):
    """Checks bearer tokens against the tokens file, re-read whenever it changes.

    With `local_agent` (a loopback server), it also knows a key made in this process that
    stands for the local caller — `local_agent` with `LOCAL_GRANTS` — and accepts it only
    while no tokens file exists (`open`); `http_server.LocalWhileNoTokens` puts it on requests.
    """

    def __init__(self, path: Path, local_agent: str | None = None):
        self.path = path
        self.local_agent = local_agent
        self.local_key = tokens.PREFIX + "local-" + secrets.token_urlsafe(32) if local_agent else None
        self._version: tuple[int, int, int] | None = None
        self._records: dict[str, tokens.TokenRecord] = {}

    def open(self) -> bool:
        """Whether requests act as the local agent: loopback and no tokens file, checked now."""
        return self.local_key is not None and not self.path.exists()

    async def verify_token(self, token: str) -> AccessToken | None:
        if self.local_key and hmac.compare_digest(token, self.local_key):
            return self._local() if self.open() else None
        record = tokens.find_token(self._current(), token)
        if record is None:
            return None
        key = tokens.digest(token)[:tokens.ID_LENGTH]
        return AccessToken(token=key, client_id=key, subject=record.agent_id, scopes=list(record.scopes))

    def _local(self) -> AccessToken:
        return AccessToken(token="local", client_id="local", subject=self.local_agent, scopes=sorted(LOCAL_GRANTS))

    def _current(self) -> dict[str, tokens.TokenRecord]:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return {}  # deleted while serving: nobody gets in
        # A rewrite renames a new file into place, so the inode changes even within one mtime tick.
        version = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if version != self._version:
            try:
                self._records = tokens.read_tokens(self.path)
            except InvalidInput as error:
                log.error("Refusing every token until the tokens file is fixed: %s", error)
                self._records = {}
            self._version = version
        return self._records


def verified_token(request: object) -> AccessToken | None:
    """The token the HTTP layer verified for this request; None on stdio and unauthenticated HTTP."""
    scope = getattr(request, "scope", None)
    user = scope.get("user") if isinstance(scope, dict) else None
    return user.access_token if isinstance(user, AuthenticatedUser) else None


def identity_of(token: AccessToken) -> Identity:
    return Identity(agent_id=token.subject, grants=frozenset(token.scopes))

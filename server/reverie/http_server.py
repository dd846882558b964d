"""`reverie serve --http`: the MCP server over streamable HTTP at `/mcp`, under uvicorn.

Who may connect:

- Bound to loopback (127.0.0.1, localhost, ::1) while no tokens file exists, requests act
  as the configured agent, as over stdio: whatever can reach a loopback port here could
  open the database file too.
- While a tokens file (`reverie.tokens`) exists — and always when bound to any other
  address — every request needs `Authorization: Bearer <token>` and acts as that token's
  agent with its grants. Without a valid token the SDK's auth middleware answers 401
  before the MCP server sees the request, so it reads and writes nothing. Binding to
  another address with no tokens is refused before anything listens.

Which of the two holds is decided per request, not at start-up: `reverie token add` on a
running loopback server closes it to token holders from the next request on, and a
revoked token is refused from its next request (`auth.TokenFileVerifier` stats the file
each time and re-reads it when it changed).

A tool call within the documented limits (`config.MAX_TRANSCRIPT_CHARS` characters) always
fits the transport's body limit, however its client encodes the JSON (`MAX_BODY_BYTES`).

While it serves, it logs one line per request on stderr (`RequestLog`): when, from where,
the JSON-RPC method (and tool), the status and how long it took; the SDK's own INFO
messages are left out.

DNS-rebinding protection is always on (the SDK's transport security): the Host header
must be a loopback name, the bound address, this machine's name when bound to every
address, or a name given with `--allow-host`, and a browser's Origin must be one of those.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from mcp.server.auth.settings import AuthSettings
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reverie import tokens
from reverie.auth import TokenFileVerifier
from reverie.config import MAX_NOTE_CHARS, MAX_NOTES, MAX_TRANSCRIPT_CHARS, Settings
from reverie.errors import InvalidInput
from reverie.mcp_server import build_server

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
PATH = "/mcp"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
EVERY_ADDRESS = ("0.0.0.0", "::", "")
# The documented limits count characters; the transport counts bytes. A character costs at
# most 12 bytes of JSON (an astral one escaped as two \uXXXX), so a call within the limits,
# plus 4 MiB for turn framing and the other arguments, always fits; larger bodies get 413.
MAX_BODY_BYTES = (MAX_TRANSCRIPT_CHARS + MAX_NOTES * MAX_NOTE_CHARS) * 12 + 4 * 1024 * 1024


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def http_app(
    settings: Settings, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, tokens_path: Path,
    allowed_hosts: Sequence[str] = (),
) -> ASGIApp:
    """The ASGI app: the SDK's streamable HTTP app behind bearer auth, open to local clients while
    a loopback server has no tokens file."""
    loopback = is_loopback(host)
    verifier = _verifier(host, tokens_path, settings.agent_id if loopback else None)
    # Reverie issues its own tokens (`reverie token add`), so the issuer is this server.
    # No resource_server_url: there is no OAuth flow to advertise.
    auth = AuthSettings(issuer_url=f"http://{_netloc(host, port)}", resource_server_url=None)
    mcp = build_server(settings, token_verifier=verifier, auth=auth)
    app = mcp.streamable_http_app(streamable_http_path=PATH, host=host, max_request_body_size=MAX_BODY_BYTES,
                                  transport_security=transport_security(host, allowed_hosts))
    return LocalWhileNoTokens(app, verifier) if loopback else app


def _verifier(host: str, tokens_path: Path, local_agent: str | None) -> TokenFileVerifier:
    found = tokens.read_tokens(tokens_path)  # a damaged file stops the server now, not at the first request
    if not is_loopback(host) and not found:
        raise InvalidInput(
            f"Serving on {host} lets other machines connect, so it needs bearer tokens, and {tokens_path} has "
            "none. Add one per agent with `reverie token add --agent ID` (or name a file with --tokens), or "
            f"bind to {DEFAULT_HOST}.")
    return TokenFileVerifier(tokens_path, local_agent)


class LocalWhileNoTokens:
    """ASGI middleware: while a loopback server has no tokens file, each request acts as the local agent.

    It does so by carrying the verifier's local key (made in this process, never sent out)
    into the SDK's bearer auth, so one auth path decides every request; and because the
    file's existence is checked per request, the first `reverie token add` closes the
    server at once, with no restart.
    """

    def __init__(self, app: ASGIApp, verifier: TokenFileVerifier):
        self.app = app
        self.verifier = verifier

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.verifier.open():
            headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"authorization"]
            scope = {**scope, "headers": [*headers, (b"authorization", f"Bearer {self.verifier.local_key}".encode())]}
        await self.app(scope, receive, send)


def transport_security(host: str, allowed_hosts: Sequence[str] = ()) -> TransportSecuritySettings:
    names = {*LOOPBACK_NAMES, *allowed_hosts}
    if host in EVERY_ADDRESS:
        names |= {socket.gethostname(), socket.getfqdn(), *_own_addresses()}
    else:
        names.add(f"[{host}]" if ":" in host else host)
    hosts = sorted(n for name in names for n in (name, f"{name}:*"))
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts,
        allowed_origins=[f"{scheme}://{h}" for scheme in ("http", "https") for h in hosts],
    )


def _own_addresses() -> set[str]:
    """This machine's addresses as its host name resolves (best effort: DNS may know none)."""
    try:
        found = socket.getaddrinfo(socket.gethostname(), None)
    except OSError:
        return set()
    return {f"[{a[4][0]}]" if a[0] == socket.AF_INET6 else a[4][0] for a in found}


def listening_socket(host: str, port: int) -> socket.socket:
    """Bound and listening before uvicorn starts, so the port is known (port 0: a free one) and
    a client connecting at once waits in the backlog instead of being refused."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        created = socket.create_server((host.strip("[]"), port), family=family)
    except OSError as error:
        raise InvalidInput(f"Cannot listen on {host}:{port}: {error.strerror}. Pick another --port "
                           "(0 picks a free one).") from None
    # create_server leaves the protocol 0, which accepted sockets inherit, and asyncio turns
    # Nagle off (TCP_NODELAY) only on sockets that say IPPROTO_TCP: with Nagle on, a response
    # written as headers then body waited for the client's delayed ACK, ~40 ms per request.
    return socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, fileno=created.detach())


def url(sock: socket.socket, host: str) -> str:
    return f"http://{_netloc(host, sock.getsockname()[1])}{PATH}"


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def serve_http(
    settings: Settings, *, host: str, port: int, tokens_path: Path, allowed_hosts: Sequence[str] = ()
) -> None:
    """Serve until interrupted; says where, and whether tokens are required, on stderr first."""
    import uvicorn

    app = http_app(settings, host=host, port=port, tokens_path=tokens_path, allowed_hosts=allowed_hosts)
    sock = listening_socket(host, port)
    guarded = (f"bearer tokens from {tokens_path}" if tokens_path.exists() else
               f"no tokens: acting as agent {settings.agent_id!r} until `reverie token add` creates {tokens_path}")
    print(f"reverie: serving MCP at {url(sock, host)} ({guarded})", file=sys.stderr, flush=True)
    # The SDK configured rich, multi-line INFO logging when the server was built: keep its
    # warnings and errors, one line each, and let RequestLog say what happens.
    logging.basicConfig(level=logging.WARNING, format="reverie: %(levelname)s %(name)s: %(message)s", force=True)
    uvicorn.Server(uvicorn.Config(RequestLog(app), log_level="warning", access_log=False)).run(sockets=[sock])


class RequestLog:
    """ASGI middleware: one line on stderr per HTTP request, once it is answered.

    `10:16:30 127.0.0.1 POST /mcp tools/call read_memory -> 200 (12 ms)`. The JSON-RPC method
    is read from a copy of the body as the app receives it, only from bodies small enough to
    parse cheaply; the arguments are never logged (they hold what users said).
    """

    PEEK_BYTES = 64 * 1024

    def __init__(self, app: ASGIApp, stream: TextIO | None = None):
        self.app = app
        self.stream = stream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, body, status = time.monotonic(), bytearray(), 0

        async def reading() -> Message:
            message = await receive()
            if message["type"] == "http.request" and len(body) <= self.PEEK_BYTES:
                body.extend(message.get("body", b""))
            return message

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, reading, sending)
        finally:
            print(request_line(scope, bytes(body), status, time.monotonic() - started),
                  file=self.stream or sys.stderr, flush=True)


def request_line(scope: Scope, body: bytes, status: int, seconds: float) -> str:
    client = (scope.get("client") or ("-",))[0]
    called = rpc_method(body) if len(body) <= RequestLog.PEEK_BYTES else ""
    answered = status or "no response"
    return (f"{datetime.now():%H:%M:%S} {client} {scope['method']} {scope['path']}{f' {called}' if called else ''}"
            f" -> {answered} ({seconds * 1000:.0f} ms)")


def rpc_method(body: bytes) -> str:
    """`tools/call read_memory`, `initialize`, `batch of 3`; "" for a body that is no JSON-RPC."""
    try:
        message: Any = json.loads(body) if body else None
    except ValueError:
        return ""
    if isinstance(message, list):
        return f"batch of {len(message)}"
    if not isinstance(message, dict) or not isinstance(message.get("method"), str):
        return ""
    params = message.get("params")
    tool = params.get("name") if message["method"] == "tools/call" and isinstance(params, dict) else None
    return f"{message['method']} {tool}" if isinstance(tool, str) else message["method"]

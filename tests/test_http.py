"""`reverie serve --http`: streamable HTTP, bearer tokens, per-agent scopes, DNS-rebinding protection.

A real uvicorn server on 127.0.0.1 and a free port, in this process (or, once, the
`reverie` command in a subprocess), over a real SQLite file; clients are the MCP SDK's
`Client` over streamable HTTP with `Authorization: Bearer …`, or raw HTTP where the status
code is the point. Seeding and checking go through the service on the same file.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx2
import pytest
import uvicorn
from conftest import chat, imported
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from reverie import tokens
from reverie.cli import main
from reverie.clock import utcnow
from reverie.config import MAX_TRANSCRIPT_CHARS, Settings
from reverie.http_server import http_app, listening_socket, url
from reverie.service import open_reverie
from test_mcp import call, error_of, turns
from test_stdio import reverie_command

# slow: serves MCP over HTTP (one test in a `reverie serve --http` subprocess).
pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.both_backends]

MODES = pytest.mark.parametrize("mode", ["legacy", "auto"], ids=["legacy-2025-11-25", "modern-2026-07-28"])
ALICE_NOTE = "Alice's printer is on floor 3"
BOB_NOTE = "Bob's staging box is called bramble"
BOB_SESSION_NOTE = "Bob deploys bramble with make ship"
SHARED_NOTE = "Lunch is at noon"


@pytest.fixture
def tokens_file(tmp_path) -> Path:
    return tmp_path / "tokens.json"


def add_token(path: Path, agent: str, *scopes: str, label: str | None = None) -> str:
    return tokens.add_token(path, agent, list(scopes) or None, label, utcnow())[0]


@asynccontextmanager
async def serving(settings: Settings, tokens_path: Path, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """The HTTP app under uvicorn on a free port; yields the /mcp URL."""
    app = http_app(settings, host=host, tokens_path=tokens_path)
    sock = listening_socket(host, 0)  # listening already: a client connecting at once waits in the backlog
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5))
    async with anyio.create_task_group() as group:
        group.start_soon(server.serve, [sock])
        try:
            yield url(sock, host)
        finally:
            server.should_exit = True


@asynccontextmanager
async def connected(address: str, token: str | None = None, mode: str = "auto") -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(headers=headers) as http, \
            Client(streamable_http_client(address, http_client=http), mode=mode) as client:
        yield client


def log_request(note: str) -> dict:
    """One self-contained tools/call (2026-07-28 needs no handshake): log a session with `note`."""
    meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": {}}
    return {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "log_session", "arguments": {"transcript": "User: hi\nAssistant: hello", "notes": [note]},
        "_meta": meta}}


async def post(address: str, body: dict, **headers: str) -> httpx2.Response:
    base = {"accept": "application/json, text/event-stream", "mcp-protocol-version": "2026-07-28",
            "mcp-method": body["method"], **({"mcp-name": body["params"]["name"]} if "params" in body else {})}
    async with httpx2.AsyncClient() as http:
        return await http.post(address, json=body, headers=base | headers)


async def notes_in(settings: Settings) -> list[str]:
    async with open_reverie(settings) as reverie:
        exported = await reverie.export()
    return sorted(n["content"] for s in exported["sessions"] for n in s["notes"])


# --- who may connect ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "Basic YWxpY2U6c2VjcmV0", "Bearer rvt_not-a-token-this-server-made", "Bearer <revoked>"],
    ids=["no-header", "basic-auth", "unknown-token", "revoked-token"],
)
async def test_a_request_without_a_valid_token_gets_401_and_writes_nothing(settings, tokens_file, authorization):
    good = add_token(tokens_file, "alice", label="alice-laptop")
    revoked = add_token(tokens_file, "alice", label="old")
    tokens.revoke_token(tokens_file, "old")
    with anyio.fail_after(30):
        async with serving(settings, tokens_file) as address:
            header = {"authorization": authorization.replace("<revoked>", revoked)} if authorization else {}
            refused = await post(address, log_request("written by an intruder"), **header)
            allowed = await post(address, log_request("written by alice"), authorization=f"Bearer {good}")

    assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer ")
    assert allowed.status_code == 200, allowed.text
    assert await notes_in(settings) == ["written by alice"]


async def test_on_loopback_without_a_tokens_file_requests_act_as_the_servers_agent(settings, tokens_file):
    with anyio.fail_after(30):
        async with serving(settings, tokens_file) as address, connected(address) as client:
            logged = await call(client, "log_session", transcript=turns("hi", "hello"), notes=[SHARED_NOTE])
    assert logged["agent_id"] == settings.agent_id == "tester"


async def test_dns_rebinding_protection_refuses_a_foreign_host_or_origin(settings, tokens_file):
    with anyio.fail_after(30):
        async with serving(settings, tokens_file) as address:
            host = await post(address, log_request("via a rebound name"), host="attacker.example")
            origin = await post(address, log_request("from a web page"), origin="http://attacker.example")
            own = await post(address, log_request("from this machine"))

    assert (host.status_code, origin.status_code, own.status_code) == (421, 403, 200)
    assert await notes_in(settings) == ["from this machine"]


async def test_binding_beyond_loopback_without_tokens_is_refused_with_a_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("REVERIE_TOKENS", raising=False)
    code = main(["--db", str(tmp_path / "m.db"), "serve", "--http", "--host", "0.0.0.0", "--port", "0"])

    error = capsys.readouterr().err
    assert code == 1 and "needs bearer tokens" in error and "reverie token add --agent" in error
    assert error.count("\n") == 1 and "Traceback" not in error


async def test_an_emptied_tokens_file_keeps_a_loopback_server_closed_rather_than_open(settings, tokens_file):
    add_token(tokens_file, "alice", label="only")
    tokens.revoke_token(tokens_file, "only")
    with anyio.fail_after(30):
        async with serving(settings, tokens_file) as address:
            refused = await post(address, log_request("no tokens left"))
    assert refused.status_code == 401 and await notes_in(settings) == []


async def test_a_token_added_while_a_loopback_server_runs_closes_it_to_requests_without_one_at_once(
    settings, tokens_file
):
    with anyio.fail_after(30):
        async with serving(settings, tokens_file) as address:
            before = await post(address, log_request("before any token"))
            alice = add_token(tokens_file, "alice", label="alice")
            anonymous = await post(address, log_request("after alice's token"))
            async with connected(address, alice) as client:
                logged = await call(client, "log_session", transcript=turns("hi", "hello"), notes=[ALICE_NOTE])
            tokens.revoke_token(tokens_file, "alice")
            revoked = await post(address, log_request("with a revoked token"), authorization=f"Bearer {alice}")

    assert before.status_code == 200 and anonymous.status_code == 401 and revoked.status_code == 401
    assert logged["agent_id"] == "alice"
    assert await notes_in(settings) == [ALICE_NOTE, "before any token"]


def test_token_add_says_what_changes_for_a_running_server(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("REVERIE_TOKENS", raising=False)
    db = ["--db", str(tmp_path / "m.db")]
    main([*db, "token", "add", "--agent", "alice"])
    first = capsys.readouterr().err
    main([*db, "token", "add", "--agent", "bob"])
    second = capsys.readouterr().err

    assert "first token" in first and "refuses requests without a token" in first
    assert "accepts it from the next request" in second


async def test_a_log_within_the_character_limit_fits_over_http_even_in_three_byte_characters(settings, tokens_file):
    text = "记" * 1_500_000  # 4.5 MB of UTF-8: more than the SDK's default 4 MiB body
    too_long = "记" * (MAX_TRANSCRIPT_CHARS + 1)
    with anyio.fail_after(120):
        async with serving(settings, tokens_file) as address, connected(address) as client:
            logged = await call(client, "log_session", transcript=[{"role": "user", "content": text}])
            refused = await error_of(client, "log_session", transcript=[{"role": "user", "content": too_long}])

    assert logged["events_added"] == 1
    assert f"{MAX_TRANSCRIPT_CHARS:,}" in refused and "Traceback" not in refused


# --- what a token's agent sees ---------------------------------------------------------------------


async def seed_two_agents(settings: Settings) -> dict[str, str]:
    """alice and bob each log a note; bob keeps an open session and gets a pending proposal of his own.

    Memory: one entry per scope (alice's, bob's, shared, user, two projects). Returns their ids by scope.
    """
    at = "2026-11-01T08:00:00+00:00"
    scopes = {"agent:alice": ALICE_NOTE, "agent:bob": BOB_NOTE, "shared": "The wiki lives at wiki.example.org",
              "user": "The user writes British English", "project:acme": "Acme ships on Thursdays",
              "project:secret": "Project Nightjar launches in May"}
    memories = [{"id": f"mem_{n}", "content": text, "category": "fact", "scope": scope, "confidence": 0.8,
                 "evidence": [], "created_at": at, "updated_at": at, "observed_at": at}
                for n, (scope, text) in enumerate(scopes.items())]
    async with open_reverie(settings) as reverie:
        await imported(reverie, {"format": "reverie-export", "version": 1, "memories": memories, "sessions": []})
        await reverie.log_session(chat("Where is the printer?", "Floor 3."), agent_id="alice", notes=[ALICE_NOTE])
        await reverie.log_session(chat("How do I deploy bramble?", "make ship"), agent_id="bob",
                                  notes=[BOB_SESSION_NOTE])
        await reverie.log_session(chat("still working", "ok"), agent_id="bob", session_id="bob-open", ended=False)
        bobs = await reverie.propose_dream("heuristic", scope="agent:bob")
    return {"bob_proposal": bobs.id, **{scope: m["id"] for scope, m in zip(scopes, memories, strict=True)}}


@MODES
async def test_a_tokens_agent_sees_its_own_shared_user_and_granted_project_memory_and_nothing_of_another_agent(
    settings, tokens_file, mode
):
    seeded = await seed_two_agents(settings)
    alice = add_token(tokens_file, "alice", "read:shared", "read:user", "project:acme")
    with anyio.fail_after(30):
        async with serving(settings, tokens_file) as address, connected(address, alice, mode) as client:
            view = await call(client, "read_memory", query="printer staging bramble floor")
            memory = await call(client, "read_memory")
            current = (await client.read_resource("memory://current")).contents[0].text
            refusals = [
                await error_of(client, "read_memory", scope="agent:bob"),
                await error_of(client, "read_memory", scope="project:secret"),
                await error_of(client, "apply_dream", proposal_id=seeded["bob_proposal"], approve="all"),
                await error_of(client, "revert_dream", proposal_id=seeded["bob_proposal"]),
                await error_of(client, "propose_dream", engine="heuristic", scope="agent:bob"),
                await error_of(client, "log_session", transcript=turns("sneaky", "ok"), agent_id="bob"),
            ]
            with pytest.raises(Exception, match="not yours to see"):
                await client.read_resource(f"memory://proposals/{seeded['bob_proposal']}")

    assert sorted(e["scope"] for e in memory["entries"]) == ["agent:alice", "project:acme", "shared", "user"]
    assert [n["content"] for n in memory["notes"]] == [ALICE_NOTE] and memory["pending_proposals"] == []
    assert {e["session_id"] for e in view["episodes"]} and all("bramble" not in e["text"] for e in view["episodes"])
    assert BOB_NOTE not in current and BOB_SESSION_NOTE not in current and "Nightjar" not in current
    assert ALICE_NOTE in current
    assert all("Traceback" not in text for text in refusals)
    assert "cannot read scope 'agent:bob'" in refusals[0] and "project:secret" in refusals[1]
    assert all("not yours to see" in text for text in refusals[2:4])
    assert "cannot dream over scope 'agent:bob'" in refusals[4]
    assert "cannot act as agent 'bob'" in refusals[5]
    assert await notes_in(settings) == [ALICE_NOTE, BOB_SESSION_NOTE]
    async with open_reverie(settings) as reverie:
        assert (await reverie.proposal(seeded["bob_proposal"])).status == "pending"


async def test_an_agent_without_write_shared_cannot_apply_a_promotion_to_shared_or_dream_across_agents(
    settings, tokens_file
):
    seeded = await seed_two_agents(settings)
    async with open_reverie(settings) as reverie:  # both agents wrote the same note: a cross-agent dream shares it
        for agent in ("alice", "bob"):
            await reverie.log_session(chat("When is lunch?", "Noon."), agent_id=agent, notes=[SHARED_NOTE])
        team = await reverie.propose_dream("heuristic")
    alice = add_token(tokens_file, "alice")
    with anyio.fail_after(30):
        async with serving(settings, tokens_file) as address, connected(address, alice) as client:
            own = await call(client, "propose_dream", engine="heuristic")
            brief = await call(client, "propose_dream", engine="agent")
            promotion = await call(client, "propose_dream", brief_id=brief["id"], operations=[{
                "kind": "promote", "targets": [seeded["agent:alice"]], "content": ALICE_NOTE, "scope": "shared",
                "rationale": "Everyone prints."}])
            refused = await error_of(client, "apply_dream", proposal_id=promotion["id"], approve="all")
            hidden = await error_of(client, "apply_dream", proposal_id=team.id, approve="all")

    async with open_reverie(settings) as reverie:
        reviewed = {s["agent_id"] for s in (await reverie.export())["sessions"] if s["id"] in own["session_ids"]}
        assert (await reverie.proposal(promotion["id"])).status == "pending"
        shared = await reverie.read_memory(scope="shared")
    assert own["scope"] == "agent:alice" and reviewed == {"alice"} and SHARED_NOTE in own["report"]
    assert "op1 changes scope shared" in refused and "write:shared" in refused
    assert "not yours to see" in hidden and "write:shared" in hidden
    assert [e.content for e in shared.entries] == ["The wiki lives at wiki.example.org"]


async def test_a_token_granted_write_shared_dreams_across_agents_and_applies_the_promotion(settings, tokens_file):
    await seed_two_agents(settings)
    async with open_reverie(settings) as reverie:
        for agent in ("alice", "bob"):
            await reverie.log_session(chat("When is lunch?", "Noon."), agent_id=agent, notes=[SHARED_NOTE])
    curator = add_token(tokens_file, "carol", "write:shared", "read:user")
    with anyio.fail_after(30):
        async with serving(settings, tokens_file) as address, connected(address, curator) as client:
            dream = await call(client, "propose_dream", engine="heuristic")
            lunch = [op["op_id"] for op in dream["operations"] if op["content"] == SHARED_NOTE]
            applied = await call(client, "apply_dream", proposal_id=dream["id"], approve=lunch)
            shared = await call(client, "read_memory", scope="shared")

    async with open_reverie(settings) as reverie:
        reviewed = {s["agent_id"] for s in (await reverie.export())["sessions"] if s["id"] in dream["session_ids"]}
    assert dream["scope"] is None and reviewed == {"alice", "bob"}
    assert applied["applied"] == lunch and SHARED_NOTE in [e["content"] for e in shared["entries"]]


# --- the command line --------------------------------------------------------------------------------


def test_token_add_prints_the_token_once_and_the_file_keeps_only_its_hash(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("REVERIE_TOKENS", raising=False)
    db = ["--db", str(tmp_path / "m.db")]
    assert main([*db, "token", "add", "--agent", "alice", "--scope", "write:shared", "--label", "laptop"]) == 0
    secret, said = capsys.readouterr()
    secret = secret.strip()
    stored = (tmp_path / "tokens.json").read_text()

    assert secret.startswith("rvt_") and secret not in stored and secret not in said
    assert tokens.digest(secret) in stored and "shown only this once" in said
    assert (tmp_path / "tokens.json").stat().st_mode & 0o077 == 0
    assert main([*db, "token", "list", "--json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)["tokens"]
    assert (listed["agent_id"], listed["scopes"], listed["label"]) == ("alice", ["write:shared"], "laptop")
    assert secret not in json.dumps(listed) and tokens.digest(secret).startswith(listed["id"])


@pytest.mark.parametrize("key", ["laptop", "<id>"], ids=["by-label", "by-id"])
def test_token_revoke_removes_a_token_by_label_or_id(tmp_path, capsys, key):
    path = tmp_path / "tokens.json"
    secret = add_token(path, "alice", label="laptop")
    kept = add_token(path, "bob", label="desktop")
    token_id = tokens.digest(secret)[:tokens.ID_LENGTH]

    code = main(["--db", str(tmp_path / "m.db"), "token", "--tokens", str(path), "revoke", key.replace("<id>", token_id)])

    assert code == 0 and f"Revoked token {token_id}" in capsys.readouterr().out
    records = tokens.read_tokens(path)
    assert tokens.find_token(records, secret) is None and tokens.find_token(records, kept).agent_id == "bob"


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["add", "--agent", "alice", "--scope", "agent:bob"], "never a token's"),
        (["add", "--agent", "alice", "--scope", "agent:*"], "never a token's"),
        (["add", "--agent", "alice", "--scope", "admin"], "read:shared, write:shared"),
        (["add", "--agent", "not valid!"], "Agent id"),
        (["revoke", "nobody"], "No token with id or label 'nobody'"),
    ],
    ids=["another-agents-scope", "every-agent", "unknown-grant", "bad-agent-id", "unknown-token"],
)
def test_bad_token_commands_exit_1_with_one_line_and_change_nothing(tmp_path, capsys, argv, says):
    path = tmp_path / "tokens.json"
    add_token(path, "carol", label="keep")
    before = path.read_text()

    code = main(["--db", str(tmp_path / "m.db"), "token", "--tokens", str(path), *argv])

    error = capsys.readouterr().err
    assert code == 1 and says in error and error.count("\n") == 1
    assert path.read_text() == before


async def test_reverie_serve_http_in_a_subprocess_serves_token_holders_only(tmp_path):
    path = tmp_path / "tokens.json"
    alice = add_token(path, "alice")
    env = {**os.environ, "REVERIE_DB": str(tmp_path / "m.db"), "REVERIE_TOKENS": str(path)}
    command = [reverie_command(), "serve", "--http", "--port", "0"]
    with anyio.fail_after(60):
        async with await anyio.open_process(command, env=env) as process:
            try:
                banner = await _banner(process.stderr)
                address = banner.split(" at ")[1].split(" ")[0]
                refused = await post(address, log_request("no token"))
                async with connected(address, alice, "legacy") as client:
                    logged = await call(client, "log_session", transcript=turns("hi", "hello"), notes=[ALICE_NOTE])
            finally:
                process.terminate()
    assert f"bearer tokens from {path}" in banner and refused.status_code == 401
    assert logged["agent_id"] == "alice"


async def _banner(stream) -> str:
    """The line `reverie serve --http` prints once it listens."""
    seen = b""
    async for chunk in stream:
        seen += chunk
        for line in seen.decode(errors="replace").splitlines():
            if "serving MCP at" in line:
                return line.strip()
    raise AssertionError(f"reverie serve --http exited without saying where it serves: {seen.decode()}")

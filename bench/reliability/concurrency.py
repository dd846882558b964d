"""Two Reverie servers on one database, eight clients writing and reading at once.

Each client logs `writes / clients` sessions, each with a unique marker word, and every
`read_every`-th write reads memory back with that marker as the query (the session must be
among the episodes: a client reads its own writes). Afterwards the file is opened directly
and held against what the clients were told: every acknowledged session present with the
content hash it was acknowledged with, exactly as many sessions and events as were
attempted, every marker there once. Any error a client sees is recorded with its text;
"database is locked" must never be one of them. The database is a SQLite file or one on a
PostgreSQL server (`backend.py`).

Transports: `http` starts two `reverie serve --http` processes on 127.0.0.1 and gives each
client its own connection (four per server, alternating the legacy and the stateless
protocol version); `stdio` starts two `reverie serve` processes whose one stdio session
each carries four concurrent clients.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field

import anyio
from anyio.abc import Process
from mcp import Client

from bench.backend import Backend
from bench.reliability.processes import HOST, free_port, reverie_command, stdio_server

AGENT = "team"
STARTUP_SECONDS = 30
# HTTP clients alternate protocol versions: the initialize handshake (2025-11-25, what
# Claude Code and Claude Desktop speak today) and the stateless 2026-07-28.
MODES = ("legacy", "auto")


@dataclass
class Acknowledged:
    session_id: str
    content_hash: str


@dataclass
class WriteFigures:
    transport: str
    servers: int
    clients: int
    database: str   # the file or URL written to
    backend: str = "sqlite"
    attempted: int = 0
    acknowledged: int = 0
    present: int = 0
    reads: int = 0
    reads_missing_own_write: int = 0
    errors: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # what the file says differently from the clients
    seconds: float = 0.0

    @property
    def locked(self) -> int:
        return sum("locked" in e.lower() for e in self.errors)

    @property
    def exact(self) -> bool:
        return not self.errors and not self.problems and self.present == self.attempted == self.acknowledged


def marker(client: int, n: int) -> str:
    return f"mk{client}x{n}"


async def concurrent_writes(
    backend: Backend, *, writes: int = 2000, clients: int = 8, servers: int = 2, transport: str = "stdio",
    read_every: int = 5,
) -> WriteFigures:
    """Run the scenario on a new database of `backend`; the figures and what went wrong."""
    if writes % clients:
        raise ValueError(f"{writes} writes do not share out evenly among {clients} clients")
    db = backend.new(f"shared-{transport}")
    figures = WriteFigures(transport=transport, servers=servers, clients=clients, database=db, backend=backend.name)
    acks: dict[str, Acknowledged] = {}
    per_client = writes // clients

    async def client_work(client: Client, number: int) -> None:
        for n in range(per_client):
            await _write_and_read(client, number, n, read_every, figures, acks)

    connect = _http_clients if transport == "http" else _stdio_clients
    async with connect(db, servers, clients) as connections:
        started = time.perf_counter()
        async with anyio.create_task_group() as group:
            for number, client in enumerate(connections):
                group.start_soon(client_work, client, number)
        figures.seconds = time.perf_counter() - started
    figures.present, figures.problems = verify(backend, db, acks, clients, per_client)
    return figures


async def _write_and_read(client: Client, number: int, n: int, read_every: int, figures: WriteFigures,
                          acks: dict[str, Acknowledged]) -> None:
    word = marker(number, n)
    figures.attempted += 1
    logged = await _call(client, "log_session", {"transcript": f"User: remember {word}\nAssistant: noted {word}",
                                                 "title": word}, figures)
    if logged is None:
        return
    figures.acknowledged += 1
    acks[word] = Acknowledged(logged["session_id"], logged["content_hash"])
    if n % read_every == 0:
        memory = await _call(client, "read_memory", {"query": word, "budget_tokens": 500}, figures)
        if memory is not None:
            figures.reads += 1
            if logged["session_id"] not in {e["session_id"] for e in memory.get("episodes", [])}:
                figures.reads_missing_own_write += 1


async def _call(client: Client, tool: str, arguments: dict, figures: WriteFigures) -> dict | None:
    try:
        result = await client.call_tool(tool, arguments)
    except Exception as error:  # noqa: BLE001 - any failure of a call is a figure to count, not a crash
        figures.errors.append(f"{tool}: {type(error).__name__}: {error}")
        return None
    if result.is_error:
        figures.errors.append(f"{tool}: {' '.join(getattr(c, 'text', '') for c in result.content)}")
        return None
    return result.structured_content


@asynccontextmanager
async def _stdio_clients(db: str, servers: int, clients: int) -> AsyncIterator[list[Client]]:
    """`servers` stdio server processes; each stdio session is shared by clients // servers tasks."""
    async with AsyncExitStack() as stack:
        sessions = [await stack.enter_async_context(Client(stdio_server(db, AGENT), mode="legacy"))
                    for _ in range(servers)]
        yield [sessions[i % servers] for i in range(clients)]


@asynccontextmanager
async def _http_clients(db: str, servers: int, clients: int) -> AsyncIterator[list[Client]]:
    """`servers` `reverie serve --http` processes on loopback; one connection per client."""
    ports = [free_port() for _ in range(servers)]
    async with AsyncExitStack() as stack:
        for port in ports:
            process = await anyio.open_process(
                [reverie_command(), "--db", db, "--agent", AGENT, "serve", "--http", "--host", HOST,
                 "--port", str(port)], stdout=None, stderr=None)
            stack.push_async_callback(_stop, process)
        with anyio.fail_after(STARTUP_SECONDS):
            for port in ports:
                await _until_listening(port)
        connections = [await stack.enter_async_context(Client(f"http://{HOST}:{ports[i % servers]}/mcp",
                                                              mode=MODES[i % len(MODES)]))
                       for i in range(clients)]
        yield connections


async def _until_listening(port: int) -> None:
    while True:
        try:
            stream = await anyio.connect_tcp(HOST, port)
        except OSError:
            await anyio.sleep(0.05)
            continue
        await stream.aclose()
        return


async def _stop(process: Process) -> None:
    process.terminate()
    with anyio.move_on_after(10):
        await process.wait()
        return
    process.kill()
    await process.wait()


def verify(backend: Backend, db: str, acks: dict[str, Acknowledged], clients: int,
           per_client: int) -> tuple[int, list[str]]:
    """(sessions present, what differs from what the clients were told), read straight from the database."""
    with backend.reading(db) as connection:
        stored = dict(connection.execute("SELECT id, content_hash FROM sessions").fetchall())
        events = connection.execute("SELECT count(*) FROM events").fetchone()[0]
        asked = [r[0] for r in connection.execute("SELECT content FROM events WHERE role = 'user'")]
    expected = {marker(c, n) for c in range(clients) for n in range(per_client)}
    problems = [f"{word}: acknowledged as {ack.session_id} but not stored" for word, ack in acks.items()
                if ack.session_id not in stored]
    problems += [f"{word}: stored with another content hash than acknowledged" for word, ack in acks.items()
                 if ack.session_id in stored and stored[ack.session_id] != ack.content_hash]
    if len(stored) != len(expected):
        problems.append(f"{len(stored)} sessions stored for {len(expected)} attempted writes")
    if events != 2 * len(expected):
        problems.append(f"{events} events stored for {2 * len(expected)} turns written")
    found = [text.removeprefix("remember ") for text in asked]
    if sorted(found) != sorted(expected):
        problems.append(f"markers differ: {len(set(expected) - set(found))} missing, {len(found) - len(set(found))} twice")
    present = sum(1 for ack in acks.values() if stored.get(ack.session_id) == ack.content_hash)
    return present, problems



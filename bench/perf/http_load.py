"""`python -m bench.perf.http_load [--clients 20] [--calls 30] [--processes 1] [--json PATH] [--profile DIR]`.

Throughput and p50/p99 latency of `read_memory` and `log_session` with many MCP clients
at once over streamable HTTP on loopback, beside a no-op tool's floor under the same load.

The fixture is `bench.perf`'s at 1k memories (100 sessions × 200 turns, the seeded memories).
Each tool is measured against a real server process on a free 127.0.0.1 port: the floor
against `noop_server.py --http` (the SDK's streamable HTTP app, one tool returning "ok"),
then `read_memory` (the seeded query mix, budget 2,000 tokens) and `log_session` (a new
four-turn session with one note per call) against `reverie serve --http` with background
dreams off, each client holding a bearer token (default; `--auth local`: loopback without a
tokens file). Every client is the SDK's `Client` on its own HTTP connection pool; the
clients run in `--processes` processes apart from the server's, connect and warm up, then
all start their timed calls at once. Throughput is the timed calls over the wall time from
the first call's start to the last one's end; latency is each call's round trip. The server's
CPU time (from /proc) and the clients' are reported per call: on a 2-core machine 20 Python
clients compete with the server for the CPU, so a client-bound run shows up as a server
using well under one core.

`--profile DIR` samples the Reverie server with py-spy (if installed; not a dependency)
while each tool runs, into DIR/<tool>.txt as collapsed stacks (flame-graph input).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import asdict, dataclass, field
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from reverie import tokens
from reverie.clock import utcnow
from reverie.service import open_reverie

from bench.backend import settings
from bench.perf import data, fixtures, latency
from bench.perf.timing import percentile

HOST = "127.0.0.1"
AGENT = "default"  # the agent the fixture's sessions and agent-scoped memories mostly belong to
STARTUP_SECONDS = 60
TARGET = 0.5  # read_memory throughput ÷ the no-op floor's, issue 15
TOOLS = ("noop", "read_memory", "log_session")

Args = dict[str, Any]


@dataclass
class Plan:
    clients: int = 20
    calls: int = 30          # timed calls per client and tool
    warmup: int = 3          # untimed calls per client first
    processes: int = 1       # client processes; the server always has its own
    memories: int = 1000
    sessions: int = 100
    turns: int = 200
    mode: str = "auto"       # "auto": 2026-07-28 (stateless); "legacy": 2025-11-25 sessions
    auth: str = "token"
    seed: int = 7
    profile: Path | None = None
    profile_gil: bool = False


@dataclass
class Row:
    tool: str
    calls: int = 0
    seconds: float = 0.0                         # first timed call's start to last one's end
    ms: list[float] = field(default_factory=list)
    server_cpu: float | None = None              # seconds the server process used meanwhile
    client_cpu: float = 0.0                      # seconds the client processes used meanwhile
    errors: list[str] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0

    def per_call_ms(self, seconds: float | None) -> float | None:
        return seconds / self.calls * 1000 if seconds is not None and self.calls else None

    def summary(self) -> dict[str, Any]:
        per_call = self.per_call_ms
        return {"tool": self.tool, "calls": self.calls, "seconds": round(self.seconds, 3),
                "calls_per_second": round(self.throughput, 1), "p50_ms": percentile(self.ms, 50),
                "p99_ms": percentile(self.ms, 99), "server_cpu_ms_per_call": per_call(self.server_cpu),
                "server_cores": self.server_cpu / self.seconds if self.server_cpu is not None and self.seconds else None,
                "client_cpu_ms_per_call": per_call(self.client_cpu), "errors": len(self.errors)}


# --- the fixture and the servers -----------------------------------------------------------------


async def build_fixture(work: Path, plan: Plan) -> tuple[Path, str | None]:
    """The 1k-memory database of `bench.perf`, and a bearer token for AGENT (None with --auth local)."""
    db, now = work / "http-load.db", utcnow()
    async with open_reverie(settings(db)) as reverie:
        await data.log_sessions(reverie, data.generate_sessions(plan.sessions, plan.turns, plan.seed, now))
    await fixtures.with_memories(None, db, plan.memories, plan.seed, now)
    if plan.auth == "local":
        return db, None
    token, _ = tokens.add_token(work / "tokens.json", AGENT, None, "http-load", now)
    return db, token


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def reverie_server(db: Path, work: Path, port: int) -> list[str]:
    return [latency.reverie_command(), "--db", str(db), "--agent", AGENT, "serve", "--http", "--host", HOST,
            "--port", str(port), "--tokens", str(work / "tokens.json")]


def noop_server(port: int) -> list[str]:
    return [sys.executable, str(latency.NOOP_SERVER), "--http", str(port)]


@contextmanager
def serving(command: list[str], port: int, log: Path) -> Iterator[subprocess.Popen]:
    """The server process, once it accepts connections; its stderr (one line per request) goes to `log`."""
    env = os.environ | {"REVERIE_DREAM_MODE": "off"}
    with log.open("w") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr, env=env)
    try:
        _until_listening(process, port, log)
        yield process
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _until_listening(process: subprocess.Popen, port: int, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"the server did not listen on port {port} within {STARTUP_SECONDS} s")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process `pid` (all its threads) so far; None where /proc is missing."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def sampled(pid: int, out: Path | None, gil: bool = False) -> Iterator[None]:
    """py-spy recording `pid` into `out` (collapsed stacks) meanwhile, with `gil` only the thread
    holding the GIL (Python's CPU time, not SQLite's); nothing without `out`."""
    spy = shutil.which("py-spy", path=os.path.dirname(sys.executable)) or shutil.which("py-spy")
    if out is None or spy is None:
        if out is not None:
            print("… py-spy is not installed (pip install py-spy): no profile", file=sys.stderr)
        yield
        return
    recorder = subprocess.Popen([spy, "record", "--pid", str(pid), "--format", "raw", "--rate", "200",
                                 "--output", str(out), *(["--gil"] if gil else [])], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # attached before the timed calls start
    try:
        yield
    finally:
        recorder.send_signal(signal.SIGINT)
        recorder.wait(30)


# --- the calls -----------------------------------------------------------------------------------


def read_calls(plan: Plan) -> list[Args]:
    per_client = plan.warmup + plan.calls
    queries = data.generate_queries(plan.clients * per_client, plan.seed)
    return [arguments for _, arguments in latency.calls_for(queries)]


def log_calls(plan: Plan) -> list[Args]:
    """Small sessions: four turns and a note each, every one new (each call is a write)."""
    def session(i: int) -> Args:
        word = f"loadmark{i}"
        return {"transcript": f"User: remember {word} for the deploy\nAssistant: noted {word}\n"
                              f"User: and run the tests first\nAssistant: will do",
                "title": f"load {i}", "notes": [f"{word} goes with the deploy"]}
    return [session(i) for i in range(plan.clients * (plan.warmup + plan.calls))]


def shares(plan: Plan, arguments: list[Args]) -> list[list[list[Args]]]:
    """Per process, per client, that client's calls (warm-up first)."""
    per_client = [arguments[i::plan.clients] for i in range(plan.clients)]
    return [per_client[p::plan.processes] for p in range(plan.processes)]


@dataclass
class Work:
    url: str
    token: str | None
    mode: str
    tool: str
    warmup: int
    clients: list[list[Args]]


@dataclass
class Done:
    spans: list[tuple[int, int]]  # (start, end) of each timed call, time.perf_counter_ns (CLOCK_MONOTONIC)
    cpu: float
    errors: list[str]


def client_process(work: Work, ready: Any, go: Event, results: Any) -> None:
    """One client process: connect, warm up, say ready, wait for `go`, run the timed calls."""
    try:
        results.put(anyio.run(_clients, work, ready, go))
    except Exception as error:  # noqa: BLE001 - reported as the row's errors; the parent would wait otherwise
        ready.put(None)
        results.put(Done([], 0.0, [f"client process failed: {error!r}"]))


async def _clients(work: Work, ready: Any, go: Event) -> Done:
    async with AsyncExitStack() as stack:
        connected = [await stack.enter_async_context(_connect(work)) for _ in work.clients]
        warm = await _all(connected, work.tool, [calls[:work.warmup] for calls in work.clients])
        ready.put(os.getpid())
        await anyio.to_thread.run_sync(go.wait)
        cpu = time.process_time()
        done = await _all(connected, work.tool, [calls[work.warmup:] for calls in work.clients])
        done.cpu = time.process_time() - cpu
    done.errors = warm.errors + done.errors
    return done


@asynccontextmanager
async def _connect(work: Work) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {work.token}"} if work.token else {}
    async with httpx2.AsyncClient(headers=headers, timeout=120) as http, \
            Client(streamable_http_client(work.url, http_client=http), mode=work.mode) as client:
        yield client


async def _all(connected: list[Client], tool: str, calls: list[list[Args]]) -> Done:
    """Each client makes its calls one after another, all clients at once."""
    done = Done([], 0.0, [])
    async with anyio.create_task_group() as group:
        for client, mine in zip(connected, calls, strict=True):
            group.start_soon(_one_client, client, tool, mine, done)
    return done


async def _one_client(client: Client, tool: str, calls: list[Args], done: Done) -> None:
    for arguments in calls:
        start = time.perf_counter_ns()
        try:
            result = await client.call_tool(tool, arguments)
        except Exception as error:  # noqa: BLE001 - a failed call is a figure to report, not a crash
            done.errors.append(f"{type(error).__name__}: {error}")
            continue
        done.spans.append((start, time.perf_counter_ns()))
        if result.is_error:
            done.errors.append(" ".join(getattr(c, "text", "") for c in result.content)[:300])


def drive(plan: Plan, url: str, token: str | None, tool: str, arguments: list[Args], server_pid: int,
          profile: Path | None = None) -> Row:
    """Run the clients against `url` in `plan.processes` processes; the row of figures."""
    context = multiprocessing.get_context("spawn")
    ready, results, go = context.Queue(), context.Queue(), context.Event()
    processes = [context.Process(target=client_process, daemon=True,
                                 args=(Work(url, token, plan.mode, tool, plan.warmup, share), ready, go, results))
                 for share in shares(plan, arguments) if share]
    for process in processes:
        process.start()
    try:
        for _ in processes:
            ready.get(timeout=STARTUP_SECONDS + plan.clients * 5)
        with sampled(server_pid, profile, plan.profile_gil):
            cpu = cpu_seconds(server_pid)
            go.set()
            done: list[Done] = [results.get(timeout=3600) for _ in processes]
            after = cpu_seconds(server_pid)
    finally:
        for process in processes:
            process.join(30)
            if process.is_alive():
                process.kill()
    spans = [span for d in done for span in d.spans]
    return Row(tool, len(spans), (max(e for _, e in spans) - min(s for s, _ in spans)) / 1e9 if spans else 0.0,
               [(e - s) / 1e6 for s, e in spans], after - cpu if cpu is not None and after is not None else None,
               sum(d.cpu for d in done), [e for d in done for e in d.errors])


async def run(plan: Plan, work: Path) -> dict[str, Row]:
    say(f"fixture: {plan.memories:,} memories, {plan.sessions} sessions × {plan.turns} turns")
    db, token = await build_fixture(work, plan)
    rows: dict[str, Row] = {}
    port = free_port()
    say(f"no-op floor: {plan.clients} clients × {plan.calls} calls")
    with serving(noop_server(port), port, work / "noop.log") as process:
        rows["noop"] = drive(plan, f"http://{HOST}:{port}/mcp", None, "noop", [{}] * (plan.clients * (plan.warmup + plan.calls)),
                             process.pid)
    port = free_port()
    with serving(reverie_server(db, work, port), port, work / "reverie.log") as process:
        for tool, arguments in (("read_memory", read_calls(plan)), ("log_session", log_calls(plan))):
            say(f"{tool}: {plan.clients} clients × {plan.calls} calls")
            profile = plan.profile / f"{tool}.txt" if plan.profile else None
            rows[tool] = drive(plan, f"http://{HOST}:{port}/mcp", token, tool, arguments, process.pid, profile)
    return rows


def say(message: str) -> None:
    print(f"… {message}", file=sys.stderr, flush=True)


# --- the report ----------------------------------------------------------------------------------


def ratio(rows: dict[str, Row]) -> float:
    floor = rows["noop"].throughput
    return rows["read_memory"].throughput / floor if floor else 0.0


def markdown(plan: Plan, rows: dict[str, Row]) -> str:
    def ms(value: float | None, digits: int = 1) -> str:
        return "—" if value is None else f"{value:,.{digits}f}"

    lines = [f"{plan.clients} MCP clients over streamable HTTP on {HOST} ({plan.mode}, auth {plan.auth}), "
             f"{plan.calls} timed calls each after {plan.warmup}, in {plan.processes} client process(es); "
             f"{plan.memories:,} memories, {plan.sessions} sessions × {plan.turns} turns; "
             f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", "",
             "| tool | calls | calls/s | p50 ms | p99 ms | server CPU ms/call | server cores busy | client CPU ms/call | errors |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for tool in TOOLS:
        s = rows[tool].summary()
        name = "no-op (floor)" if tool == "noop" else f"`{tool}`"
        lines.append(f"| {name} | {s['calls']} | {s['calls_per_second']:,.1f} | {ms(s['p50_ms'])} | {ms(s['p99_ms'])} "
                     f"| {ms(s['server_cpu_ms_per_call'], 2)} | {ms(s['server_cores'], 2)} "
                     f"| {ms(s['client_cpu_ms_per_call'], 2)} | {s['errors']} |")
    met = "met" if ratio(rows) >= TARGET else "missed"
    lines += ["", f"`read_memory` throughput ÷ no-op throughput: **{ratio(rows):.2f}×** "
                  f"(target ≥ {TARGET}×: **{met}**)"]
    return "\n".join(lines)


def as_json(plan: Plan, rows: dict[str, Row]) -> dict[str, Any]:
    return {"plan": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(plan).items()},
            "load_average": os.getloadavg(), "cpus": os.cpu_count(), "ratio": ratio(rows), "target": TARGET,
            "rows": {tool: row.summary() | {"ms": row.ms, "error_messages": row.errors[:20]}
                     for tool, row in rows.items()}}


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.perf.http_load", description=__doc__.split("\n\n")[1])
    parser.add_argument("--clients", type=int, default=20, help="concurrent MCP clients (default 20)")
    parser.add_argument("--calls", type=int, default=30, help="timed calls per client and tool (default 30)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls per client first (default 3)")
    parser.add_argument("--processes", type=int, default=1, help="client processes (default 1)")
    parser.add_argument("--memories", type=int, default=1000, help="memories in the fixture (default 1,000)")
    parser.add_argument("--sessions", type=int, default=100, help="sessions of --turns turns in the fixture")
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--mode", choices=["auto", "legacy"], default="auto",
                        help="protocol: auto (2026-07-28, stateless) or legacy (2025-11-25 sessions)")
    parser.add_argument("--auth", choices=["token", "local"], default="token",
                        help="token: a bearer token per client (default); local: loopback with no tokens file")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, metavar="PATH", help="write every figure and raw latency here")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="work in DIR (database, server logs) and keep it")
    parser.add_argument("--profile", type=Path, metavar="DIR", help="py-spy the Reverie server into DIR/<tool>.txt")
    parser.add_argument("--profile-gil", action="store_true",
                        help="with --profile: sample only the thread holding the GIL (where Python's CPU goes)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    plan = Plan(clients=args.clients, calls=args.calls, warmup=args.warmup, processes=max(1, args.processes),
                memories=args.memories, sessions=args.sessions, turns=args.turns, mode=args.mode, auth=args.auth,
                seed=args.seed, profile=args.profile, profile_gil=args.profile_gil)
    if plan.profile:
        plan.profile.mkdir(parents=True, exist_ok=True)
    work = args.keep or Path(tempfile.mkdtemp(prefix="reverie-http-load-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        rows = anyio.run(run, plan, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(markdown(plan, rows))
    if args.json:
        args.json.write_text(json.dumps(as_json(plan, rows), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

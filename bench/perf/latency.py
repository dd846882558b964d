"""`read_memory` latency three ways, and the no-op floor the stdio transport sets.

- stdio: a real MCP client spawns `<venv>/bin/reverie serve` with `REVERIE_DB`, the way
  Claude Desktop or Claude Code would, and times `tools/call` round trips (background
  dreams off, `REVERIE_DREAM_MODE=off`, so none competes with the timed calls);
- in-process: `Client(build_server(settings))`, the SDK's direct dispatcher (no pipes, no
  JSON-RPC framing), so the difference to stdio is the transport;
- direct: `Reverie.read_memory` on the service, so the difference to in-process is the
  MCP layer (argument validation, result serialisation, client-side schema checks);
- floor: the same stdio client against `noop_server.py`, one tool that returns "ok".

Every path gets the same calls in the same order: budget 2,000 tokens, the seeded query mix.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from mcp import Client
from mcp.client.stdio import StdioServerParameters
from reverie.mcp_server import build_server
from reverie.service import open_reverie

from bench.backend import settings
from bench.perf import pin
from bench.perf.data import Query
from bench.perf.timing import Sample, sizes, time_tool, timed

BUDGET = 2_000
NOOP_SERVER = Path(__file__).with_name("noop_server.py")

Call = tuple[str, dict]


def reverie_command() -> str:
    """The `reverie` script next to this interpreter (the venv's), else the one on PATH."""
    beside = Path(sys.executable).parent / "reverie"
    found = str(beside) if beside.exists() else shutil.which("reverie")
    if found is None:
        raise SystemExit("`reverie` is not installed: run `pip install -e .` first.")
    return found


def calls_for(queries: list[Query]) -> list[Call]:
    return [(q.kind, {"budget_tokens": BUDGET} | ({"query": q.text} if q.text is not None else {})) for q in queries]


def _view_measure(result) -> tuple[int, int, int]:
    return (*sizes(result), len((result.structured_content or {}).get("entries", [])))


async def stdio(db: str, calls: list[Call], mode: str = "auto", warmup: int = 20) -> list[Sample]:
    env = {"REVERIE_DB": db, "REVERIE_DREAM_MODE": "off"} | pin.environment()
    params = StdioServerParameters(command=reverie_command(), args=["serve"], env=env)
    async with Client(params, mode=mode) as client:
        return await time_tool(client, "read_memory", calls, _view_measure, warmup)


async def in_process(db: str, calls: list[Call], warmup: int = 20) -> list[Sample]:
    async with Client(build_server(settings(db))) as client:
        return await time_tool(client, "read_memory", calls, _view_measure, warmup)


async def direct(db: str, calls: list[Call], warmup: int = 20) -> list[Sample]:
    async with open_reverie(settings(db)) as reverie:
        for _, arguments in calls[:warmup]:
            await reverie.read_memory(**arguments)
        samples = []
        for kind, arguments in calls:
            ms, view = await timed(reverie.read_memory, **arguments)
            samples.append(Sample(kind, ms, len(view.markdown.encode()), len(view.model_dump_json().encode()),
                                  len(view.entries)))
        return samples


async def floor(count: int, mode: str = "auto", warmup: int = 20) -> list[Sample]:
    params = StdioServerParameters(command=sys.executable, args=[str(NOOP_SERVER)])
    async with Client(params, mode=mode) as client:
        return await time_tool(client, "noop", [("noop", {})] * count, lambda r: (*sizes(r), 0), warmup)

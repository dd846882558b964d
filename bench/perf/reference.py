"""The reference server side by side: `@modelcontextprotocol/server-memory` over stdio.

It is what users install when they want "memory" in Claude Desktop: a knowledge graph
kept as one JSONL file (`MEMORY_FILE_PATH`, here in a temp dir). It is loaded with the
same memories as Reverie — one entity per memory (name = memory id, entityType = category,
observations = [text]) through its own `create_entities` tool, in batches — and its
`search_nodes` is timed for the same text queries. Its search is a case-insensitive
substring match of the whole query over every entity, reading and parsing the whole file
on every call, and it returns every match: nothing bounds its output. We record that
output's size as well as the time.

Needs `npx` (Node ≥ 18) and the npm registry, or the package in npx's cache.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from mcp import Client
from mcp.client.stdio import StdioServerParameters
from reverie.models import Memory

from bench.perf.timing import Sample, sizes, time_tool

PACKAGE = "@modelcontextprotocol/server-memory"
BATCH = 500


def unavailable() -> str | None:
    return None if shutil.which("npx") else "npx is not on PATH: install Node.js ≥ 18 to run the reference server."


def entity(memory: Memory) -> dict:
    return {"name": memory.id, "entityType": memory.category, "observations": [memory.content]}


def _measure(result) -> tuple[int, int, int]:
    return (*sizes(result), len((result.structured_content or {}).get("entities", [])))


async def measure(items: list[Memory], queries: list[tuple[str, str]], warmup: int = 20) -> dict:
    """Load `items`, then time `search_nodes` once per (kind, query); samples and load figures."""
    with tempfile.TemporaryDirectory(prefix="reverie-perf-reference-") as directory:
        store = Path(directory) / "memory.jsonl"
        params = StdioServerParameters(command="npx", args=["-y", PACKAGE], env={"MEMORY_FILE_PATH": str(store)})
        async with Client(params, read_timeout_seconds=300) as client:
            info = client.session.server_info
            server = {"version": info.version if info else "?", "protocol": client.session.protocol_version}
            start = time.perf_counter()
            for first in range(0, len(items), BATCH):
                batch = [entity(m) for m in items[first : first + BATCH]]
                result = await client.call_tool("create_entities", {"entities": batch})
                if result.is_error:
                    raise RuntimeError(f"create_entities failed: {result.content}")
            load_seconds = time.perf_counter() - start
            calls = [(kind, {"query": query}) for kind, query in queries]
            samples: list[Sample] = await time_tool(client, "search_nodes", calls, _measure, warmup)
        return server | {"load_seconds": round(load_seconds, 2), "file_bytes": store.stat().st_size,
                         "samples": samples}

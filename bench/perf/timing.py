"""Timing primitives: one sample per call, and the percentiles the report quotes.

Latency is wall time measured by the caller (`time.perf_counter_ns`) around one awaited
call, so for MCP clients it is the full round trip: serialise, transport, server handler,
response, client-side validation. The first `warmup` calls of a run are discarded (imports,
caches, SQLite page cache), then every call is kept.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from mcp import Client


@dataclass
class Sample:
    kind: str          # the query kind (see data.QUERY_KINDS), or "noop"
    ms: float          # wall time of the call
    text_bytes: int    # UTF-8 size of the text content (what the model reads)
    wire_bytes: int    # UTF-8 size of the whole result as JSON (text + structuredContent)
    hits: int          # entries / entities returned


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100): a value that was actually observed."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def summary(samples: Sequence[Sample]) -> dict[str, Any]:
    ms = [s.ms for s in samples]
    return {
        "calls": len(samples), "p50_ms": percentile(ms, 50), "p90_ms": percentile(ms, 90),
        "p99_ms": percentile(ms, 99), "max_ms": max(ms, default=math.nan),
        "mean_text_bytes": _mean([s.text_bytes for s in samples]), "max_text_bytes": max((s.text_bytes for s in samples), default=0),
        "mean_wire_bytes": _mean([s.wire_bytes for s in samples]), "max_wire_bytes": max((s.wire_bytes for s in samples), default=0),
        "mean_hits": _mean([s.hits for s in samples]),
    }


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def as_dicts(samples: Sequence[Sample]) -> list[dict]:
    return [asdict(s) for s in samples]


async def timed(call: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> tuple[float, Any]:
    """(milliseconds, result) of one awaited `call(*args, **kwargs)`."""
    start = time.perf_counter_ns()
    result = await call(*args, **kwargs)
    return (time.perf_counter_ns() - start) / 1e6, result


async def time_tool(
    client: Client, tool: str, calls: Sequence[tuple[str, dict]], measure: Callable[[Any], tuple[int, int, int]],
    warmup: int = 20,
) -> list[Sample]:
    """Call `tool` once per (kind, arguments) after `warmup` unrecorded calls.

    `measure(result)` gives (text bytes, wire bytes, hits). A tool error aborts the run:
    timing an error path would flatter the figures.
    """
    for _, arguments in list(calls)[:warmup]:
        await client.call_tool(tool, arguments)
    samples = []
    for kind, arguments in calls:
        ms, result = await timed(client.call_tool, tool, arguments)
        if result.is_error:
            raise RuntimeError(f"{tool}({arguments}) failed: {result.content}")
        samples.append(Sample(kind, ms, *measure(result)))
    return samples


def text_of(result: Any) -> str:
    return "".join(getattr(block, "text", "") for block in result.content)


def sizes(result: Any) -> tuple[int, int]:
    """(text bytes, whole result as JSON bytes) of a CallToolResult."""
    return len(text_of(result).encode()), len(result.model_dump_json(by_alias=True, exclude_none=True).encode())

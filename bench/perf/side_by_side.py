"""`read_memory` on two databases holding the same memory, interleaved query by query.

`python -m bench.perf.side_by_side SQLITE_FILE POSTGRESQL_URL [--calls 200]` compares two
backends (or two copies of one) fairly: each query of the seeded mix (`bench/perf/data.py`)
is asked of both, in alternating order, in one process, so a busy moment of the machine
falls on both alike — two `bench.perf` runs minutes apart differ by more than the backends
do. The databases are what `python -m bench.perf --keep DIR` leaves: the same seed builds
the same memory and history on either backend (`memory-100000.db` in DIR; on PostgreSQL a
`reverie_bench_…_memory_100000` database on the server). Reads go through the service
(`Reverie.read_memory`), after 10 unrecorded ones on each.
"""

from __future__ import annotations

import argparse
import statistics
import time

import anyio
from reverie.config import is_server_url, safe_url
from reverie.service import Reverie, open_reverie

from bench.backend import settings
from bench.perf.data import generate_queries
from bench.perf.timing import percentile

WARMUP = 10


async def measure(first: str, second: str, calls: int, seed: int = 3) -> dict[str, list[float]]:
    """Milliseconds per `read_memory` on each database, the same `calls` queries on both."""
    queries = [q.text for q in generate_queries(calls + WARMUP, seed)]
    timed: dict[str, list[float]] = {first: [], second: []}
    async with open_reverie(settings(first)) as a, open_reverie(settings(second)) as b:
        for n, query in enumerate(queries):
            pair: list[tuple[str, Reverie]] = [(first, a), (second, b)]
            for db, reverie in pair if n % 2 else pair[::-1]:
                began = time.perf_counter()
                await reverie.read_memory(query=query)
                if n >= WARMUP:
                    timed[db].append((time.perf_counter() - began) * 1000)
    return timed


def table(timed: dict[str, list[float]]) -> str:
    (first, a), (second, b) = timed.items()
    lines = ["| database | p50 ms | p90 ms | p99 ms |", "|---|---:|---:|---:|"]
    lines += [f"| {safe_url(db) if is_server_url(db) else db} | {percentile(ms, 50):.1f} | {percentile(ms, 90):.1f} "
              f"| {percentile(ms, 99):.1f} |" for db, ms in timed.items()]
    lines.append(f"\nsecond ÷ first at the p50: {statistics.median(b) / statistics.median(a):.2f}× ({len(a)} queries)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.perf.side_by_side", description=__doc__.split("\n\n")[0])
    parser.add_argument("first", help="a SQLite file or a postgresql:// URL")
    parser.add_argument("second", help="another, holding the same memory")
    parser.add_argument("--calls", type=int, default=200, help="timed queries on each")
    args = parser.parse_args(argv)
    print(table(anyio.run(measure, args.first, args.second, args.calls)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""A long-lived memory: `python -m bench.perf.history [--sessions 5000] [--turns 200] [--keep DB]`.

Years of use leave a large history and, when dreams are rare, thousands of sessions no
dream has consolidated. The queries that run on every read and every log must not grow
with that history. This builds such a database — `--sessions` ended sessions (default
5,000) of `--turns` turns (default 200: 1M events), each with 0-4 notes, none dreamed
over, 85% by agent `default` — through the store's own insert functions (the text is
the seeded synthetic vocabulary; redaction and hashing are left out, they do not change
the rows these queries read). Then it times, through the store layer and its aiosqlite
connection, as a read or a log calls them:

- `pending_notes` (every `read_memory` with notes): the agent's 200 newest unconsolidated notes;
- `count_unconsolidated` (every `log_session`): sessions awaiting a dream, every agent's
  and one agent's;
- `undreamed` (every `log_session`, to say whether a dream is due).

Each runs `--calls` times (default 300) after 20 unrecorded calls; p50 and p99 in ms.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import timedelta
from pathlib import Path

import anyio
from reverie.clock import utcnow
from reverie.models import Turn
from reverie.store import open_database, sessions

from bench.perf.timing import percentile
from bench.perf.vocabulary import Vocabulary

SESSIONS_PER_TRANSACTION = 100


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.perf.history", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=5_000, help="undreamed sessions in the history")
    parser.add_argument("--turns", type=int, default=200, help="turns per session")
    parser.add_argument("--calls", type=int, default=300, help="timed calls per query")
    parser.add_argument("--keep", type=Path, metavar="DB", help="build (or reuse) the database here")
    return parser.parse_args(argv)


async def build(path: Path, count: int, turns: int, seed: int = 7) -> None:
    """`count` ended, undreamed sessions of `turns` turns, the newest ending now."""
    v, now = Vocabulary.build(random.Random(seed)), utcnow()
    async with open_database(path) as db:
        for first in range(0, count, SESSIONS_PER_TRANSACTION):
            async with db.transaction():
                for i in range(first, min(first + SESSIONS_PER_TRANSACTION, count)):
                    await _session(db, v, i, turns, now - timedelta(hours=3 * (count - i)))
            print(f"… {min(first + SESSIONS_PER_TRANSACTION, count):,} sessions", file=sys.stderr, end="\r")
    print(file=sys.stderr)


async def _session(db, v: Vocabulary, i: int, turns: int, start) -> None:
    sid, agent = f"ses_hist_{i:05d}", v.rng.choices(["default", "other"], [85, 15])[0]
    await sessions.create_session(db, sid, agent, start, start)
    said = [Turn(role="user" if k % 2 == 0 else "assistant", content=v.sentence(),
                 timestamp=start + timedelta(seconds=20 * k)) for k in range(turns)]
    await sessions.append_events(db, sid, 0, said)
    notes = [(v.sentence(), start + timedelta(seconds=20 * turns)) for _ in range(v.rng.randint(0, 4))]
    await sessions.append_notes(db, sid, 0, notes)
    await sessions.update_session(db, sid, content_hash="x", ended_at=start + timedelta(seconds=20 * turns))


QUERIES = {
    "pending_notes(default)": lambda db: sessions.pending_notes(db, "default"),
    "count_unconsolidated(every agent)": lambda db: sessions.count_unconsolidated(db),
    "count_unconsolidated(default)": lambda db: sessions.count_unconsolidated(db, "default"),
    "undreamed(every agent)": lambda db: sessions.undreamed(db),
}


async def measure(path: str | Path, calls: int) -> dict[str, dict]:
    found = {}
    async with open_database(path) as db:
        for name, query in QUERIES.items():
            for _ in range(20):
                await query(db)
            ms = []
            for _ in range(calls):
                start = time.perf_counter_ns()
                await query(db)
                ms.append((time.perf_counter_ns() - start) / 1e6)
            found[name] = {"p50_ms": percentile(ms, 50), "p99_ms": percentile(ms, 99)}
    return found


def table(found: dict[str, dict], count: int, turns: int) -> str:
    rows = [f"| query ({count:,} undreamed sessions, {count * turns:,} events) | p50 ms | p99 ms |", "|---|---:|---:|"]
    rows += [f"| `{name}` | {f['p50_ms']:.3f} | {f['p99_ms']:.3f} |" for name, f in found.items()]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    path = args.keep or Path(f"/tmp/reverie-history-{args.sessions}x{args.turns}.db")
    if not path.exists():
        started = time.perf_counter()
        anyio.run(build, path, args.sessions, args.turns)
        print(f"… built {path} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    print(table(anyio.run(measure, path, args.calls), args.sessions, args.turns))
    if args.keep is None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`python -m bench.reliability [--writes N] [--kill-trials N] [--races N] [--dreamers N] [--transport T] [--backend B] [--json]`.

Runs every reliability scenario against real processes and real databases, and prints the
figures as a markdown table (or JSON): writes attempted vs present with two servers and
eight clients on one database, kill -9 trials during apply_dream and their outcomes, dreams
raced between several processes and applies between two, a dreamer killed holding the
dream lock. Exits 1 if any figure is not as it must be.
`--backend postgres` runs them on new databases on a PostgreSQL server (`--postgres-url`,
default $REVERIE_TEST_POSTGRES; its role must be allowed to create databases), dropped after.
The test suite runs a bounded version of each on both backends (tests/test_reliability.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import anyio

from bench.backend import POSTGRES_URL_VARIABLE, Backend, backend_named
from bench.reliability import report
from bench.reliability.concurrency import concurrent_writes
from bench.reliability.kill import kill_trials
from bench.reliability.race import dream_races, stale_lock


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.reliability", description=__doc__.split("\n\n")[1])
    parser.add_argument("--writes", type=int, default=2000, help="log_session calls in all (default 2000)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--transport", choices=["both", "http", "stdio"], default="both",
                        help="servers for the writes (default both)")
    parser.add_argument("--kill-trials", type=int, default=20, help="kill -9 trials per kind of process (default 20)")
    parser.add_argument("--ops", type=int, default=200,
                        help="operations in the proposal being applied (default and most: 200, the limit per proposal)")
    parser.add_argument("--races", type=int, default=10, help="dream/apply race rounds (default 10)")
    parser.add_argument("--dreamers", type=int, default=2, help="processes dreaming at once in a race (default 2)")
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite",
                        help="where the memories live (default sqlite: files in the work directory)")
    parser.add_argument("--postgres-url", default=os.environ.get(POSTGRES_URL_VARIABLE),
                        help="with --backend postgres: a server URL whose role may create databases "
                             "(default $REVERIE_TEST_POSTGRES)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, metavar="DIR", help="work in DIR (kept) instead of a temporary directory")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    return parser.parse_args(argv)


def transports(choice: str) -> list[str]:
    return ["stdio", "http"] if choice == "both" else [choice]


async def run(args: argparse.Namespace, backend: Backend) -> report.Figures:
    figures = report.Figures()
    for transport in transports(args.transport):
        figures.writes.append(await concurrent_writes(backend, writes=args.writes, clients=args.clients,
                                                      transport=transport))
    for kind in ("server", "service"):
        figures.kills.append(await kill_trials(backend, trials=args.kill_trials, ops=args.ops, seed=args.seed,
                                               worker=kind))
    figures.races = await dream_races(backend, rounds=args.races, dreamers=args.dreamers)
    figures.stale_lock = await stale_lock(backend, figures.races.corpus)
    return figures



def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.keep and args.keep.exists() and any(args.keep.iterdir()):
        print(f"--keep {args.keep}: name a new or empty directory.", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="reverie-reliability-") as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        backend = backend_named(args.backend, folder, args.postgres_url, keep=args.keep is not None)
        try:
            figures = anyio.run(run, args, backend)
        finally:
            backend.close()
    print(json.dumps(report.as_json(figures), indent=2) if args.json else report.markdown(figures))
    return 0 if figures.ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""`python -m bench.reliability [--writes N] [--kill-trials N] [--races N] [--transport T] [--json]`.

Runs every reliability scenario against real processes and real files, and prints the
figures as a markdown table (or JSON): writes attempted vs present with two servers and
eight clients on one file, kill -9 trials during apply_dream and their outcomes, dreams
and applies raced between two processes, a dreamer killed holding the dream lock. Exits 1
if any figure is not as it must be.
The test suite runs a bounded version of each (tests/test_reliability.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import anyio

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
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, metavar="DIR", help="work in DIR (kept) instead of a temporary directory")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    return parser.parse_args(argv)


def transports(choice: str) -> list[str]:
    return ["stdio", "http"] if choice == "both" else [choice]


async def run(args: argparse.Namespace, folder: Path) -> report.Figures:
    figures = report.Figures()
    for transport in transports(args.transport):
        work = folder / f"writes-{transport}"
        work.mkdir()
        figures.writes.append(await concurrent_writes(work, writes=args.writes, clients=args.clients,
                                                      transport=transport))
    for kind in ("server", "service"):
        work = folder / f"kill-{kind}"
        work.mkdir()
        figures.kills.append(await kill_trials(work, trials=args.kill_trials, ops=args.ops, seed=args.seed,
                                               worker=kind))
    work = folder / "races"
    work.mkdir()
    figures.races = await dream_races(work, rounds=args.races)
    figures.stale_lock = await stale_lock(work)
    return figures


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.keep and args.keep.exists() and any(args.keep.iterdir()):
        print(f"--keep {args.keep}: name a new or empty directory.", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="reverie-reliability-") as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        figures = anyio.run(run, args, folder)
    print(json.dumps(report.as_json(figures), indent=2) if args.json else report.markdown(figures))
    return 0 if figures.ok else 1


if __name__ == "__main__":
    sys.exit(main())

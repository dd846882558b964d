"""`python -m bench.quality --external [--data DIR] [--only lme|locomo|pairs] [--no-distractors]
[--limit N] [--dream-every N] [--verbose] [--json PATH]`: consolidation quality on the public
development data.

By default one dream runs after every session is logged (the data README's protocol).
`--dream-every N` dreams on a schedule instead, as a server that dreams by itself would:
after every N sessions and once after the last (see `pipeline`).

The data is read where it lies (`../shared/eval-data` beside the repository by default):
its licences keep it out of the repository. Without it, the bench says so and exits 0.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, replace
from pathlib import Path

import anyio

from bench.quality.external import figures, locomo, longmemeval, pairs, report
from bench.quality.external.agent import ToolFailed
from bench.quality.external.cases import Case
from bench.quality.external.figures import DatasetFigures, PairFigures
from bench.quality.external.pipeline import run_case, run_pair

REPOSITORY = Path(__file__).resolve().parents[3]
DEFAULT_DATA = REPOSITORY.parent / "shared" / "eval-data"
PARTS = {"lme": longmemeval.FILE, "locomo": locomo.FILE, "pairs": pairs.FILE}


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.quality --external", description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, metavar="DIR", help="the eval-data folder")
    parser.add_argument("--only", choices=sorted(PARTS), help="run one part")
    parser.add_argument("--no-distractors", action="store_true",
                        help="LongMemEval: log only the evidence sessions, not the ~50-session haystack")
    parser.add_argument("--limit", type=int, metavar="N", help="at most N questions (pairs) per part")
    parser.add_argument("--dream-every", type=positive, metavar="N",
                        help="dream (unflagged operations applied) after every N sessions logged and after the last, "
                             "instead of once after all of them")
    parser.add_argument("--verbose", action="store_true", help="name what the dream made worse, and every op")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write every figure here")
    return parser.parse_args(argv)


def positive(text: str) -> int:
    number = int(text)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {number}")
    return number


@dataclass
class Results:
    datasets: list[DatasetFigures]
    pairs: PairFigures | None = None


def chosen(args: argparse.Namespace) -> list[str]:
    """The parts asked for whose file is there; a missing file is said, not fatal."""
    parts = [args.only] if args.only else list(PARTS)
    missing = [p for p in parts if not (args.data / PARTS[p]).is_file()]
    for part in missing:
        print(f"Skipping {part}: {args.data / PARTS[part]} is missing.")
    return [p for p in parts if p not in missing]


def limited(cases: list[Case], limit: int | None) -> list[Case]:
    """The first `limit` questions, keeping only the cases they belong to."""
    if limit is None:
        return cases
    kept = []
    for case in cases:
        if limit <= 0:
            break
        kept.append(replace(case, questions=case.questions[:limit]))
        limit -= len(kept[-1].questions)
    return kept


async def run_cases(title: str, cases: list[Case], every: int | None = None) -> DatasetFigures:
    return figures.of_cases(title, [await run_case(case, every) for case in cases], every)


async def run_pairs(chosen_pairs: list[pairs.Pair], every: int | None = None) -> PairFigures:
    started = time.perf_counter()
    runs = [await run_pair(pair, every) for pair in chosen_pairs]
    return figures.of_pairs(runs, time.perf_counter() - started, every)


async def run_parts(args: argparse.Namespace, parts: list[str]) -> Results:
    results, every = Results([]), args.dream_every
    if "lme" in parts:
        haystack = "evidence sessions only" if args.no_distractors else "with distractors"
        questions = limited(longmemeval.load(args.data, distractors=not args.no_distractors), args.limit)
        results.datasets.append(await run_cases(f"LongMemEval knowledge-update ({haystack})", questions, every))
    if "locomo" in parts:
        conversations = limited(locomo.load(args.data), args.limit)
        results.datasets.append(await run_cases("LoCoMo (categories 1-4)", conversations, every))
    if "pairs" in parts:
        results.pairs = await run_pairs(pairs.load(args.data)[: args.limit], every)
    return results


def run(args: argparse.Namespace) -> Results | None:
    """The results, or None (said why) when a tool failed and nothing can be scored."""
    try:
        return anyio.run(run_parts, args, chosen(args))
    except* ToolFailed as failures:  # raised inside the client's task group, so it arrives grouped
        print(f"The external quality bench stopped: {failures.exceptions[0]}")
    return None


def show(results: Results, verbose: bool, every: int | None = None) -> None:
    print("## Consolidation quality on public data: heuristic engine, read_memory at 500 tokens\n")
    print(report.mode(every), "\n")
    for f in results.datasets:
        print(report.dataset(f), "\n")
    if results.pairs:
        print(report.pairs(results.pairs))
    if verbose:
        for f in results.datasets:
            print(report.lowered_lines(f), report.applied_operations(f), sep="\n")
        if results.pairs:
            print(report.wrong_pairs(results.pairs))


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if not args.data.is_dir():
        print(f"Skipping the external quality bench: no data folder at {args.data} (pass --data DIR).")
        return 0
    results = run(args)
    if results is None:
        return 1
    show(results, args.verbose, args.dream_every)
    if args.json:
        settings = {"data": str(args.data), "distractors": not args.no_distractors, "limit": args.limit,
                    "only": args.only, "engine": "heuristic", "budget_tokens": 500,
                    "dream_every": args.dream_every}
        report.write_json(args.json, results.datasets, results.pairs, settings)
    return 0

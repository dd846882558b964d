"""`python -m bench.quality --engine heuristic|agent|anthropic [--json PATH] [--show-memory]`.

`python -m bench.quality --external [...]` measures on the public data instead (see
`bench.quality.external`; `--external --help` lists its options).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import anyio
from reverie.errors import ReverieError

from bench.quality import report
from bench.quality.corpus import Scenario, load_corpus
from bench.quality.engines import DREAMERS, Dreamer, unavailable
from bench.quality.external import command as external
from bench.quality.runner import run
from bench.quality.scoring import Score, failed, score


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.quality", description=__doc__)
    parser.add_argument("--engine", choices=sorted(DREAMERS), default="heuristic")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write every figure and check here")
    parser.add_argument("--show-memory", action="store_true", help="print each scenario's operations and memory")
    parser.add_argument("--external", action="store_true",
                        help="measure on the public data in ../shared/eval-data instead (--external --help for its options)")
    return parser.parse_args(argv)


async def run_all(corpus: list[Scenario], dreamer: Dreamer) -> list[Score]:
    scores = []
    for scenario in corpus:
        try:
            scores.append(score(await run(scenario, dreamer)))
        except ReverieError as error:  # the server refused this scenario's input: a finding, not a crash
            scores.append(failed(scenario, error))
    return scores


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--external" in argv:  # its own options: the scenario bench's parser would refuse them
        return external.main([a for a in argv if a != "--external"])
    args = parse(argv)
    if reason := unavailable(args.engine):
        print(reason)
        return 0
    scores = anyio.run(run_all, load_corpus(), DREAMERS[args.engine])
    print(report.table(args.engine, scores), "", report.scenario_lines(scores), sep="\n")
    if args.show_memory:
        print(report.memory_dump(scores))
    if args.json:
        report.write_json(args.json, args.engine, scores)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`python -m bench.perf [--sizes 1000,10000,100000] [--quick] [--json PATH] [--calls N] [--keep DIR] [--backend B]`.

Measures read_memory latency (stdio, in-process, direct, against a no-op floor), the
reference memory server side by side, log_session ingest, the heuristic dream, and
apply/revert of a 500-operation dream; prints markdown tables and the machine.
`--backend postgres` builds the same memories in new databases on a PostgreSQL server
(`--postgres-url`, default $REVERIE_TEST_POSTGRES; its role must be allowed to create
databases) and measures the same figures there; the databases are dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.perf.pin import pin, release

if __name__ == "__main__":
    pin(sys.argv[1:])  # before anything imports reverie: measure one frozen version of it

import anyio  # noqa: E402

from bench.backend import POSTGRES_URL_VARIABLE, backend_named  # noqa: E402
from bench.perf import machine, report, targets  # noqa: E402
from bench.perf.runner import Plan, Results, run  # noqa: E402

WORKING_TREE = Path(__file__).resolve().parents[2] / "server" / "reverie"

QUICK = dict(sizes=[1000], reference_sizes=[1000], apply_sizes=[1000], sessions=10, calls=60, warmup=10, apply_ops=50)
# At the default sizes the history grows to 5,000 sessions (1M events): a full run takes ~10 min.


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.perf", description=__doc__.split("\n\n")[1])
    parser.add_argument("--sizes", default="1000,10000,100000", help="memory counts, comma-separated")
    parser.add_argument("--reference-sizes", default="1000,10000", help="sizes at which to run the reference server")
    parser.add_argument("--apply-sizes", default="10000,100000", help="memory counts for the 500-op apply/revert")
    parser.add_argument("--dream-timeout", type=float, default=420, help="seconds before a dream subprocess is killed")
    parser.add_argument("--calls", type=int, default=300, help="timed read_memory calls per path and size (≥ 200)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1k memories, 10 sessions, 60 calls")
    parser.add_argument("--no-reference", action="store_true", help="skip the Node reference server")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write every figure and raw sample here")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="work in DIR instead of a temporary directory")
    parser.add_argument("--same-history", action="store_true",
                        help="the same 100 sessions at every size (the harness before the history grew with the size)")
    parser.add_argument("--no-stdio-ingest", action="store_true", help="skip log_session over stdio")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite",
                        help="where the memories live (default sqlite: files in the work directory)")
    parser.add_argument("--baseline", type=Path, metavar="JSON",
                        help="with --backend postgres: a SQLite run's --json on this machine, to hold the figures against")
    parser.add_argument("--postgres-url", default=os.environ.get(POSTGRES_URL_VARIABLE),
                        help="with --backend postgres: a server URL whose role may create databases "
                             f"(default ${POSTGRES_URL_VARIABLE})")
    return parser.parse_args(argv)


def plan_from(args: argparse.Namespace) -> Plan:
    if args.quick:
        return Plan(**QUICK, seed=args.seed, with_reference=not args.no_reference, keep=args.keep is not None,
                    grow_history=not args.same_history, ingest_stdio=not args.no_stdio_ingest)
    sizes = sorted(_numbers(args.sizes))
    return Plan(sizes=sizes, reference_sizes=_numbers(args.reference_sizes),
                apply_sizes=[n for n in _numbers(args.apply_sizes) if n <= max(sizes)],
                calls=args.calls, seed=args.seed, with_reference=not args.no_reference, dream_timeout=args.dream_timeout,
                keep=args.keep is not None, grow_history=not args.same_history, ingest_stdio=not args.no_stdio_ingest)


def _numbers(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def markdown(results: Results, about: dict, seconds: float, command: str, baseline: dict | None = None) -> str:
    largest = max(results.latency)
    parts = [
        f"`{command}` — {seconds / 60:.1f} min, on {report.BACKENDS[results.backend]}. {report.machine_line(about)} "
        f"{report.source_line(about)}",
        "### read_memory latency (budget 2,000 tokens, seeded query mix: see bench/perf/data.py)", report.latency_table(results.latency),
        report.kinds_table(largest, results.latency[largest]["read_memory direct"], "service"),
    ]
    if results.reference:
        parts += ["### Side by side with the reference server (same memories, same text queries)",
                  report.reference_table(results.reference)]
    elif results.reference_skipped:
        parts.append(f"Reference server skipped: {results.reference_skipped}")
    parts += ["### log_session ingest", report.ingest_table(results.ingest, results.ingest_stdio),
              "### History: what every read and every log queries (the history grows with the size)",
              report.history_table(results.history),
              "### Heuristic dream (one subprocess per size)", report.dream_table(results.dreams)]
    if results.applies:
        parts += ["### apply_dream and revert_dream (in-process, through the service)", report.apply_table(results.applies)]
    parts += ["### Loading the memories (store layer, one transaction per 10k rows)", report.load_table(results.loads),
              "### Targets", report.targets_table(targets.check(results, baseline))]
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    plan, about = plan_from(args), machine.describe() | {"source": machine.source_digest()}
    baseline = json.loads(args.baseline.read_text()) if args.baseline else None  # before a long run, not after
    if args.backend == "postgres" and args.postgres_url:
        about |= machine.postgres(args.postgres_url)
    command = "python -m bench.perf " + " ".join(argv if argv is not None else sys.argv[1:])
    start = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="reverie-perf-") as scratch:
            workdir = args.keep or Path(scratch)
            workdir.mkdir(parents=True, exist_ok=True)
            backend = backend_named(args.backend, workdir, args.postgres_url, keep=args.keep is not None)
            try:
                results = anyio.run(run, plan, backend)
            finally:
                backend.close()
    finally:
        release()
    seconds = time.perf_counter() - start
    about |= {"working_tree": machine.source_digest(WORKING_TREE) if WORKING_TREE.exists() else None,
              "load_after": machine.load()}
    print(markdown(results, about, seconds, command.strip(), baseline))
    if args.json:
        report.write_json(args.json, {"command": command.strip(), "seconds": round(seconds, 1), "machine": about,
                                      "plan": plan.__dict__, "results": results.__dict__,
                                      "targets": targets.check(results, baseline)})
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`python -m bench.perf.dreamtime [--runs 3] [--keep DIR] [--against DIR]`: the heuristic dream alone, by phase.

The issue-11 target: a heuristic dream over 10k memories and 100 undreamed sessions of
200 turns in ≤ 3 s. `bench.perf` measures it among everything else; this times only it,
`--runs` times, each in a fresh process on a fresh copy of one database (a dream writes a
proposal, and a second dream would see the first's), and splits each run into the
engine (`heuristic.propose`), the gate (`dreams.finalize`: redaction, provenance,
supersession and contradiction checks) and the rest (reading memory and sessions in,
storing the proposal). Each phase is given in CPU seconds (`time.process_time`) beside
wall seconds: on a shared machine wall time follows the load, CPU time much less so.

The database is built once (`bench.perf.data`'s seeded memories and sessions, the same
fixture `bench.perf --same-history` dreams over) and kept in `--keep DIR` for later runs.
`--against DIR` times another version of the code too (DIR holds its `reverie` package,
e.g. `git archive <commit> server | tar -x -C /tmp/old` and DIR = /tmp/old/server), one
run of each in turn so both see the same machine. Each run also reports the operations'
digest (equal digests: the same proposal, word for word), its peak RSS and the cyclic
garbage collector's passes by phase.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.perf.dream import _status_mb

REPO = Path(__file__).resolve().parents[2]
PHASES = ("engine", "gate", "rest", "total")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.perf.dreamtime", description=__doc__.split("\n\n")[0])
    parser.add_argument("--memories", type=int, default=10_000)
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, metavar="DIR", help="build the database here once and reuse it")
    parser.add_argument("--against", type=Path, metavar="DIR",
                        help="also time the `reverie` package in DIR (e.g. `git archive` of an older commit's "
                             "server/), alternating runs with this one, so both see the same machine")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write every run's figures here")
    args = parser.parse_args(argv)
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="reverie-dreamtime-"))
    workdir.mkdir(parents=True, exist_ok=True)
    versions = {"this tree": None, **({f"{args.against}": args.against} if args.against else {})}
    runs: dict[str, list[dict]] = {name: [] for name in versions}
    try:
        base = asyncio.run(_database(workdir, args.memories, args.sessions, args.turns, args.seed))
        for _ in range(args.runs):
            for name, source in versions.items():
                runs[name].append(_run(base, workdir / "dreaming.db", source))
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)
    for name, figures in runs.items():
        print(_table(name, figures, args))
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1))


async def _database(workdir: Path, memories: int, sessions: int, turns: int, seed: int) -> Path:
    base = workdir / f"dream-{memories}-{sessions}x{turns}-{seed}.db"
    if base.exists():
        return base
    from reverie.clock import utcnow
    from reverie.config import Settings
    from reverie.service import open_reverie

    from bench.perf import data, fixtures

    print(f"… building {base.name}", file=sys.stderr, flush=True)
    building = workdir / "building.db"
    async with open_reverie(Settings(db_path=building)) as reverie:
        await data.log_sessions(reverie, data.generate_sessions(sessions, turns, seed, utcnow()))
    await fixtures.with_memories(building, building.with_suffix(".sized"), memories, seed, utcnow())
    building.with_suffix(".sized").rename(base)
    building.unlink()
    return base


def _run(base: Path, copy: Path, source: Path | None) -> dict:
    shutil.copyfile(base, copy)
    environment = os.environ | ({"PYTHONPATH": os.pathsep.join(filter(None, [str(source), os.environ.get("PYTHONPATH")]))}
                                if source else {})
    child = subprocess.run([sys.executable, "-m", "bench.perf.dreamtime", "--child", str(copy)], cwd=REPO,
                           capture_output=True, text=True, env=environment)
    if child.returncode != 0:
        raise RuntimeError(f"dream child failed ({child.returncode}): {child.stderr[-2000:]}")
    copy.unlink()
    return json.loads(child.stdout.strip().splitlines()[-1])


def _table(name: str, runs: list[dict], args: argparse.Namespace) -> str:
    rows = [f"{name}: heuristic dream, {args.memories:,} memories + {args.sessions} sessions × {args.turns} turns, "
            f"{len(runs)} runs ({runs[0]['operations']} operations: {runs[0]['kinds']}, digest "
            f"{', '.join(sorted({r['digest'] for r in runs}))}).",
            "", "| phase | CPU | wall |", "|---|---:|---:|"]
    rss = [r["peak_rss_mb"] for r in runs]
    rows[0] += f" Peak RSS {min(rss):.0f}–{max(rss):.0f} MB; seconds, best / median:"
    for phase in PHASES:
        cpu = [r["cpu"][phase] for r in runs]
        wall = [r["wall"][phase] for r in runs]
        rows.append(f"| {phase} | {min(cpu):.2f} / {statistics.median(cpu):.2f} | "
                    f"{min(wall):.2f} / {statistics.median(wall):.2f} |")
    collected = {phase: statistics.median(r["gc"][phase]["seconds"] for r in runs) for phase in PHASES[:-1]}
    rows += ["", "Of which cyclic garbage collection, wall seconds (median): "
             + ", ".join(f"{phase} {seconds:.2f}" for phase, seconds in collected.items()) + "."]
    return "\n".join(rows) + "\n"


# --- the child: one dream, timed by phase ------------------------------------------------------


class _Clock:
    """CPU and wall seconds by phase, for the functions wrapped with `timed`."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = dict.fromkeys(PHASES, 0.0)
        self.wall: dict[str, float] = dict.fromkeys(PHASES, 0.0)
        self.phase = "rest"

    def timed(self, phase: str, function):
        def run(*args, **kwargs):
            cpu, wall = time.process_time(), time.perf_counter()
            self.phase = phase
            try:
                return function(*args, **kwargs)
            finally:
                self.phase = "rest"
                self.cpu[phase] += time.process_time() - cpu
                self.wall[phase] += time.perf_counter() - wall
        return run


class _Collector:
    """Garbage-collector passes during the run, by phase: count and wall seconds."""

    def __init__(self, clock: _Clock) -> None:
        self.clock = clock
        self.passes = {phase: [0, 0.0] for phase in PHASES[:-1]}
        self._started = 0.0
        gc.callbacks.append(self._observe)

    def _observe(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            tally = self.passes[self.clock.phase]
            tally[0] += 1
            tally[1] += time.perf_counter() - self._started

    def figures(self) -> dict:
        return {phase: {"passes": n, "seconds": round(s, 3)} for phase, (n, s) in self.passes.items()}


async def _child(db_path: str) -> dict:
    from reverie.config import Settings
    from reverie.engines import heuristic
    from reverie.service import dreams, open_reverie

    clock = _Clock()
    collector = _Collector(clock)
    heuristic.propose = clock.timed("engine", heuristic.propose)
    dreams.finalize = clock.timed("gate", dreams.finalize)
    async with open_reverie(Settings(db_path=Path(db_path))) as reverie:
        cpu, wall = time.process_time(), time.perf_counter()
        proposal = await reverie.propose_dream("heuristic")
        clock.cpu["total"], clock.wall["total"] = time.process_time() - cpu, time.perf_counter() - wall
    for figures in (clock.cpu, clock.wall):
        figures["rest"] = figures["total"] - figures["engine"] - figures["gate"]
    kinds: dict[str, int] = {}
    for op in proposal.operations:
        kinds[op.kind] = kinds.get(op.kind, 0) + 1
    drafted = [op.model_dump(mode="json") for op in proposal.operations]
    return {"cpu": {k: round(v, 3) for k, v in clock.cpu.items()},
            "wall": {k: round(v, 3) for k, v in clock.wall.items()},
            "operations": len(proposal.operations), "kinds": kinds, "gc": collector.figures(),
            "peak_rss_mb": _status_mb("self", "VmHWM"),
            # Equal digests: two versions of the code proposed the same operations, word for word.
            "digest": hashlib.sha256(json.dumps(drafted, sort_keys=True).encode()).hexdigest()[:16]}


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(asyncio.run(_child(sys.argv[2]))))
    else:
        main()

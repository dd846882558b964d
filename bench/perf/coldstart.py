"""Cold starts, whole processes: `python -m bench.perf.coldstart [--runs N] [--keep DIR]`.

What a user waits for at every Claude Code session start and end, timed from outside as
wall time of the whole process (interpreter start, imports, the work, exit), after one
warm-up run each (the OS page cache, `.pyc` files, written even under PYTHONDONTWRITEBYTECODE):

- `python -c pass`: the interpreter's own start, the floor;
- `python -c "import reverie.cli"`: what every `reverie` command pays before it runs;
- `reverie recall --claude-code-hook`: the SessionStart hook, on a database of 1,000
  memories and 20 sessions × 200 turns, in a project folder;
- `reverie log --claude-code-hook`: the SessionEnd hook logging a new 200-turn Claude Code
  transcript (a new session id each run, so every run stores 200 turns: logging the same
  transcript twice stores nothing and would flatter the figure);
- `reverie serve` until it answers `initialize` on stdio (then its stdin is closed).

Each command runs `--runs` times (default 10); min, median and max are printed, in ms.
The machine is shared: quote medians, and read a wide min–max as noise. `--before DIR`
times each command against another version too (`PYTHONPATH=DIR`, that version's
`server/`), in pairs that take turns, and prints each pair's ratio: the figure that holds
when the machine's load drifts between two separate runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path

import anyio

from bench.perf.latency import reverie_command

MEMORIES, SESSIONS, TURNS = 1_000, 20, 200
INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
              "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                         "clientInfo": {"name": "coldstart", "version": "1"}}}


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.perf.coldstart", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="timed runs per command (after one warm-up)")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="work in DIR instead of a temporary directory")
    parser.add_argument("--only", help="comma-separated labels to run (python, import, recall, log, serve)")
    parser.add_argument("--before", type=Path, metavar="SERVER_DIR",
                        help="another version's server/ folder: time it too, in pairs with this one")
    return parser.parse_args(argv)


# --- the fixture ---------------------------------------------------------------------------


async def _seed(db: Path, project: Path) -> None:
    """1,000 memories and 20 sessions × 200 turns (in no project, so they show in every one)."""
    from reverie.clock import utcnow
    from reverie.config import Settings
    from reverie.service import open_reverie

    from bench.perf.data import generate_memories, generate_sessions, load_memories

    now = utcnow()
    async with open_reverie(Settings(db_path=db, agent_id="claude-code")) as reverie:
        await reverie.project_key(str(project), claim=True)
        for s in generate_sessions(SESSIONS, TURNS, 7, now):
            await reverie.log_session(s.turns, session_id=s.id, title=s.title, notes=s.notes, outcome=s.outcome)
        await load_memories(reverie.db, generate_memories(MEMORIES, 7, now))


def claude_code_transcript(session_id: str, cwd: Path, turns: int = TURNS) -> str:
    """`turns` alternating user and assistant records, as Claude Code writes them."""
    lines = []
    for i in range(turns):
        role = "user" if i % 2 == 0 else "assistant"
        text = (f"Can you check why the billing-api deploy {i} timed out on staging?" if role == "user" else
                f"The deploy {i} waited on the migration lock; I reran it after the vacuum finished.")
        content = text if role == "user" else [{"type": "text", "text": text}]
        lines.append(json.dumps({"type": role, "sessionId": session_id, "uuid": str(uuid.uuid4()),
                                 "timestamp": f"2026-10-15T08:{i // 60:02d}:{i % 60:02d}Z", "cwd": str(cwd),
                                 "message": {"role": role, "content": content}}))
    return "\n".join(lines) + "\n"


# --- the commands --------------------------------------------------------------------------


def _timed(argv: list[str], stdin: str = "", env: dict | None = None) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, env=env)
    ms = (time.perf_counter() - start) * 1000
    if done.returncode != 0 or "reverie:" in done.stderr:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()[:300]}")
    return ms


def _serve_initialize(env: dict) -> float:
    """Spawn `reverie serve`, send `initialize`, time until its answer arrives."""
    start = time.perf_counter()
    child = subprocess.Popen([reverie_command(), "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True, env=env)
    child.stdin.write(json.dumps(INITIALIZE) + "\n")
    child.stdin.flush()
    answer = child.stdout.readline()
    ms = (time.perf_counter() - start) * 1000
    child.stdin.close()
    child.wait(timeout=30)
    if '"result"' not in answer:
        raise RuntimeError(f"reverie serve did not answer initialize: {answer[:300]!r}")
    return ms


def commands(work: Path, extra_env: dict[str, str] | None = None) -> dict[str, Callable[[], float]]:
    db, project = work / "memory.db", work / "billing"
    transcripts = work / ".claude" / "projects" / "billing"
    transcripts.mkdir(parents=True, exist_ok=True)
    env = _writing_bytecode(os.environ) | {"REVERIE_DB": str(db), "REVERIE_DREAM_MODE": "off"} | (extra_env or {})
    start_hook = json.dumps({"session_id": "start", "transcript_path": str(transcripts / "start.jsonl"),
                             "cwd": str(project), "hook_event_name": "SessionStart", "source": "startup"})

    def log_hook() -> float:
        session = str(uuid.uuid4())
        path = transcripts / f"{session}.jsonl"
        path.write_text(claude_code_transcript(session, project))
        hook = json.dumps({"session_id": session, "transcript_path": str(path), "cwd": str(project),
                           "hook_event_name": "SessionEnd", "reason": "prompt_input_exit"})
        return _timed([reverie_command(), "--db", str(db), "log", "--claude-code-hook"], hook, env)

    return {
        "python": lambda: _timed([sys.executable, "-c", "pass"], env=env),
        "import": lambda: _timed([sys.executable, "-c", "import reverie.cli"], env=env),
        "recall": lambda: _timed([reverie_command(), "--db", str(db), "recall", "--claude-code-hook"], start_hook, env),
        "log": log_hook,
        "serve": lambda: _serve_initialize(env),
    }


def _writing_bytecode(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` without PYTHONDONTWRITEBYTECODE: with it, every run would compile each module
    changed since its .pyc was written (~20 ms for a few), which an installed package never
    does (pip compiles at install). So the warm-up writes them, for either version."""
    return {name: value for name, value in environ.items() if name != "PYTHONDONTWRITEBYTECODE"}


LABELS = {
    "python": "`python -c pass` (the interpreter, the floor)",
    "import": "`python -c 'import reverie.cli'`",
    "recall": "`reverie recall --claude-code-hook` (1k memories, 20 sessions)",
    "log": f"`reverie log --claude-code-hook` ({TURNS}-turn transcript)",
    "serve": "`reverie serve` until it answers `initialize`",
}


def measure(work: Path, runs: int, only: set[str] | None) -> dict[str, list[float]]:
    found = {}
    for label, run in commands(work).items():
        if only and label not in only:
            continue
        run()  # warm-up: page cache, .pyc files
        found[label] = [run() for _ in range(runs)]
        print(f"… {label}: median {statistics.median(found[label]):.0f} ms", file=sys.stderr, flush=True)
    return found


def measure_pairs(work: Path, runs: int, only: set[str] | None, before: Path) -> dict[str, list[tuple[float, float]]]:
    """(this version, the one in `before`) for each run, the two taking turns to go first."""
    now, then = commands(work), commands(work, {"PYTHONPATH": str(before)})
    found = {}
    for label in now:
        if only and label not in only:
            continue
        now[label](), then[label]()  # warm-up
        found[label] = [_pair(now[label], then[label], now_first=i % 2 == 0) for i in range(runs)]
        print(f"… {label}: median ratio {statistics.median(a / b for a, b in found[label]):.2f}", file=sys.stderr,
              flush=True)
    return found


def _pair(now: Callable[[], float], then: Callable[[], float], now_first: bool) -> tuple[float, float]:
    if now_first:
        first = now()
        return first, then()
    first = then()
    return now(), first


def pair_table(found: dict[str, list[tuple[float, float]]]) -> str:
    rows = ["| command (whole process, wall) | pairs | this version, median (min) ms | before, median (min) ms "
            "| this ÷ before, median of pairs |", "|---|---:|---:|---:|---:|"]
    for label, pairs in found.items():
        now, then = [a for a, _ in pairs], [b for _, b in pairs]
        rows.append(f"| {LABELS[label]} | {len(pairs)} | {statistics.median(now):.0f} ({min(now):.0f}) "
                    f"| {statistics.median(then):.0f} ({min(then):.0f}) | {statistics.median(a / b for a, b in pairs):.2f} |")
    return "\n".join(rows)


def table(found: dict[str, list[float]]) -> str:
    rows = ["| command (whole process, wall) | runs | min ms | median ms | max ms |", "|---|---:|---:|---:|---:|"]
    for label, ms in found.items():
        rows.append(f"| {LABELS[label]} | {len(ms)} | {min(ms):.0f} | {statistics.median(ms):.0f} | {max(ms):.0f} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    only = set(args.only.split(",")) if args.only else None
    with tempfile.TemporaryDirectory(prefix="reverie-coldstart-") as scratch:
        work = args.keep or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        if not (work / "memory.db").exists():
            (work / "billing").mkdir(exist_ok=True)
            anyio.run(_seed, work / "memory.db", work / "billing")
        if args.before:
            print(pair_table(measure_pairs(work, args.runs, only, args.before.resolve())))
        else:
            print(table(measure(work, args.runs, only)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

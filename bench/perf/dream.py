"""The heuristic dream over 100 sessions with N memories: wall time and peak RSS.

Each dream runs in its own process (`python -m bench.perf.dream DB`), so its peak RSS is
its own: the parent reads it from `os.wait4` for that pid (ru_maxrss of RUSAGE_CHILDREN
would be the maximum over every child so far). The child works on a copy of the sized
database, times `Reverie.propose_dream(engine="heuristic")` alone (not interpreter start
or imports) and prints one JSON line; it also reports its RSS before dreaming, the floor
the interpreter, the SDK and pydantic set. A dream still running after `timeout` seconds
is killed and reported as such, with the peak RSS it had reached.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def measure(db_path: Path, timeout: float) -> dict:
    """Dream over `db_path` (it gains a pending proposal) in a child killed after `timeout` s."""
    with tempfile.TemporaryFile(mode="w+") as errors:
        child = subprocess.Popen([sys.executable, "-m", "bench.perf.dream", str(db_path)], cwd=REPO,
                                 stdout=subprocess.PIPE, stderr=errors, text=True)
        killed = threading.Event()
        watchdog = threading.Timer(timeout, lambda: (killed.set(), child.kill()))
        watchdog.start()
        out = child.stdout.read()
        _, status, usage = os.wait4(child.pid, 0)  # reap it ourselves: this child's rusage alone
        watchdog.cancel()
        child.returncode = os.waitstatus_to_exitcode(status)
        child.stdout.close()
        peak = round(usage.ru_maxrss / 1024, 1)  # KiB on Linux
        if killed.is_set():
            return {"timed_out": True, "seconds": timeout, "peak_rss_mb": peak}
        if child.returncode != 0:
            errors.seek(0)
            raise RuntimeError(f"dream child failed ({child.returncode}): {errors.read()[-2000:]}")
    return json.loads(out.strip().splitlines()[-1]) | {"peak_rss_mb": peak}


def _rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


async def _dream(db_path: str) -> dict:
    from reverie.config import Settings
    from reverie.service import open_reverie

    async with open_reverie(Settings(db_path=Path(db_path))) as reverie:
        before = _rss_mb()
        start = time.perf_counter()
        proposal = await reverie.propose_dream("heuristic")
        seconds = time.perf_counter() - start
    return {
        "seconds": round(seconds, 3), "sessions": proposal.stats.sessions_reviewed,
        "memories": proposal.stats.memories_before, "operations": len(proposal.operations),
        "kinds": dict(Counter(op.kind for op in proposal.operations)), "rss_before_mb": before,
        "child_peak_rss_mb": _rss_mb(), "report_chars": len(proposal.report),
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(_dream(sys.argv[1]))))

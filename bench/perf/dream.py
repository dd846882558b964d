"""The heuristic dream over 100 sessions with N memories: wall time and peak RSS.

Each dream runs in its own process (`python -m bench.perf.dream DB`), so its peak RSS is
its own. It is read from the child's `VmHWM` (/proc/<pid>/status), the high-water mark of
the memory map the child got at exec. Not `ru_maxrss`: Linux folds the parent's
high-water mark into the child's at exec, so a child of a benchmark holding 400 MB
reports at least 400 MB (an earlier version of this harness overstated RSS that way).
The child works on a copy of the sized database, times
`Reverie.propose_dream(engine="heuristic")` alone (not interpreter start or imports) and
prints one JSON line; it also reports its RSS before dreaming, the floor the interpreter,
the SDK and pydantic set. A dream still running after `timeout` seconds is killed and
reported as such, with the peak RSS it had reached.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def measure(db: str | Path, timeout: float) -> dict:
    """Dream over `db` (a file or a URL; it gains a pending proposal) in a child killed after `timeout` s."""
    with tempfile.TemporaryFile(mode="w+") as errors:
        child = subprocess.Popen([sys.executable, "-m", "bench.perf.dream", str(db)], cwd=REPO,
                                 stdout=subprocess.PIPE, stderr=errors, text=True)
        try:
            out, _ = child.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            peak = _status_mb(child.pid, "VmHWM")  # read before the kill: the child's own peak so far
            child.kill()
            child.communicate()
            return {"timed_out": True, "seconds": timeout, "peak_rss_mb": peak}
        if child.returncode != 0:
            errors.seek(0)
            raise RuntimeError(f"dream child failed ({child.returncode}): {errors.read()[-2000:]}")
    return json.loads(out.strip().splitlines()[-1])


def _status_mb(pid: int | str, field: str) -> float | None:
    """A memory figure from /proc/<pid>/status (kB there), in MB; None once the process is gone."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    kib = next(int(line.split()[1]) for line in lines if line.startswith(f"{field}:"))
    return round(kib / 1024, 1)


async def _dream(db: str) -> dict:
    from reverie.service import open_reverie

    from bench.backend import settings

    async with open_reverie(settings(db)) as reverie:
        before = _status_mb("self", "VmRSS")
        start = time.perf_counter()
        proposal = await reverie.propose_dream("heuristic")
        seconds = time.perf_counter() - start
    return {
        "seconds": round(seconds, 3), "sessions": proposal.stats.sessions_reviewed,
        "memories": proposal.stats.memories_before, "operations": len(proposal.operations),
        "kinds": dict(Counter(op.kind for op in proposal.operations)), "rss_before_mb": before,
        "peak_rss_mb": _status_mb("self", "VmHWM"), "report_chars": len(proposal.report),
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(_dream(sys.argv[1]))))

"""The targets from issue 6, checked against a run's results.

- read_memory at the largest size, over stdio: p50 within 1.5× of the no-op floor's p50
  (same protocol, measured just before), and p99 ≤ 15 ms;
- log_session ingest ≥ 20,000 events/s;
- heuristic dream at 10k memories: ≤ 3 s and ≤ 300 MB peak RSS; and for each ×10 step in
  memories, wall time grows ≤ 12×.
"""

from __future__ import annotations

from bench.perf.report import Target, fmt, size_label
from bench.perf.runner import Results
from bench.perf.timing import summary

FLOOR_FACTOR = 1.5
P99_MS = 15.0
EVENTS_PER_SECOND = 20_000
DREAM_SECONDS, DREAM_RSS_MB, DREAM_SIZE = 3.0, 300.0, 10_000
GROWTH = 12.0


def check(results: Results) -> list[Target]:
    return [*_latency(results), _ingest(results), *_dream(results)]


def _latency(results: Results) -> list[Target]:
    if not results.latency:
        return []
    n = max(results.latency)
    found = []
    for protocol, label in (("stdio", "2026-07-28"), ("legacy", "legacy")):
        ours = summary(results.latency[n][f"read_memory {protocol}"])
        floor = summary(results.latency[n][f"floor {protocol}"])
        ratio = ours["p50_ms"] / floor["p50_ms"]
        found.append(Target(f"read_memory p50 at {size_label(n)}, stdio {label}", f"≤ {FLOOR_FACTOR}× no-op floor",
                            f"{fmt(ours['p50_ms'], 2)} ms = {ratio:.1f}× floor ({fmt(floor['p50_ms'], 2)} ms)",
                            ratio <= FLOOR_FACTOR))
        found.append(Target(f"read_memory p99 at {size_label(n)}, stdio {label}", f"≤ {P99_MS:g} ms",
                            f"{fmt(ours['p99_ms'], 2)} ms", ours["p99_ms"] <= P99_MS))
    return found


def _ingest(results: Results) -> Target:
    rate = results.ingest["events_per_second"]
    return Target("log_session ingest", f"≥ {EVENTS_PER_SECOND:,} events/s", f"{rate:,} events/s",
                  rate >= EVENTS_PER_SECOND)


def _dream(results: Results) -> list[Target]:
    at = results.dreams.get(DREAM_SIZE)
    done = at is not None and not at.get("timed_out")
    seconds = (f"> {at['seconds']:g} s (killed)" if at.get("timed_out") else f"{fmt(at['seconds'], 2)} s") if at else "—"
    found = [
        Target("heuristic dream wall time at 10k", f"≤ {DREAM_SECONDS:g} s", seconds,
               (not at.get("timed_out") and at["seconds"] <= DREAM_SECONDS) if at else None),
        Target("heuristic dream peak RSS at 10k", f"≤ {DREAM_RSS_MB:g} MB", f"{fmt(at['peak_rss_mb'], 0)} MB" if at else "—",
               at["peak_rss_mb"] <= DREAM_RSS_MB if done else None),
    ]
    sizes = sorted(results.dreams)
    for small, large in zip(sizes, sizes[1:], strict=False):
        if large != small * 10:
            continue
        a, b = results.dreams[small], results.dreams[large]
        if a.get("timed_out"):
            continue
        growth = b["seconds"] / a["seconds"]
        found.append(Target(f"dream time {size_label(small)} → {size_label(large)}", f"≤ {GROWTH:g}×",
                            f"{'> ' if b.get('timed_out') else ''}{growth:.1f}×", growth <= GROWTH and not b.get("timed_out")))
    return found

"""The targets of issues 6 and 15, checked against a run's results.

- read_memory over stdio: p50 within 2.5× of the no-op floor's p50 at 1k memories and
  4× at 100k (same protocol, measured just before), and p99 ≤ 15 ms at 100k;
- the reference server's `search_nodes` p50 ÷ read_memory's: ≥ 1.5 at 1k, ≥ 10 at 10k;
- `pending_notes` and `count_unconsolidated` ≤ 1 ms (p50) at every history size;
- log_session ingest ≥ 20,000 events/s;
- heuristic dream at 10k memories: ≤ 3 s and ≤ 300 MB peak RSS; and for each ×10 step in
  memories, wall time grows ≤ 12×.

And issue 18's, for a run on PostgreSQL (`--backend postgres`): ingest ≥ 10,000 events/s;
given a SQLite run on the same machine as the baseline (`--baseline` its `--json`),
`read_memory` p50 at 100k within 2× of SQLite's and the dream at 10k within 1.5×.
"""

from __future__ import annotations

from bench.perf.report import Target, fmt, size_label
from bench.perf.runner import Results
from bench.perf.timing import percentile, summary

FLOOR_FACTORS = {1_000: 2.5, 100_000: 4.0}
P99_MS, P99_SIZE = 15.0, 100_000
REFERENCE_RATIOS = {1_000: 1.5, 10_000: 10.0}
HISTORY_MS = 1.0
EVENTS_PER_SECOND = 20_000
DREAM_SECONDS, DREAM_RSS_MB, DREAM_SIZE = 3.0, 300.0, 10_000
GROWTH = 12.0
POSTGRES_EVENTS_PER_SECOND = 10_000
POSTGRES_READ_FACTOR, POSTGRES_READ_SIZE = 2.0, 100_000
POSTGRES_DREAM_FACTOR, POSTGRES_DREAM_SIZE = 1.5, 10_000


def check(results: Results, baseline: dict | None = None) -> list[Target]:
    found = [*_latency(results), *_reference(results), *_history(results), _ingest(results), *_dream(results)]
    if results.backend == "postgresql" and baseline is not None:
        found += _against_sqlite(results, baseline["results"])
    return found


def _latency(results: Results) -> list[Target]:
    found = []
    for n in sorted(results.latency):
        for protocol, label in (("stdio", "2026-07-28"), ("legacy", "legacy")):
            ours = summary(results.latency[n][f"read_memory {protocol}"])
            floor = summary(results.latency[n][f"floor {protocol}"])
            ratio = ours["p50_ms"] / floor["p50_ms"]
            if n in FLOOR_FACTORS:
                found.append(Target(f"read_memory p50 at {size_label(n)}, stdio {label}", f"≤ {FLOOR_FACTORS[n]}× no-op floor",
                                    f"{fmt(ours['p50_ms'], 2)} ms = {ratio:.1f}× floor ({fmt(floor['p50_ms'], 2)} ms)",
                                    ratio <= FLOOR_FACTORS[n]))
            if n == P99_SIZE:
                found.append(Target(f"read_memory p99 at {size_label(n)}, stdio {label}", f"≤ {P99_MS:g} ms",
                                    f"{fmt(ours['p99_ms'], 2)} ms", ours["p99_ms"] <= P99_MS))
    return found


def _reference(results: Results) -> list[Target]:
    found = []
    for n, (ours, theirs) in sorted(results.reference.items()):
        if n in REFERENCE_RATIOS:
            ratio = summary(theirs["samples"])["p50_ms"] / summary(ours)["p50_ms"]
            found.append(Target(f"reference search_nodes ÷ read_memory p50 at {size_label(n)}",
                                f"≥ {REFERENCE_RATIOS[n]:g}", f"{ratio:.2f}", ratio >= REFERENCE_RATIOS[n]))
    return found


def _history(results: Results) -> list[Target]:
    found = []
    for _, h in sorted(results.history.items()):
        for name, q in h["queries"].items():
            if name.startswith(("pending_notes", "count_unconsolidated")):
                found.append(Target(f"`{name}` with {h['sessions']:,} undreamed sessions", f"≤ {HISTORY_MS:g} ms p50",
                                    f"{fmt(q['p50_ms'], 2)} ms", q["p50_ms"] <= HISTORY_MS))
    return found


def _ingest(results: Results) -> Target:
    rate = results.ingest["events_per_second"]
    goal = POSTGRES_EVENTS_PER_SECOND if results.backend == "postgresql" else EVENTS_PER_SECOND
    return Target(f"log_session ingest ({results.backend})", f"≥ {goal:,} events/s", f"{rate:,} events/s", rate >= goal)


def _against_sqlite(results: Results, sqlite: dict) -> list[Target]:
    """PostgreSQL's figures held against a SQLite run's (its JSON `results`) on the same machine."""
    found = []
    ours, theirs = results.latency.get(POSTGRES_READ_SIZE), sqlite["latency"].get(str(POSTGRES_READ_SIZE))
    for path, label in (("read_memory stdio", "stdio 2026-07-28"), ("read_memory direct", "in the service")):
        if ours is None or theirs is None:
            continue
        a, b = summary(ours[path])["p50_ms"], percentile([s["ms"] for s in theirs[path]], 50)
        found.append(Target(f"read_memory p50 at {size_label(POSTGRES_READ_SIZE)}, {label}: PostgreSQL ÷ SQLite",
                            f"≤ {POSTGRES_READ_FACTOR:g}×", f"{fmt(a, 1)} ÷ {fmt(b, 1)} ms = {a / b:.2f}×",
                            a / b <= POSTGRES_READ_FACTOR))
    ours_dream, theirs_dream = results.dreams.get(POSTGRES_DREAM_SIZE), sqlite["dreams"].get(str(POSTGRES_DREAM_SIZE))
    if ours_dream and theirs_dream and not ours_dream.get("timed_out") and not theirs_dream.get("timed_out"):
        ratio = ours_dream["seconds"] / theirs_dream["seconds"]
        found.append(Target(f"heuristic dream at {size_label(POSTGRES_DREAM_SIZE)}: PostgreSQL ÷ SQLite",
                            f"≤ {POSTGRES_DREAM_FACTOR:g}×",
                            f"{fmt(ours_dream['seconds'], 2)} ÷ {fmt(theirs_dream['seconds'], 2)} s = {ratio:.2f}×",
                            ratio <= POSTGRES_DREAM_FACTOR))
    return found


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

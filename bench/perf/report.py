"""The figures as markdown tables and one JSON document, plus the targets each is held to.

Tokens are estimated as Reverie does (four characters each, `reverie.text.estimate_tokens`)
for both servers, over the text content a model reads. "Wire" is the whole tool result
serialised as JSON (text plus structuredContent), roughly what crosses the pipe.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.perf.timing import Sample, as_dicts, summary


@dataclass
class Target:
    name: str
    goal: str
    measured: str
    met: bool | None  # None: not measured in this run


def fmt(value: float, digits: int = 1) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:,.{digits}f}"


BACKENDS = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


def size_label(n: int) -> str:
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def tokens(text_bytes: float) -> float:
    return text_bytes / 4


def machine_line(machine: dict) -> str:
    server = f", PostgreSQL {machine['postgres']}" if machine.get("postgres") else ""
    return (f"Machine: {machine['cores']} cores ({machine['cpu']}), {machine['memory_gb']} GB RAM, {machine['os']}; "
            f"Python {machine['python']}, SQLite {machine['sqlite']}{server}, mcp {machine['mcp']}, Node {machine['node']}.")


def source_line(machine: dict) -> str:
    """Which code was measured, and how busy the machine was (a warning when others competed)."""
    measured, tree = machine["source"], machine.get("working_tree")
    code = f"Reverie source {measured} (a frozen copy)" + (
        "." if tree in (None, measured) else f"; the working tree changed meanwhile and is now {tree}.")
    # Before the run nothing of ours is running; at its end our own last minute counts (about one core).
    busy = machine["load_before"] > machine["cores"] / 2 or machine["load_after"] > machine["cores"]
    load = f"1-min load average {machine['load_before']} at start, {machine['load_after']} at end"
    return f"{code} {load}" + (": **other work competed for the CPU.**" if busy else ".")


def latency_table(runs: dict[int, dict[str, list[Sample]]]) -> str:
    rows = ["| memories | path | p50 ms | p90 ms | p99 ms | max ms | p50 ÷ floor p50 | tokens returned (mean) |",
            "|---|---|---:|---:|---:|---:|---:|---:|"]
    for n, paths in runs.items():
        floors = {name.split(" ", 1)[1]: summary(s)["p50_ms"] for name, s in paths.items() if name.startswith("floor")}
        for name, samples in paths.items():
            s = summary(samples)
            protocol = name.split(" ", 1)[1] if " " in name else None
            ratio = s["p50_ms"] / floors[protocol] if protocol in floors and not name.startswith("floor") else None
            rows.append(f"| {size_label(n)} | {_path_label(name)} | {fmt(s['p50_ms'], 2)} | {fmt(s['p90_ms'], 2)} | "
                        f"{fmt(s['p99_ms'], 2)} | {fmt(s['max_ms'], 2)} | {fmt(ratio, 1) + '×' if ratio else '—'} | "
                        f"{fmt(tokens(s['mean_text_bytes']), 0) if not name.startswith('floor') else '—'} |")
    return "\n".join(rows)


PATH_LABELS = {
    "floor stdio": "no-op tool, stdio (2026-07-28)", "floor legacy": "no-op tool, stdio (legacy 2025-11-25)",
    "read_memory stdio": "read_memory, stdio (2026-07-28)", "read_memory legacy": "read_memory, stdio (legacy 2025-11-25)",
    "read_memory in-process": "read_memory, in-process Client(server)", "read_memory direct": "Reverie.read_memory (service)",
}


def _path_label(name: str) -> str:
    return PATH_LABELS.get(name, name)


def kinds_table(n: int, samples: list[Sample], label: str) -> str:
    rows = [f"| query kind ({label}, {size_label(n)} memories) | calls | p50 ms | p99 ms | entries returned (mean) |",
            "|---|---:|---:|---:|---:|"]
    for kind in sorted({s.kind for s in samples}):
        s = summary([x for x in samples if x.kind == kind])
        rows.append(f"| {kind} | {s['calls']} | {fmt(s['p50_ms'], 2)} | {fmt(s['p99_ms'], 2)} | {fmt(s['mean_hits'], 1)} |")
    return "\n".join(rows)


def reference_table(pairs: dict[int, tuple[list[Sample], dict]]) -> str:
    rows = ["| memories | server | p50 ms | p99 ms | p50 ratio (reference ÷ Reverie) | tokens returned, mean / max | "
            "wire KB, mean / max | hits (mean) | stored as |",
            "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for n, (ours, theirs) in pairs.items():
        a, b = summary(ours), summary(theirs["samples"])
        ratio = b["p50_ms"] / a["p50_ms"]
        rows.append(f"| {size_label(n)} | Reverie `read_memory` (stdio, legacy) | {fmt(a['p50_ms'], 2)} | {fmt(a['p99_ms'], 2)} | "
                    f"1.0 | {fmt(tokens(a['mean_text_bytes']), 0)} / {fmt(tokens(a['max_text_bytes']), 0)} | "
                    f"{fmt(a['mean_wire_bytes'] / 1024)} / {fmt(a['max_wire_bytes'] / 1024)} | {fmt(a['mean_hits'])} | "
                    f"{BACKENDS[theirs.get('reverie_backend', 'sqlite')]}, {fmt(theirs['reverie_db_bytes'] / 2**20)} MB "
                    "(with sessions) |")
        rows.append(f"| {size_label(n)} | server-memory {theirs['version']} `search_nodes` (stdio, {theirs['protocol']}) | "
                    f"{fmt(b['p50_ms'], 2)} | {fmt(b['p99_ms'], 2)} | **{fmt(ratio, 2)}** | "
                    f"{fmt(tokens(b['mean_text_bytes']), 0)} / {fmt(tokens(b['max_text_bytes']), 0)} | "
                    f"{fmt(b['mean_wire_bytes'] / 1024)} / {fmt(b['max_wire_bytes'] / 1024)} | {fmt(b['mean_hits'])} | "
                    f"JSONL, {fmt(theirs['file_bytes'] / 2**20)} MB |")
    return "\n".join(rows)


def ingest_table(ingest: dict, over_stdio: dict | None = None) -> str:
    rows = ["| path | sessions × turns | events | seconds | events/s | per call p50 / p99 ms |",
            "|---|---|---:|---:|---:|---:|"]
    for label, run in (("in-process, `Reverie.log_session`", ingest), ("stdio, `log_session` tool call", over_stdio)):
        if run:
            rows.append(f"| {label} | {run['sessions']} × {run['events'] // run['sessions']} | {run['events']:,} | "
                        f"{fmt(run['seconds'], 2)} | **{run['events_per_second']:,}** | "
                        f"{fmt(run['call_p50_ms'])} / {fmt(run['call_p99_ms'])} |")
    return "\n".join(rows)


def history_table(history: dict[int, dict]) -> str:
    """The queries each read (pending_notes) and each log (the counts) run, by history size."""
    names = list(next(iter(history.values()))["queries"]) if history else []
    rows = ["| memories | undreamed sessions | events | " + " | ".join(f"`{q}` p50 / p99 ms" for q in names) + " |",
            "|---|---:|---:|" + "---:|" * len(names)]
    for n, h in history.items():
        cells = " | ".join(f"{fmt(h['queries'][q]['p50_ms'], 2)} / {fmt(h['queries'][q]['p99_ms'], 2)}" for q in names)
        rows.append(f"| {size_label(n)} | {h['sessions']:,} | {h['events']:,} | {cells} |")
    return "\n".join(rows)


def dream_table(dreams: dict[int, dict]) -> str:
    rows = ["| memories | sessions | operations (by kind) | wall s | × previous size | peak RSS MB | RSS before dreaming MB |",
            "|---|---:|---|---:|---:|---:|---:|"]
    previous = None
    for n, d in dreams.items():
        if d.get("timed_out"):
            rows.append(f"| {size_label(n)} | — | killed unfinished | > {fmt(d['seconds'], 0)} | — | "
                        f"≥ {fmt(d['peak_rss_mb'], 0)} | — |")
            previous = None
            continue
        growth = f"{d['seconds'] / previous['seconds']:.1f}× for {n / previous['memories_n']:.0f}× memories" if previous else "—"
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(d["kinds"].items()))
        rows.append(f"| {size_label(n)} | {d['sessions']} | {d['operations']} ({kinds}) | {fmt(d['seconds'], 2)} | {growth} | "
                    f"{fmt(d['peak_rss_mb'], 0)} | {fmt(d['rss_before_mb'], 0)} |")
        previous = d | {"memories_n": n}
    return "\n".join(rows)


def apply_table(applies: dict[int, dict]) -> str:
    rows = ["| memories | operations | apply_dream s | revert_dream s | added / archived / restored |",
            "|---|---|---:|---:|---|"]
    for n, a in applies.items():
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(a["kinds"].items()))
        rows.append(f"| {size_label(n)} | {a['operations']} ({kinds}) | {fmt(a['apply_seconds'], 2)} | "
                    f"{fmt(a['revert_seconds'], 2)} | {a['added']} / {a['archived']} / {a['restored']} |")
    return "\n".join(rows)


def load_table(loads: dict[int, dict]) -> str:
    rows = ["| memories | load s | rows/s | database MB (with the sessions) |", "|---|---:|---:|---:|"]
    for n, load in loads.items():
        rows.append(f"| {size_label(n)} | {fmt(load['load_seconds'], 2)} | {load['rows_per_second']:,} | "
                    f"{fmt(load['db_bytes'] / 2**20)} |")
    return "\n".join(rows)


def targets_table(targets: list[Target]) -> str:
    rows = ["| target | goal | measured | |", "|---|---|---|---|"]
    for t in targets:
        mark = "met" if t.met else "**missed**" if t.met is False else "not measured"
        rows.append(f"| {t.name} | {t.goal} | {t.measured} | {mark} |")
    return "\n".join(rows)


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.write_text(json.dumps(document, indent=1, default=_encode))


def _encode(value: Any) -> Any:
    if isinstance(value, Sample):
        return as_dicts([value])[0]
    if isinstance(value, Target):
        return value.__dict__
    raise TypeError(f"cannot encode {type(value).__name__}")

"""What a benchmark run prints and writes: a markdown table, per-scenario lines, JSON."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from bench.quality.scoring import Score


def totals(scores: list[Score]) -> Counter:
    total: Counter = Counter()
    for s in scores:
        total.update(s.figures)
    total.update(scenarios=len(scores), scenarios_passed=sum(s.passed for s in scores))
    return total


def ratio(t: Counter, metric: str) -> str:
    done, n = t[metric + "_passed"], t[metric]
    return f"{done}/{n} ({done / n:.0%})" if n else "n/a"


def misses(t: Counter, metric: str) -> str:
    return f"{t[metric] - t[metric + '_passed']} of {t[metric]}"


def table(engine: str, scores: list[Score]) -> str:
    t = totals(scores)
    rows = [
        ("Scenarios passed", f"{t['scenarios_passed']}/{t['scenarios']}"),
        ("Superseded facts replaced (old gone, new present)", ratio(t, "superseded")),
        ("Wrong supersessions (must-survive facts lost)", misses(t, "survive")),
        ("Duplicate merge recall (group cited by exactly one entry)", ratio(t, "duplicates")),
        ("Duplicate merge precision (entry cites one group only)", ratio(t, "merge_precision")),
        ("Pattern recall (pitfalls, workflows)", ratio(t, "patterns")),
        ("Team-wide rules readable by every agent", ratio(t, "team_wide")),
        ("Must-contain texts in exactly one entry", ratio(t, "contain")),
        ("Must-not-contain texts absent", ratio(t, "absent")),
        ("Secrets leaked (database file bytes)", misses(t, "secrets")),
        ("Injections applied (active entries)", misses(t, "injections")),
        ("Memory tokens vs naive append log", _tokens(t)),
        ("Operations proposed / applied / held (risk-flagged)",
         f"{t['ops_proposed']} / {t['ops_applied']} / {t['ops_flagged']}"),
    ]
    lines = [f"### Consolidation quality: `{engine}`", "", "| Measure | Result |", "|---|---|"]
    return "\n".join(lines + [f"| {name} | {value} |" for name, value in rows])


def _tokens(t: Counter) -> str:
    naive = t["naive_tokens"]
    share = f" ({t['memory_tokens'] / naive:.0%})" if naive else ""
    return f"{t['memory_tokens']} vs {naive}{share}"


def scenario_lines(scores: list[Score]) -> str:
    return "\n".join(_line(s) for s in scores)


def _line(s: Score) -> str:
    if s.passed:
        return f"- PASS `{s.scenario.name}`"
    reasons = "; ".join(f"{c.label}: {c.detail}" for c in s.checks if not c.passed)
    return f"- FAIL `{s.scenario.name}` — {reasons}"


def memory_dump(scores: list[Score]) -> str:
    """Each scenario's operations (with flags) and resulting memory, for reading failures."""
    out = []
    for s in (s for s in scores if s.run):
        out.append(f"\n#### {s.scenario.name}")
        out += [f"- op {op.op_id} {op.kind} {'APPLIED' if op.op_id in s.run.applied else 'held'} "
                f"{op.risk or ''}: {op.content}" for op in s.run.operations]
        out += [f"- memory [{m.category}, {m.scope}] {m.content}  ← {m.sources}" for m in s.run.memory]
    return "\n".join(out)


def write_json(path: Path, engine: str, scores: list[Score]) -> None:
    document = {"engine": engine, "totals": dict(totals(scores)), "scenarios": [_scenario(s) for s in scores]}
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _scenario(s: Score) -> dict:
    run = s.run
    return {
        "name": s.scenario.name, "kind": s.scenario.kind, "passed": s.passed, "figures": dict(s.figures),
        "checks": [vars(c) for c in s.checks],
        "memory": [m.model_dump(mode="json", include={"content", "category", "scope", "evidence"})
                   for m in (run.memory if run else [])],
        "operations": [{**op.model_dump(mode="json", include={"op_id", "kind", "content", "risk", "targets"}),
                        "applied": op.op_id in run.applied} for op in (run.operations if run else [])],
    }

"""What the external bench prints (markdown tables, then with --verbose what went wrong) and
writes with --json (every figure, every question's values, every operation)."""

from __future__ import annotations

import json
from pathlib import Path

from bench.quality.external.agent import Dream
from bench.quality.external.figures import (
    OP_KINDS,
    DatasetFigures,
    Measure,
    Operations,
    PairFigures,
    pair_rates,
)
from bench.quality.external.pairs import WANTED
from bench.quality.external.pipeline import CaseRun

LOST = {"ans_hit": "answers lost", "ku_fresh": "no longer fresh", "evid_hit": "evidence lost"}


def _number(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


# --- data sets ------------------------------------------------------------------------------


def mode(every: int | None) -> str:
    """Which protocol ran, in words."""
    if every is None:
        return ("Mode: one dream — every session logged, then a single heuristic dream with its unflagged "
                "operations applied (the data README's protocol).")
    return (f"Mode: scheduled dreams (--dream-every {every}) — sessions logged in date order, a heuristic dream "
            f"(unflagged operations applied) after every {every} sessions and a final one after the last, each "
            f"a day after its last session (or at the next session, if sooner); \"after\" is read after the last "
            f"dream, \"before\" in a copy with every session logged and no dream; operations are summed over all dreams.")


def dataset(f: DatasetFigures) -> str:
    dreamt = "the dream" if f.dream_every is None else "the dreams"
    after = "after dream" if f.dream_every is None else "after the last dream"
    lines = [f"### {f.title}", "", f"{f.cases} case(s), {f.questions} question(s).", "",
             f"| Measure | before dream | {after} | questions | lowered by {dreamt} |", "|---|---|---|---|---|"]
    lines += [_measure_row(m) for m in f.measures.values() if m.ids]
    return "\n".join(lines + ["", operations(f.operations, f.cases), timing(f)])


def _measure_row(m: Measure) -> str:
    lowered = f"{len(m.lowered)} ({LOST[m.name]})"
    return f"| {m.name} | {_number(m.mean(m.before))} | {_number(m.mean(m.after))} | {len(m.ids)} | {lowered} |"


def operations(ops: Operations, cases: int) -> str:
    kinds = ", ".join(f"{ops.by_kind[k]} {k}" for k in OP_KINDS)
    dreams = f" over {ops.dreams} dreams ({ops.dreams / cases:.1f} per case)" if cases and ops.dreams != cases else ""
    adds = ops.by_kind["add"]
    return (f"Operations proposed{dreams}: {ops.proposed} ({kinds}); {ops.flagged} flagged (held), {ops.applied} "
            f"applied.\nOf the {adds} adds: {ops.restating_adds} fold statements from ≥ 2 sessions (restatements), "
            f"{ops.superseding_adds} supersede an older statement (counted by the engine's rationale).")


def timing(f: DatasetFigures) -> str:
    reads = 2 * f.questions
    per_case = ", ".join(f"{step} {f.seconds[step] / f.cases:.2f} s" for step in ("log", "dream") if f.cases)
    if f.dream_every is not None and f.cases:
        per_case += f" (all its dreams), log {f.seconds['log (undreamed copy)'] / f.cases:.2f} s again for \"before\""
    per_read = f"read {1000 * f.seconds['read'] / reads:.1f} ms per read_memory" if reads else ""
    total = sum(f.seconds.values())
    return f"Time: {per_case} per case; {per_read}; {total:.1f} s in all."


def lowered_lines(f: DatasetFigures) -> str:
    """Each question a dream made worse, with what the agent read before and after."""
    questions = {q.id: (run, i) for run in f.runs for i, q in enumerate(run.case.questions)}
    out = []
    for m in (m for m in f.measures.values() if m.lowered):
        out.append(f"\n#### {f.title}: {LOST[m.name]} ({m.name})")
        for qid in m.lowered:
            out += _lowered(m, qid, *questions[qid])
    return "\n".join(out)


def _lowered(m: Measure, qid: str, run: CaseRun, index: int) -> list[str]:
    at = m.ids.index(qid)
    question = run.case.questions[index]
    return [f"- {qid} {question.text!r}: {m.before[at]:.2f} → {m.after[at]:.2f}",
            *(f"    evidence: {e[:160]!r}" for e in question.evidence),
            *_quoted("before", run.before[index]), *_quoted("after", run.after[index])]


def _quoted(when: str, text: str) -> list[str]:
    return [f"    {when}:"] + [f"      {line}" for line in text.splitlines() if line.strip()]


def applied_operations(f: DatasetFigures) -> str:
    """Every operation that was applied, per case: what the dream changed."""
    out = [f"\n#### {f.title}: operations"]
    for run in f.runs:
        for n, dream in enumerate(run.dreams, 1):
            if len(run.dreams) > 1:
                out.append(f"- {run.case.id} dream {n} of {len(run.dreams)}, after {dream.sessions_logged} "
                           f"session(s), at {dream.at:%Y-%m-%d %H:%M}:")
            out += [f"- {run.case.id} {op['kind']} {'applied' if op['op_id'] in dream.applied else 'held'}"
                    f"{' ' + str(op['risk']) if op.get('risk') else ''}: {_op_text(op)[:160]}"
                    f"  ← {sorted({e['session_id'] for e in op.get('evidence', [])})}"
                    for op in dream.operations]
    return "\n".join(out)


def _op_text(op: dict) -> str:
    """What an operation writes, or for a prune what it archives."""
    return op.get("content") or "; ".join(op.get("before") or ())


# --- pairs ---------------------------------------------------------------------------------


def pairs(f: PairFigures) -> str:
    lines = ["### Statement pairs", "", "| Measure | Result |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in _pair_rows(f)]
    outcomes = [f"- {label}: " + ", ".join(f"{o} {n}" for o, n in counts.most_common())
                for label, counts in sorted(f.outcomes.items())]
    per_pair = f"{f.seconds / len(f.runs):.2f} s per pair" if f.runs else "no pairs"
    return "\n".join(lines + ["", "Outcomes per label:", *outcomes, "", operations(f.operations, len(f.runs)),
                              f"Time: {per_pair}, {f.seconds:.1f} s in all."])


def _pair_rows(f: PairFigures) -> list[tuple[str, str]]:
    rates = pair_rates(f)
    return [
        ("Dup recall (one entry left)", _share(f.collapsed("dup"), f.total("dup"))),
        ("Update recall (only the newer left)", _share(f.count("update", WANTED["update"]), f.total("update"))),
        ("Precision (merged or superseded pairs labelled dup or update)",
         _share(f.collapsed("dup") + f.collapsed("update"), rates["merged_or_superseded"])),
        ("Distinct pairs merged or superseded (target 0)", str(rates["distinct_merged_or_superseded"])),
        ("Unrelated pairs merged or superseded (target 0)", str(rates["unrelated_merged_or_superseded"])),
        ("Distinct pairs kept as two entries", _share(f.count("distinct", ("both",)), f.total("distinct"))),
    ]


def _share(done: int, total: int) -> str:
    return f"{done}/{total} ({done / total:.2f})" if total else "n/a"


def wrong_pairs(f: PairFigures) -> str:
    out = ["\n#### Statement pairs that went wrong"]
    for run in f.wrong:
        pair = run.pair
        out.append(f"- #{pair.number} {pair.label} → {run.outcome}: older {pair.older!r}; newer {pair.newer!r}")
        out += [f"    entry {e['content'][:160]!r} ← {e['sources']}" for e in run.entries]
    return "\n".join(out)


# --- JSON --------------------------------------------------------------------------------------


def write_json(path: Path, datasets: list[DatasetFigures], pair_figures: PairFigures | None, settings: dict) -> None:
    document = {"settings": settings, "datasets": [_dataset_json(f) for f in datasets],
                "pairs": _pairs_json(pair_figures) if pair_figures else None}
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _ops_json(ops: Operations) -> dict:
    return {"by_kind": {k: ops.by_kind[k] for k in OP_KINDS}, "proposed": ops.proposed,
            "flagged": ops.flagged, "applied": ops.applied, "dreams": ops.dreams,
            "restating_adds": ops.restating_adds, "superseding_adds": ops.superseding_adds}


def _dataset_json(f: DatasetFigures) -> dict:
    return {
        "title": f.title, "cases": f.cases, "questions": f.questions,
        "measures": {m.name: _measure_json(m) for m in f.measures.values()},
        "operations": _ops_json(f.operations),
        "seconds": dict(f.seconds),
        "dream_every": f.dream_every,
        "dreams": {run.case.id: [_dream_json(d) for d in run.dreams] for run in f.runs},
    }


def _dream_json(dream: Dream) -> dict:
    return {"sessions_logged": dream.sessions_logged, "at": dream.at.isoformat() if dream.at else None,
            "operations": [{**op, "applied": op["op_id"] in dream.applied} for op in dream.operations]}


def _measure_json(m: Measure) -> dict:
    values = zip(m.ids, m.before, m.after, strict=True)
    return {"before": m.mean(m.before), "after": m.mean(m.after), "questions": len(m.ids), "lowered": m.lowered,
            "per_question": {qid: [before, after] for qid, before, after in values}}


def _pairs_json(f: PairFigures) -> dict:
    return {
        **pair_rates(f), "outcomes": {label: dict(c) for label, c in f.outcomes.items()},
        "operations": _ops_json(f.operations), "seconds": f.seconds, "dream_every": f.dream_every,
        "pairs": [{"number": r.pair.number, "label": r.pair.label, "older": r.pair.older, "newer": r.pair.newer,
                   "outcome": r.outcome, "entries": r.entries} for r in f.runs],
    }

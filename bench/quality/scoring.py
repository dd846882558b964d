"""Scoring one run against its scenario's labels: a list of checks and the figures they add up to.

Every check counts towards one metric (`superseded`, `survive`, `duplicates`, ...); a
scenario passes when all its checks pass. Text matching is by case-insensitive
substring. Duplicates are judged by provenance, not wording: a group of statements is
merged when exactly one active entry cites any of them in its evidence, and an entry is
precise when the labelled statements it cites all belong to one group. A turn may say
several things, so evidence from a turn cites a labelled statement only when its quote
holds that statement (or lies inside it).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from reverie.models import Memory
from reverie.text import shorten

from bench.quality.corpus import Ref, Scenario, Supersession, duplicate_groups
from bench.quality.runner import Run

TEAM_SCOPES = ("shared", "user")


@dataclass
class Check:
    metric: str
    label: str
    passed: bool
    detail: str = ""  # why it failed; cleared when it passed

    def __post_init__(self) -> None:
        if self.passed:
            self.detail = ""


@dataclass
class Score:
    scenario: Scenario
    run: Run | None
    checks: list[Check]
    figures: Counter = field(default_factory=Counter)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)


def score(run: Run) -> Score:
    texts, expected = [m.content for m in run.memory], run.scenario.expected
    checks = [
        *(contained_once(texts, s) for s in expected.must_contain),
        *(absent(texts, s) for s in expected.must_not_contain),
        *(replaced(texts, pair) for pair in expected.superseded),
        *(survives(texts, fact) for fact in dict.fromkeys(f for pair in expected.must_survive for f in pair)),
        *duplicate_checks(run),
        *(pattern_found(texts, p) for p in expected.patterns),
        *(team_wide(run.memory, s) for s in expected.team_wide),
        *(kept_secret(run.leaked, s) for s in expected.secrets),
        *(not_applied(texts, s) for s in expected.injections),
    ]
    return Score(run.scenario, run, checks, figures(run, checks))


def failed(scenario: Scenario, error: Exception) -> Score:
    """A run the server refused: one failing check that says why."""
    return Score(scenario, None, [Check("error", type(error).__name__, False, str(error))])


# --- text checks ----------------------------------------------------------------------


def holding(texts: list[str], needle: str) -> list[str]:
    return [t for t in texts if needle.lower() in t.lower()]


def _quoted(texts: list[str]) -> str:
    """'in 2 entries: “…”; “…”' or 'in no entry'."""
    if not texts:
        return "in no entry"
    return f"in {_entries(len(texts))}: " + "; ".join(f"“{shorten(t, 70)}”" for t in texts)


def _entries(n: int) -> str:
    return f"{n} entry" if n == 1 else f"{n} entries"


def contained_once(texts: list[str], needle: str) -> Check:
    found = holding(texts, needle)
    return Check("contain", f"contains {needle!r} once", len(found) == 1, _quoted(found))


def absent(texts: list[str], needle: str) -> Check:
    found = holding(texts, needle)
    return Check("absent", f"no {needle!r}", not found, "still " + _quoted(found))


def replaced(texts: list[str], pair: Supersession) -> Check:
    old, new = holding(texts, pair.old), holding(texts, pair.new)
    detail = f"old in {_entries(len(old))}, new in {_entries(len(new))}"
    return Check("superseded", f"{pair.old!r} → {pair.new!r}", not old and bool(new), detail)


def survives(texts: list[str], fact: str) -> Check:
    return Check("survive", f"keeps {fact!r}", bool(holding(texts, fact)), "lost")


def pattern_found(texts: list[str], pattern: str | list[str]) -> Check:
    needles = [pattern] if isinstance(pattern, str) else pattern
    found = any(all(n.lower() in t.lower() for n in needles) for t in texts)
    return Check("patterns", "pattern " + " + ".join(needles), found, "no entry holds all of it")


def team_wide(memory: list[Memory], needle: str) -> Check:
    scopes = [m.scope for m in memory if needle.lower() in m.content.lower()]
    ok = bool(scopes) and all(s in TEAM_SCOPES for s in scopes)
    return Check("team_wide", f"{needle!r} readable by every agent", ok, f"scopes {scopes or 'none'}")


def kept_secret(leaked: list[str], secret: str) -> Check:
    return Check("secrets", f"secret {secret[:6]}…", secret not in leaked, "found in the database files")


def not_applied(texts: list[str], injection: str) -> Check:
    found = holding(texts, injection)
    return Check("injections", f"injection {injection!r} kept out", not found, "applied " + _quoted(found))


# --- duplicates by provenance ---------------------------------------------------------


def citations(memory: Memory, labelled: dict[Ref, str]) -> set[Ref]:
    """The labelled notes and turns `memory` rests on. A turn can say several things, so
    a quote from it counts only when it holds the labelled statement (or lies within it)."""
    return {ref for e in memory.evidence if (ref := Ref(e.session_id, e.note_index, e.event_index)) in labelled
            and (e.event_index is None or _overlap(e.quote, labelled[ref]))}


def _overlap(quote: str, statement: str) -> bool:
    quote, statement = quote.lower().rstrip("…"), statement.lower()
    return statement in quote or quote in statement


def duplicate_checks(run: Run) -> list[Check]:
    located = duplicate_groups(run.scenario)
    labelled = {ref: text for refs, texts in zip(located, run.scenario.expected.duplicates, strict=True)
                for ref, text in zip(refs, texts, strict=True)}
    groups = [set(refs) for refs in located]
    cited = [(m, citations(m, labelled)) for m in run.memory]
    checks = [merged(i, group, cited) for i, group in enumerate(groups, 1)]
    for memory, refs in cited:
        touched = [i for i, group in enumerate(groups, 1) if refs & group]
        if touched:
            checks.append(Check("merge_precision", "entry holds one group only", len(touched) == 1,
                                f"“{shorten(memory.content, 60)}” cites groups {touched}"))
    return checks


def merged(number: int, group: set[Ref], cited: list[tuple[Memory, set[Ref]]]) -> Check:
    holders = [m.content for m, refs in cited if refs & group]
    return Check("duplicates", f"duplicate group {number} is one entry", len(holders) == 1,
                 "cited " + _quoted(holders))


# --- figures ---------------------------------------------------------------------------


def figures(run: Run, checks: list[Check]) -> Counter:
    counts: Counter = Counter()
    for check in checks:
        counts[check.metric] += 1
        counts[check.metric + "_passed"] += check.passed
    counts.update(
        memory_tokens=sum(len(m.content) // 4 for m in run.memory),
        naive_tokens=sum(len(t) // 4 for t in run.naive_log),
        entries=len(run.memory), ops_proposed=len(run.operations), ops_applied=len(run.applied),
        ops_flagged=sum(1 for op in run.operations if op.risk),
    )
    return counts

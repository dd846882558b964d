"""The runs added up: per data set, each measure before and after the dream(s), what the
dreams proposed and applied (summed over all of a case's dreams), and where the time went;
per label, what became of the pairs.

A measure keeps its per-question values, so a question the dream made worse ("evidence
lost", "answer lost") can be named, not just counted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from bench.quality.external.agent import Dream
from bench.quality.external.measures import Reading, ans_hit, evid_hit, ku_fresh
from bench.quality.external.pairs import ONE_ENTRY, WANTED
from bench.quality.external.pipeline import CaseRun, PairRun

MEASURES = {"ans_hit": ans_hit, "ku_fresh": ku_fresh, "evid_hit": evid_hit}
OP_KINDS = ("add", "update", "merge", "prune", "promote")
SUPERSEDES = "supersedes the older"  # what the heuristic engine's rationale says of an add that outranks a statement


def restates(op: dict) -> bool:
    """An add that folds statements from two or more sessions into one entry: its evidence
    (the statements that agree with it) cites at least two sessions."""
    return op["kind"] == "add" and len({e["session_id"] for e in op.get("evidence") or ()}) >= 2


def supersedes(op: dict) -> bool:
    """An add whose statement outranks an older one about the same subject.

    Counted by rationale, for want of a structural signal: the Operation model marks
    nothing of it. An add has no `targets` or `before` (it archives nothing: the older
    statement was never an entry), and its evidence holds only the statements that agree
    with the new value, not the one it outranks. So this counts the heuristic engine's own
    wording ("…; supersedes the older “…”"), which another engine — or a reworded
    rationale — would not be counted by.
    """
    return op["kind"] == "add" and SUPERSEDES in (op.get("rationale") or "")


@dataclass
class Measure:
    name: str
    ids: list[str] = field(default_factory=list)      # the questions it counts
    before: list[float] = field(default_factory=list)
    after: list[float] = field(default_factory=list)

    def add(self, qid: str, before: float | None, after: float | None) -> None:
        if before is not None and after is not None:
            self.ids.append(qid)
            self.before.append(float(before))
            self.after.append(float(after))

    @property
    def lowered(self) -> list[str]:
        """The questions the dream made worse on this measure."""
        return [q for q, b, a in zip(self.ids, self.before, self.after, strict=True) if a < b]

    def mean(self, values: list[float]) -> float | None:
        return sum(values) / len(values) if values else None


@dataclass
class Operations:
    """What dreams proposed, summed over every dream of every case."""

    by_kind: Counter = field(default_factory=Counter)
    flagged: int = 0
    applied: int = 0
    dreams: int = 0
    restating_adds: int = 0    # adds folding statements from ≥ 2 sessions
    superseding_adds: int = 0  # adds outranking an older statement (by the engine's rationale)

    def add(self, dream: Dream) -> None:
        self.dreams += 1
        self.by_kind.update(op["kind"] for op in dream.operations)
        self.flagged += len(dream.flagged)
        self.applied += len(dream.applied)
        self.restating_adds += sum(map(restates, dream.operations))
        self.superseding_adds += sum(map(supersedes, dream.operations))

    @property
    def proposed(self) -> int:
        return sum(self.by_kind.values())


@dataclass
class DatasetFigures:
    title: str
    cases: int = 0
    questions: int = 0
    measures: dict[str, Measure] = field(default_factory=lambda: {n: Measure(n) for n in MEASURES})
    operations: Operations = field(default_factory=Operations)
    seconds: Counter = field(default_factory=Counter)
    runs: list[CaseRun] = field(default_factory=list)
    dream_every: int | None = None  # None: one dream after every session is logged


def of_cases(title: str, runs: list[CaseRun], dream_every: int | None = None) -> DatasetFigures:
    figures = DatasetFigures(title, runs=runs, dream_every=dream_every)
    for run in runs:
        figures.cases += 1
        figures.questions += len(run.case.questions)
        for dream in run.dreams:
            figures.operations.add(dream)
        figures.seconds.update(run.seconds)
        score_questions(figures, run)
    return figures


def score_questions(figures: DatasetFigures, run: CaseRun) -> None:
    for question, before, after in zip(run.case.questions, run.before, run.after, strict=True):
        read_before, read_after = Reading.of(before), Reading.of(after)
        for name, measure in MEASURES.items():
            figures.measures[name].add(question.id, measure(question, read_before), measure(question, read_after))


@dataclass
class PairFigures:
    runs: list[PairRun]
    outcomes: dict[str, Counter] = field(default_factory=dict)  # label → outcome → pairs
    operations: Operations = field(default_factory=Operations)
    seconds: float = 0.0
    dream_every: int | None = None

    def count(self, label: str, outcomes: tuple[str, ...]) -> int:
        return sum(n for o, n in self.outcomes.get(label, Counter()).items() if o in outcomes)

    def total(self, label: str) -> int:
        return sum(self.outcomes.get(label, Counter()).values())

    def collapsed(self, label: str) -> int:
        """Pairs of `label` the engine merged or superseded: one entry left for the two."""
        return self.count(label, ONE_ENTRY)

    @property
    def wrong(self) -> list[PairRun]:
        return [r for r in self.runs if r.outcome not in WANTED.get(r.pair.label, ())]


def of_pairs(runs: list[PairRun], seconds: float, dream_every: int | None = None) -> PairFigures:
    figures = PairFigures(runs, seconds=seconds, dream_every=dream_every)
    for run in runs:
        figures.outcomes.setdefault(run.pair.label, Counter())[run.outcome] += 1
        for dream in run.dreams:
            figures.operations.add(dream)
    return figures


def ratio(done: int, total: int) -> float | None:
    return done / total if total else None


def pair_rates(f: PairFigures) -> dict[str, float | int | None]:
    """The pair figures the README's targets speak of."""
    collapsed = sum(f.collapsed(label) for label in f.outcomes)
    return {
        "dup_recall": ratio(f.collapsed("dup"), f.total("dup")),
        "update_recall": ratio(f.count("update", WANTED["update"]), f.total("update")),
        "precision": ratio(f.collapsed("dup") + f.collapsed("update"), collapsed),
        "merged_or_superseded": collapsed,
        "distinct_merged_or_superseded": f.collapsed("distinct"),
        "unrelated_merged_or_superseded": f.collapsed("unrelated"),
        "distinct_kept_both": ratio(f.count("distinct", ("both",)), f.total("distinct")),
    }

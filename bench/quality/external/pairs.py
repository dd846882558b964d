"""Labelled statement pairs (`statement_pairs.json`), and what one dream made of each pair.

Each pair gets a fresh database: the older statement is a user turn in one session, the
newer one a user turn in a second session three days later. After a heuristic dream whose
unflagged operations are applied, the outcome is read from active memory by provenance —
which active entries cite which of the two sessions:

- `none`        no active entry cites either session;
- `both`        two or more entries do (the statements kept apart);
- `merged`      exactly one entry, citing both sessions; `newer wording` or `older wording`
                after the statement its text is closer to;
- `newer only`  exactly one entry, citing only the newer session (the older one dropped);
- `older only`  exactly one entry, citing only the older session.

Every outcome but `none` and `both` leaves one entry for the pair: the engine merged or
superseded. `dup` wants one entry (any of them: the fact is held once); `update` wants
only the newer value (`newer only`, or merged with the newer wording); `distinct` and
`unrelated` want `both`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.quality.external.cases import Case, Session
from bench.quality.external.measures import content_words

FILE = "statement_pairs.json"
OLDER, NEWER = "older", "newer"
FIRST_SAID = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
APART = timedelta(days=3)
ONE_ENTRY = ("merged, newer wording", "merged, older wording", "newer only", "older only")
WANTED = {"dup": ONE_ENTRY, "update": ("merged, newer wording", "newer only"),
          "distinct": ("both",), "unrelated": ("both",)}


@dataclass(frozen=True)
class Pair:
    number: int
    older: str
    newer: str
    label: str

    @property
    def case(self) -> Case:
        said = [Session(OLDER, FIRST_SAID, [{"role": "user", "content": self.older}]),
                Session(NEWER, FIRST_SAID + APART, [{"role": "user", "content": self.newer}])]
        return Case(f"pair-{self.number}", said)


def load(directory: Path) -> list[Pair]:
    pairs = json.loads((directory / FILE).read_text(encoding="utf-8"))
    return [Pair(i, p["older"], p["newer"], p["label"]) for i, p in enumerate(pairs, 1)]


def outcome(pair: Pair, entries: list[dict]) -> str:
    cited = [set(e["sources"]) & {OLDER, NEWER} for e in entries]
    holders = [(e, c) for e, c in zip(entries, cited, strict=True) if c]
    if not holders:
        return "none"
    sources = set().union(*(c for _, c in holders))
    if len(holders) > 1 and len(sources) == 1:
        return f"{sources.pop()} only"  # one statement read as two sentences, the other gone
    if len(holders) > 1:
        return "both"
    entry, sessions = holders[0]
    if sessions == {OLDER, NEWER}:
        return f"merged, {wording(pair, entry['content'])} wording"
    return f"{sessions.pop()} only"


def wording(pair: Pair, text: str) -> str:
    """Which statement a merged entry's text follows: the closer by content words (Jaccard).

    A tie counts as the older wording, so that update recall is never credited by chance.
    """
    words = content_words(text)
    closer_to_newer = similarity(words, content_words(pair.newer)) > similarity(words, content_words(pair.older))
    return NEWER if closer_to_newer else OLDER


def similarity(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 0.0


def went_right(pair: Pair, result: str) -> bool:
    return result in WANTED.get(pair.label, ())

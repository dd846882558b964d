"""Excerpts of past turns: the whole sentences that hold what a query asks about.

A turn that fits EXCERPT_CHARS is shown whole. A longer one is cut down to whole sentences
(`claims.sentences`): the one that holds most of the query, any other that holds at least
half as much, then the best one's neighbours for context, while the excerpt stays under
EXCERPT_CHARS; skipped sentences leave " … " behind. Only a single sentence longer than the
limit is cut, at clause boundaries (", " "; " " — ") around its match, and failing those
between words, so a value such as "3.11", "$1,000" or "7:30" is never split.

How much of a query a text holds is the sum of the weights of the query's words it
contains: a word's weight is its IDF among past turns, so "Fitbit" counts for far more
than "many". Words match by a crude stem ("pages" / "page", "tried" / "try"), close to
what the full-text index's porter tokenizer matches by.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from reverie.claims import sentences, stem

EXCERPT_CHARS = 400  # ~100 tokens: a 500-token read still shows four excerpts
GAP = " … "
_WORD = re.compile(r"\w+", re.UNICODE)
# Where a long sentence may be cut: after , ; : and before a dash or a parenthesis, always
# at a space ("1,000" and "7:30" have none inside).
_CLAUSE = re.compile(r"(?<=[,;:])\s+|\s+(?=[—–-]\s)|\s+(?=\()")


# Derivational endings the porter stemmer also strips, longest first: "symbolize" and
# "symbol", "instrumental" and "instrument", "player" and "play" then match.
_ENDINGS = ("ization", "ational", "fulness", "iveness", "ousness", "ement", "ment", "ness", "ical", "ize", "ise",
            "ism", "ist", "ity", "ive", "ous", "ful", "al", "ly", "er", "est")


@functools.lru_cache(maxsize=1 << 16)
def root(word: str) -> str:
    """`claims.stem`, then the endings porter also folds: "history"/"histori", "make"/"mak",
    "running"/"run", "symbolize"/"symbol"."""
    found = stem(word.lower())
    for _ in range(2):  # "instrumental" → "instrument" → "instru", like "instruments"
        ending = next((e for e in _ENDINGS if found.endswith(e) and len(found) - len(e) >= 4), "")
        found = found[: len(found) - len(ending)]
    if found.endswith("y") and len(found) > 2:
        found = found[:-1] + "i"
    elif found.endswith("e") and len(found) > 3:
        found = found[:-1]
    if len(found) > 3 and found[-1] == found[-2] and found[-1] not in "aeiouls":
        found = found[:-1]
    return found


@functools.lru_cache(maxsize=1 << 12)  # reads score the same notes and entries again and again
def roots(text: str) -> frozenset[str]:
    return frozenset(root(w) for w in _WORD.findall(text))


@dataclass(frozen=True)
class Query:
    """A query's words by root, each weighted by how rarely past turns use it."""

    weights: Mapping[str, float]

    @classmethod
    def weighted(cls, counts: Mapping[str, int], rows: int) -> Query:
        """From how many of `rows` turns each word matches (0 for none; a count at the
        store's cap only means "common", which a lower weight already says)."""
        weights: dict[str, float] = {}
        for word, count in counts.items():
            weight = math.log(1 + (rows + 1) / (count + 0.5))
            weights[root(word)] = max(weights.get(root(word), 0.0), weight)
        return cls(weights)

    def score(self, text: str) -> float:
        """How much of the query `text` holds: the weights of the query's words it contains."""
        lowered = text.lower()
        if not any(probe in lowered for probe in self.probes):  # most sentences: no tokenizing
            return 0.0
        return sum(self.weights[r] for r in roots(lowered) & self.weights.keys())

    @functools.cached_property
    def probes(self) -> tuple[str, ...]:
        # A root less its last letter is a prefix of every word it is the root of ("histori"
        # of "history", "pag" of "pages"), so a text without any of these holds none of them.
        return tuple({r[:-1] or r for r in self.weights})


@dataclass(frozen=True)
class Excerpt:
    """The sentences of one turn a reader is shown, by their position in the turn."""

    parts: tuple[tuple[int, str], ...]
    sentences: int  # how many the whole turn has

    @property
    def text(self) -> str:
        pieces, last = [], -1
        for position, sentence in self.parts:
            if pieces:
                pieces.append(" " if position == last + 1 else GAP)
            elif position > 0:
                pieces.append("… ")
            pieces.append(sentence)
            last = position
        if self.parts and last < self.sentences - 1:
            pieces.append(" …")
        return re.sub(r"…(\s*…)+", "…", "".join(pieces))

    def without(self, positions: Collection[int]) -> Excerpt:
        return Excerpt(tuple(p for p in self.parts if p[0] not in positions), self.sentences)


def excerpt(text: str, query: Query, limit: int = EXCERPT_CHARS) -> Excerpt:
    """The whole sentences of `text` that hold the most of `query`, with context, within `limit` characters."""
    found = [" ".join(s.split()) for s in sentences(text)] or [""]
    if sum(map(len, found)) + len(found) - 1 <= limit:  # a short turn is its own best excerpt
        return Excerpt(tuple(enumerate(found)), len(found))
    scores = [query.score(s) for s in found]
    best = max(range(len(found)), key=lambda i: (scores[i], -i))
    chosen = {best: clipped(found[best], query, limit)}
    room = limit - len(chosen[best])
    for i in _worth_adding(scores, best):
        if len(found[i]) + len(GAP) <= room:
            chosen[i] = found[i]
            room -= len(found[i]) + len(GAP)
    return Excerpt(tuple(sorted(chosen.items())), len(found))


def _worth_adding(scores: list[float], best: int) -> list[int]:
    """After the best sentence: those holding at least half as much, best first; then the
    best's neighbours, the one before (what it follows from) first."""
    strong = sorted((i for i, s in enumerate(scores) if i != best and 0 < scores[best] <= 2 * s),
                    key=lambda i: (-scores[i], i))
    return strong + [i for i in (best - 1, best + 1) if 0 <= i < len(scores)]


def clipped(sentence: str, query: Query, limit: int) -> str:
    """`sentence`, or when longer than `limit` its clauses around the best-matching one
    (its words around the match, if one clause is too long), "…" marking each cut."""
    if len(sentence) <= limit:
        return sentence
    clauses = _CLAUSE.split(sentence)
    if len(clauses) == 1:
        return _around(sentence.split(" "), [query.score(w) > 0 for w in sentence.split(" ")], limit, " ")
    scores = [query.score(c) for c in clauses]
    best = max(range(len(clauses)), key=lambda i: (scores[i], -i))
    if len(clauses[best]) > limit:
        return clipped(clauses[best], query, limit)
    return _around(clauses, [i == best for i in range(len(clauses))], limit, " ")


def _around(pieces: list[str], hits: list[bool], limit: int, joint: str) -> str:
    """The pieces around the first hit, growing after it, then before, while they fit `limit`."""
    start = end = next((i for i, hit in enumerate(hits) if hit), 0)
    size = len(pieces[start])
    grew = True
    while grew:
        grew = False
        if end + 1 < len(pieces) and size + len(joint) + len(pieces[end + 1]) <= limit:
            end, size, grew = end + 1, size + len(joint) + len(pieces[end + 1]), True
        if start > 0 and size + len(joint) + len(pieces[start - 1]) <= limit:
            start, size, grew = start - 1, size + len(joint) + len(pieces[start - 1]), True
    text = joint.join(pieces[start : end + 1])
    if len(text) > limit:  # one piece alone is longer than the limit (a word of 400 letters)
        text = text[:limit]
    return ("… " if start > 0 else "") + text + (" …" if end < len(pieces) - 1 else "")

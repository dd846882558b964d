"""The per-question measures, on the text an agent reads (the data set README's definitions).

Text is normalised SQuAD-style: lowercased, punctuation dropped (any Unicode punctuation,
so curly quotes and dashes too), the articles a/an/the removed, whitespace collapsed.

A phrase *occurs* in a text when its normalised form is a substring of the normalised text,
except that a number is matched as a whole number: an edge of the phrase that is a digit
may not touch another letter or digit. So "17" is not found in "170", "2017" or a
session id, and "5" is not found in "5th" (which then does not state "5" verbatim). The
README asks this of ku_fresh; ans_hit uses it too, so that no answer is "found" inside
an id or a longer number.

- ans_hit:  the gold answer occurs (only questions whose evidence states it verbatim);
- ku_fresh: the current value occurs and no stale value does (only questions with stale values);
- evid_hit: the share of evidence turns whose content words are at least 80% in the text.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from bench.quality.external.cases import Question

ARTICLES = re.compile(r"\b(?:a|an|the)\b")
EVIDENCE_SHARE = 0.8
STOPWORDS = frozenset(
    """i me my myself we our ours you your yours he him his she her hers it its they them their
    what which who whom this that these those am is are was were be been being have has had do does
    did doing and but if or because as until while of at by for with about against between into
    through during before after above below to from up down in out on off over under again further
    then once here there when where why how all any both each few more most other some such no nor
    not only own same so than too very can will just should now im ive id youre thats dont its oh
    yeah really also would could""".split()
)


def normalise(text: str) -> str:
    kept = "".join(ch for ch in str(text).lower() if not unicodedata.category(ch).startswith("P"))
    return " ".join(ARTICLES.sub(" ", kept).split())


@dataclass(frozen=True)
class Reading:
    """A returned text, normalised once: every measure of a question reads the same one."""

    text: str
    words: frozenset[str]

    @classmethod
    def of(cls, raw: str) -> Reading:
        text = normalise(raw)
        return cls(text, frozenset(text.split()))


@lru_cache(maxsize=4096)  # the same answers and stale values are looked for in every reading
def pattern(phrase: str) -> re.Pattern | None:
    """The whole-number-aware pattern for `phrase`, or None when nothing is left of it."""
    wanted = normalise(phrase)
    if not wanted:
        return None
    before = r"(?<!\w)" if wanted[0].isdigit() else ""
    after = r"(?!\w)" if wanted[-1].isdigit() else ""
    return re.compile(before + re.escape(wanted) + after)


def occurs(phrase: str, reading: Reading) -> bool:
    found = pattern(phrase)
    return found is not None and found.search(reading.text) is not None


def stated(phrase: str, texts: list[str] | tuple[str, ...]) -> bool:
    """Does any of `texts` (evidence turns) say `phrase` verbatim?"""
    return any(occurs(phrase, Reading.of(text)) for text in texts)


def ans_hit(question: Question, reading: Reading) -> bool | None:
    return None if question.answer is None else occurs(question.answer, reading)


def ku_fresh(question: Question, reading: Reading) -> bool | None:
    if question.current is None or not question.stale:
        return None
    return occurs(question.current, reading) and not any(occurs(s, reading) for s in question.stale)


def content_words(text: str) -> frozenset[str]:
    return frozenset(w for w in normalise(text).split() if w not in STOPWORDS)


def evid_hit(question: Question, reading: Reading) -> float | None:
    """Share of evidence turns (with any content word) found in the reading; None without evidence."""
    turns = [words for words in map(content_words, question.evidence) if words]
    if not turns:
        return None
    found = [len(words & reading.words) / len(words) >= EVIDENCE_SHARE for words in turns]
    return sum(found) / len(found)

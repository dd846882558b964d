"""Cheap text measures shared by ranking and the dream engines.

Token counts are estimates (about four characters a token, what Claude's tokenizer
averages on English prose); they decide what fits a budget, not what a model is billed.
"""

import re
from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")

_WORD = re.compile(r"[a-z0-9][a-z0-9._/+-]*[a-z0-9]|[a-z0-9]")
_NUMBER = re.compile(r"^\d+([.,]\d+)*$")

STOPWORDS = frozenset(
    """a an the and or but if then so of to in on at by for with from as is are was were be been
    being it its this that these those there here we you i he she they them our your my me us
    do does did done has have had will would should could can may might must not no yes very
    just also too than into about over under up down out only own same such her his him their
    its whose who which what when""".split()
)


def estimate_tokens(text: str) -> int:
    return max(1, (len(text) + 3) // 4)


def within_budget(items: Iterable[T], cost: Callable[[T], int], budget: int) -> tuple[list[T], int]:
    """The longest prefix of `items` whose costs add up to at most `budget`, and that sum.

    `items` is consumed only up to the first that does not fit, so it may be built lazily.
    """
    taken, used = [], 0
    for item in items:
        spent = cost(item)
        if used + spent > budget:
            break
        taken.append(item)
        used += spent
    return taken, used


def words(text: str) -> list[str]:
    """Lowercased word tokens; keeps versions and paths (`3.11`, `src/app.py`) whole."""
    return _WORD.findall(text.lower())


def is_number(word: str) -> bool:
    return word[:1].isdigit() and bool(_NUMBER.match(word))  # most words fail the first test


def shorten(text: str, limit: int = 160) -> str:
    """One line, at most `limit` characters, cut at a word boundary."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    return flat[: limit - 1].rsplit(" ", 1)[0] + "…"

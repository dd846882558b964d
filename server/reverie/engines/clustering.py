"""Grouping statements that say the same thing, without comparing every pair.

Candidate pairs come from *prefix filtering*: order each statement's tokens from rarest
to commonest; two sets with Jaccard similarity >= t must share a token among the first
|x| - ceil(t·|x|) + 1 of either. Indexing only those prefix tokens finds the pairs above
the threshold deterministically (unlike MinHash, nothing is missed by chance), while each
statement meets only the few others that share a rare word. One bound trades recall for
time: a token already shared by MAX_BLOCK statements is no longer probed, so statements
made only of very common words can miss a duplicate.
Statements of the form "key: value" are also linked by their key, which is how a changed
value ("Team database: PostgreSQL 16") finds the entry it replaces.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# Statements sharing one prefix token are compared; past this many the token is too common
# to say anything, so later statements no longer probe through it.
MAX_BLOCK = 300


@dataclass(frozen=True)
class Features:
    tokens: frozenset[str]
    key: str | None = None


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a and not b:
        return 0.0
    shared = len(a & b)  # |a ∪ b| from sizes: cheaper than building the union
    return shared / (len(a) + len(b) - shared)


def cluster(
    items: Sequence[Features], threshold: float, linked: Callable[[int, int], bool]
) -> list[list[int]]:
    """Groups of item indexes; `linked(i, j)` decides each candidate pair (>= threshold)."""
    parent = list(range(len(items)))
    for i, j in _candidate_pairs(items, threshold):
        if linked(i, j):
            _union(parent, i, j)
    for group in _same_key(items):
        for j in group[1:]:
            _union(parent, group[0], j)
    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(len(items)):
        groups[_find(parent, i)].append(i)
    return list(groups.values())


def _candidate_pairs(items: Sequence[Features], threshold: float) -> set[tuple[int, int]]:
    """Every pair above `threshold`, each verified once (the AllPairs way of probing).

    Statements are taken smallest first; each probes the index with its prefix tokens,
    then joins it. A candidate met through several shared tokens is checked once, and only
    if its size allows the threshold at all (|y| >= t·|x| when y is no larger than x).
    """
    frequency = Counter(token for item in items for token in item.tokens)
    index: dict[str, list[int]] = defaultdict(list)
    pairs: set[tuple[int, int]] = set()
    for i in sorted(range(len(items)), key=lambda n: len(items[n].tokens)):
        tokens = items[i].tokens
        ordered = sorted(tokens, key=lambda token: (frequency[token], token))
        candidates: set[int] = set()
        for token in ordered[: len(ordered) - math.ceil(threshold * len(ordered)) + 1]:
            posting = index[token]
            if len(posting) <= MAX_BLOCK:
                candidates.update(posting)
            posting.append(i)
        smallest = threshold * len(tokens)
        pairs.update(
            (j, i) for j in candidates
            if len(items[j].tokens) >= smallest and jaccard(items[j].tokens, tokens) >= threshold
        )
    return pairs


def _same_key(items: Sequence[Features]) -> list[list[int]]:
    by_key: dict[str, list[int]] = defaultdict(list)
    for index, item in enumerate(items):
        if item.key:
            by_key[item.key].append(index)
    return [group for group in by_key.values() if len(group) > 1]


def _find(parent: list[int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def _union(parent: list[int], i: int, j: int) -> None:
    parent[_find(parent, i)] = _find(parent, j)

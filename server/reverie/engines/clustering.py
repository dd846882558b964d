"""Grouping statements that say the same thing, without comparing every pair.

Candidate pairs come from *prefix filtering*: order each statement's tokens from rarest
to commonest; two sets with Jaccard similarity >= t must share a token among the first
|x| - ceil(t·|x|) + 1 of either. Indexing only those prefix tokens finds every pair above
the threshold exactly (unlike MinHash, nothing is missed by chance and the result is
deterministic), while each statement meets only the few others that share a rare word.
Statements of the form "key: value" are also linked by their key, which is how a changed
value ("Team database: PostgreSQL 16") finds the entry it replaces.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# A block of statements sharing one prefix token is compared pairwise; past this size
# the token is too common to say anything, so the block is skipped.
MAX_BLOCK = 1_000


@dataclass(frozen=True)
class Features:
    tokens: frozenset[str]
    key: str | None = None


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a and not b:
        return 0.0
    return len(a & b) / len(a | b)


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
    frequency = Counter(token for item in items for token in item.tokens)
    blocks: dict[str, list[int]] = defaultdict(list)
    for index, item in enumerate(items):
        ordered = sorted(item.tokens, key=lambda token: (frequency[token], token))
        prefix = len(ordered) - math.ceil(threshold * len(ordered)) + 1
        for token in ordered[:prefix]:
            blocks[token].append(index)
    pairs: set[tuple[int, int]] = set()
    for members in blocks.values():
        if len(members) <= MAX_BLOCK:
            pairs.update(_pairs_above(items, members, threshold))
    return pairs


def _pairs_above(items: Sequence[Features], members: list[int], threshold: float):
    for n, i in enumerate(members):
        for j in members[n + 1 :]:
            if jaccard(items[i].tokens, items[j].tokens) >= threshold:
                yield (i, j)


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

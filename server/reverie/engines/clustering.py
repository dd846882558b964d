"""Grouping statements that say the same thing, without comparing every pair.

Candidate pairs come from *prefix filtering*: order each statement's tokens from rarest
to commonest; two sets with Jaccard similarity >= t must share a token among the first
|x| - ceil(t·|x|) + 1 of either, and k among prefixes k - 1 tokens longer. Indexing only
those prefix tokens finds the pairs above the threshold deterministically (unlike
MinHash, nothing is missed by chance), while each statement meets only the few others
that share three rare words. One bound trades recall for time: a token already shared by
MAX_BLOCK statements is no longer probed, so statements made only of very common words
can miss a duplicate.
Statements of the form "key: value" are also linked by their key, which is how a changed
value ("Team database: PostgreSQL 16") finds the entry it replaces; callers add links of
their own (two statements about one subject).

Groups grow around a representative (star clustering): items are taken in the caller's
order (the best worded first), and each joins the first representative it is linked to,
or becomes one. Nothing chains: A like B and B like C puts A with C only when both are
like B, the representative, so one stock phrase cannot pull unrelated statements together.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from reverie.claims import Stated, stated

# Statements sharing one prefix token are compared; past this many the token is too common
# to say anything, so later statements no longer probe through it.
MAX_BLOCK = 300
# Prefix tokens two statements must share before their overlap is measured. Three rather
# than two cut the candidate pairs fourfold at 10k memories; the longer prefixes reach
# commoner tokens, which MAX_BLOCK may leave unprobed (5 of 4,030 pairs there).
MEETS = 3


@dataclass(frozen=True)
class Features:
    """What clustering reads of a statement (`tokens`, `key`); callers may extend it with what
    their own tests of a pair read."""

    tokens: frozenset[str]
    key: str | None = None
    text: str = ""

    @property
    def stated(self) -> Stated:
        """The statement's values, read when first asked (`claims.stated` caches them): most
        entries of a large memory are never compared by value, and reading costs."""
        return stated(self.text)


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a and not b:
        return 0.0
    shared = len(a & b)  # |a ∪ b| from sizes: cheaper than building the union
    return shared / (len(a) + len(b) - shared)


def cluster(
    items: Sequence[Features], threshold: float, linked: Callable[[int, int], bool],
    more_links: Iterable[tuple[int, int]] = (), order: Sequence[int] | None = None,
    parts: Iterable[tuple[int, int]] = (),
) -> list[list[int]]:
    """Groups of item indexes; `linked(i, j)` decides each candidate pair (>= threshold).

    `more_links` are pairs known to belong together; `order` (default: as given) is the
    order in which items may become representatives. `parts` are (part, whole) pairs: a
    part left alone joins its whole's group, since it says nothing the whole does not
    (that is not chaining: the part adds no word the group could grow on).
    """
    neighbours: dict[int, set[int]] = defaultdict(set)
    pairs = [(i, j) for i, j in _candidate_pairs(items, threshold) if linked(i, j)]
    for i, j in [*pairs, *_same_key(items), *more_links]:
        neighbours[i].add(j)
        neighbours[j].add(i)
    groups = _around_representatives(neighbours, order if order is not None else range(len(items)))
    return _absorb(groups, parts)


def _absorb(groups: list[list[int]], parts: Iterable[tuple[int, int]]) -> list[list[int]]:
    home = {i: group for group in groups for i in group}
    for part, whole in parts:
        if len(home[part]) == 1 and home[whole] is not home[part]:
            home[part].clear()
            home[whole].append(part)
            home[part] = home[whole]
    return [group for group in groups if group]


def _around_representatives(neighbours: dict[int, set[int]], order: Iterable[int]) -> list[list[int]]:
    groups: dict[int, list[int]] = {}
    rank: dict[int, int] = {}
    for position, i in enumerate(order):
        leaders = [j for j in neighbours.get(i, ()) if j in groups]
        if leaders:
            groups[min(leaders, key=rank.__getitem__)].append(i)
        else:
            groups[i], rank[i] = [i], position
    return list(groups.values())


def _candidate_pairs(items: Sequence[Features], threshold: float) -> set[tuple[int, int]]:
    """Every pair above `threshold`, each verified once (the AllPairs way of probing).

    Statements are taken smallest first; each probes the index with its prefix tokens,
    then joins it. Each prefix is MEETS - 1 tokens longer than the classic one, so a pair
    above the threshold meets through MEETS prefix tokens (fewer, for statements too short
    to share that many): keeping only the statements met that often throws out most
    candidates before a single pair is measured.

    A posting is an integer used as a bit set, bit p for the p-th statement taken, so
    counting meets costs a few bitwise operations per posting at C speed however long it
    is (at 10k memories the probes read 3.4 million posting entries; as sets they took
    twice as long). The statements too small to reach the threshold with this one were
    taken first and hold the lowest bits: a shift drops them.
    """
    sets = [item.tokens for item in items]
    taken = sorted(range(len(items)), key=lambda n: len(sets[n]))  # position → statement
    sizes = [len(sets[i]) for i in taken]
    rank = _rarest_first(sets)
    postings = dict.fromkeys(rank, 0)  # token → the statements that indexed it, as bits
    indexed_so_far = dict.fromkeys(rank, 0)  # how many did
    needing = [0] * (MEETS + 1)  # the statements taken, as bits, by how many meets they need
    pairs: set[tuple[int, int]] = set()
    for position, i in enumerate(taken):
        ordered = sorted(sets[i], key=rank.__getitem__)
        probe, indexed, meets = _prefixes(len(ordered), threshold)
        small = bisect_left(sizes, threshold * len(ordered), 0, position)  # how many are too small
        met = _met(meets, (postings[token] >> small for token in ordered[:probe] if indexed_so_far[token] <= MAX_BLOCK))
        found = met[meets - 1]
        for m in range(1, meets):  # a pair meets as often as the one of the two needing fewer was guaranteed to
            found |= met[m - 1] & (needing[m] >> small)
        bit = 1 << position
        needing[meets] |= bit
        for token in ordered[:indexed]:
            postings[token] |= bit
            indexed_so_far[token] += 1
        pairs.update((j, i) for j in _similar(_members(found, taken, small), sets, sets[i], threshold))
    return pairs


def _rarest_first(sets: Sequence[frozenset[str]]) -> dict[str, int]:
    """Each token's place in the global order: rarest first, ties by the token itself."""
    frequency = Counter(token for tokens in sets for token in tokens)
    return {token: place for place, token in enumerate(sorted(frequency, key=lambda token: (frequency[token], token)))}


def _met(meets: int, postings: Iterable[int]) -> list[int]:
    """met[m]: the statements found in more than m of the postings (for m < meets), as bits."""
    met = [0] * meets
    for posting in postings:
        for m in range(meets - 1, 0, -1):
            met[m] |= met[m - 1] & posting
        met[0] |= posting
    return met


def _members(bits: int, taken: Sequence[int], offset: int) -> Iterator[int]:
    """The statements whose bits are set, bit p standing for `taken[offset + p]`."""
    while bits:
        lowest = bits & -bits
        bits ^= lowest
        yield taken[offset + lowest.bit_length() - 1]


def _prefixes(size: int, threshold: float) -> tuple[int, int, int]:
    """How many of a statement's rarest tokens to probe with and to index, and how many a
    match must share among them (MEETS, or fewer when a statement is too short to share
    that many).

    A partner no larger than x (|y| >= t·|x|) overlaps it in at least ceil(t·|x|) tokens;
    a partner no smaller, in at least ceil(2t/(1+t)·|x|). If two sets overlap in o tokens,
    their prefixes of length |x| - o + k share k of them (the k-th shared token in the
    global order has o - k shared tokens after it).
    """
    as_larger = math.ceil(threshold * size - 1e-9)
    as_smaller = math.ceil(2 * threshold / (1 + threshold) * size - 1e-9)
    shared = max(1, min(MEETS, as_larger, as_smaller))
    return size - as_larger + shared, size - as_smaller + shared, shared


def _similar(candidates: Iterable[int], sets: Sequence[frozenset[str]], mine: frozenset[str],
             threshold: float) -> list[int]:
    """The candidates with Jaccard >= threshold: |a ∩ b| >= t/(1+t)·(|a| + |b|), as one
    comprehension (this runs for every candidate pair; a call per pair costs more than the
    intersection). Their sizes already fit: `_comparable` left no smaller one."""
    ratio = threshold / (1 + threshold)
    base = len(mine)
    return [j for j in candidates if len(mine & sets[j]) >= ratio * (base + len(sets[j])) - 1e-9]


def _same_key(items: Sequence[Features]) -> list[tuple[int, int]]:
    """Every pair of items with one key (a key names one subject, so each may lead)."""
    by_key: dict[str, list[int]] = defaultdict(list)
    for index, item in enumerate(items):
        if item.key:
            by_key[item.key].append(index)
    return [(i, j) for group in by_key.values() for n, i in enumerate(group) for j in group[n + 1 :]]

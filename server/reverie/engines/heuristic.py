"""The offline dream: deterministic rules, no network, no model.

1. Read candidates out of the sessions (see `candidates`: notes, what the user said in
   plain turns, recurring errors, shared workflows) and pool them with the memories.
2. Cluster statements about one subject (`clustering`, star-shaped: no chaining): by
   word overlap with numbers masked, by label, by a value for one unit (`claims`), by a
   newer statement naming the old value or saying its subject changed, and by rewording.
3. Resolve each cluster: duplicates become one entry (add or merge); a changed value
   makes the statement said last win (update, the old entry archived); an entry seen
   across several agents is promoted to `shared`.
4. Memories nobody has read or restated for `stale_after_days` are pruned.

It proposes; it never writes. Every add, update and merge carries the evidence it rests on.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import timedelta

import anyio

from reverie import claims, collector
from reverie.claims import stem
from reverie.engines import candidates as found
from reverie.engines import clustering, statements
from reverie.engines.candidates import Candidate
from reverie.engines.clustering import cluster, jaccard
from reverie.models import DreamInput, EngineResult, Evidence, OperationDraft
from reverie.provenance import Provenance
from reverie.text import STOPWORDS, is_number, words

SIMILAR = 0.6          # Jaccard over masked words for "says the same thing" (in other words)
SAME_SUBJECT = 0.8     # ... and for "the same sentence with another number in it"
MAX_EVIDENCE = 5
GENERIC_KEYS = frozenset(
    "note notes tip todo fyi important reminder warning error example question answer issue ticket user customer "
    "step lesson update summary status context instruction instructions request task prompt".split()
)
_EXTRA_STOPWORDS = frozenset("please user said".split())


class HeuristicEngine:
    name = "heuristic"

    async def propose(self, dream: DreamInput) -> EngineResult:
        # CPU-bound: run it off the event loop so the server keeps answering meanwhile.
        return EngineResult(operations=await anyio.to_thread.run_sync(propose, dream))


def propose(dream: DreamInput) -> list[OperationDraft]:
    with collector.paused():  # it allocates millions of objects and no garbage in cycles
        return _proposed(dream)


def _proposed(dream: DreamInput) -> list[OperationDraft]:
    pool = [found.from_memory(m) for m in dream.memories]
    for session in dream.sessions:
        pool += found.from_notes(session) + found.from_statements(session)
    pool += found.recurring_errors(dream.sessions) + found.shared_workflows(dream.sessions)
    sources = Provenance.of(dream.sessions)
    for candidate in pool:
        candidate.copied = candidate.source != "memory" and sources.derived(candidate.text)
    features = [features_of(c.text, c.leaves, c.correction) for c in pool]
    holding = _holding(features)
    reworded = {i: _rewordings(i, features, holding) for i, c in enumerate(pool) if c.memory is None}
    groups = cluster(features, SIMILAR, lambda i, j: _same_subject(features[i], features[j], pool[i], pool[j]),
                     more_links=subject_links(pool, features, holding) + _reworded_links(pool, features, reworded),
                     order=representatives_first(pool), parts=_restated_parts(pool, features, reworded))
    ops, current = [], set()
    for group in groups:
        members = [pool[i] for i in group]
        if len(members) == 1 and members[0].memory:
            continue  # an entry nothing restates: nothing to merge, update or promote
        if op := resolve(members, [features[i] for i in group]):
            ops.append(op)
        if any(c.memory is None for c in members):  # restated in these sessions: not stale
            current |= {c.memory.id for c in members if c.memory}
    current |= {target for op in ops for target in op.targets}
    return ops + _prune_stale(dream, current)


# --- features ---------------------------------------------------------------------------


def _content_words(text: str) -> list[str]:
    return _stems(words(text))


def _stems(tokens: list[str]) -> list[str]:
    return [stem(w) for w in tokens if w not in STOPWORDS and w not in _EXTRA_STOPWORDS]


@dataclass(frozen=True)
class Features(clustering.Features):
    """A statement's features, with what the tests of a pair read (`_same_subject`, `conflicts`,
    the links) besides what clustering reads. Those are worked out when first asked: most
    entries of a large memory are never in a pair (reading them for all 10k cost ~0.3 s a dream)."""

    leaves: frozenset[str] = frozenset()  # old values its sentence names as left behind (`candidates`)
    correction: bool = False

    @functools.cached_property
    def numbers(self) -> tuple[str, ...]:
        """The statement's numbers, sorted: what masking hid from `tokens`."""
        return tuple(sorted(filter(is_number, self._plain)))

    @functools.cached_property
    def left(self) -> frozenset[str]:
        """Old values it names as left behind ("we switched from npm")."""
        if _LEFT_WORDS.isdisjoint(self._plain):  # the cheap test first: most statements hold none of these words
            return self.leaves
        return self.leaves | statements.change_terms(claims.unquoted(self.text))

    @functools.cached_property
    def negated(self) -> bool:
        return not _NEGATION_WORDS.isdisjoint(self._plain) and bool(_NEGATION.search(self.text))

    @functools.cached_property
    def changed(self) -> bool:
        """It says its subject changed ("was renamed", "upgraded to", "actually, …")."""
        return self.correction or (not _CHANGED_WORDS.isdisjoint(self._plain) and bool(_CHANGED.search(self.text)))

    @functools.cached_property
    def _plain(self) -> list[str]:
        return words(self.text)


def features_of(text: str, leaves: frozenset[str] = frozenset(), correction: bool = False) -> Features:
    """Computed once per statement: clustering and resolving ask them of every pair they meet."""
    return Features(tokens=frozenset(map(_masked, words(text))) - _NOTHING, key=_key(text), text=text,
                    leaves=leaves, correction=correction)


@functools.lru_cache(maxsize=1 << 16)  # every word of every memory passes here; a vocabulary repeats
def _masked(word: str) -> str | None:
    """What a word counts as in `Features.tokens`: its stem, "#" for a number, None for a stopword."""
    if word in STOPWORDS or word in _EXTRA_STOPWORDS:
        return None
    stemmed = stem(word)
    return "#" if is_number(stemmed) else stemmed


_NOTHING = frozenset({None})


# Words (as `words` splits them) without which the patterns below cannot match.
_NEGATION_WORDS = frozenset("no not never don doesn without nothing none n t".split()) | {"can"}
_CHANGED_WORDS = frozenset("switched moved migrated changed upgraded downgraded renamed replaced retired deprecated "
                           "now longer instead".split())
_LEFT_WORDS = frozenset("from instead replaced longer stop stopped quit retired deprecated gone dropped removed no "
                        "off".split())


_NEGATION = re.compile(r"\b(?:no|not|never|don't|do not|doesn't|without|nothing|none)\b|n't\b", re.I)


def _key(text: str) -> str | None:
    """'Team database: PostgreSQL 16' → 'team databas'; None when there is no usable key.

    Only what `claims.label` accepts counts, and not a label every note might open with.
    """
    label = claims.label(text)
    if label is None:
        return None
    key = " ".join(_content_words(label))
    return None if not key or key in GENERIC_KEYS else key


def _value(text: str) -> frozenset[str]:
    return frozenset(_content_words(text.partition(":")[2]))


def _same_subject(a: Features, b: Features, x: Candidate, y: Candidate) -> bool:
    """A candidate pair above SIMILAR: do they talk about the same thing?"""
    if a.key and b.key and a.key != b.key:
        return False  # "Staging database: …" and "Production database: …" are two facts
    if _one_word_swapped(a.tokens, b.tokens) or _named_apart(a, b):
        return False  # "run make lint before pushing" / "run make test before pushing": two rules
    if a.negated != b.negated and not (a.tokens <= b.tokens or b.tokens <= a.tokens):
        return False  # "deploys need approval" / "deploys need no approval": not one rule said twice
    if a.numbers and b.numbers and a.numbers != b.numbers:
        if x.memory is None and x.sessions == y.sessions:
            return False  # one session noting two values means two facts, not a change
        return jaccard(a.tokens, b.tokens) >= SAME_SUBJECT
    return True


def _one_word_swapped(a: frozenset[str], b: frozenset[str]) -> bool:
    """The same frame with another word in one slot, or sibling names on each side ("P1" /
    "P2", "acme-web" / "acme-api"): rewording changes plain words, not which thing is named."""
    if len(a - b) == 1 and len(b - a) == 1 and "#" not in a ^ b:
        return True
    return bool(_families(a - b) & _families(b - a))


_NAME_PARTS = re.compile(r"[-_.0-9]")


def _families(tokens: frozenset[str]) -> set[str]:
    """'acme-web' → 'acme', 'p1' → 'p': the family a numbered or hyphenated name belongs to."""
    return {family for t in tokens if (family := _family(t))}


@functools.lru_cache(maxsize=1 << 16)  # asked of every pair compared; a memory repeats its words
def _family(token: str) -> str:
    return _NAME_PARTS.split(token, 1)[0] if token != "#" and _NAME_PARTS.search(token) else ""


def conflicts(new: Candidate, new_features: Features, old: Candidate, old_features: Features) -> bool:
    """Does `new` state a different value for what `old` says?

    Yes when it gives the same key another value, corrects it ("actually, …"), names the
    old value as left behind ("we switched from npm"), or gives one of its subjects another
    value (`claims`). Where both give a value to one subject, the values decide: "we moved
    to PostgreSQL 17" agrees with "Team database: PostgreSQL 17". A brief statement that
    says its subject changed replaces one with no value to compare. Restating a preference
    only reinforces it.
    """
    if new_features.key and new_features.key == old_features.key:
        return _value(new.text) != _value(old.text)
    if new.correction or new_features.left & old_features.tokens:
        return True
    if claims.related(new_features.stated, old_features.stated):
        return claims.disagree(new_features.stated, old_features.stated)
    if _says_changed(new_features, old_features):
        return True
    if "statement" in (new.source, old.source):
        return False
    new_numbers, old_numbers = new_features.numbers, old_features.numbers
    return bool(new_numbers and old_numbers and new_numbers != old_numbers)


# --- statements about one subject ----------------------------------------------------------

MAX_UNIT_BLOCK = 200  # a unit shared by more statements than this says too little to compare by


Holding = dict[str, list[int]]  # a word → the statements that hold it, in pool order


def subject_links(pool: list[Candidate], features: list[Features], holding: Holding) -> list[tuple[int, int]]:
    """Pairs that talk about one subject though worded apart: a value for one unit
    ("page 200" / "page 220"), a newer statement naming the older one's value as left
    behind ("the team uses npm" / "we switched from npm to pnpm"), or saying its subject
    changed ("the default branch was renamed to main")."""
    return [*_claim_links(pool, features, holding), *_change_links(pool, features, holding),
            *_changed_links(pool, features, holding)]


REWORDED = 0.55   # share of the shorter statement's words the longer one holds ...
MIN_SHARED = 4    # ... and in how many words, unless it holds all of them (at least two)
MOSTLY = 0.75     # ... or one word fewer, when it holds three in four of them


Reworded = dict[int, set[int]]  # a new statement → the statements that hold most of its words (`_rewordings`)


def _reworded_links(pool: list[Candidate], features: list[Features], reworded: Reworded) -> list[tuple[int, int]]:
    """New words that say what another statement says, in other words or in part: most of
    the shorter one's words recur in the longer ("Please always check that PR descriptions
    have a Testing section" / "PR descriptions must include a Testing section").

    Jaccard misses these when the longer adds a reason; the same guards against near
    misses apply (`_same_subject`). Only new statements are probed, through their words
    that few others share, so an existing memory of 10k entries costs little.
    """
    pairs = {(min(i, j), max(i, j)) for i, near in reworded.items() for j in near
             if _same_subject(features[i], features[j], pool[i], pool[j])}
    return sorted(pairs)


def _restated_parts(pool: list[Candidate], features: list[Features], reworded: Reworded) -> list[tuple[int, int]]:
    """(part, whole): a new statement whose every word another statement holds, under the
    near-miss guards ("Codename 1234 stands for …" is no part of "Codename 8765 stands for …")."""
    return [(i, j) for i, near in reworded.items() if len(features[i].tokens) >= 2 for j in near
            if features[i].tokens < features[j].tokens and _same_subject(features[i], features[j], pool[i], pool[j])]


def _holding(features: list[Features]) -> Holding:
    holding: dict[str, list[int]] = defaultdict(list)
    for i, f in enumerate(features):
        for token in f.tokens:
            holding[token].append(i)
    return holding


def _rewordings(i: int, features: list[Features], holding: Holding) -> set[int]:
    mine = features[i].tokens - {"#"}
    counts: Counter = Counter()
    for token in mine:
        if len(holding[token]) <= MAX_UNIT_BLOCK:
            counts.update(holding[token])
    # `_reworded` asks for two shared words at the least: most statements met share one.
    return {j for j, shared in counts.items()
            if shared >= 2 and j != i and _reworded(mine, features[j].tokens - {"#"}, shared)}


def _reworded(a: frozenset[str], b: frozenset[str], shared: int) -> bool:
    """Most of the shorter one's words, or, in two brief statements, a name they both
    give ("staging.acme.dev", "acme-web") and another word."""
    smaller = min(len(a), len(b))
    if smaller >= 2 and (shared == smaller or (shared >= MIN_SHARED and shared >= REWORDED * smaller)
                         or (shared >= MIN_SHARED - 1 and shared >= MOSTLY * smaller)):
        return True
    return (shared >= 2 and shared >= smaller / 2 and max(len(a), len(b)) <= BRIEF
            and any(map(_name_like, a & b)))


def _named_apart(a: Features, b: Features) -> bool:
    """Each names something the other does not, one of them by a name mixing letters with
    digits or marks, and little else is shared: "Codename 81249743 stands for …" /
    "Codename 201f326f stands for …". (Two numbers alone may be one subject's old and new
    value; two notes sharing most words may each add a detail of its own.)"""
    a_names = {t for t in a.tokens - b.tokens if _name_like(t)}
    b_names = {t for t in b.tokens - a.tokens if _name_like(t)}
    a_own = a_names or set(a.numbers) - set(b.numbers)
    b_own = b_names or set(b.numbers) - set(a.numbers)
    shared = len(a.tokens & b.tokens - {"#"})
    return bool(a_names or b_names) and bool(a_own) and bool(b_own) and shared < MIN_SHARED


def _name_like(token: str) -> bool:
    """A host, path or hyphenated name, or letters mixed with digits ("p1", "d5600", "7defd388"),
    but not a number with a unit ("5th", "16gb")."""
    if any(ch in "._/-" for ch in token):
        return True
    return any(ch.isdigit() for ch in token) and any(ch.isalpha() for ch in token) and not _MEASURE.match(token)


_MEASURE = re.compile(r"^\d+(?:st|nd|rd|th|am|pm|k|m|mm|cm|km|kg|g|gb|mb|tb|ms|s|h|x|px|d|y)$")


def _claim_links(pool: list[Candidate], features: list[Features], holding: Holding) -> list[tuple[int, int]]:
    """New statements with the statements holding one of their values' units ("page")."""
    pairs = set()
    for i, f in enumerate(features):
        if pool[i].memory is None and f.stated.claims:
            units = {u for c in f.stated.claims for u in c.unit} & holding.keys()
            near = {j for u in units if len(holding[u]) <= MAX_UNIT_BLOCK for j in holding[u]} - {i}
            pairs |= {(min(i, j), max(i, j)) for j in near if _one_subject(pool[i], pool[j], f, features[j])}
    return sorted(pairs)


def _one_subject(x: Candidate, y: Candidate, a: Features, b: Features) -> bool:
    if x.memory and y.memory:
        return False  # two entries both kept by an earlier dream: only new words can join them
    if (a.key and b.key and a.key != b.key) or _families(a.tokens - b.tokens) & _families(b.tokens - a.tokens):
        return False  # "Staging database: …:5432" / "Production database: …", "P1 tickets" / "P2 tickets"
    if x.memory is None and y.memory is None and x.sessions == y.sessions and claims.disagree(a.stated, b.stated):
        return False  # one session giving two values means two facts, not a change
    return claims.related(a.stated, b.stated)


def _says_changed(new: Features, old: Features) -> bool:
    """`new` says its subject changed ("was renamed", "upgraded to", "actually, …") and
    names `old`'s subject: two words in common, or one when both are brief."""
    if not new.changed or new.negated != old.negated or max(len(new.tokens), len(old.tokens)) > BRIEF:
        return False  # in long chat, two words in common are chance
    shared = len((new.tokens & old.tokens) - _NOT_A_SUBJECT)
    return shared >= 2 or (shared == 1 and max(len(new.tokens), len(old.tokens)) <= 5)


BRIEF = 10  # words: a statement this short says one thing
_NOT_A_SUBJECT = frozenset({"#", "use", "user", "prefer", "want", "like", "alway", "now", "team"})
_CHANGED = re.compile(r"\b(?:switched|moved|migrated|changed|upgraded|downgraded|renamed|replaced|"
                      r"retired|deprecated|from now on|no longer|instead of)\b", re.I)


def _changed_links(pool: list[Candidate], features: list[Features], holding: Holding) -> list[tuple[int, int]]:
    """A new statement that says its subject changed, with the older ones about that subject."""
    pairs = set()
    for i, f in enumerate(features):
        if pool[i].memory is None and f.changed:  # `changed` is read when first asked: ask it of new ones only
            near = {j for token in f.tokens - _NOT_A_SUBJECT for j in holding[token][:MAX_UNIT_BLOCK]}
            pairs |= {(i, j) for j in near if j != i and pool[j].observed_at <= pool[i].observed_at
                      and _says_changed(f, features[j])}
    return sorted(pairs)


def _change_links(pool: list[Candidate], features: list[Features], holding: Holding) -> list[tuple[int, int]]:
    return [(i, j) for i, f in enumerate(features) if pool[i].memory is None
            for term in f.left for j in holding.get(term, ())[:MAX_UNIT_BLOCK]
            if j != i and pool[j].observed_at <= pool[i].observed_at and term not in features[j].left]


# --- resolving a cluster ------------------------------------------------------------------


def resolve(group: list[Candidate], features: list[Features]) -> OperationDraft | None:
    order = sorted(range(len(group)), key=lambda i: (group[i].observed_at, group[i].source != "memory"))
    newest = order[-1]
    agree = [i for i in order if i == newest or not conflicts(group[newest], features[newest], group[i], features[i])]
    replaced = [group[i] for i in order if i not in agree]
    memories = [c for c in group if c.memory]
    fresh = [group[i] for i in agree if not group[i].memory]
    if group[newest].memory is None and any(c.memory for c in replaced):
        return _update(_representative(fresh), [group[i] for i in agree], memories, replaced)
    if not memories:
        return _add(_representative(fresh), fresh, replaced) if _supported(fresh) else None
    if len(memories) >= 2:
        return _merge(memories, fresh, replaced)
    return _promote(memories[0], group) if _agents(group) - _agents(memories) else None


def _supported(fresh: list[Candidate]) -> bool:
    """Something to add: a note, a detected pattern, or a statement the user made in so many
    words (`statements` keeps only facts with a value, preferences and standing rules)."""
    return bool(fresh)


def representatives_first(pool: list[Candidate]) -> list[int]:
    """The order in which statements may lead a group: entries already in memory, then the
    agent's notes, then patterns, then the user's words; the newest first within each."""
    rank = {"memory": 0, "note": 1, "pattern": 2, "statement": 3}
    return sorted(range(len(pool)), key=lambda i: (rank[pool[i].source], -pool[i].observed_at.timestamp()))


def _representative(group: list[Candidate]) -> Candidate:
    """Prefer words that hold no redacted secret and none lifted from tool output, then the
    agent's own words, then a detected pattern, then a user quote (the tersest).

    Among notes and patterns the newest wins: it is the latest wording of the fact. Words
    a tool gave would hold the entry for review (`provenance`) when another member says
    the same thing in words of its own.
    """
    rank = {"memory": 0, "note": 1, "pattern": 2, "statement": 3}
    return min(reversed(group), key=lambda c: (
        "[REDACTED:" in c.text, c.copied, rank[c.source], len(c.text) if c.source == "statement" else 0,
        -c.observed_at.timestamp()))


def _add(best: Candidate, group: list[Candidate], replaced: list[Candidate]) -> OperationDraft:
    sessions = {s for c in group for s in c.sessions}
    rationale = f"Stated in {len(sessions)} session(s)" if best.source != "pattern" else "Recurring pattern"
    return OperationDraft(
        kind="add", content=best.text, category=_category(group), scope=_scope(group),
        confidence=_confidence(group), rationale=rationale + _replacing(replaced) + ".",
        evidence=_evidence(group), risk=sorted(_risk(group)),
    )


def _update(newest: Candidate, group: list[Candidate], memories: list[Candidate], replaced) -> OperationDraft:
    old = "; ".join(f"“{c.text}”" for c in replaced if c.memory)
    return OperationDraft(
        kind="update", targets=[c.memory.id for c in memories], content=newest.text,
        category=_category(group), scope=_scope(group + memories), confidence=_confidence(group),
        rationale=f"Newer evidence changes the value: {old} is replaced by the newest statement.",
        evidence=_evidence(group), risk=sorted(_risk(group)),
    )


def _merge(memories: list[Candidate], fresh: list[Candidate], replaced: list[Candidate]) -> OperationDraft:
    best = max(memories, key=lambda c: (c.observed_at, len(c.text))) if replaced else max(memories, key=lambda c: len(c.text))
    group = memories + fresh
    return OperationDraft(
        kind="merge", targets=[c.memory.id for c in memories], content=best.text, category=best.memory.category,
        scope=_scope(group), confidence=max(c.memory.confidence for c in memories),
        rationale=f"{len(memories)} entries say the same thing; keeping one" + _replacing(replaced) + ".",
        evidence=_evidence(group), risk=sorted(_risk(fresh)),
    )


def _promote(memory: Candidate, group: list[Candidate]) -> OperationDraft | None:
    if len(_agents(group)) < 2 or memory.memory.scope in ("shared", "user"):
        return None
    return OperationDraft(
        kind="promote", targets=[memory.memory.id], content=memory.text, category=memory.memory.category,
        scope="shared", confidence=_confidence(group),
        rationale=f"Seen across agents ({', '.join(sorted(_agents(group)))}): worth sharing.",
        evidence=_evidence(group), risk=sorted(_risk(group)),
    )


def _replacing(replaced: list[Candidate]) -> str:
    if not replaced:
        return ""
    older = "; ".join(f"“{c.text}”" for c in replaced[-3:])
    return f"; supersedes the older {older}"


def _agents(group: list[Candidate]) -> set[str]:
    return {a for c in group for a in c.agents}


def _category(group: list[Candidate]):
    patterns = [c.category for c in group if c.source in ("pattern", "memory")]
    return patterns[-1] if patterns else group[-1].category


def _scope(group: list[Candidate]) -> str:
    if all(c.scope == "user" for c in group if c.source != "memory") and any(c.scope == "user" for c in group):
        return "user"
    agents = sorted(_agents(group))
    return "shared" if len(agents) != 1 else f"agent:{agents[0]}"


def _confidence(group: list[Candidate]) -> float:
    sessions = {s for c in group for s in c.sessions}
    return round(min(0.95, 0.5 + 0.1 * len(sessions) + 0.05 * math.log1p(len(group))), 2)


def _evidence(group: list[Candidate]) -> list[Evidence]:
    unique = {(e.session_id, e.event_index, e.note_index): e for c in group for e in c.evidence}
    return list(unique.values())[-MAX_EVIDENCE:]


def _risk(group: list[Candidate]) -> set[str]:
    return {flag for c in group for flag in c.risk}


# --- staleness -------------------------------------------------------------------------------


def _prune_stale(dream: DreamInput, current: set[str]) -> list[OperationDraft]:
    cutoff = dream.now - timedelta(days=dream.stale_after_days)
    stale = [
        m for m in dream.memories
        if m.id not in current and max(m.observed_at, m.last_read_at or m.observed_at) < cutoff
    ]
    return [
        OperationDraft(
            kind="prune", targets=[m.id], confidence=0.6,
            rationale=f"Not read or restated for over {dream.stale_after_days} days.",
        )
        for m in stale
    ]

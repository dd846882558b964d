"""What a statement claims: a subject, and the value it gives that subject.

"I'm currently on page 200" claims 200 for the subject *page*; "we moved the API to port
9090" claims 9090 for *port* (with *api* around it). When two statements claim different
values for one subject, the newer one is the current state: a dream replaces the old
entry, and `read_memory` shows only the newer statement.

A value is what a sentence can change without changing what it talks about: a number
(`200`, `3.12`, `$500`, `7:30`, `10-12`, `5th`), a number word (`five`, `twice`) or a
day of the week. Its *unit* is what the value counts — the content words right after it
("600 *followers*", "five *trips*"), or the word that names it right before ("*page*
220", "*Python* 3.12"). Everything else in the sentence is its *context*.

Two claims are about one subject when their units agree and their contexts share what
makes the subject specific: a word that is not a common unit ("followers", "Fitbit"),
or two words. A word the two contexts do *not* share does not matter in a long sentence
(people say the same thing in other words), but in a short statement a word on each
side that the other lacks names two things ("*staging* DB is Postgres 15" / "*prod* DB
is Postgres 16"), so those stay two facts. The rules err that way on purpose: a missed
supersession leaves an old value beside the new one, while a wrong one hides a true fact.

Not every number is a value. One that says *which one* ("Customer 39", "(item 5)", "#431")
is part of the subject; one that dates a single event ("last Friday", "on the 15th") or
picks from a set ("two of my friends") changes nothing. Two statements that share a value
for one named unit restate each other ("Node 20"), and one that says its subject changed
("moved", "upgraded") is not kept apart by the words it changed.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import NamedTuple

from reverie.text import STOPWORDS

# --- sentences ---------------------------------------------------------------------------

_ABBREVIATIONS = frozenset("e.g i.e etc vs dr mr mrs ms st no approx fig cf jr sr prof inc ltd".split())
# The patterns `outdated` does not use without a query are compiled when first used, by re
# (whose cache of 512 compiled patterns keeps these few): a SessionStart hook, which only
# calls `outdated`, never pays for them.
_BREAK = r"(?<=[.!?])[\"”’')\]]*\s+|\n\s*\n|\n(?=\s*(?:[-*•]|\d+[.)])\s)"


def sentences(text: str) -> list[str]:
    """Sentences of `text`, never split inside "3.11", "$1,000", "7:30", a URL or "e.g."."""
    parts, start = [], 0
    for match in re.finditer(_BREAK, text):
        if _after_abbreviation(text, match.start()) or _before_lowercase(text, match.end()):
            continue
        parts.append(text[start : match.end()].strip())
        start = match.end()
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def _after_abbreviation(text: str, end: int) -> bool:
    word = text[max(0, end - 8) : end].split()[-1:] or [""]
    return word[0].rstrip(".").lower() in _ABBREVIATIONS


def _before_lowercase(text: str, start: int) -> bool:
    # "… at 5 p.m. and then" or "approx. three": a lowercase word goes on the same sentence.
    return start < len(text) and text[start].islower()


# --- tokens and values ---------------------------------------------------------------------

_TOKEN = re.compile(
    r"\$?\d+(?:[.,:]\d+)*(?:\s?[-–]\s?\$?\d+(?:[.,:]\d+)*)?(?:st|nd|rd|th|am|pm|k|mm|%)?(?!\w|\.\d)"
    r"|[^\W\d_](?:[\w'’.+/-]*\w)?",
    re.UNICODE,
)
_NUMBER_WORDS = frozenset(
    """one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen
    sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred
    thousand million single once twice thrice third fourth fifth sixth seventh eighth ninth tenth""".split()
)
_DAYS = {d: d for d in "monday tuesday wednesday thursday friday saturday sunday".split()}
_DAYS.update({d + "s": d for d in list(_DAYS)})

# Words that never identify a subject: they come with any value. "I've been using it for
# 6 months" and "it has been 6 months" say nothing about what was used.
_FILLER = STOPWORDS | frozenset(
    """i'm i've i'd i'll we're we've it's that's don't didn't can't won't there's
    now currently current already still just yet so far lately recently today yesterday week weeks
    since ago about around almost nearly roughly over under least most more less new other different
    another some any all each every few many much lot lots total whole extra additional same great good
    really pretty quite actually way by maybe also even well how many last next been get got gotten
    make made go going went
    think thinking know say said tell told feel feeling like love want need one ones thing things time
    times day days month months year years hour hours minute minutes second seconds am pm
    moved switched changed upgraded renamed replaced raised lowered increased decreased went instead
    anymore longer within above below after per via across through between until till during behind
    beyond near inside outside toward towards upon among against without including
    """.split()
)
# Units too common to name a subject alone: "3 weeks" of what? The context must say.
_GENERIC_UNITS = frozenset(
    """time times day days week weeks month months year years hour hours minute minutes second
    seconds am pm one ones thing things people person percent bit lot point""".split()
)


def tokens(text: str) -> list[str]:
    return [t.lower().replace("’", "'").rstrip(".") for t in _TOKEN.findall(text)]


@functools.lru_cache(maxsize=1 << 16)  # a vocabulary repeats: judge each word once
def is_value(token: str) -> bool:
    return token[:1].isdigit() or token[:1] == "$" or token in _NUMBER_WORDS or token in _DAYS


@functools.lru_cache(maxsize=1 << 16)
@functools.lru_cache(maxsize=1 << 16)  # a dream stems each of a few thousand words many times
def stem(word: str) -> str:
    """A crude stem, enough to match "followers"/"follower", "trips"/"trip"."""
    word = word.removesuffix("'s")
    for suffix, keep in (("ies", "y"), ("sses", "ss"), ("ches", "ch"), ("shes", "sh"), ("xes", "x"), ("ing", ""),
                         ("ed", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            return word[: -len(suffix)] + keep
    return word


_IMPLIED_TIMES = frozenset({"once", "twice", "thrice"})
_SHAPES = frozenset({"#", "#:#", "#-#", "weekday"})


def _shape(token: str) -> str:
    """A value's kind: a time, a range or score, a day, or any other number ("$5,000", "3.12", "5th")."""
    if token in _DAYS:
        return "weekday"
    return "#:#" if ":" in token else "#-#" if "-" in token or "–" in token else "#"


_NOT_UNITS = frozenset(stem(w) for w in _FILLER - _GENERIC_UNITS)


def _value(token: str) -> str:
    """A value in a form two wordings share: "$1,000" → "1000", "Fridays" → "friday"."""
    return _DAYS.get(token) or token.lstrip("$").replace(",", "").replace(" ", "")


# --- claims ----------------------------------------------------------------------------------


# Claims and statements are NamedTuples, not dataclasses: defining a dataclass takes ~0.5 ms,
# paid by every SessionStart hook, which reads the statements it shows (`outdated`).
class Claim(NamedTuple):
    value: str
    unit: frozenset[str]      # stems naming what the value counts or is
    words: frozenset[str]     # all the statement's content stems, the unit's among them
    changes: bool = False     # the statement says something changed ("moved", "now", "upgraded")
    kind: frozenset[str] = frozenset()  # which sort of the unit: "class yoga" in "yoga classes three times a week"

    @property
    def context(self) -> frozenset[str]:
        return self.words - self.unit


def claims(text: str) -> list[Claim]:
    """The values a statement gives, each with its unit and context."""
    found = tokens(_IDENTIFIER.sub(_joined, text) if _DIGIT.search(text) else text)
    values = [is_value(t) for t in found]
    if not any(values):
        return []  # most statements: nothing more to read
    content = frozenset(stem(t) for t, value in zip(found, values, strict=True)
                        if not value and len(t) > 1 and t not in _FILLER)
    changes = not _CHANGE_WORDS.isdisjoint(found)
    result = []
    for i, token in enumerate(found):
        if values[i] and not _when_or_which(found, i):
            unit = _unit(found, i)
            result.append(Claim(_value(token), unit, content | unit, changes, _kind(found, i)))
    return result


_CHANGE_WORDS = frozenset(
    "now moved switched changed upgraded downgraded renamed replaced raised lowered increased decreased "
    "bumped migrated instead anymore".split())


_DIGIT = re.compile(r"\d")
_EVENT_DAY = frozenset("last this next yesterday past coming".split())
_MONTHS = frozenset("january february march april may june july august september october november december".split())


def _when_or_which(found: list[str], i: int) -> bool:
    """A value that dates one event or picks from a set, not a state that can change: "last
    Friday", "on the 15th", "May 3", "two of my friends"."""
    before = found[i - 1] if i else ""
    after = found[i + 1] if i + 1 < len(found) else ""
    if found[i] in _DAYS and not found[i].endswith("s"):
        return before in _EVENT_DAY or after in ("night", "morning", "afternoon", "evening")
    if found[i][:1].isdigit() and found[i][-2:] in ("st", "nd", "rd", "th"):
        return before in ("the", "of") or before in _MONTHS
    return (after == "of" and found[i] in _NUMBER_WORDS) or before in _MONTHS


# A number that says *which one* rather than how many: "(item 5)", "#431", or a name
# that opens the statement ("Customer 39 is on the Pro plan"). It is part of the subject:
# joined into one word, it tells "Customer 0" and "Customer 39" apart instead of making
# 39 the new value of 0.
_IDENTIFIER = re.compile(r"(?:(?<=\()|(?<=^)|(?<=[.!?;“\"]\s)|(?<=[“\"]))\s*([A-Za-z][\w-]*)\s+#?(\d+)\b(?![.,:]\d)"
                         r"|#(\d+)\b")


def _joined(match: re.Match) -> str:
    noun, number, hashed = match.groups()
    if noun and noun.lower() in _FILLER:
        return match.group(0)  # "With 30 dozen eggs": a preposition names nothing
    return f"{noun}_{number}" if noun else f"no_{hashed}"


def _unit(found: list[str], i: int) -> frozenset[str]:
    """The content word right after the value (two when the first only describes: "15 signed
    baseballs"), or the one naming it right before ("page 220", "Python 3.12")."""
    words = [_shape(found[i])] if not found[i][:1].isalpha() or found[i] in _DAYS else []
    for token in found[i + 1 : i + 4]:
        if token in STOPWORDS or is_value(token):
            break
        words.append(stem(token))
    words += [stem(t) for t in _named_by(found, i)]
    if found[i] in _IMPLIED_TIMES:
        words.append("time")
    return frozenset(words) - _NOT_UNITS


def _named_by(found: list[str], i: int) -> list[str]:
    """The word before a value that names it: "page 220", "class on Thursday"."""
    at = _naming(found, i)
    return [found[at]] if at is not None else []


def _naming(found: list[str], i: int) -> int | None:
    for at in range(i - 1, max(0, i - 3) - 1, -1):
        if is_value(found[at]):
            return None
        if found[at] not in _FILLER:
            return at
    return None


def _kind(found: list[str], i: int) -> frozenset[str]:
    """Which sort of its unit a value counts, as "noun modifier": "class yoga" in "yoga classes,
    three times a week", "len zoom" in "a 70-200mm zoom lens". Only a modifier in its plain
    form (not "runs", "signed"), so a verb before the unit names no sort."""
    after = []
    for token in found[i + 1 : i + 4]:
        if token in _FILLER or is_value(token):
            break
        after.append(token)
    at = _naming(found, i)
    if at is None:
        noun, modifiers = (after[-1], after[:-1]) if after else ("", [])
    else:  # named before the value: what follows it is something else ("PostgreSQL 16 (cluster pg-2)")
        noun, modifiers = found[at], [found[at - 1]] if at > 0 else []
    return frozenset(f"{stem(noun)} {w}" for w in modifiers if w.isalpha() and stem(w) == w and w not in _FILLER)


def _sorts_apart(a: Claim, b: Claim) -> bool:
    """The same noun of two different sorts: yoga classes and art classes. Nouns that differ
    ("backup window" / "run nightly") say nothing of sorts."""
    nouns = {k.split()[0] for k in a.kind}
    return bool(a.kind and b.kind) and a.kind.isdisjoint(b.kind) and nouns == {k.split()[0] for k in b.kind}


def same_subject(a: Claim, b: Claim, short: bool = False, asked: frozenset[str] = frozenset()) -> bool:
    """Do two claims give a value to one subject?

    `short`: both come from brief statements, where a word only one side has names a
    different thing. `asked`: the words of the question being answered; a unit it names
    is the subject asked about, so the claims need share nothing else.
    """
    unit = a.unit & b.unit
    if not unit or (unit <= _SHAPES and a.unit - _SHAPES and b.unit - _SHAPES):
        return False  # nothing in common, or only a shape: "4 engineers" and "5 people" count two things
    if _sorts_apart(a, b) and not asked & _SORT_WORDS:
        return False  # yoga classes and art classes; unless the sort is what is asked ("what type of lens")
    shared = (a.words & b.words) - unit
    a_only, b_only = (a.words - b.words, b.words - a.words) if short else (a.context - b.context, b.context - a.context)
    if not (a.changes or b.changes) and _qualified_apart(a_only - _SHAPES, b_only - _SHAPES, shared, short):
        return False
    specific = {u for u in unit - _GENERIC_UNITS if u not in _SHAPES}
    if unit & asked or (shared & asked and specific):
        return True
    return bool(specific and shared) or len(shared) >= 2 or (bool(specific) and short)


_SORT_WORDS = frozenset({"type", "kind", "sort", "brand", "model", "make", "variety", "style"})


def _qualified_apart(a_only: frozenset[str], b_only: frozenset[str], shared: frozenset[str], short: bool) -> bool:
    """Each side names something the other does not, in statements otherwise alike:
    "*Production* API rate limit: 600" / "*Sandbox* API rate limit: 60" are two limits,
    and "Customer 0" / "Customer 7" two customers however much else they share."""
    if not (a_only and b_only):
        return False
    return short or len(shared) >= 3 * max(len(a_only), len(b_only)) or bool(_which(a_only) and _which(b_only))


def _which(words: frozenset[str]) -> set[str]:
    """The identifiers among `words`: as `_joined` writes them ("customer_7", "no_431"), or
    names mixing letters and digits ("d5600", "f9c2a1b")."""
    return {w for w in words if _NAMED_BY_NUMBER.search(w)}


_NAMED_BY_NUMBER = re.compile(r"_\d+$|[a-z]\d|\d[a-z]")


# --- statements over time -------------------------------------------------------------------

SHORT = 6  # content words: a statement this brief says one thing, so every word counts


class Stated(NamedTuple):
    claims: tuple[Claim, ...]
    short: bool


@functools.lru_cache(maxsize=1 << 15)  # recall judges the same entries and notes on every read
def stated(text: str) -> Stated:
    found = claims(_AS_OF.sub("", unquoted(text)))
    size = len({w for c in found[:1] for w in c.context | c.unit})
    return Stated(tuple(found), size <= SHORT)


_SAID = re.compile(r"^The user said: “(.*)”$", re.S)
# "(as of 2024-03-15)": when a model-written statement was true (`engines.guidance`). It dates
# the statement, which `outdated` and the dreams order by their own times; its digits are
# no value of the subject, and read as one they would make "page 220 (as of …)" disagree
# with any other dated statement sharing two words.
_AS_OF = re.compile(r"\s*\(?\bas of \d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2})?\)?", re.I)


def unquoted(text: str) -> str:
    """The user's own words of an entry that quotes them ("The user said: “…”", as the
    heuristic dream writes a statement), so the framing never counts as context."""
    match = _SAID.match(text)
    return match.group(1) if match else text


_LABEL = r"^\s*([A-Za-z][\w '()/.-]{0,50}?):\s+\S"  # compiled when first used, as `_BREAK` is
_PERSONAL = r"(?i)\b(?:i|me|my|we|us|our|you|your)\b"
MAX_LABEL_WORDS = 5  # "Python version for the project" is a label; a longer lead-in is a sentence


def label(text: str) -> str | None:
    """The short label a statement opens with ("Team database: PostgreSQL 16" → "Team
    database"), which names its subject; None when there is none. Not a time (17:00), a URL,
    a quoted error message, or a lead-in ("Quick brain dump for you: …")."""
    match = re.match(_LABEL, unquoted(text))
    if match is None or re.search(_PERSONAL, match.group(1)) or len(match.group(1).split()) > MAX_LABEL_WORDS:
        return None
    return match.group(1)


def disagree(new: Stated, old: Stated, asked: frozenset[str] = frozenset()) -> bool:
    """Does `new` give a subject values `old` never gives it?

    Not when the two share a value for it: "4 engineers, plus Rachel: 5 people" beside "5
    engineers" lists two values and replaces neither, and "03:30 UTC (moved off 02:00)"
    already holds what "the backup is at 03:30" says.
    """
    short = new.short and old.short
    for o in old.claims:
        now = {n.value for n in new.claims if same_subject(n, o, short, asked)}
        # The values `old` gives the subject are read only when `new` gives it some: most pairs share none.
        if now and not now & {c.value for c in old.claims if c is o or same_subject(c, o, short, asked)}:
            return True
    return False


def related(a: Stated, b: Stated) -> bool:
    """Do two statements give a value to one subject (the same value or not)?"""
    short = a.short and b.short
    return any(same_subject(x, y, short) or _restates(x, y, short) for x in a.claims for y in b.claims)


def _restates(a: Claim, b: Claim, short: bool) -> bool:
    """The same value for the same named unit: "on Node 20" beside "runs on Node 20 with
    pnpm", "runs at 03:30 UTC" beside "window: 03:30 UTC" — unless each names something
    the other does not ("Customer 0 … in 1 copy" / "Customer 7 … in 1 copy")."""
    if a.value != b.value or not (a.unit & b.unit) - _SHAPES - _GENERIC_UNITS:
        return False
    return not _qualified_apart(a.context - b.context, b.context - a.context, (a.words & b.words) - a.unit, False)


def outdated(statements: Sequence[tuple[str, datetime]], query: str | None = None) -> set[int]:
    """Indexes of the statements that give some subject a value a newer statement replaces.

    A statement's time may be any sortable key (say, time then turn index); two with equal
    keys have no order between them, so neither replaces the other.
    With a `query`, only subjects the query asks about count: a reader asking about pages
    read wants the newest page, and nothing else the excerpts mention is judged.
    """
    if query is not None and re.search(_EARLIER, query):
        return set()  # "my previous best", "in the first three months": the old value is the answer
    asked = _asked(query)
    parsed = [_about(stated(text), asked) for text, _ in statements]
    stale = set()
    for old, rivals in _sharing_a_unit(parsed).items():
        if any(statements[new][1] > statements[old][1] and disagree(parsed[new], parsed[old], asked or frozenset())
               for new in rivals):
            stale.add(old)
    return stale


_EARLIER = (r"(?i)\b(?:previous|previously|earlier|before|first|initially|originally|used to|at first|at the start|"
            r"when i (?:just )?started|old|former|formerly|last time|prior)\b")  # compiled when first used (`_BREAK`)


def _sharing_a_unit(parsed: Sequence[Stated]) -> dict[int, set[int]]:
    """For each statement, the others with a claim that may be of a subject of one of its own:
    only they can disagree. That is `same_subject`'s first test: the two claims share a unit
    other than a shape, or share a shape and one of them has no other unit. Nearly every
    number has the shape `#`, so without the test every statement with one would be judged
    against every other."""
    by_unit: dict[str, set[int]] = {}  # a named unit, or a shape: the statements with a claim of it
    only_shapes: dict[str, set[int]] = {}  # a shape: the statements with a claim of no other unit
    for i, statement in enumerate(parsed):
        for claim in statement.claims:
            for unit in claim.unit:
                by_unit.setdefault(unit, set()).add(i)
            if claim.unit <= _SHAPES:
                for shape in claim.unit:
                    only_shapes.setdefault(shape, set()).add(i)
    rivals: dict[int, set[int]] = {}
    for unit, group in by_unit.items():
        _pair(rivals, only_shapes.get(unit, set()) if unit in _SHAPES else group, group)
    return rivals


def _pair(rivals: dict[int, set[int]], these: set[int], those: set[int]) -> None:
    """Make each of `these` a rival of each of `those`, and the other way round."""
    for i in these:
        rivals.setdefault(i, set()).update(those - {i})
    for i in those:
        rivals.setdefault(i, set()).update(these - {i})


def _asked(query: str | None) -> frozenset[str] | None:
    if query is None:
        return None
    return frozenset(stem(t) for t in tokens(query) if t not in _FILLER and not is_value(t))


def _about(statement: Stated, asked: Iterable[str] | None) -> Stated:
    if asked is None:
        return statement
    asked = frozenset(asked)
    kept = tuple(c for c in statement.claims if c.unit & asked or len(c.context & asked) >= 2)
    return Stated(kept, statement.short)

"""Checking that a dream's replacement of an entry follows the rules the offline engine keeps.

An `update` archives its targets and puts its content in their place, and so does a
`merge` whose content gives a subject another value than a target does. The offline
engine only does that when one subject's *newest* statement, by session and turn time,
gives it a new value (`claims`, `engines.statements`). A model-written dream (the
`anthropic` engine, an `agent` brief's answer) is held to the same two rules here, for
every engine alike, so that auto mode never applies a replacement that breaks them:

- `older_than_target`: the newest evidence the operation cites was said before the entry
  it replaces was last seen (its `observed_at`, or a later turn of its own evidence among
  the reviewed sessions). An older statement is history, not news: "I'm on page 180"
  from last month does not replace "on page 220" from last week.
- `unrelated_update`: the update's content is not recognisably about the subject of each
  entry it archives. When both give a value, `claims.related` decides, as for the offline engine,
  so a near miss (the staging database's version replacing production's) is caught.
  Otherwise the two must share words: two words, or one word where one side has at most
  one word the other lacks ("the team uses npm" / "we switched from npm to pnpm"); one
  word in common beside two each that the other lacks names two things ("Alice owns
  billing" / "Bob owns search").

Both are flags, never repairs: the operation is stored as the engine wrote it and waits
for a person, who may know that "switch me to the light theme" does replace "I like dark
mode" though no word says so. A turn's time is its timestamp, else its session's start;
a note's is its session's start (when it was written down is when it was logged, which
says nothing of when it was true). Two equal times have no order, so neither is older.
Evidence outside the reviewed sessions has no time here; an operation none of whose
evidence has one is not judged by time (`low_evidence` covers one that cites nothing).
"""

from __future__ import annotations

from datetime import datetime

from reverie import claims
from reverie.clock import as_utc
from reverie.models import Evidence, Memory, OperationDraft, SessionRecord
from reverie.text import STOPWORDS

# Words that come with any change or preference, whatever it is about: "we *switched* to",
# "the *user* *now* *prefers*". Sharing them says nothing of a shared subject.
_ANY_SUBJECT = frozenset(
    """user users now currently current still anymore longer new instead please actually always never
    use uses used using prefer prefers preferred like likes want wants wanted switch switched moved changed
    upgraded renamed replaced raised lowered increased decreased retired""".split()
)


def supersession_risks(
    draft: OperationDraft, current: dict[str, Memory], reviewed: dict[str, SessionRecord]
) -> set[str]:
    """The flags `draft` earns as a replacement of its targets (none for other kinds)."""
    content = draft.content or ""
    if draft.kind not in ("update", "merge") or not content.strip():
        return set()
    targets = [current[t] for t in draft.targets if t in current]
    replaced = targets if draft.kind == "update" else [t for t in targets if _changes_value(content, t.content)]
    risks = set()
    said = _said_at(draft, targets, reviewed)
    if said is not None and any(said < _seen_at(t, reviewed) for t in replaced):
        risks.add("older_than_target")
    if draft.kind == "update" and not all(about_the_same(content, t.content) for t in targets):
        risks.add("unrelated_update")
    return risks


def _changes_value(content: str, old: str) -> bool:
    return claims.disagree(claims.stated(content), claims.stated(old))


# --- time -------------------------------------------------------------------------------------


def evidence_time(evidence: Evidence, reviewed: dict[str, SessionRecord]) -> datetime | None:
    """When the cited turn or note was said, or None when it is not among `reviewed`."""
    session = reviewed.get(evidence.session_id)
    if session is None:
        return None
    if evidence.event_index is not None:
        event = next((e for e in session.events if e.index == evidence.event_index), None)
        if event is None:
            return None
        return as_utc(event.timestamp) if event.timestamp else as_utc(session.started_at)
    if evidence.note_index is not None and any(n.index == evidence.note_index for n in session.notes):
        return as_utc(session.started_at)
    return None


def _said_at(draft: OperationDraft, targets: list[Memory], reviewed: dict[str, SessionRecord]) -> datetime | None:
    """The newest time behind the new content: its cited evidence, and a target it repeats word
    for word (a merge keeping the newest entry's text rests on that entry, whose evidence
    lies in sessions already consolidated)."""
    times = [t for e in draft.evidence if (t := evidence_time(e, reviewed)) is not None]
    times += [as_utc(m.observed_at) for m in targets if _same_text(m.content, draft.content or "")]
    return max(times, default=None)


def _seen_at(memory: Memory, reviewed: dict[str, SessionRecord]) -> datetime:
    times = [t for e in memory.evidence if (t := evidence_time(e, reviewed)) is not None]
    return max([as_utc(memory.observed_at), *times])


def _same_text(a: str, b: str) -> bool:
    return " ".join(a.casefold().split()) == " ".join(b.casefold().split())


# --- subject ----------------------------------------------------------------------------------


def about_the_same(new: str, old: str) -> bool:
    """Is `new` about what `old` is about, by the claims rules or, without values, by words?"""
    a, b = claims.stated(new), claims.stated(old)
    labels = {_label(new), _label(old)}
    if claims.related(a, b) or len(labels) == 1 and None not in labels:
        return True  # "Team database: MySQL 8" is about "Team database: PostgreSQL 14"
    if None not in labels:
        return False  # "Primary database host: …" and "Replica database host: …" are two facts
    new_words, old_words = _content(new), _content(old)
    shared = new_words & old_words
    if a.claims and b.claims:
        # Values the claims rules keep apart are two facts when each statement names something
        # the other does not (the *staging* DB / the *prod* DB); one only reworded ("runs on" /
        # "uses"), or naming the old value beside its own ("on Thursdays instead of Tuesdays"),
        # is still about the same thing.
        new_values, old_values = {c.value for c in a.claims}, {c.value for c in b.claims}
        reworded = not (new_words - old_words and old_words - new_words)
        return bool(shared) and (reworded or bool(new_values & old_values and new_values - old_values))
    return len(shared) >= 2 or bool(shared) and min(len(new_words - old_words), len(old_words - new_words)) <= 1


def _content(text: str) -> frozenset[str]:
    return frozenset(claims.stem(t) for t in claims.tokens(text)
                     if len(t) > 1 and t not in STOPWORDS and t not in _ANY_SUBJECT and not claims.is_value(t))


def _label(text: str) -> frozenset[str] | None:
    """The words of a short label before ": " ("Team database: …"), or None."""
    found = claims.label(text)
    return _content(found) or None if found else None

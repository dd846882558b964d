"""Trust by provenance: what in the reviewed sessions an operation's text came from.

A session's transcript has three kinds of author. The user speaks in user turns; tools
and the web speak in tool turns (a fetched page, a ticket, an error: whoever controls
that data); the agent speaks in assistant turns and notes. What a session read from
tools *taints* what the agent wrote after it in that session, because an agent that read
"send the keys to …" may repeat it, reworded or translated. So, for the operations of any
engine (`risks`, called from the one gate in `service.dreams`):

- `tainted`: the text shares unusual words or a phrase with tool output of the reviewed
  sessions (words the user never used: an address, a file name, a rare term — what a
  paraphrase or a translation keeps), whatever it cites; or it rests on tainted text
  (tool output, or the agent's words after a tool read) and is not a plain fact.
- `imperative`: an instruction, rule or workflow (anything `effect.plain_fact` does not
  recognise, in any language) that the user did not say in their own words. A single
  note — or any number of them — is enough only for a plain fact.
- `names_destination`: it names an address, URL, IP address or credential file, or a host
  or path that tool output gave (`_destination`); unless the user said it in so many
  words, it waits for a person.

The user is trusted: what the user said in a user turn, and the operation repeats in
the user's words (`user_said`), is neither tainted nor an order someone else gave, and
an address the user named is theirs. (Text the user *pasted* counts as theirs too; the
pattern checks of `safety.instruction_like` still read it.) All checks read `confusables.skeleton` text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from reverie.confusables import skeleton
from reverie.effect import ALWAYS, destinations, plain_fact
from reverie.models import Evidence, OperationDraft, SessionRecord
from reverie.text import STOPWORDS, is_number, words

__all__ = ["Provenance", "risks"]

PHRASE = 3           # words in a row shared with tool output that make a phrase copied from it
RARE_LENGTH = 8      # a plain word this long, from tool output and never said by the user, is unusual
RARE_SHARED = 2      # plain unusual words shared with tool output that show copying (an address alone does)
USER_COVERAGE = 0.6  # share of an operation's words the cited user turns must hold to be the user's own
# Words an engine wraps around what the user said ("The user said: …"): not the user's words.
_FRAME = frozenset("user said says the".split())
_ADDRESS = re.compile(r"[@/:]|[a-z]\.[a-z]")  # an email, path, URL or host name inside a word


def _tokens(text: str) -> list[str]:
    return words(skeleton(text))


def _pieces(tokens: Iterable[str]) -> set[str]:
    """Tokens and their parts: "5432/shop" said by the user also says "5432" and "shop"."""
    found = set(tokens)
    return found | {p for t in found for p in re.split(r"[./_+@:-]", t) if p}


def _unusual(token: str) -> bool:
    """An address, version or identifier, or a long word: what copying carries along (not a number)."""
    return not is_number(token) and (not token.isalpha() or len(token) >= RARE_LENGTH)


def _phrases(tokens: list[str]) -> set[tuple[str, ...]]:
    return {tuple(tokens[i : i + PHRASE]) for i in range(len(tokens) - PHRASE + 1)}


def _telling_phrases(tokens: list[str], unsaid: set[str]) -> Iterable[tuple[str, ...]]:
    """The phrases of `tokens` that tell of copying: two content words the user never said
    (`unsaid`) among their PHRASE words (written for three). Most windows hold fewer and are
    never built.

    A dream reads ~500k words of tool output, too many to test window by window in Python:
    one byte per word (1: unsaid) read as an integer, shifted by one and two words and
    combined, marks every window holding two such words at once, and only those are read.
    """
    marks = bytes(map(unsaid.__contains__, tokens))
    bits = int.from_bytes(marks, "little")
    second, third = bits >> 8, bits >> 16  # each window's second and third word, at its first word's place
    starts = ((bits & second) | (bits & third) | (second & third)).to_bytes(len(marks), "little")
    last = len(tokens) - PHRASE
    at = starts.find(1)
    while 0 <= at <= last:
        phrase = tuple(tokens[at : at + PHRASE])
        if len(unsaid.intersection(phrase)) >= 2:  # not one word twice
            yield phrase
        at = starts.find(1, at + 1)


class Provenance:
    """What the reviewed sessions' tools said that the user never did, and who wrote what when."""

    _last: tuple[tuple, Provenance] | None = None

    @classmethod
    def of(cls, sessions: Iterable[SessionRecord]) -> Provenance:
        """The provenance of `sessions`, reused when the last one asked for was of the very same
        session objects: a dream's engine and its gate both ask, and building it reads every
        output. Objects, not ids: another file's sessions may share ids and lengths. The
        memo holds them, so no later object can take a remembered one's id()."""
        sessions = list(sessions)
        key = tuple(id(s) for s in sessions)
        if cls._last is None or cls._last[0] != key:
            cls._last = (key, cls(sessions))
        return cls._last[1]

    def __init__(self, sessions: Iterable[SessionRecord]):
        self.sessions = {s.id: s for s in sessions}
        self.said = _pieces(t for s in self.sessions.values() for e in s.events if e.role == "user"
                            for t in _tokens(e.content))
        self.outputs = outputs = [_tokens(e.content) for s in self.sessions.values() for e in s.events
                                  if e.role == "tool"]
        # Judged once per distinct word, not per occurrence: a dream reads thousands of outputs.
        vocabulary = set().union(*outputs) - self.said - STOPWORDS
        self._marks = {t for t in vocabulary if _unusual(t)}
        self._phrases = {p for output in outputs for p in _telling_phrases(output, vocabulary)}

    def copied_marks(self, text: str) -> set[str]:
        """The unusual words of `text` that tool output holds and the user never said."""
        return self._marks.intersection(_tokens(text))

    def derived(self, text: str) -> bool:
        """Does `text` share an address, two unusual words or a phrase with tool output?"""
        marks = self.copied_marks(text)
        if any(_ADDRESS.search(m) for m in marks) or len(marks) >= RARE_SHARED:
            return True
        return bool(self._phrases & _phrases(_tokens(text)))

    def tainted(self, evidence: Evidence) -> bool:
        """Did a tool, or the agent after reading one, write the cited text?"""
        session = self.sessions.get(evidence.session_id)
        if session is None:
            return False  # outside the reviewed sessions: `low_evidence` and review judge it
        tools = [e for e in session.events if e.role == "tool"]
        if evidence.note_index is not None:
            note = next((n for n in session.notes if n.index == evidence.note_index), None)
            # A turn without a time may have come before the note: count it, to be safe.
            return note is not None and any(e.timestamp is None or e.timestamp <= note.created_at for e in tools)
        event = next((e for e in session.events if e.index == evidence.event_index), None)
        if event is None or event.role == "user":
            return False
        return event.role == "tool" or any(e.index < event.index for e in tools)

    def user_said(self, draft: OperationDraft) -> bool:
        """Do the user turns it cites hold most of its words: is it the user's own statement?"""
        mine = {t for t in _tokens(draft.content or "") if t not in STOPWORDS and t not in _FRAME}
        theirs = _pieces(t for e in draft.evidence for t in _tokens(self._user_turn(e)))
        return bool(mine and theirs) and len(mine & theirs) >= USER_COVERAGE * len(mine)

    def _user_turn(self, evidence: Evidence) -> str:
        session = self.sessions.get(evidence.session_id)
        if session is None or evidence.event_index is None:
            return ""
        return next((e.content for e in session.events if e.index == evidence.event_index and e.role == "user"), "")

    def corroborated(self, draft: OperationDraft) -> bool:
        """Restated in two or more sessions that read no tool output in common.

        An injected order has one source, read again wherever it is read; a rule the agent
        learned by doing recurs after different outputs. A session logged twice, or one page
        fetched in both, is one source.
        """
        cited = {e.session_id for e in draft.evidence if e.session_id in self.sessions}
        reads = [{e.content for e in self.sessions[sid].events if e.role == "tool"} for sid in cited]
        return len(reads) >= 2 and not set.intersection(*reads)


def risks(draft: OperationDraft, provenance: Provenance) -> set[str]:
    """The provenance and effect flags of `draft`'s text (none for an op without text)."""
    content = draft.content or ""
    if not content.strip():
        return set()
    fact, own = plain_fact(content), provenance.user_said(draft)
    vouched = fact or own or provenance.corroborated(draft)
    flags = set()
    if provenance.derived(content) or not vouched and any(map(provenance.tainted, draft.evidence)):
        flags.add("tainted")
    if not vouched:
        flags.add("imperative")
    if not own and _destination(content, fact, provenance):
        flags.add("names_destination")
    return flags


def _destination(content: str, fact: bool, provenance: Provenance) -> bool:
    """Where data may go or come from, unless it is a host or path the user's systems are known by.

    An email address, a URL, an IP address and a credential file always wait. A host name or
    path in a plain fact waits only when tool output gave it and the user never named it:
    "Primary database host: db-primary.internal" from the agent is configuration, the same
    host lifted from a fetched page is a destination someone else chose.
    """
    kinds = set(destinations(content))
    if kinds & ALWAYS or kinds and not fact:
        return True
    return bool(kinds) and any(_ADDRESS.search(m) for m in provenance.copied_marks(content))

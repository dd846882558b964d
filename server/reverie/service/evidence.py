"""Checking what a dream cites against what was actually said.

An operation's evidence names a session and a turn (event) or note, with a quote. For
operations the client's own model submits, every citation must exist among the sessions
the brief showed and every quote must be found in the cited text: a model that invents
evidence is told exactly which citation failed, and nothing is stored. For every engine,
an operation whose evidence is only tool output is flagged `from_tool_output`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable

from reverie import config
from reverie.confusables import skeleton
from reverie.models import Evidence, Memory, OperationDraft, SessionRecord
from reverie.safety import quoted_in
from reverie.text import STOPWORDS, shorten, words

MAX_OPERATIONS = 200


def cited_text(evidence: Evidence, session: SessionRecord) -> str | None:
    """The turn or note a citation points at, or None when it does not exist."""
    if evidence.note_index is not None:
        found = [n.content for n in session.notes if n.index == evidence.note_index]
    elif evidence.event_index is not None:
        found = [e.content for e in session.events if e.index == evidence.event_index]
    else:
        return None
    return found[0] if found else None


def citation_problem(evidence: Evidence, sessions: dict[str, SessionRecord]) -> str | None:
    session = sessions.get(evidence.session_id)
    if session is None:
        return f"session {evidence.session_id!r} is not one of the brief's sessions"
    text = cited_text(evidence, session)
    where = f"note {evidence.note_index}" if evidence.note_index is not None else f"event {evidence.event_index}"
    if text is None:
        return f"{evidence.session_id} has no {where} (give event_index or note_index that exists)"
    if evidence.quote and not quoted_in(evidence.quote, text):
        return f"the quote is not in {evidence.session_id} {where}; copy it exactly"
    return None


def operation_problems(op: OperationDraft, sessions: dict[str, SessionRecord], current: dict[str, Memory]) -> list[str]:
    problems = [f"target {t!r} is not an active memory entry" for t in op.targets if t not in current]
    if op.kind != "add" and not op.targets:
        problems.append(f"a {op.kind} needs targets (the entry ids it replaces)")
    if op.kind != "prune" and not (op.content or "").strip():
        problems.append(f"a {op.kind} needs content")
    if op.scope and not config.SCOPE.fullmatch(op.scope):
        problems.append(f"scope {op.scope!r} is not 'shared', 'user', 'agent:<id>' or 'project:<key>'")
    if len(op.content or "") > config.MAX_OPERATION_CHARS:
        problems.append(f"content is longer than {config.MAX_OPERATION_CHARS} characters")
    if op.kind in ("add", "update") and not op.evidence:
        problems.append("cite at least one piece of evidence")
    problems += [p for e in op.evidence if (p := citation_problem(e, sessions))]
    return problems


def submission_problems(
    drafts: list[OperationDraft], sessions: dict[str, SessionRecord], current: dict[str, Memory]
) -> list[str]:
    if not drafts:
        return ["operations is empty: submit at least one operation, or let the brief expire"]
    if len(drafts) > MAX_OPERATIONS:
        return [f"{len(drafts)} operations; at most {MAX_OPERATIONS} per proposal"]
    return [f"operation {i + 1}: {p}" for i, op in enumerate(drafts) for p in operation_problems(op, sessions, current)]


def with_quotes(op: OperationDraft, sessions: dict[str, SessionRecord]) -> OperationDraft:
    """Fill in quotes the submitter left empty, from the cited text."""
    filled = [
        e if e.quote else e.model_copy(update={"quote": shorten(cited_text(e, sessions[e.session_id]) or "")})
        for e in op.evidence
    ]
    return op.model_copy(update={"evidence": filled})


class ToolOutputs:
    """Every tool output of the reviewed sessions, indexed by word, to tell copies of one apart.

    A model can copy an injected instruction out of a fetched page and cite a harmless turn
    for it; comparing the text itself with every tool output catches that laundering.
    """

    def __init__(self, outputs: Iterable[Iterable[str]]):
        """`outputs`: each tool output's words (`provenance.Provenance.outputs` reads them once for both)."""
        self._words = [set(output) - STOPWORDS for output in outputs]
        self._index: dict[str, list[int]] = defaultdict(list)
        for number, output in enumerate(self._words):
            for word in output:
                self._index[word].append(number)

    def copied(self, text: str, share: float = 0.7) -> bool:
        """Do most of `text`'s words (five or more) appear in one tool output?"""
        mine = _content_words(text)
        if len(mine) < 5:
            return False
        need = math.ceil(share * len(mine))
        # An output holding `need` of these words holds one of the rarest len - need + 1:
        # only outputs met through those are compared, not every output with a common word.
        rarest = sorted(mine, key=lambda word: len(self._index.get(word, ())))[: len(mine) - need + 1]
        candidates = set().union(*(self._index.get(word, ()) for word in rarest))
        return any(len(mine & self._words[number]) >= need for number in candidates)


def _content_words(text: str) -> set[str]:
    return {w for w in words(skeleton(text)) if w not in STOPWORDS}


def from_tool_output(op: OperationDraft, sessions: dict[str, SessionRecord], outputs: ToolOutputs) -> bool:
    """True when the op rests on tool output: its text or a cited note copies one, or it cites only tool turns."""
    known = [(e, sessions[e.session_id]) for e in op.evidence if e.session_id in sessions]
    roles = [
        event.role for e, session in known if e.event_index is not None
        for event in session.events if event.index == e.event_index
    ]
    notes = [cited_text(e, s) for e, s in known if e.note_index is not None]
    if outputs.copied(op.content or "") or any(text and outputs.copied(text) for text in notes):
        return True
    return bool(roles) and not notes and all(role == "tool" for role in roles)

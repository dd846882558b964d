"""Checking a model-written operation against what the reviewed sessions actually say.

One check for every path a model writes operations by: the `anthropic` engine runs it on
its reduce answer (a failing operation goes back to the model once, with these problems,
and is dropped and reported if it fails again), and `service.dreams.submit` runs it on
what an `agent` brief's reader submits (refused with these problems, nothing stored).

- Every citation names a session the dream reviewed and a turn or note of it that exists.
- Every quote is found in the cited text, ignoring case and whitespace (`safety.quoted_in`:
  a quote across the lines of an indented tool output matches). A quote is never
  "repaired": evidence is exactly what the model claimed, or the operation is refused.
- Targets are ids of entries the model was shown; an add has none, every other kind some.
- Sizes and scopes are the store's.

Pure functions of the models: engines and the service both import this.
"""

from __future__ import annotations

from collections.abc import Collection

from reverie import config
from reverie.models import Evidence, OperationDraft, SessionRecord
from reverie.safety import quoted_in
from reverie.text import shorten

SHOWN_CHARS = 300  # how much of a cited turn a refusal shows, so the model can quote it right


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
        return f"session {evidence.session_id!r} is not one of the reviewed sessions"
    text = cited_text(evidence, session)
    where = f"note {evidence.note_index}" if evidence.note_index is not None else f"event {evidence.event_index}"
    if text is None:
        return f"{evidence.session_id} has no {where} (give event_index or note_index that exists)"
    if evidence.quote and not quoted_in(evidence.quote, text):
        # The cited text goes back with the refusal: a reader that saw only a candidate's
        # summary (the reduce step) can quote it right on the retry.
        return (f"the quote “{shorten(evidence.quote, 120)}” is not in {evidence.session_id} {where}, which says "
                f"“{shorten(text, SHOWN_CHARS)}”; copy a few words of it exactly")
    return None


def operation_problems(op: OperationDraft, sessions: dict[str, SessionRecord], current: Collection[str]) -> list[str]:
    """What is wrong with `op`, each a sentence the model that wrote it can act on."""
    problems = [f"target {t!r} is not an active memory entry (use an id listed under Current memory)"
                for t in op.targets if t not in current]
    if op.kind == "add" and op.targets:
        problems.append("an add has no targets (it archives nothing); use update to replace an entry")
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

"""What the heuristic engine reads out of sessions: memory candidates with their evidence.

- notes the agent wrote down (explicit: one is enough to propose an entry);
- what the user stated in plain turns: facts with a value, preferences, standing
  instructions (see `statements`);
- tool errors with the same signature in two or more sessions (pitfalls);
- tool sequences shared by two or more successful sessions (workflows);
- and the current memories, so new candidates are compared with what is known.

Every candidate remembers where it came from. A pitfall, built from tool errors, carries
`from_tool_output`, because tool output is written by whoever controls the tool's data,
not by the user or the agent; a note or statement that copies tool output is flagged by
the service (`evidence.ToolOutputs`), the same for every engine.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from reverie.engines import statements
from reverie.models import Category, Event, Evidence, Memory, SessionRecord
from reverie.text import shorten

Source = Literal["memory", "note", "statement", "pattern"]

MIN_SESSIONS = 2
WORKFLOW_LENGTHS = range(3, 7)


@dataclass
class Candidate:
    text: str
    category: Category
    source: Source
    observed_at: datetime
    agents: frozenset[str]
    sessions: frozenset[str]
    evidence: list[Evidence]
    risk: set[str] = field(default_factory=set)
    memory: Memory | None = None
    scope: str | None = None
    correction: bool = False  # "actually, …": it replaces what it corrects
    leaves: frozenset[str] = frozenset()  # old values its sentence names as left behind
    copied: bool = False  # holds words tool output gave and the user never said (`provenance`)


def from_memory(memory: Memory) -> Candidate:
    agent = memory.scope.removeprefix("agent:") if memory.scope.startswith("agent:") else None
    return Candidate(
        text=memory.content, category=memory.category, source="memory", observed_at=memory.observed_at,
        agents=frozenset({agent} if agent else ()), sessions=frozenset(memory.sources),
        evidence=list(memory.evidence), memory=memory, scope=memory.scope,
    )


# --- notes ----------------------------------------------------------------------------

# What a note *is*: a failure it describes or a warning it opens with is a pitfall; a
# "don't" in the middle of a sentence ("we still don't know") is not.
_CATEGORY_CUES: list[tuple[Category, re.Pattern]] = [
    ("pitfall", re.compile(r"\b(fails?|failed|failing|errors?|exception|broken|breaks|crash(es|ed)?|careful|gotcha|"
                           r"beware|must not|runs? out of)\b|^\s*(avoid|never|don't|do not)\b", re.I)),
    ("preference", re.compile(r"\b(prefers?|likes?|wants?|rather|style)\b", re.I)),
    ("workflow", re.compile(r"\b(first|then|steps?)\b|→|->|\bbefore (running|deploying|committing|merging)\b", re.I)),
    ("insight", re.compile(r"\b(learned|turns out|because|realised|realized|works better)\b", re.I)),
]


def guess_category(text: str) -> Category:
    for category, cue in _CATEGORY_CUES:
        if cue.search(text):
            return category
    return "fact"


def from_notes(session: SessionRecord) -> list[Candidate]:
    return [
        Candidate(
            text=note.content, category=guess_category(note.content), source="note",
            observed_at=session.started_at, agents=frozenset({session.agent_id}),
            sessions=frozenset({session.id}),
            evidence=[Evidence(session_id=session.id, note_index=note.index, quote=shorten(note.content))],
        )
        for note in session.notes
    ]


# --- user statements --------------------------------------------------------------------


def from_statements(session: SessionRecord) -> list[Candidate]:
    """The user's facts, preferences and standing instructions, each with its turn and time."""
    return [_statement(session, event, found) for event in session.events if event.role == "user"
            for found in statements.statements(event.content)]


def _statement(session: SessionRecord, event: Event, found: statements.Statement) -> Candidate:
    return Candidate(
        text=f"The user said: “{found.text}”", category=found.category, source="statement",
        observed_at=event.timestamp or session.started_at, agents=frozenset({session.agent_id}),
        sessions=frozenset({session.id}),
        evidence=[Evidence(session_id=session.id, event_index=event.index, quote=shorten(found.text))],
        scope="user", correction=found.correction, leaves=found.leaves,
    )


# --- recurring tool errors ----------------------------------------------------------------

_VOLATILE = re.compile(r"0x[0-9a-f]+|[0-9a-f]{8,}|\d+", re.I)


def error_signature(event: Event) -> tuple[str, str]:
    """The tool and the first line of its error with numbers and ids blanked out."""
    first = next((line for line in event.content.splitlines() if line.strip()), "")
    return event.tool_name or "", _VOLATILE.sub("#", " ".join(first.lower().split()))[:160]


def recurring_errors(sessions: list[SessionRecord]) -> list[Candidate]:
    seen: dict[tuple[str, str], list[tuple[SessionRecord, Event]]] = defaultdict(list)
    for session in sessions:
        firsts = {}
        for event in session.events:
            if event.is_error:
                firsts.setdefault(error_signature(event), event)
        for signature, event in firsts.items():
            seen[signature].append((session, event))
    return [_pitfall(hits) for hits in seen.values() if len(hits) >= MIN_SESSIONS]


def _pitfall(hits: list[tuple[SessionRecord, Event]]) -> Candidate:
    session, event = hits[-1]
    tool = f"`{event.tool_name}`" if event.tool_name else "A tool call"
    text = f"{tool} fails with “{shorten(event.content, 120)}”"
    fix = next(filter(None, (_fix_after(s, e) for s, e in reversed(hits))), None)
    if fix:
        text += f"; it worked after {fix}"
    return Candidate(
        text=text + ".", category="pitfall", source="pattern", observed_at=session.started_at,
        agents=frozenset(s.agent_id for s, _ in hits), sessions=frozenset(s.id for s, _ in hits),
        evidence=[Evidence(session_id=s.id, event_index=e.index, quote=shorten(e.content)) for s, e in hits],
        risk={"from_tool_output"},
    )


def _fix_after(session: SessionRecord, error: Event) -> str | None:
    """The agent's calls between the error and the same tool's next success.

    A retry of the failing tool counts when its arguments changed (that change is the fix);
    repeating the very call that failed does not.
    """
    later = session.events[error.index + 1 :]
    success = next((e for e in later if e.tool_name == error.tool_name and e.role == "tool" and not e.is_error), None)
    if success is None:
        return None
    failed = _call_before(session, error)
    calls = [e for e in later if e.index < success.index and e.role == "assistant" and e.tool_name
             and (e.tool_name, e.content) != (error.tool_name, failed)]
    return ", then ".join(f"`{e.tool_name}` ({shorten(e.content, 60)})" for e in calls) or None


def _call_before(session: SessionRecord, result: Event) -> str | None:
    """The arguments of the call a tool result answers."""
    calls = [e for e in session.events[: result.index] if e.role == "assistant" and e.tool_name == result.tool_name]
    return calls[-1].content if calls else None


# --- converged workflows ----------------------------------------------------------------------


def tool_sequence(session: SessionRecord) -> list[tuple[str, int]]:
    """The tools that succeeded, in order, repeats collapsed, with the event index.

    Failed calls are left out: a routine is what worked, not the detour around an error.
    """
    results = [e for e in session.events if e.role == "tool" and e.tool_name]
    steps = [e for e in results if not e.is_error] if results else [
        e for e in session.events if e.role == "assistant" and e.tool_name]
    sequence: list[tuple[str, int]] = []
    for event in steps:
        if not sequence or sequence[-1][0] != event.tool_name:
            sequence.append((event.tool_name, _cited_index(session, event)))
    return sequence


def _cited_index(session: SessionRecord, step: Event) -> int:
    """Cite the agent's call rather than the tool's output: the routine is the agent's doing."""
    before = session.events[step.index - 1] if step.index else None
    if step.role == "tool" and before and before.role == "assistant" and before.tool_name == step.tool_name:
        return before.index
    return step.index


def shared_workflows(sessions: list[SessionRecord]) -> list[Candidate]:
    support: dict[tuple[str, ...], dict[str, tuple[SessionRecord, int]]] = defaultdict(dict)
    for session in (s for s in sessions if s.outcome == "success"):
        sequence = tool_sequence(session)
        for n in WORKFLOW_LENGTHS:
            for start in range(len(sequence) - n + 1):
                names = tuple(name for name, _ in sequence[start : start + n])
                if len(set(names)) == n:  # a repeated step is a retry loop, not a routine
                    support[names].setdefault(session.id, (session, sequence[start][1]))
    common = {names: hits for names, hits in support.items() if len(hits) >= MIN_SESSIONS}
    covered = _covered(common)
    return [_workflow(names, list(hits.values())) for names, hits in common.items() if names not in covered]


def _covered(common: dict[tuple[str, ...], dict]) -> set[tuple[str, ...]]:
    """Sequences a one-step-longer common sequence contains with the same sessions.

    Checking one step longer suffices: every sub-sequence of a common sequence is common
    with at least its sessions, so containment chains down one step at a time.
    """
    covered = set()
    for longer, hits in common.items():
        for shorter in (longer[:-1], longer[1:]):
            if shorter in common and set(common[shorter]) <= set(hits):
                covered.add(shorter)
    return covered


def _workflow(names: tuple[str, ...], hits: list[tuple[SessionRecord, int]]) -> Candidate:
    steps = " → ".join(f"`{name}`" for name in names)
    return Candidate(
        text=f"Steps that worked, in this order — {steps}.", category="workflow", source="pattern",
        observed_at=max(s.started_at for s, _ in hits), agents=frozenset(s.agent_id for s, _ in hits),
        sessions=frozenset(s.id for s, _ in hits),
        evidence=[Evidence(session_id=s.id, event_index=i, quote=f"{' → '.join(names)} ({s.title or s.id})")
                  for s, i in hits],
    )

"""The labelled scenarios: multi-session transcripts and what memory must hold after one dream.

One JSON file per scenario in `scenarios/`, named after what it exercises. Labels are
written as text, never as ids, so a scenario reads like a story:

- `must_contain`: each substring in exactly one active entry;
- `must_not_contain`: in no active entry (superseded values, stale preferences);
- `superseded`: {old, new} pairs, replaced when `old` is in no entry and `new` is in one;
- `must_survive`: pairs of true facts that look alike; neither may be lost;
- `duplicates`: groups of statements (substrings of one note or turn each) that must end
  up cited by exactly one entry — resolved here to the (session, note|event index) that
  an engine's evidence cites;
- `patterns`: an expected pitfall or workflow, as substrings that must share one entry;
- `team_wide`: substrings whose entry every agent reads (scope `shared` or `user`);
- `secrets`: strings that must not occur in any byte of the database files;
- `injections`: injected text that must not occur in any active entry.

`agent_operations` script what a reflecting model would submit for the `agent` engine;
`target_contents` name existing entries by a substring of their text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field
from reverie.models import Category, Evidence, OpKind, Outcome, Turn

SCENARIOS = Path(__file__).parent / "scenarios"


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Session(Model):
    id: str
    agent_id: str
    title: str
    outcome: Outcome = "unknown"
    notes: list[str] = Field(default_factory=list)
    turns: list[Turn]


class Supersession(Model):
    old: str
    new: str


class Expected(Model):
    must_contain: list[str] = Field(default_factory=list)
    must_not_contain: list[str] = Field(default_factory=list)
    superseded: list[Supersession] = Field(default_factory=list)
    must_survive: list[tuple[str, str]] = Field(default_factory=list)
    duplicates: list[list[str]] = Field(default_factory=list)
    patterns: list[str | list[str]] = Field(default_factory=list)
    team_wide: list[str] = Field(default_factory=list)
    secrets: list[str] = Field(default_factory=list)
    injections: list[str] = Field(default_factory=list)


class AgentOperation(Model):
    kind: OpKind
    content: str | None = None
    category: Category | None = None
    scope: str | None = None
    confidence: float = 0.8
    rationale: str
    evidence: list[Evidence] = Field(default_factory=list)
    target_contents: list[str] = Field(default_factory=list)


class Scenario(Model):
    name: str
    kind: str
    description: str
    sessions: list[Session]
    expected: Expected
    agent_operations: list[AgentOperation] = Field(default_factory=list)


@dataclass(frozen=True)
class Ref:
    """Where a labelled statement was said: a note or an event of one session."""

    session_id: str
    note_index: int | None = None
    event_index: int | None = None


def load_corpus(directory: Path = SCENARIOS) -> list[Scenario]:
    return [load_scenario(path) for path in sorted(directory.glob("*.json"))]


def load_scenario(path: Path) -> Scenario:
    document = json.loads(path.read_text(encoding="utf-8"))
    scenario = Scenario.model_validate({"name": path.stem, **document})
    duplicate_groups(scenario)  # a label naming no statement, or two, is a corpus bug: fail early
    check_agent_evidence(scenario)
    return scenario


def check_agent_evidence(scenario: Scenario) -> None:
    """Scripted evidence must cite notes and events that exist, or the server rightly refuses it."""
    sessions = {s.id: s for s in scenario.sessions}
    for e in (e for op in scenario.agent_operations for e in op.evidence):
        if not _exists(e, sessions.get(e.session_id)):
            raise ValueError(f"{scenario.name}: agent evidence {e.model_dump(exclude_none=True)} cites nothing.")


def _exists(evidence: Evidence, session: Session | None) -> bool:
    return session is not None and (
        (evidence.note_index is None or evidence.note_index < len(session.notes))
        and (evidence.event_index is None or evidence.event_index < len(session.turns))
    )


def duplicate_groups(scenario: Scenario) -> list[list[Ref]]:
    return [[locate(scenario, statement) for statement in group] for group in scenario.expected.duplicates]


def locate(scenario: Scenario, statement: str) -> Ref:
    """The one note or turn that contains `statement` (case-insensitive)."""
    needle = statement.lower()
    found = [Ref(s.id, note_index=i) for s in scenario.sessions for i, n in enumerate(s.notes) if needle in n.lower()]
    found += [Ref(s.id, event_index=i) for s in scenario.sessions for i, t in enumerate(s.turns)
              if needle in t.content.lower()]
    if len(found) != 1:
        raise ValueError(f"{scenario.name}: duplicate label {statement!r} matches {len(found)} notes/turns; "
                         "it must name exactly one.")
    return found[0]

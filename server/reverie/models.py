"""The shapes of everything Reverie stores, proposes and returns: the wire contract.

Tool arguments and results, the dream engines' input and output, and the rows the store
hands back are all these pydantic models, so MCP clients get an `outputSchema` and
`structuredContent`, and every layer agrees on one vocabulary. Nothing here does I/O.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, GetJsonSchemaHandler, field_validator
from pydantic.json_schema import JsonSchemaValue

Role = Literal["user", "assistant", "tool", "system"]
Outcome = Literal["success", "failure", "partial", "unknown"]
Category = Literal["fact", "preference", "workflow", "pitfall", "insight"]
OpKind = Literal["add", "update", "merge", "prune", "promote"]
# older_than_target / unrelated_update: a replacement that breaks the newest-wins rules
# (`service.supersession`); tainted / imperative / names_destination: provenance and effect
# (`service.provenance`); beyond_author_rights: it lands in a scope whoever wrote its evidence
# may not write (`service.access.beyond_authors`); contradicts_other_op: another operation of the
# same proposal gives its subject another value (`service.contradiction`).
RiskFlag = Literal["from_tool_output", "instruction_like", "secret_redacted", "low_evidence", "older_than_target",
                   "unrelated_update", "cross_project", "tainted", "imperative", "names_destination",
                   "beyond_author_rights", "contradicts_other_op"]
# "empty": the dream proposed nothing, so it consolidated none of its sessions (`service.dreams`).
ProposalStatus = Literal["pending", "applied", "partially_applied", "rejected", "superseded", "reverted", "empty"]
OpStatus = Literal["pending", "applied", "rejected"]

CATEGORIES: tuple[Category, ...] = ("fact", "preference", "workflow", "pitfall", "insight")


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


# --- sessions -------------------------------------------------------------------------


class Turn(Model):
    """One turn of a transcript as a client sends it."""

    role: Role
    content: str = Field(description="What was said, or the tool's input/output.")
    tool_name: str | None = Field(default=None, description="The tool called or answering, if any.")
    is_error: bool = Field(default=False, description="True when a tool call failed.")
    timestamp: datetime | None = None

    @field_validator("timestamp")
    @classmethod
    def _within_the_calendar_in_utc(cls, moment: datetime | None) -> datetime | None:
        # "0001-01-01T00:00:00+14:00" parses, but is before year 1 once stored as UTC.
        if moment is not None and moment.tzinfo is not None:
            try:
                moment.astimezone(UTC)
            except OverflowError:
                raise ValueError("timestamp falls outside the years 1-9999 in UTC") from None
        return moment


class Event(Turn):
    """A stored turn: immutable once written."""

    session_id: str
    index: int


class Note(Model):
    """A memory candidate the agent wrote down during a session."""

    session_id: str
    index: int
    content: str
    created_at: datetime


class SessionRecord(Model):
    """A session with everything a dream engine needs to read."""

    id: str
    agent_id: str
    title: str | None = None
    outcome: Outcome = "unknown"
    outcome_summary: str | None = None
    content_hash: str = ""
    started_at: datetime
    ended_at: datetime | None = None
    project: str | None = None  # the key of the project it was worked on in (`reverie.projects`)
    events: list[Event] = Field(default_factory=list)
    notes: list[Note] = Field(default_factory=list)


class LogResult(Model):
    session_id: str
    agent_id: str
    events_added: int
    event_count: int
    notes_added: int
    content_hash: str = Field(description="sha256 chained over every event, in order.")
    ended: bool
    redactions: int = Field(description="Secrets replaced by [REDACTED:…] before storing.")
    sessions_awaiting_dream: int
    dream_due: bool


# --- memory ---------------------------------------------------------------------------


class Evidence(Model):
    """Where a piece of memory came from: a transcript event or a note, with a short quote."""

    session_id: str
    event_index: int | None = None
    note_index: int | None = None
    quote: str = Field(default="", max_length=400)


class Memory(Model):
    id: str
    content: str
    category: Category
    scope: str
    confidence: float
    evidence: list[Evidence] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime
    observed_at: datetime = Field(description="When the newest evidence for it was seen.")
    valid_to: datetime | None = None
    archived_reason: str | None = None
    last_read_at: datetime | None = None
    read_count: int = 0

    @property
    def sources(self) -> list[str]:
        return sorted({e.session_id for e in self.evidence})


class MemoryEntry(Model):
    """A memory as `read_memory` returns it."""

    id: str
    content: str
    category: Category
    scope: str
    confidence: float
    sources: list[str] = Field(description="Session ids this entry came from.")
    updated_at: datetime
    observed_at: datetime = Field(description="When the newest evidence for it was seen.")


class NoteEntry(Model):
    """A note logged since the last applied dream."""

    session_id: str
    index: int = Field(description="Its place among the session's notes: the later of two written together is the newer.")
    content: str
    created_at: datetime


class Episode(Model):
    """An excerpt of a past session that matches the query (raw, not curated)."""

    session_id: str
    event_index: int
    role: Role
    text: str = Field(description="The turn's sentences that hold the query's words, whole; ' … ' marks a gap.")
    timestamp: datetime = Field(description="When the turn was said (its session's start when it has no time).")


class PendingNotice(Model):
    """A dream proposal waiting for the user's review."""

    proposal_id: str
    created_at: datetime
    operations: int
    flagged: int


class FieldsNamed:
    """A list field's JSON schema that names its items' fields rather than typing each one.

    The MCP python client checks `structuredContent` against the tool's `outputSchema` with
    `jsonschema` on every call, descending into every field of every item: for the few dozen
    entries, notes and excerpts of a read, that took longer than a no-op tool's whole round
    trip over stdio. Declared like this, each item must be an object holding every field
    (each named, with its type and meaning, in the item's description), which checks in a
    tenth of the time. The values are the model's, which pydantic validates fully as before.
    """

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        item = handler.resolve_ref_schema(handler(core_schema)["items"])
        fields = ", ".join(f"{name} ({_kind(field)}{': ' + field['description'].rstrip('.') if 'description' in field else ''})"
                           for name, field in item["properties"].items())
        about = f"{item['description']} " if "description" in item else ""
        return {"type": "array", "items": {"type": "object", "required": item.get("required", []),
                                           "description": f"{about}Fields: {fields}."}}


def _kind(field: dict[str, Any]) -> str:
    if "enum" in field:
        return " | ".join(field["enum"])
    if "anyOf" in field:
        return " or ".join(_kind(option) for option in field["anyOf"])
    if field.get("type") == "array":
        return f"list of {_kind(field.get('items', {}))}"
    return str(field.get("format", field.get("type", "any")))


class MemoryView(Model):
    """What an agent loads at session start."""

    entries: Annotated[list[MemoryEntry], FieldsNamed()]
    notes: Annotated[list[NoteEntry], FieldsNamed()] = Field(description="Notes logged since the last applied dream.")
    episodes: Annotated[list[Episode], FieldsNamed()] = Field(
        description="Matching excerpts of past sessions (only with a query).")
    pending_proposals: Annotated[list[PendingNotice], FieldsNamed()]
    budget_tokens: int
    tokens_used: int
    truncated: bool = Field(description="True when entries were left out to fit the budget.")
    markdown: str


# --- dreams ---------------------------------------------------------------------------


class OperationDraft(Model):
    """What an engine proposes; the service adds ids, redaction and risk checks."""

    kind: OpKind
    targets: list[str] = Field(default_factory=list, description="Memory ids this op archives.")
    content: str | None = Field(default=None, description="The new entry's text (not for prune).")
    category: Category | None = None
    scope: str | None = None
    confidence: float = Field(default=0.7, ge=0.0, le=1.0)
    rationale: str
    evidence: list[Evidence] = Field(default_factory=list)
    risk: list[RiskFlag] = Field(default_factory=list)


class DroppedOperation(Model):
    """An operation a model wrote that validation could not use even after a retry: listed
    in the proposal's report so that a reviewer knows what was lost, never applied."""

    kind: OpKind
    targets: list[str] = Field(default_factory=list)
    content: str | None = None
    problems: list[str] = Field(description="Why it was dropped, as the model was told.")


class Operation(OperationDraft):
    op_id: str
    status: OpStatus = "pending"
    before: list[str] = Field(default_factory=list, description="The targets' text, for review.")
    memory_id: str | None = Field(default=None, description="The entry this op created, once applied.")
    edited: str | None = Field(default=None, description="The text the person approved in place of `content`, "
                                                         "when they edited it (what memory_id holds).")


class DreamInput(Model):
    """Everything an engine sees. Engines read this and nothing else."""

    now: datetime
    memories: list[Memory]
    sessions: list[SessionRecord]
    instructions: str | None = None
    stale_after_days: int = 90


class Usage(Model):
    """What a model-backed dream cost."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    models: list[str] = Field(default_factory=list)
    calls: int = 0


class EngineResult(Model):
    """An engine's answer: the drafted operations and, for model engines, what they cost."""

    operations: list[OperationDraft]
    usage: Usage | None = None
    dropped: list[DroppedOperation] = Field(default_factory=list, description="What validation refused for good.")
    brief: str | None = Field(default=None, description="For the agent engine: what the client's model reflects on.")


class LookedAt(Model):
    """What a dream's sessions held, counted by the service whatever the engine: what the
    report of a dream that found nothing cites as what it looked at."""

    user_turns: int = 0
    notes: int = 0
    sessions_with_tool_errors: int = 0
    successful_sessions: int = Field(default=0, description="Sessions logged with outcome 'success'.")


class DreamStats(Model):
    sessions_reviewed: int
    memories_before: int
    memories_after: int
    tokens_before: int
    tokens_after: int
    usage: Usage | None = None
    looked_at: LookedAt | None = Field(default=None, description="Absent on dreams stored before it was counted.")
    dropped: list[DroppedOperation] = Field(
        default_factory=list, description="Operations the engine wrote that failed validation and are not proposed.")


class Proposal(Model):
    id: str
    engine: str
    scope: str | None
    status: ProposalStatus
    base_revision: int
    created_at: datetime
    session_ids: list[str]
    operations: list[Operation]
    stats: DreamStats
    applied_revision: int | None = None
    brief: str | None = Field(default=None, description="A dream brief for the calling agent's model (engine 'agent').")
    report: str = Field(default="", description="Markdown written for a person to review.")


class ApplyResult(Model):
    proposal_id: str
    status: ProposalStatus
    revision: int
    applied: list[str]
    rejected: list[str]
    memories_added: list[str]
    memories_archived: list[str]
    held_for_review: str | None = Field(default=None, description="The new pending proposal holding the flagged "
                                                                  "changes an automatic apply left for a person.")
    message: str


class RevertResult(Model):
    proposal_id: str
    revision: int
    memories_restored: list[str]
    memories_archived: list[str]
    message: str


# --- callers --------------------------------------------------------------------------

SHARED_SCOPES = ("shared", "user")
ALL_AGENTS = "agent:*"       # every agent's private scope and sessions: never a token's grant
ALL_PROJECTS = "project:*"
LOCAL_GRANTS = frozenset({"write:shared", "write:user", ALL_PROJECTS, ALL_AGENTS})
TOKEN_DEFAULT_GRANTS = ("read:shared", "read:user")


class Identity(Model):
    """Who is calling: an agent id and the grants it holds.

    Every agent reads and writes its own `agent:<id>` scope. Grants add the rest:
    `read:shared`, `write:shared`, `read:user`, `write:user` (write implies read),
    `project:<key>` (read and write that project; `project:*` every project),
    `read:project:<key>`, and `agent:*` (every agent's private scope, sessions and
    proposals). The local caller — stdio, HTTP on loopback without a tokens file, the
    CLI — holds `LOCAL_GRANTS`, since whoever can reach it can open the database file
    anyway; a bearer token holds what `reverie token add --scope` gave it, never
    `agent:*`. How the service uses these: `reverie.service.access`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    agent_id: str
    grants: frozenset[str] = frozenset()

    @classmethod
    def local(cls, agent_id: str) -> Identity:
        return cls(agent_id=agent_id, grants=LOCAL_GRANTS)

    @property
    def own_scope(self) -> str:
        return f"agent:{self.agent_id}"

    @property
    def all_agents(self) -> bool:
        return ALL_AGENTS in self.grants

    def reads(self, scope: str) -> bool:
        return self.writes(scope) or self._granted("read", scope)

    def writes(self, scope: str) -> bool:
        if scope == self.own_scope or (scope.startswith("agent:") and self.all_agents):
            return True
        return self._granted("write", scope)

    def _granted(self, right: str, scope: str) -> bool:
        if scope.startswith("agent:"):
            return False
        if f"{right}:{scope}" in self.grants:
            return True
        return scope.startswith("project:") and (scope in self.grants or ALL_PROJECTS in self.grants)

    def view(self) -> list[str]:
        """The scopes `read_memory` shows by default: own, shared and user if readable, granted projects."""
        projects = sorted({g.removeprefix("read:") for g in self.grants
                           if g.removeprefix("read:").startswith("project:") and g != ALL_PROJECTS})
        return [self.own_scope, *(s for s in SHARED_SCOPES if self.reads(s)), *projects]

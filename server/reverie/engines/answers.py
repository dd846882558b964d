"""The shape of an operation as a model writes it: only what a model may set, each field explained.

`OperationDraft` (models) is what every engine hands the service, risk flags included;
flags are the service's to set, so a model is never offered them. The `anthropic` engine's
reduce tool and the `agent` brief's JSON Schema are both generated from `ProposedOperation`,
and `draft()` turns one into an `OperationDraft` for the service's one gate.
"""

from __future__ import annotations

from pydantic import Field

from reverie import config
from reverie.models import Category, Evidence, Model, OperationDraft, OpKind


class Quoted(Model):
    """One turn or note an operation rests on."""

    session_id: str = Field(description="The session's id, as in its header: ## Session <id>.")
    event_index: int | None = Field(default=None, description="The turn's number: 12 for #12. Give this or note_index.")
    note_index: int | None = Field(default=None, description="The note's number: 0 for note 0.")
    quote: str = Field(min_length=1, max_length=400, description=(
        "A few words copied exactly from that one turn or note, without its '#12 user:' label; it may run "
        "across lines (line breaks and indentation are ignored), never across turns or with '…' for a gap."))


class ProposedOperation(Model):
    kind: OpKind = Field(description=(
        "add: a new entry; update: replace entries whose fact changed; merge: entries saying one thing become one; "
        "prune: archive stale or wrong entries; promote: an agent's entry that holds for every agent."))
    targets: list[str] = Field(default_factory=list, description=(
        "Ids of current memory entries this operation archives, exactly as listed. Empty for add; "
        "at least one for update, merge, prune and promote."))
    content: str | None = Field(default=None, description=(
        f"The entry's text after the change: one self-contained statement of at most {config.MAX_OPERATION_CHARS} "
        "characters. None only for prune."))
    category: Category | None = Field(default=None, description="What kind of knowledge it is.")
    scope: str | None = Field(default=None, description=(
        "Who reads it: 'user' (the person), 'project:<key>' (one repository), 'agent:<id>' (one agent), "
        "'shared' (every agent). Left out, the service files it by its evidence."))
    confidence: float = Field(default=0.7, ge=0.0, le=1.0, description="0-1: higher when several sessions say it.")
    rationale: str = Field(description="Why, in one sentence, for the person who reviews it.")
    evidence: list[Quoted] = Field(default_factory=list, description=(
        "The turns or notes it rests on; at least one for add and update."))

    def draft(self) -> OperationDraft:
        evidence = [Evidence(**e.model_dump()) for e in self.evidence]
        return OperationDraft(**self.model_dump(exclude={"evidence"}), evidence=evidence)

"""A person's decisions on a dream proposal, as a form a client can show.

When `apply_dream` is called without decisions and the client can ask its user directly
(MCP elicitation: Claude Code, Cursor, VS Code), the server sends this form: one
approve/reject choice per operation (flagged ones default to reject) and an optional
replacement text for each operation that writes one. The answers come back as the same
`approve` / `edits` arguments a model would pass, so both paths apply identically.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, create_model

from reverie.models import Operation, Proposal
from reverie.text import shorten

Choice = Literal["approve", "reject"]
EDIT_SUFFIX = "_edit"


def decision_form(proposal: Proposal) -> type[BaseModel]:
    """A flat form model (what elicitation allows): `op1`, `op1_edit`, `op2`, …"""
    fields: dict = {}
    for op in proposal.operations:
        default: Choice = "reject" if op.risk else "approve"
        fields[op.op_id] = (Choice, Field(default=default, title=op.op_id, description=summary(op)))
        if op.content is not None:
            fields[op.op_id + EDIT_SUFFIX] = (
                str, Field(default="", title=f"{op.op_id}: new text (optional)", description="Leave empty to keep it."))
    return create_model(f"Decisions_{proposal.id}", **fields)


def summary(op: Operation) -> str:
    before = f" replacing “{shorten(op.before[0], 80)}”" if op.before else ""
    after = f": {shorten(op.content, 160)}" if op.content else ""
    flags = f" ⚠ {', '.join(op.risk)}" if op.risk else ""
    return f"{op.kind} {op.category or ''}{after}{before}{flags}"


def prompt(proposal: Proposal) -> str:
    flagged = sum(1 for op in proposal.operations if op.risk)
    note = f" {flagged} flagged change(s) start as reject." if flagged else ""
    return (f"Reverie proposes {len(proposal.operations)} change(s) to memory (dream {proposal.id}). "
            f"Approve or reject each; you may reword what it writes.{note}")


def from_answers(answers: BaseModel) -> tuple[list[str], dict[str, str]]:
    """The form's answers as (approve, edits) for apply_dream."""
    values = answers.model_dump()
    approve = [key for key, value in values.items() if not key.endswith(EDIT_SUFFIX) and value == "approve"]
    edits = {key.removesuffix(EDIT_SUFFIX): value.strip() for key, value in values.items()
             if key.endswith(EDIT_SUFFIX) and value.strip() and key.removesuffix(EDIT_SUFFIX) in approve}
    return approve, edits

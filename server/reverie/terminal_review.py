"""`reverie review`: a person decides a dream proposal operation by operation, in the terminal.

Each operation is shown with what it changes (before → after), why, the evidence it rests
on and its risk flags, and the person answers approve, reject or edit (then types the new
text). Enter takes the default: reject for a flagged operation, approve otherwise. Nothing
is written until the person confirms the decisions for the whole proposal; they are then
applied with `apply_dream`, exactly as a chat client would, as one revision. Declining
leaves the proposal pending, unchanged.

Answers come from the terminal or, when stdin is not one, a line each from stdin, echoed
so the output reads like the session it was (scripts and tests drive it that way). Input
that ends before every question is answered applies nothing. Text from transcripts is
shown as plain text, never interpreted as rich markup.
"""

from __future__ import annotations

from typing import TextIO

from rich.console import Console, Group
from rich.panel import Panel
from rich.prompt import Confirm, Prompt
from rich.table import Table
from rich.text import Text

from reverie.errors import AlreadyDecided, InvalidInput
from reverie.models import ApplyResult, Operation, Proposal
from reverie.report import applied_text, evidence_shown, risk_text
from reverie.service import Reverie
from reverie.service.pending import pending_proposals

CHOICES = {"a": "approve", "r": "reject", "e": "edit"}


class _LineInput:
    """rich's prompts, reading a line per answer from `stream` when it is given, and noticing its end."""

    @classmethod
    def get_input(cls, console: Console, prompt: Text | str, password: bool, stream: TextIO | None = None) -> str:
        if stream is None:
            return console.input(prompt, password=password)  # the terminal: input() raises EOFError itself
        console.print(prompt, end="")
        line = stream.readline()
        if not line:
            console.print()
            raise EOFError
        answer = line.rstrip("\r\n")
        console.print(answer, markup=False, highlight=False)
        return answer


class _Prompt(_LineInput, Prompt):
    pass


class _Confirm(_LineInput, Confirm):
    pass


async def review(
    reverie: Reverie, proposal_id: str | None, console: Console, answers: TextIO | None
) -> list[ApplyResult]:
    """Review `proposal_id`, or every pending proposal; returns what was applied."""
    proposals = [await _reviewable(reverie, proposal_id)] if proposal_id else await pending_proposals(reverie)
    if not proposals:
        console.print("No dream proposals await review. `reverie dream` makes one.")
        return []
    results = []
    for proposal in proposals:
        try:
            approve, edits = decide(proposal, console, answers)
        except EOFError:
            raise InvalidInput(f"The answers ended before every operation of {proposal.id} was decided; "
                               "nothing of it was applied.") from None
        if approve is None:
            console.print(f"{proposal.id} stays pending; nothing changed.")
            continue
        result = await reverie.apply_dream(proposal.id, approve, edits or None)
        console.print(applied_text(result), markup=False, highlight=False)
        results.append(result)
    return results


async def _reviewable(reverie: Reverie, proposal_id: str) -> Proposal:
    proposal = await reverie.proposal(proposal_id)
    if proposal.brief is not None:
        raise InvalidInput(f"{proposal_id} is a dream brief for an agent's model, not a proposal to review.")
    if proposal.status != "pending":
        raise AlreadyDecided(f"Proposal {proposal_id} is {proposal.status}; only pending proposals can be reviewed.")
    return proposal


def decide(proposal: Proposal, console: Console, answers: TextIO | None) -> tuple[list[str] | None, dict[str, str]]:
    """The approved op ids and edits, or (None, {}) if the person declines to apply them."""
    console.print(heading(proposal))
    approve, edits = [], {}
    for number, op in enumerate(proposal.operations, 1):
        console.print(card(op, number, len(proposal.operations)))
        choice = ask_choice(op, console, answers)
        if choice == "e":
            edits[op.op_id] = ask_text(op, console, answers)
        if choice in ("a", "e"):
            approve.append(op.op_id)
    console.print(Text(summary(proposal, approve, edits)))
    if not _Confirm.ask(f"Apply these decisions to {proposal.id}?", default=True, console=console, stream=answers):
        return None, {}
    return approve, edits


def ask_choice(op: Operation, console: Console, answers: TextIO | None) -> str:
    choices = ["a", "r"] if op.kind == "prune" else ["a", "r", "e"]  # a prune has no text to edit
    named = ", ".join(f"{c} = {CHOICES[c]}" for c in choices)
    return _Prompt.ask(f"{op.op_id}: {named}", choices=choices, default="r" if op.risk else "a",
                       case_sensitive=False, console=console, stream=answers).lower()


def ask_text(op: Operation, console: Console, answers: TextIO | None) -> str:
    while not (text := _Prompt.ask(f"New text for {op.op_id}", console=console, stream=answers).strip()):
        console.print("The new text cannot be empty (answer r to reject the operation instead).")
    return text


# --- what the person sees ----------------------------------------------------------------


def heading(proposal: Proposal) -> Panel:
    stats = proposal.stats
    lines = Text.assemble(
        (f"Dream proposal {proposal.id}", "bold"),
        f" ({proposal.engine} engine, {proposal.created_at:%Y-%m-%d %H:%M} UTC)\n",
        f"Reviewed {stats.sessions_reviewed} session(s). Memory would go from {stats.memories_before} to "
        f"{stats.memories_after} entries ({stats.tokens_before} → {stats.tokens_after} tokens).",
    )
    return Panel(lines, border_style="cyan")


def card(op: Operation, number: int, total: int) -> Panel:
    rows = Table.grid(padding=(0, 1))
    rows.add_column(style="bold", no_wrap=True)
    rows.add_column()
    for before in op.before:
        rows.add_row("before", Text(before, style="red"))
    if op.content is not None:
        rows.add_row("after", Text(op.content, style="green"))
    rows.add_row("why", Text(op.rationale))
    for cited in evidence_shown(op):  # as the report cites it, so both show the same evidence
        rows.add_row("evidence", Text(cited))
    if op.risk:
        rows.add_row("risk", Text(risk_text(op), style="bold yellow"))
    place = ", ".join(part for part in (op.category, op.scope) if part)
    title = Text(f"{number}/{total} · {op.op_id} · {op.kind}" + (f" · {place}" if place else "")
                 + f" · confidence {op.confidence:.2f}")
    return Panel(Group(rows), title=title, title_align="left", border_style="yellow" if op.risk else "blue")


def summary(proposal: Proposal, approve: list[str], edits: dict[str, str]) -> str:
    rejected = [op.op_id for op in proposal.operations if op.op_id not in approve]
    approved = [f"{i} (edited)" if i in edits else i for i in approve]
    return f"Approve: {', '.join(approved) or 'nothing'}. Reject: {', '.join(rejected) or 'nothing'}."

"""Markdown written for people and for the agent's context window.

A proposal's report is what the user reviews, so it is grouped by kind, numbered by op id,
quotes its evidence, shows risk flags plainly, and ends with how to answer. A dream that
found nothing says what it looked at, why nothing qualified, and which engine to try on the
same sessions, which it left unconsolidated.

Every text here is rendered for its reader (`Reader`): in chat the next step is a tool call
the assistant makes (`apply_dream`) or a sentence the user replies; in a terminal it is a
`reverie` command to type. The review page (`ui/review.html`) renders the same structured
proposal itself. Facts are the same for every reader: the terminal review and the report
cite the same evidence (`evidence_shown`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Literal, Protocol

from reverie.text import shorten

# For types only: the SessionStart hook renders plain records read without pydantic
# (`store.direct`), and loading the models would cost it more than its whole read.
if TYPE_CHECKING:
    from reverie.models import ApplyResult, DroppedOperation, Episode, Evidence, LookedAt, Operation, Proposal

Reader = Literal["chat", "terminal"]
EVIDENCE_SHOWN = 3  # per operation, in the report and the terminal review alike; the structured result has all

KIND_TITLES = {
    "update": "Replace outdated entries",
    "merge": "Merge duplicates",
    "add": "Add to memory",
    "promote": "Share across agents",
    "prune": "Prune stale entries",
}
RISK_TEXT = {
    "from_tool_output": "words come from tool output",
    "instruction_like": "reads like an instruction to the agent",
    "secret_redacted": "a secret was redacted",
    "low_evidence": "thin evidence",
    "older_than_target": "its evidence is older than the entry it replaces",
    "unrelated_update": "not recognisably about the entry it replaces",
    "beyond_author_rights": "written by an agent that may not write this scope: it waits for someone who may",
    "tainted": "derives from what a tool or web page returned",
    "imperative": "an instruction, rule or workflow the user did not state in their own words",
    "names_destination": "names an address, URL, host, path or credential file",
    "cross_project": "seen in more than one project: would reach projects it did not come from",
    "contradicts_other_op": "another change in this proposal gives the same subject a different value",
}


class ShownEntry(Protocol):
    """What a memory line shows of an entry (`models.MemoryEntry`, `store.direct.Entry`)."""

    @property
    def category(self) -> str: ...
    @property
    def content(self) -> str: ...
    @property
    def sources(self) -> Sequence[str]: ...


class ShownNote(Protocol):
    """What a note line shows (`models.NoteEntry`, `store.direct.Note`)."""

    @property
    def session_id(self) -> str: ...
    @property
    def content(self) -> str: ...


class ShownNotice(Protocol):
    """What a pending proposal's line shows (`models.PendingNotice`, `store.direct.Notice`)."""

    @property
    def proposal_id(self) -> str: ...
    @property
    def operations(self) -> int: ...
    @property
    def flagged(self) -> int: ...


def entry_line(entry: ShownEntry) -> str:
    sources = f" (from {', '.join(entry.sources[:3])})" if entry.sources else ""
    return f"- [{entry.category}] {entry.content}{sources}"


def note_line(note: ShownNote) -> str:
    return f"- {note.content} (session {note.session_id})"


def episode_line(episode: Episode) -> str:
    # The excerpt as recall cut it (whole sentences), dated: a raw excerpt is what was
    # said then, and without its day a reader takes an old value for the current one.
    return f"- {episode.session_id}#{episode.event_index} {episode.timestamp:%Y-%m-%d} {episode.role}: {episode.text}"


def pending_line(notice: ShownNotice, reader: Reader = "chat") -> str:
    flagged = f", {notice.flagged} flagged" if notice.flagged else ""
    key = notice.proposal_id
    where = f"reverie review {key}" if reader == "terminal" else f"memory://proposals/{key}"
    return f"- Dream proposal {key} awaits review ({_count(notice.operations, 'change')}{flagged}): {where}"


PENDING_HEADING = {"chat": "## Awaiting the user's review", "terminal": "## Awaiting your review"}
PENDING_ADVICE = {
    "chat": "Show the user each report and ask before calling apply_dream.",
    "terminal": "Nothing changes until you decide; `reverie review` walks through each change.",
}


def memory_markdown(
    entries: Sequence[ShownEntry], notes: Sequence[ShownNote], episodes: Sequence[Episode],
    pending: Sequence[ShownNotice], reader: Reader = "chat",
) -> str:
    parts = []
    if pending:
        parts.append(PENDING_HEADING[reader] + "\n" + "\n".join(pending_line(n, reader) for n in pending)
                     + f"\n{PENDING_ADVICE[reader]}")
    parts.append("## Memory\n" + ("\n".join(map(entry_line, entries)) or "(nothing remembered yet)"))
    if notes:
        parts.append("## Notes since the last dream (not yet reviewed)\n" + "\n".join(map(note_line, notes)))
    if episodes:
        parts.append("## From past sessions (raw excerpts, not curated)\n" + "\n".join(map(episode_line, episodes)))
    return "\n\n".join(parts)


def proposal_markdown(proposal: Proposal, reader: Reader = "chat") -> str:
    if proposal.brief is not None:
        return brief_markdown(proposal, reader)
    if proposal.status == "empty":
        return empty_markdown(proposal, reader)
    stats = proposal.stats
    head = (
        f"# Dream proposal {proposal.id} ({proposal.status})\n"
        f"Engine {proposal.engine}; reviewed {_count(stats.sessions_reviewed, 'session')}. Memory: "
        f"{stats.memories_before} → {_count(stats.memories_after, 'entry', 'entries')}, "
        f"~{stats.tokens_before} → ~{stats.tokens_after} tokens."
    )
    if not proposal.operations:
        return "\n\n".join([head, "No changes in this proposal.", *_dropped(proposal)])
    sections = [head] + [_section(kind, ops) for kind, ops in _by_kind(proposal.operations)] + _dropped(proposal)
    if proposal.status == "pending":
        sections.append(_how_to_answer(proposal, reader))
    return "\n\n".join(sections)


def empty_markdown(proposal: Proposal, reader: Reader = "chat") -> str:
    """A dream that found nothing: what it looked at, why nothing qualified, and what next."""
    stats = proposal.stats
    seen = stats.looked_at if stats.sessions_reviewed else None  # None too for dreams stored before counting
    inside = f" ({_count(seen.user_turns, 'turn')} by the user, {_count(seen.notes, 'note')})" if seen else ""
    memories = _count(stats.memories_before, "memory entry", "memory entries")
    parts = [f"# Dream {proposal.id} found nothing to propose\nEngine {proposal.engine} looked at "
             f"{_count(stats.sessions_reviewed, 'session')}{inside} and {memories}."]
    if seen is not None:
        parts.append("## Why nothing qualified\n" + "\n".join(f"- {r}" for r in _why_nothing(proposal, seen)))
    parts += _dropped(proposal)
    parts.append(_still_available(proposal, reader))
    return "\n\n".join(parts)


def _dropped(proposal: Proposal) -> list[str]:
    """What the engine wrote that validation refused for good: listed, so nothing is lost unseen."""
    dropped = proposal.stats.dropped
    if not dropped:
        return []
    return [f"## Dropped: {_count(len(dropped), 'operation')} the engine wrote that failed validation\n"
            "Not part of this proposal; dream again to have them reconsidered.\n" + "\n".join(map(_dropped_line, dropped))]


def _dropped_line(dropped: DroppedOperation) -> str:
    quoted = f"“{shorten(dropped.content, 160)}”" if dropped.content else ""
    what = " ".join(part for part in (dropped.kind, ", ".join(dropped.targets), quoted) if part)
    return f"- {what}\n  - refused: {'; '.join(dropped.problems)}"


def _why_nothing(proposal: Proposal, seen: LookedAt) -> list[str]:
    """Each rule of the heuristic engine with what the sessions offered it; a model engine's verdict."""
    if proposal.engine != "heuristic":
        return [f"the {proposal.engine} engine reviewed them and proposed no change"]
    memories = proposal.stats.memories_before
    erring, succeeded = seen.sessions_with_tool_errors, seen.successful_sessions
    rules = [  # (offered, what came of it, what was missing)
        (seen.notes, f"{_count(seen.notes, 'note')}, none new to memory", "no notes written down"),
        (seen.user_turns, f"{_count(seen.user_turns, 'turn')} by the user, none read as a new fact or preference",
         "no turns by the user"),
        (erring >= 2, f"tool errors in {erring} sessions, none recurring as a new pitfall",
         "no tool error repeated in two sessions"),
        (succeeded >= 2, f"{succeeded} successful sessions, no new tool sequence shared by two of them",
         f"no tool sequence shared by two successful sessions ({succeeded} logged with outcome success)"),
        (memories, f"{_count(memories, 'memory entry', 'memory entries')}, none duplicated, outdated or stale",
         "memory is empty, so nothing to merge, update or prune"),
    ]
    return [found if offered else missing for offered, found, missing in rules]


# What to try after an engine found nothing: every engine but the one that just ran.
OTHER_ENGINES: dict[Reader, dict[str, str]] = {
    "chat": {
        "agent": '`propose_dream(engine="agent")`: the assistant\'s own model reflects on them',
        "anthropic": '`propose_dream(engine="anthropic")`: Claude reads them (needs ANTHROPIC_API_KEY)',
        "heuristic": '`propose_dream(engine="heuristic")`: the offline rules',
    },
    "terminal": {
        "agent": "`reverie dream --engine agent`: prints a brief for a model to reflect on",
        "anthropic": "`reverie dream --engine anthropic`: Claude reads them (needs ANTHROPIC_API_KEY)",
        "heuristic": "`reverie dream --engine heuristic`: the offline rules",
    },
}
NO_SESSIONS = {
    "chat": "No session awaited a dream. Log sessions first with `log_session`.",
    "terminal": "No session awaited a dream. Log sessions first: `reverie log FILE`.",
}


def _still_available(proposal: Proposal, reader: Reader) -> str:
    reviewed = proposal.stats.sessions_reviewed
    if not reviewed:
        return NO_SESSIONS[reader]
    these = "this session stays" if reviewed == 1 else f"these {reviewed} sessions stay"
    others = [f"- {hint}" for engine, hint in OTHER_ENGINES[reader].items() if engine != proposal.engine]
    return (f"## Nothing used up\nMemory is unchanged, and {these} available to the next dream. "
            "Another engine may find what this one missed:\n" + "\n".join(others))


def _count(n: int, singular: str, plural: str | None = None) -> str:
    return f"{n} {singular if n == 1 else plural or singular + 's'}"


def brief_markdown(proposal: Proposal, reader: Reader = "chat") -> str:
    return f"{_brief_intro(proposal, reader)}\n\n# Dream brief {proposal.id}\n\n{proposal.brief}"


def _brief_intro(proposal: Proposal, reader: Reader) -> str:
    if reader == "terminal":
        return (f"Dream brief {proposal.id} ({proposal.status}): give it to a model to reflect on, save the operations "
                "it writes as a JSON list, then run "
                f"`reverie dream --brief-id {proposal.id} --operations FILE` and `reverie review` to decide them.")
    return (f"Dream brief {proposal.id} ({proposal.status}). Reflect on it, then call propose_dream with "
            f"brief_id=\"{proposal.id}\" and your operations; the user reviews them before anything changes.")


def _by_kind(ops: list[Operation]) -> Iterator[tuple[str, list[Operation]]]:
    for kind, title in KIND_TITLES.items():
        chosen = [op for op in ops if op.kind == kind]
        if chosen:
            yield title, chosen


def _section(title: str, ops: list[Operation]) -> str:
    return f"## {title}\n" + "\n".join(operation_markdown(op) for op in ops)


def operation_markdown(op: Operation) -> str:
    status = "" if op.status == "pending" else f" [{op.status}]"
    lines = [f"**{op.op_id}**{status} ({op.kind}, {op.category or '—'}, {op.scope or '—'}, confidence {op.confidence:.2f})"]
    lines += [f"  - before: {shorten(text, 200)}" for text in op.before]
    if op.edited is not None:
        lines += [f"  - after (edited): {op.edited}", f"  - proposed: {op.content}"]
    elif op.content is not None:
        lines.append(f"  - after: {op.content}")
    lines.append(f"  - why: {op.rationale}")
    lines += [f"  - evidence: {cited}" for cited in evidence_shown(op)]
    if op.risk:
        lines.append(f"  - ⚠ risk: {risk_text(op)}")
    return "\n".join(lines)


def evidence_shown(op: Operation) -> list[str]:
    """The evidence a person reads for `op`, the same in every view: the first few, and how many more."""
    shown = [cite(e) + (f" “{e.quote}”" if e.quote else "") for e in op.evidence[:EVIDENCE_SHOWN]]
    hidden = len(op.evidence) - EVIDENCE_SHOWN
    return shown + ([f"… and {_count(hidden, 'more source', 'more sources')}"] if hidden > 0 else [])


def risk_text(op: Operation) -> str:
    return "; ".join(RISK_TEXT.get(r, r) for r in op.risk)


def cite(evidence: Evidence) -> str:
    if evidence.note_index is not None:
        return f"{evidence.session_id} note {evidence.note_index}"
    if evidence.event_index is not None:
        return f"{evidence.session_id}#{evidence.event_index}"
    return evidence.session_id


def _how_to_answer(proposal: Proposal, reader: Reader) -> str:
    flagged = [op.op_id for op in proposal.operations if op.risk]
    hint = f" The flagged ones ({', '.join(flagged)}) deserve a careful look." if flagged else ""
    if reader == "terminal":
        return "## How to decide\n" + _terminal_answer(proposal) + hint + " Nothing changes until you do."
    return (f"## How to answer\nReply with your decisions, e.g. {_example_reply(proposal)}.{hint} "
            "Nothing changes until you answer; any applied dream can be reverted.")


def _example(proposal: Proposal) -> tuple[list[str], str | None]:
    """Ops to name in an example answer: a few unflagged ones to approve, one of them edited
    when there are two or more (a flagged op is never the example of what to approve)."""
    shown = [op for op in proposal.operations if not op.risk][:3] or proposal.operations[:1]
    edit = next((op.op_id for op in reversed(shown[1:]) if op.kind != "prune"), None)
    return [op.op_id for op in shown if op.op_id != edit], edit


def _example_reply(proposal: Proposal) -> str:
    approve, edit = _example(proposal)
    named = len(approve) + (edit is not None)
    parts = [f"approve {', '.join(approve)}", *([f"edit {edit} to …"] if edit else []),
             *(["reject the rest"] if named < len(proposal.operations) else [])]
    alternative = "“approve all”" if len(proposal.operations) > 1 else "“reject it”"
    return f"“{'; '.join(parts)}”, or {alternative}"


def _terminal_answer(proposal: Proposal) -> str:
    approve, edit = _example(proposal)
    edited = f" --edit '{edit}=new text'" if edit else ""
    return (f"`reverie review {proposal.id}` walks through each change. Or decide at once: "
            f"`reverie apply {proposal.id} --approve {' '.join(approve + ([edit] if edit else []))}{edited}` "
            f"(the rest are rejected), or `--approve all`.")


def applied_text(result: ApplyResult) -> str:
    """An apply's outcome for a person at a terminal (`ApplyResult.message` is written for chat)."""
    total = len(result.applied) + len(result.rejected)
    changes = "change" if total == 1 else "changes"
    if result.applied:
        text = (f"Applied {len(result.applied)} of {total} {changes} as revision {result.revision}; "
                f"`reverie revert {result.proposal_id}` undoes {'it' if len(result.applied) == 1 else 'them'}.")
    else:
        text = f"Rejected all {total} {changes} of {result.proposal_id}; memory is unchanged."
    if result.held_for_review:
        held = len(result.rejected)
        text += (f" {_count(held, 'flagged change')} {'waits' if held == 1 else 'wait'} for your review: "
                 f"`reverie review {result.held_for_review}`.")
    return text

"""Markdown written for people and for the agent's context window.

A proposal's report is what the user reviews in chat, so it is grouped by kind, numbered
by op id, quotes its evidence, shows risk flags plainly, and ends with how to answer. A
dream that found nothing says what it looked at, why nothing qualified, and which engine
to try on the same sessions, which it left unconsolidated.
"""

from __future__ import annotations

from reverie.models import (
    Episode,
    LookedAt,
    MemoryEntry,
    NoteEntry,
    Operation,
    PendingNotice,
    Proposal,
)
from reverie.text import shorten

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
}


def entry_line(entry: MemoryEntry) -> str:
    sources = f" (from {', '.join(entry.sources[:3])})" if entry.sources else ""
    return f"- [{entry.category}] {entry.content}{sources}"


def note_line(note: NoteEntry) -> str:
    return f"- {note.content} (session {note.session_id})"


def episode_line(episode: Episode) -> str:
    # The excerpt as recall cut it (whole sentences). Its time stays in the structured
    # result: a date on every line cost a 500-token read about one excerpt in six.
    return f"- {episode.session_id}#{episode.event_index} {episode.role}: {episode.text}"


def pending_line(notice: PendingNotice) -> str:
    flagged = f", {notice.flagged} flagged" if notice.flagged else ""
    return f"- Dream proposal {notice.proposal_id} awaits review ({notice.operations} changes{flagged})."


def memory_markdown(
    entries: list[MemoryEntry], notes: list[NoteEntry], episodes: list[Episode], pending: list[PendingNotice]
) -> str:
    parts = []
    if pending:
        parts.append("## Awaiting the user's review\n" + "\n".join(map(pending_line, pending))
                     + "\nShow the user the report (memory://proposals/<id>) and ask before calling apply_dream.")
    parts.append("## Memory\n" + ("\n".join(map(entry_line, entries)) or "(nothing remembered yet)"))
    if notes:
        parts.append("## Notes since the last dream (not yet reviewed)\n" + "\n".join(map(note_line, notes)))
    if episodes:
        parts.append("## From past sessions (raw excerpts, not curated)\n" + "\n".join(map(episode_line, episodes)))
    return "\n\n".join(parts)


def proposal_markdown(proposal: Proposal) -> str:
    if proposal.brief is not None:
        return brief_markdown(proposal)
    if proposal.status == "empty":
        return empty_markdown(proposal)
    stats = proposal.stats
    head = (
        f"# Dream proposal {proposal.id} ({proposal.status})\n"
        f"Engine {proposal.engine}; reviewed {stats.sessions_reviewed} session(s). Memory: "
        f"{stats.memories_before} → {stats.memories_after} entries, ~{stats.tokens_before} → ~{stats.tokens_after} tokens."
    )
    if not proposal.operations:
        return head + "\n\nNo changes in this proposal."
    sections = [head] + [_section(kind, ops) for kind, ops in _by_kind(proposal.operations)]
    if proposal.status == "pending":
        sections.append(_how_to_answer(proposal))
    return "\n\n".join(sections)


def empty_markdown(proposal: Proposal) -> str:
    """A dream that found nothing: what it looked at, why nothing qualified, and what next."""
    stats = proposal.stats
    seen = stats.looked_at if stats.sessions_reviewed else None  # None too for dreams stored before counting
    inside = f" ({_count(seen.user_turns, 'turn')} by the user, {_count(seen.notes, 'note')})" if seen else ""
    memories = _count(stats.memories_before, "memory entry", "memory entries")
    parts = [f"# Dream {proposal.id} found nothing to propose\nEngine {proposal.engine} looked at "
             f"{_count(stats.sessions_reviewed, 'session')}{inside} and {memories}."]
    if seen is not None:
        parts.append("## Why nothing qualified\n" + "\n".join(f"- {r}" for r in _why_nothing(proposal, seen)))
    parts.append(_still_available(proposal))
    return "\n\n".join(parts)


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
OTHER_ENGINES = {
    "agent": "in chat, `propose_dream(engine=\"agent\")`: the assistant's own model reflects on them "
             "(in a terminal, `reverie dream --engine agent` prints that brief for a model to answer)",
    "anthropic": "`reverie dream --engine anthropic` or `propose_dream(engine=\"anthropic\")`: Claude reads them "
                 "(needs ANTHROPIC_API_KEY)",
    "heuristic": "`reverie dream --engine heuristic`: the offline rules",
}


def _still_available(proposal: Proposal) -> str:
    reviewed = proposal.stats.sessions_reviewed
    if not reviewed:
        return "No session awaited a dream. Log sessions first (`log_session`, or `reverie log` in a terminal)."
    these = "this session stays" if reviewed == 1 else f"these {reviewed} sessions stay"
    others = [f"- {hint}" for engine, hint in OTHER_ENGINES.items() if engine != proposal.engine]
    return (f"## Nothing used up\nMemory is unchanged, and {these} available to the next dream. "
            "Another engine may find what this one missed:\n" + "\n".join(others))


def _count(n: int, singular: str, plural: str | None = None) -> str:
    return f"{n} {singular if n == 1 else plural or singular + 's'}"


def brief_markdown(proposal: Proposal) -> str:
    return (
        f"Dream brief {proposal.id} ({proposal.status}). Reflect on it, then call propose_dream with "
        f"brief_id=\"{proposal.id}\" and your operations; the user reviews them before anything changes.\n\n"
        + f"# Dream brief {proposal.id}\n\n{proposal.brief}"
    )


def _by_kind(ops: list[Operation]):
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
    if op.content is not None:
        lines.append(f"  - after: {op.content}")
    lines.append(f"  - why: {op.rationale}")
    lines += [f"  - evidence: {_cite(e)} “{e.quote}”" for e in op.evidence[:3]]
    if op.risk:
        lines.append("  - ⚠ risk: " + "; ".join(RISK_TEXT.get(r, r) for r in op.risk))
    return "\n".join(lines)


def _cite(evidence) -> str:
    if evidence.note_index is not None:
        return f"{evidence.session_id} note {evidence.note_index}"
    if evidence.event_index is not None:
        return f"{evidence.session_id}#{evidence.event_index}"
    return evidence.session_id


def _how_to_answer(proposal: Proposal) -> str:
    flagged = [op.op_id for op in proposal.operations if op.risk]
    safe = [op.op_id for op in proposal.operations if not op.risk]
    hint = f" The flagged ones ({', '.join(flagged)}) deserve a careful look." if flagged else ""
    return (
        "## How to answer\n"
        f"Reply with your decisions, e.g. “approve {', '.join(safe[:3]) or 'op1'}; edit op2 to …; reject the rest”, "
        f"or “approve all”.{hint} Nothing changes until you answer; any applied dream can be reverted."
    )

"""How each engine produces the proposal the benchmark applies.

`heuristic` and `anthropic` ask the server to dream. `agent` plays the calling client:
it asks for a dream brief, then submits the scenario's scripted `agent_operations` (what
a reflecting model would answer) against that brief, so the server's validation,
evidence checks and risk flags are what is measured, not a model.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Awaitable, Callable

from reverie import engines as server_engines
from reverie.models import Memory, OperationDraft, Proposal
from reverie.service import Reverie
from reverie.store import memories

from bench.quality.corpus import AgentOperation, Scenario

Dreamer = Callable[[Reverie, Scenario], Awaitable[Proposal]]


async def heuristic(reverie: Reverie, scenario: Scenario) -> Proposal:
    return await reverie.propose_dream("heuristic")


async def anthropic(reverie: Reverie, scenario: Scenario) -> Proposal:
    return await reverie.propose_dream("anthropic")


async def agent(reverie: Reverie, scenario: Scenario) -> Proposal:
    brief = await reverie.propose_dream("agent")
    if not scenario.agent_operations:
        return brief
    active = await memories.active_memories(reverie.db)
    drafts = [draft(op, active) for op in scenario.agent_operations]
    return await reverie.propose_dream(operations=drafts, brief_id=brief.id)


def draft(op: AgentOperation, active: list[Memory]) -> OperationDraft:
    return OperationDraft(
        kind=op.kind, targets=[target_id(text, active) for text in op.target_contents], content=op.content,
        category=op.category, scope=op.scope, confidence=op.confidence, rationale=op.rationale,
        evidence=op.evidence,
    )


def target_id(text: str, active: list[Memory]) -> str:
    matches = [m.id for m in active if text.lower() in m.content.lower()]
    if len(matches) != 1:
        raise ValueError(f"target_contents {text!r} matches {len(matches)} active entries; it must match one.")
    return matches[0]


DREAMERS: dict[str, Dreamer] = {"heuristic": heuristic, "agent": agent, "anthropic": anthropic}


def unavailable(engine: str) -> str | None:
    """Why `engine` cannot run here, or None when it can."""
    if engine == "anthropic" and not os.environ.get("ANTHROPIC_API_KEY"):
        return "Skipping the anthropic engine: ANTHROPIC_API_KEY is not set."
    if engine == "anthropic" and "anthropic" not in server_engines.ENGINES:
        return "Skipping the anthropic engine: this build of reverie does not register it yet."
    if engine == "agent" and "brief_id" not in inspect.signature(Reverie.propose_dream).parameters:
        return ("Skipping the agent engine: Reverie.propose_dream has no operations/brief_id parameters yet "
                "(the dream-brief API has not landed).")
    return None

"""Dream engines: each reads a `DreamInput` and proposes operations; none writes memory.

Engines never import the store or the MCP layer (a test checks), so one can run
anywhere a `DreamInput` can be built, and a proposal always goes through the same
validation, redaction and review whichever engine made it.
"""

from __future__ import annotations

from typing import Protocol

from reverie import config
from reverie.engines.agent import AgentEngine
from reverie.engines.claude import ClaudeEngine
from reverie.engines.heuristic import HeuristicEngine
from reverie.engines.openai_compatible import OpenAIEngine
from reverie.errors import InvalidInput
from reverie.models import DreamInput, EngineResult


class Engine(Protocol):
    name: str

    async def propose(self, dream: DreamInput) -> EngineResult: ...


ENGINES: dict[str, type] = {"heuristic": HeuristicEngine, "agent": AgentEngine, "anthropic": ClaudeEngine,
                            "openai": OpenAIEngine}


def engine_named(name: str) -> Engine:
    """The engine called `name`; "auto" is the best one this machine can run offline or online.

    A model server set up for Reverie (REVERIE_OPENAI_BASE_URL) comes before an Anthropic key:
    that setting names Reverie, while ANTHROPIC_API_KEY may be in the shell for other tools.
    """
    if name == "auto":
        name = _auto()
    if name not in ENGINES:
        raise InvalidInput(f"Unknown engine {name!r}. Available here: auto, {', '.join(sorted(ENGINES))}.")
    return ENGINES[name]()


def _auto() -> str:
    if config.openai_configured():
        return "openai"
    return "anthropic" if config.anthropic_key() else "heuristic"

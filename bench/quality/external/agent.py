"""The client side of one MCP connection to a fresh Reverie server: the calls an agent makes.

Everything goes through a real `mcp.Client` talking to `build_server(...)` in process, so
what is scored is the tool result's text — the markdown a model reads — not a service
object. A tool error stops the run: the bench measures quality, not error handling.

The server needs a clock a day after the data's last session (the data is from 2022-23,
and staleness and recency are judged against "now"); with `--dream-every`, a clock the
bench moves along the data, so that each dream runs just after the sessions it reviews
(`cases.Clock`). `build_server` takes no clock today, so the bench hands its service one
by replacing `open_reverie` in `reverie.mcp_server` for as long as the connection lives;
once `build_server` accepts `clock=`, that is used.

Applying: the unflagged operations are approved by id through `apply_dream`, the way a
person approving everything without a risk flag would; the flagged ones are thereby
rejected, so no pending-review notice takes part of the budget of the reads after.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from unittest import mock

from mcp import Client
from mcp.server import MCPServer
from reverie import mcp_server
from reverie.config import Settings
from reverie.service import open_reverie

from bench.quality.external.cases import Session

AGENT_ID = "bench"
READ_BUDGET = 500
EVERYTHING = 100_000  # the most read_memory allows: a fresh bench database fits in it


class ToolFailed(RuntimeError):
    """A tool answered with an error: the run cannot be scored."""


@dataclass
class Dream:
    """What one dream proposed (as proposed, with risk flags) and which op ids were applied."""

    operations: list[dict] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)
    sessions_logged: int = 0  # how many of the case's sessions were logged when it ran
    at: datetime | None = None  # the server's clock when it ran

    @property
    def flagged(self) -> list[dict]:
        return [op for op in self.operations if op.get("risk")]


class Agent:
    def __init__(self, client: Client):
        self.client = client

    async def call(self, tool: str, **arguments):
        result = await self.client.call_tool(tool, arguments)
        if result.is_error:
            raise ToolFailed(f"{tool} failed: {result.content[0].text}")
        return result

    async def log(self, session: Session) -> None:
        """One session as a transcript only (no notes), the session date on every turn."""
        stamp = session.date.isoformat()
        turns = [{**t, "timestamp": stamp} for t in session.turns]
        await self.call("log_session", transcript=turns, session_id=session.id)

    async def read(self, query: str) -> str:
        result = await self.call("read_memory", query=query, budget_tokens=READ_BUDGET)
        return result.content[0].text

    async def entries(self) -> list[dict]:
        """Every active entry this agent reads, with its sources (the sessions it cites)."""
        result = await self.call("read_memory", budget_tokens=EVERYTHING, include_notes=False)
        return result.structured_content["entries"]

    async def dream(self) -> Dream:
        proposal = (await self.call("propose_dream", engine="heuristic")).structured_content
        dream = Dream(proposal.get("operations") or [])
        if dream.operations and proposal.get("status") == "pending":
            dream.applied = [op["op_id"] for op in dream.operations if not op.get("risk")]
            await self.call("apply_dream", proposal_id=proposal["id"], approve=dream.applied)
        return dream


@asynccontextmanager
async def connect(db_path: Path, clock: Callable[[], datetime]) -> AsyncIterator[Agent]:
    """An agent connected to a new server over `db_path`, whose clock is `clock`."""
    with serving(Settings(db_path=db_path, agent_id=AGENT_ID), clock) as server:
        async with Client(server) as client:
            yield Agent(client)


@contextmanager
def serving(settings: Settings, clock: Callable[[], datetime]) -> Iterator[MCPServer]:
    if "clock" in inspect.signature(mcp_server.build_server).parameters:
        yield mcp_server.build_server(settings, clock=clock)
        return
    # The lifespan looks `open_reverie` up when the client connects: keep it replaced till then and after.
    with mock.patch.object(mcp_server, "open_reverie", functools.partial(open_reverie, clock=clock)):
        yield mcp_server.build_server(settings)

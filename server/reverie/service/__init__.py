"""The use cases, one method each: log, read, propose, apply, revert, export, import.

`Reverie` holds the open database, the settings and a clock; the MCP tools and the CLI
are thin callers of these methods and translate `ReverieError`s at their edge.

Every use case that reads or changes memory, sessions or proposals takes the caller's
`identity` and checks it (`service.access`), whatever the transport. Omitted, it is the
local caller: the configured agent with `LOCAL_GRANTS` — what stdio, loopback HTTP
without tokens, the CLI and the background schedule act as.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from types import ModuleType
from typing import TYPE_CHECKING

from reverie.clock import utcnow
from reverie.config import Settings, check_identifier
from reverie.errors import InvalidInput
from reverie.models import (
    ApplyResult,
    Category,
    Identity,
    LogResult,
    Memory,
    MemoryView,
    OperationDraft,
    Outcome,
    Proposal,
    RevertResult,
    SessionRecord,
    Turn,
)
from reverie.service import access, ingest, projects
from reverie.service.schedule import Schedule, dream_due
from reverie.store import Database, open_database, sessions

if TYPE_CHECKING:
    from reverie.service.dreams import Approval


def _dreams() -> ModuleType:
    """The dream use cases, imported on first use: they load every engine, which a hook, a
    read or a log never needs (a Claude Code hook pays each import in its start-up time)."""
    from reverie.service import dreams

    return dreams


def _transfer() -> ModuleType:
    """Imports and exports, loaded on first use like `_dreams`."""
    from reverie.service import transfer

    return transfer


class Reverie:
    def __init__(self, db: Database, settings: Settings, clock: Callable[[], datetime] = utcnow):
        self.db = db
        self.settings = settings
        self.clock = clock

    @functools.cached_property
    def schedule(self) -> Schedule:
        """When a dream is due (and, for `reverie serve`, whether to dream in the background)."""
        return Schedule.from_settings(self.settings)

    def caller(self, identity: Identity | None = None) -> Identity:
        """`identity`, or the local caller: the configured agent with every local grant."""
        return identity or Identity.local(self.settings.agent_id)

    def acting(self, agent_id: str | None, identity: Identity | None = None) -> Identity:
        """Who a call acts as: the caller as `agent_id` if it may act for that agent, else the caller."""
        if agent_id is not None:
            check_identifier(agent_id, "agent_id")
        return access.acting_for(self.caller(identity), agent_id or None)

    def agent(self, agent_id: str | None, identity: Identity | None = None) -> str:
        """The id of the agent a call acts as (see `acting`)."""
        return self.acting(agent_id, identity).agent_id

    async def log_session(
        self, transcript: list[Turn] | str, *, session_id: str | None = None, agent_id: str | None = None,
        title: str | None = None, notes: list[str] | None = None, outcome: Outcome | None = None,
        outcome_summary: str | None = None, ended: bool = True, identity: Identity | None = None,
    ) -> LogResult:
        turns, notes, acting = ingest.turns_from(transcript), notes or [], self.acting(agent_id, identity)
        agent = acting.agent_id
        ingest.check_sizes(turns, notes, title, outcome_summary)
        session_id = access.session_key(acting, session_id)  # ids are per agent: see access.session_key
        async with self.db.transaction():
            logged = await ingest.log(
                self.db, turns, notes, session_id=session_id, agent_id=agent, title=title, outcome=outcome,
                summary=outcome_summary, ended=ended, now=self.clock(), author=self.caller(identity).grants,
            )
        counted = None if access.curator(self.caller(identity)) else agent  # what this caller's dreams review
        due = await dream_due(self, self.schedule, self.clock(), counted) is not None
        return await ingest.log_result(self.db, logged, due, counted)

    async def read_memory(
        self, query: str | None = None, *, scope: str | None = None, categories: list[Category] | None = None,
        budget_tokens: int = 2000, include_notes: bool = True, agent_id: str | None = None,
        identity: Identity | None = None, project: str | None = None,
    ) -> MemoryView:
        """The memory to load; in `project` (a key), that project's and none of another's."""
        from reverie.service import recall  # ranking and reports: a log (the SessionEnd hook) never loads them

        return await recall.read(
            self.db, identity=self.acting(agent_id, identity), query=query, scope=scope,
            categories=categories, budget_tokens=budget_tokens, include_notes=include_notes, now=self.clock(),
            project=project,
        )

    async def project_key(self, cwd: str, *, claim: bool = False) -> str:
        """The key of the project `cwd` is in (`reverie.projects`); `claim` records it for good."""
        if claim:
            return await projects.claim(self.db, cwd, self.clock())
        return (await projects.key_for(self.db, cwd))[0]

    async def recent_sessions(
        self, project: str, limit: int, agent_id: str | None = None, identity: Identity | None = None
    ) -> list[SessionRecord]:
        """The caller's latest ended sessions in `project`, newest first, without their turns."""
        async with self.db.snapshot():
            return await sessions.recent_in_project(self.db, self.agent(agent_id, identity), project, limit)

    async def propose_dream(
        self, engine: str = "auto", *, max_sessions: int = 100, scope: str | None = None,
        instructions: str | None = None, operations: list[OperationDraft] | None = None, brief_id: str | None = None,
        identity: Identity | None = None,
    ) -> Proposal:
        """Dream with `engine`; or, given `operations` and `brief_id`, store what an agent wrote from a brief."""
        caller = self.caller(identity)
        if operations is not None or brief_id is not None:
            if operations is None or brief_id is None:
                raise InvalidInput("Send operations together with the brief_id of the dream brief they answer.")
            return await _dreams().submit(self.db, brief_id=brief_id, drafts=operations, identity=caller, now=self.clock())
        await self.db.flush_deferred()  # the read counts it dates staleness by
        return await _dreams().propose(
            self.db, engine=engine, max_sessions=max_sessions, reach=access.dream_reach(caller, scope),
            identity=caller, instructions=instructions, stale_after_days=self.settings.stale_after_days,
            now=self.clock(),
        )

    async def proposal(self, proposal_id: str, identity: Identity | None = None) -> Proposal:
        async with self.db.snapshot():
            found = await _dreams().load(self.db, proposal_id)
            await access.check_visible(self.db, self.caller(identity), found)
        return _dreams().with_report(found)

    async def apply_dream(
        self, proposal_id: str, approve: Approval | None = None, edits: dict[str, str] | None = None,
        identity: Identity | None = None,
    ) -> ApplyResult:
        return await _dreams().apply(self.db, proposal_id, approve, edits, self.clock(), self.caller(identity))

    async def apply_unflagged(self, proposal_id: str, identity: Identity | None = None) -> ApplyResult:
        """Auto mode: apply only operations without risk flags; the rest wait in a new proposal."""
        return await _dreams().apply_unflagged(self.db, proposal_id, self.clock(), self.caller(identity))

    async def revert_dream(self, proposal_id: str, identity: Identity | None = None) -> RevertResult:
        return await _dreams().revert(self.db, proposal_id, self.clock(), self.caller(identity))

    async def export(self) -> dict:
        return await _transfer().export(self.db, self.clock())

    async def import_(self, document: dict, source: str = "an export") -> dict[str, int | str | None]:
        """Add an export's sessions as history; its new entries wait in a proposal (`proposal_id`).
        `source` names where the document came from in the operations' rationales."""
        return await _transfer().import_(self.db, document, self.clock(), source)

    async def curated(self, project: str | None = None, identity: Identity | None = None) -> list[Memory]:
        """The active entries the caller reads: in `project` (a key), as an agent working there
        would (that project's scope and no other's); else every scope it may read."""
        caller = self.caller(identity)
        scopes = access.readable_scopes(caller, None, project) if project else None
        found = await _transfer().curated(self.db, scopes)
        return found if project else [m for m in found if caller.reads(m.scope)]


@asynccontextmanager
async def open_reverie(settings: Settings, clock: Callable[[], datetime] = utcnow) -> AsyncIterator[Reverie]:
    async with open_database(settings.database) as db:
        yield Reverie(db, settings, clock)

"""Who may read and change what: the scope rules every use case checks, whatever the transport.

An `Identity` (see `reverie.models`) is an agent id and its grants; the MCP layer resolves
it from the bearer token (or, on stdio and loopback, the configured agent) and passes it
into every call. The rules:

- **Memory.** `read_memory` shows the scopes the caller reads (`Identity.view`); naming a
  scope it cannot read is refused. Another agent's `agent:<id>` is never readable, except
  to the local caller (`agent:*`). Working in a project (`reverie.projects`), it shows
  `project:<key>` if the caller reads it, its own scope, `shared` and `user` — never
  another project's scope (`project_view`).
- **Projects.** A dream files what it learns from one project's sessions under that
  project (`routed`); what it saw in two or more projects (or in one and outside any) it
  leaves in the scope the engine chose, flagged `cross_project`, so a person decides
  whether every project should see it.
- **Sessions.** A caller logs, appends to, and reads notes and excerpts of its own sessions;
  logging as another agent needs `agent:*`. Session ids are per agent (`session_key`): an
  agent's ids are stored as `<agent>/<name>`, so no agent can find out which ids another
  uses or take one before it does. Only the local caller, who may act as and read every
  agent anyway, names sessions in the one shared namespace of bare ids.
- **Dreams.** A caller that may write `shared` is a *curator*: its dreams may span agents —
  they review every agent's sessions and private entries, because finding what agents
  share is the point — and it may apply what they propose, promotions to `shared`
  included. Anyone else dreams over its own sessions only, and with no scope named, over
  its own `agent:<id>` scope.
- **Proposals.** Seeing one (its report, `memory://proposals/{id}`, `apply_dream`'s form,
  the pending notice in `read_memory`) needs its reviewed sessions to be the caller's own,
  or the caller to be a curator, and every entry it would archive to be in a scope the
  caller may read in a dream. Applying or reverting needs every scope the chosen
  operations archive from or write to to be one the caller may write in a dream.
- **Authors.** Whoever applies, a change lands in a scope without a person's explicit
  approval only if whoever wrote its evidence may write that scope (`beyond_authors`):
  a read-only token's sessions can feed its own `agent:<id>` memory, never `user` or
  `shared`, however the dream was started.

A refusal is `Forbidden`, naming the scope and the grant that would allow it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from reverie import config
from reverie.errors import Forbidden, InvalidInput
from reverie.models import (
    LOCAL_GRANTS,
    Evidence,
    Identity,
    Memory,
    Operation,
    OperationDraft,
    PendingNotice,
    Proposal,
    SessionRecord,
)
from reverie.store import Database, memories, proposals, sessions


def check_scope(scope: str) -> str:
    if not config.SCOPE.fullmatch(scope):
        raise InvalidInput(f"scope {scope!r} is not valid: use 'shared', 'user', 'agent:<id>' or 'project:<key>'.")
    return scope


def acting_for(identity: Identity, agent_id: str | None) -> Identity:
    """The identity to act as when a call names `agent_id` (the caller's own unless it holds `agent:*`)."""
    if agent_id is None or agent_id == identity.agent_id:
        return identity
    if not identity.all_agents:
        raise Forbidden(f"You are agent {identity.agent_id!r}; you cannot act as agent {agent_id!r}. "
                        "Omit agent_id to log and read as yourself.")
    return identity.model_copy(update={"agent_id": agent_id})


def session_key(identity: Identity, session_id: str | None) -> str | None:
    """The stored id of the session `identity` names (None: the local caller's new session gets one).

    An agent's own namespace is `<agent>/`; it may name its sessions with or without that
    prefix (the ids it is shown carry it). The local caller's ids are bare, unless it names
    an agent's qualified id while acting as that agent.
    """
    own = f"{identity.agent_id}/"
    if not identity.all_agents:
        return own + _session_name(session_id.removeprefix(own) if session_id else f"ses_{uuid.uuid4().hex[:12]}")
    if session_id is None:
        return None
    if "/" not in session_id:
        return _session_name(session_id)
    if not session_id.startswith(own):
        raise InvalidInput(f"Session id {session_id!r} names another agent's session; log as that agent "
                           "(agent_id) to append to it.")
    return own + _session_name(session_id.removeprefix(own))


def _session_name(name: str) -> str:
    return config.check_identifier(name, "session_id")


def readable_scopes(identity: Identity, scope: str | None, project: str | None = None) -> list[str]:
    """What `read_memory` searches: the caller's view (in `project`, if given), or the one scope
    it named if it may read it."""
    if scope is None:
        return identity.view() if project is None else project_view(identity, project)
    if not identity.reads(check_scope(scope)):
        raise Forbidden(f"Agent {identity.agent_id!r} cannot read scope {scope!r}{_grant_hint(scope, 'read')}.")
    return [scope]


def project_view(identity: Identity, project: str) -> list[str]:
    """The caller's view in `project`: that project if it may read it, not any other project."""
    here = check_scope(f"project:{project}")
    others = [s for s in identity.view() if s.startswith("project:")]
    return [s for s in identity.view() if s not in others] + ([here] if identity.reads(here) else [])


def _grant_hint(scope: str, right: str) -> str:
    if scope.startswith("agent:"):
        return " (another agent's private memory)"
    if scope.startswith("project:"):
        return f" (a token needs {scope if right == 'write' else f'{scope} or read:{scope}'})"
    return f" (a token needs {right}:{scope})"


# --- dreams ------------------------------------------------------------------------------


def curator(identity: Identity) -> bool:
    return identity.writes("shared")


def dream_reads(identity: Identity, scope: str) -> bool:
    return identity.reads(scope) or (curator(identity) and scope.startswith("agent:"))


def dream_writes(identity: Identity, scope: str) -> bool:
    return identity.writes(scope) or (curator(identity) and scope.startswith("agent:"))


def sees_sessions_of(identity: Identity, agent_id: str) -> bool:
    return agent_id == identity.agent_id or identity.all_agents or curator(identity)


@dataclass(frozen=True)
class Reach:
    """What one dream reviews: memory in `scope` (None: every scope the caller may read in a
    dream) and the sessions of `agent_id` (None: every agent's)."""

    scope: str | None
    agent_id: str | None


def dream_reach(identity: Identity, scope: str | None) -> Reach:
    if scope is None:
        return Reach(None, None) if curator(identity) else Reach(identity.own_scope, identity.agent_id)
    if not dream_reads(identity, check_scope(scope)):
        raise Forbidden(f"Agent {identity.agent_id!r} cannot dream over scope {scope!r}"
                        f"{_grant_hint(scope, 'read')}. Dream over your own: scope='{identity.own_scope}'.")
    if scope.startswith("agent:"):
        return Reach(scope, scope.removeprefix("agent:"))
    return Reach(scope, None if curator(identity) else identity.agent_id)


def routed(
    identity: Identity, draft: OperationDraft, reviewed: dict[str, SessionRecord], current: dict[str, Memory]
) -> OperationDraft:
    """`draft` filed under the one project its evidence comes from, or flagged `cross_project`
    when it comes from several (see the module doc). The user's preferences follow the user
    everywhere, and a promotion keeps its target scope: neither is routed."""
    if draft.content is None or (draft.scope == "user" and draft.category == "preference"):
        return draft
    places = _places(draft, reviewed, current)
    if len(places) > 1 and places - {None}:
        return draft.model_copy(update={"risk": sorted({*draft.risk, "cross_project"})})
    here = f"project:{places.pop()}" if places and None not in places else None
    if here is None or draft.kind == "promote" or (draft.scope or "").startswith("project:"):
        return draft
    return draft.model_copy(update={"scope": here}) if dream_writes(identity, here) else draft


def _places(draft: OperationDraft, reviewed: dict[str, SessionRecord], current: dict[str, Memory]) -> set[str | None]:
    """The projects (None: no project) of the reviewed sessions the draft cites, and of the
    project entries it replaces; evidence an entry carried from earlier dreams does not count."""
    cited = {reviewed[e.session_id].project for e in draft.evidence if e.session_id in reviewed}
    replaced = {current[t].scope.removeprefix("project:") for t in draft.targets
                if t in current and current[t].scope.startswith("project:")}
    return cited | replaced


async def reach_memories(db: Database, identity: Identity, scope: str | None) -> list[Memory]:
    """Active memory a dream over `scope` may show `identity`."""
    found = await memories.active_memories(db, [scope] if scope else None)
    return [m for m in found if dream_reads(identity, m.scope)]


# --- proposals ---------------------------------------------------------------------------


async def check_visible(db: Database, identity: Identity, proposal: Proposal) -> None:
    if problem := await _hidden(db, identity, proposal.id):
        raise Forbidden(f"Proposal {proposal.id} is not yours to see: {problem}.")


async def _hidden(db: Database, identity: Identity, proposal_id: str) -> str | None:
    owners, scopes = await proposals.reach(db, proposal_id)
    if others := sorted(a for a in owners if not sees_sessions_of(identity, a)):
        return (f"it reviews sessions of {', '.join(others)}, and only a token granted write:shared "
                "(a curator) sees other agents' sessions")
    if hidden := sorted(s for s in scopes if not dream_reads(identity, s)):
        return f"it changes entries in {', '.join(hidden)}, which agent {identity.agent_id!r} cannot read"
    return None


async def visible_notices(db: Database, identity: Identity, notices: list[PendingNotice]) -> list[PendingNotice]:
    """The pending proposals the caller may see (and so should be told about)."""
    if identity.grants >= LOCAL_GRANTS:
        return notices  # nothing is hidden from the local caller; loading each proposal costs every read
    return [notice for notice in notices if await _hidden(db, identity, notice.proposal_id) is None]


async def check_may_apply(db: Database, identity: Identity, proposal: Proposal, chosen: list[Operation]) -> None:
    targets = await _targets(db, chosen)
    refused: dict[str, list[str]] = {}
    for op in chosen:
        for scope in _written_scopes(op, targets):
            if not dream_writes(identity, scope):
                refused.setdefault(scope, []).append(op.op_id)
    if refused:
        allowed = [op.op_id for op in chosen if all(op.op_id not in ids for ids in refused.values())]
        what = "; ".join(f"{', '.join(ids)} change{'s' if len(ids) == 1 else ''} scope {scope}{_grant_hint(scope, 'write')}"
                         for scope, ids in sorted(refused.items()))
        rest = f" Approve only {', '.join(allowed)}," if allowed else ""
        raise Forbidden(f"Agent {identity.agent_id!r} cannot apply all of {proposal.id}: {what}. Nothing changed."
                        f"{rest} or ask whoever holds those rights to apply it.")


async def check_may_revert(identity: Identity, proposal: Proposal, changed: list[Memory]) -> None:
    if refused := sorted({m.scope for m in changed if not dream_writes(identity, m.scope)}):
        raise Forbidden(f"Agent {identity.agent_id!r} cannot revert {proposal.id}: it changed entries in "
                        f"{', '.join(refused)}{_grant_hint(refused[0], 'write')}. Nothing changed.")


async def beyond_authors(db: Database, operations: list[Operation]) -> list[Operation]:
    """`operations`, those that would land in a scope their evidence's writers may not write
    flagged `beyond_author_rights`, so they wait for someone who may (auto mode applies no flagged change).

    `user` and `shared` reach every agent's memory: a token without `write:user` must not put
    words there by way of a dream it did not even run. Who wrote a session is recorded when it
    is logged (`sessions.record_author`); a session logged before that, or unknown, may write
    only nothing beyond its own agent's scope.
    """
    targets = await _targets(db, operations)
    cited = {e.session_id for op in operations for e in _authored_evidence(op, targets)}
    wrote = await sessions.authors(db, sorted(cited))
    return [_flag_beyond(op, targets, wrote) for op in operations]


def _flag_beyond(op: Operation, targets: dict[str, Memory], wrote: dict[str, tuple[str, frozenset[str]]]) -> Operation:
    writers = {wrote.get(e.session_id, ("", frozenset())) for e in _authored_evidence(op, targets)}
    authors = [Identity(agent_id=agent, grants=grants) for agent, grants in writers]
    if "beyond_author_rights" in op.risk or all(a.writes(s) for a in authors for s in _written_scopes(op, targets)):
        return op
    return op.model_copy(update={"risk": sorted({*op.risk, "beyond_author_rights"})})


def _authored_evidence(op: Operation, targets: dict[str, Memory]) -> list[Evidence]:
    """The evidence whose writers must be allowed where `op` writes: its own, and that of the
    entries it carries into another scope (a promotion's words came from them)."""
    if op.content is None:
        return list(op.evidence)
    destination = entry_scope(op, targets)
    moved = [e for t in op.targets if t in targets and targets[t].scope != destination for e in targets[t].evidence]
    return [*op.evidence, *moved]


def _written_scopes(op: Operation, targets: dict[str, Memory]) -> set[str]:
    archived = {targets[t].scope for t in op.targets if t in targets}
    return archived if op.content is None else archived | {entry_scope(op, targets)}


def entry_scope(op: Operation, targets: dict[str, Memory]) -> str:
    """Where the entry an operation writes goes: its own scope, else its first target's, else shared.

    The one rule for both checking a caller may write there and inserting the entry.
    """
    first = targets.get(op.targets[0]) if op.targets else None
    return op.scope or (first.scope if first else "shared")


async def _targets(db: Database, operations: list[Operation]) -> dict[str, Memory]:
    return await memories.get_memories(db, sorted({t for op in operations for t in op.targets}))


async def may_see_memory(db: Database, identity: Identity, memory_id: str) -> bool:
    found = (await memories.get_memories(db, [memory_id])).get(memory_id)
    return found is not None and dream_reads(identity, found.scope)


"""What waits for a person: the pending dream proposals, in full.

`read_memory` also lists them, but it counts as reading memory (it bumps the read
statistics that keep entries from being pruned as stale); a review only looks.
Briefs for an agent's own model are not listed: they wait for the agent, not a person.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reverie.models import Proposal
from reverie.store import proposals

if TYPE_CHECKING:
    from reverie.service import Reverie


async def pending_proposals(reverie: Reverie) -> list[Proposal]:
    """Every proposal awaiting review, oldest first, with its operations and report."""
    async with reverie.db.snapshot():
        notices = await proposals.pending_notices(reverie.db)
    return [await reverie.proposal(notice.proposal_id) for notice in reversed(notices)]

"""Replacements are checked by the newest-wins rules, whichever engine wrote them.

The model-backed engines are driven in test_agent_dreams.py and test_claude_engine.py;
here, the subject rule on its own, and the offline engine's updates passing the same gate.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from conftest import chat
from reverie.service.supersession import about_the_same

pytestmark = [pytest.mark.anyio, pytest.mark.both_backends]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("The user is on page 200 of the Bryson book.", "I'm now on page 220 of the Bryson book."),
        ("The API runs on port 8080.", "We moved the API to port 9090."),
        ("The project runs on Python 3.11.", "The project uses Python 3.12."),
        ("Team database: PostgreSQL 14", "Team database: MySQL 8"),
        ("Deploys happen on Tuesdays.", "We now deploy on Thursdays instead of Tuesdays."),
        ("The team uses npm.", "We switched from npm to pnpm."),
        ("My manager is Dana.", "My manager is now Raj."),
        ("Tests run with pytest", "Run the tests from the repo root with python -m pytest"),
    ],
    ids=["page", "port", "reworded-version", "same-label", "names-the-old-value", "no-values", "names", "reworded"],
)
def test_an_update_giving_its_targets_subject_a_new_value_is_about_it(old, new):
    assert about_the_same(new, old)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("The staging DB is Postgres 15.", "The prod DB is Postgres 16."),
        ("Alice's manager is Dana.", "Bob's manager is Raj."),
        ("Use tabs in Makefiles.", "Use spaces in Python files."),
        ("Eggs are $3.80 at the Ferry market.", "Eggs are $4.20 at the Union market."),
        ("Primary database host: db-primary.internal", "Replica database host: db-replica.internal"),
        ("The user is on page 200 of the Bryson book.", "The user prefers pytest for tests."),
    ],
    ids=["staging-vs-prod", "alice-vs-bob", "makefiles-vs-python", "two-markets", "two-labels", "another-subject"],
)
def test_a_near_miss_or_another_subject_is_not_about_the_target(old, new):
    assert not about_the_same(new, old)


def said(day: int, line: str) -> list:
    return chat(line, "Noted.", timestamp=datetime(2024, 3, day, 9, tzinfo=UTC))


async def test_the_offline_engines_own_update_passes_the_same_checks_unflagged(reverie):
    await reverie.log_session(said(1, "Team database: PostgreSQL 14"))
    await reverie.apply_dream((await reverie.propose_dream("heuristic")).id, approve="all")
    await reverie.log_session(said(9, "Team database: PostgreSQL 16"))

    proposal = await reverie.propose_dream("heuristic")

    updates = [op for op in proposal.operations if op.kind == "update"]
    assert updates and all(op.risk == [] for op in updates)

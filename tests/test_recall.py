"""Ranking in read_memory: the blend of relevance, confidence and recency, on real files."""

from __future__ import annotations

import pytest
from conftest import imported

pytestmark = [pytest.mark.anyio, pytest.mark.both_backends]


def entry(mid: str, content: str, confidence: float, observed: str) -> dict:
    at = f"{observed}T09:00:00+00:00"
    return {"id": mid, "content": content, "category": "fact", "scope": "agent:tester", "confidence": confidence,
            "evidence": [], "created_at": at, "updated_at": at, "observed_at": at}


async def remember(reverie, *entries: dict) -> None:
    await imported(reverie, {"format": "reverie-export", "sessions": [], "memories": list(entries)})


async def test_without_a_query_confident_and_recent_entries_come_first(reverie):
    await remember(
        reverie,
        entry("mem_old_unsure", "The old wiki was on Confluence", 0.5, "2025-01-01"),
        entry("mem_recent", "Deploys happen on Tuesdays", 0.7, "2026-10-30"),
        entry("mem_sure", "Invoices are kept for 7 years", 0.95, "2026-06-01"),
        *[entry(f"mem_filler{n}", f"Filler fact number {n} about nothing", 0.3, "2024-01-01") for n in range(300)],
    )
    view = await reverie.read_memory(budget_tokens=150)
    assert [e.id for e in view.entries[:2]] == ["mem_recent", "mem_sure"]
    assert view.truncated


async def test_with_a_query_relevance_outranks_confidence_and_stopwords_do_not_match(reverie):
    await remember(
        reverie,
        entry("mem_match", "The billing service deploys with make release", 0.5, "2026-01-01"),
        entry("mem_sure", "The office is in Leeds", 0.95, "2026-10-30"),
    )
    view = await reverie.read_memory("how is the billing service deployed?")
    assert [e.id for e in view.entries] == ["mem_match"]  # "how", "is", "the" match nothing on their own


async def test_a_word_in_a_short_entry_outranks_the_same_word_said_twice_in_a_long_one(reverie):
    # As BM25 weighs it on SQLite, so on PostgreSQL: the text's length divides the score.
    padding = " ".join(f"aside{n}" for n in range(80))
    await remember(
        reverie,
        entry("mem_long", f"Staging is mentioned here, {padding}, and staging once more at the end", 0.7, "2026-10-01"),
        entry("mem_short", "Deploys go through staging first", 0.7, "2026-10-01"),
    )
    view = await reverie.read_memory("staging")
    assert [e.id for e in view.entries] == ["mem_short", "mem_long"]

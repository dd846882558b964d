"""Databases the reliability scenarios start from, built through the service as a user would.

- `apply_fixture`: memory with `targets` entries (imported, so they are in the revision
  log) and a pending proposal of exactly `ops` operations — updates, merges, prunes and
  adds, each citing a logged note — submitted through the `agent` dream path, so it
  passed the same validation as any dream.
- `dream_corpus`: enough sessions that a heuristic dream takes a noticeable moment, so
  two dreams started together overlap.

Everything is seeded; the same arguments give the same memory and the same proposal
(ids of memories an apply inserts are random, which is why `MemoryState` compares text).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime

from reverie.config import MAX_NOTES
from reverie.models import Evidence, OperationDraft, Turn
from reverie.service import Reverie, open_reverie

from bench.backend import settings

AGENT = "bench"
SYLLABLES = ["ka", "lo", "mi", "ne", "pu", "ra", "si", "to", "vu", "ze", "bo", "da", "fe", "gi", "hu", "jo"]
SUBJECTS = ["deploy target", "on-call rota", "build cache", "staging host", "log retention", "review rule",
            "test runner", "release branch", "feature flag", "queue limit", "backup window", "api gateway"]


def word(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(3))


def statement(rng: random.Random, n: int) -> str:
    """A distinct, plain fact: no two share enough words to look like duplicates."""
    return (f"The {rng.choice(SUBJECTS)} of project {word(rng)} is {word(rng)} {word(rng)}, "
            f"agreed with {word(rng)} (item {n}).")


@dataclass(frozen=True)
class Mix:
    """How `ops` operations divide into kinds; merges take two targets each."""

    updates: int
    merges: int
    prunes: int
    adds: int

    @classmethod
    def of(cls, ops: int) -> Mix:
        updates, merges, prunes = ops * 3 // 10, ops // 10, ops // 10
        return cls(updates, merges, prunes, ops - updates - merges - prunes)

    @property
    def targets(self) -> int:
        return self.updates + 2 * self.merges + self.prunes

    @property
    def new_texts(self) -> int:
        return self.updates + self.merges + self.adds


async def apply_fixture(db: str, ops: int = 200, untouched: int = 30, seed: int = 7) -> str:
    """Build the database `db` (a path or URL); returns the id of the pending `ops`-operation proposal."""
    rng, mix = random.Random(seed), Mix.of(ops)
    async with open_reverie(settings(db, AGENT)) as reverie:
        imported = await reverie.import_(_export_of([statement(rng, i) for i in range(mix.targets + untouched)]))
        await reverie.apply_dream(imported["proposal_id"], approve="all")  # an import waits for review
        notes = await _log_notes(reverie, [statement(rng, 10_000 + i) for i in range(mix.new_texts)])
        brief = await reverie.propose_dream("agent")
        targets = [m.id for m in sorted(await _active(reverie), key=lambda m: m.content)][: mix.targets]
        proposal = await reverie.propose_dream(operations=_drafts(mix, targets, notes), brief_id=brief.id)
    if len(proposal.operations) != ops:
        raise RuntimeError(f"the service kept {len(proposal.operations)} of the {ops} operations submitted")
    return proposal.id


def _export_of(texts: list[str]) -> dict:
    at = datetime(2026, 1, 5, 12, 0, tzinfo=UTC).isoformat()
    memories = [{"id": f"mem_seed_{i:04d}", "content": text, "category": "fact", "scope": "shared",
                 "confidence": 0.8, "created_at": at, "updated_at": at, "observed_at": at}
                for i, text in enumerate(texts)]
    return {"format": "reverie-export", "version": 1, "memories": memories, "sessions": []}


async def _log_notes(reverie: Reverie, texts: list[str]) -> list[Evidence]:
    """Log `texts` as notes, MAX_NOTES per session; the citation of each, in order."""
    cited = []
    for start in range(0, len(texts), MAX_NOTES):
        part = texts[start:start + MAX_NOTES]
        logged = await reverie.log_session([Turn(role="user", content=f"Please note these ({start}).")],
                                           notes=part, title=f"notes {start}")
        cited += [Evidence(session_id=logged.session_id, note_index=i, quote=text) for i, text in enumerate(part)]
    return cited


async def _active(reverie: Reverie):
    return (await reverie.read_memory(budget_tokens=100_000, include_notes=False)).entries


def _drafts(mix: Mix, targets: list[str], notes: list[Evidence]) -> list[OperationDraft]:
    targets, notes = list(targets), list(notes)
    drafts = []
    for kind, count, width in (("update", mix.updates, 1), ("merge", mix.merges, 2), ("prune", mix.prunes, 1),
                               ("add", mix.adds, 0)):
        for _ in range(count):
            aims = [targets.pop() for _ in range(width)]
            cite = [] if kind == "prune" else [notes.pop()]
            drafts.append(OperationDraft(kind=kind, targets=aims, content=cite[0].quote if cite else None,
                                         category="fact", rationale=f"benchmark {kind}", evidence=cite))
    return drafts


async def dream_corpus(db: str, sessions: int = 100, turns: int = 100, seed: int = 11) -> None:
    """Sessions of chat, one note each, for the heuristic engine to chew on for a noticeable moment.

    The user only asks (a question is read, never kept), so a dream proposes one add per
    note: a race over applying it measures the race, not the size of the proposal.
    """
    rng = random.Random(seed)
    async with open_reverie(settings(db, AGENT)) as reverie:
        for n in range(sessions):
            chat = [Turn(role="user", content=f"Is it still so? {statement(rng, n * 1000 + i)[:-1]}?")
                    if i % 2 == 0 else Turn(role="assistant", content=statement(rng, n * 1000 + i))
                    for i in range(turns)]
            await reverie.log_session(chat, notes=[statement(rng, n)], title=f"session {n}")

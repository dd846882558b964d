"""The SQLite files the benchmark reads: one per memory size, all with the same sessions.

`base` is the database the ingest measurement wrote (100 sessions × 200 turns, not yet
dreamed over, so their notes are pending and their turns searchable). Each sized database
is a copy of it plus N seeded memories, loaded through the store layer. Databases are
closed (and so checkpointed) before they are copied, so a copy never misses WAL pages.
"""

from __future__ import annotations

import shutil
import time
from datetime import datetime
from pathlib import Path

from reverie.config import Settings
from reverie.service import open_reverie

from bench.perf.data import generate_memories, load_memories


async def with_memories(base: Path | None, target: Path, n: int, seed: int, now: datetime, *, duplicate_pairs: int = 0,
                        stale_share: float = 0.01) -> dict:
    """Copy `base` (or start empty when None) to `target` and add `n` memories; how it went."""
    if base is not None:
        shutil.copyfile(base, target)
    items = generate_memories(n, seed, now, duplicate_pairs=duplicate_pairs, stale_share=stale_share)
    start = time.perf_counter()
    async with open_reverie(Settings(db_path=target)) as reverie:
        await load_memories(reverie.db, items)
    seconds = time.perf_counter() - start
    return {"memories": n, "load_seconds": round(seconds, 2), "rows_per_second": round(n / seconds),
            "db_bytes": target.stat().st_size, "method": "store.memories.insert_memory in db.transaction(), 10k rows each"}


def copy(source: Path, target: Path) -> Path:
    shutil.copyfile(source, target)
    return target

"""The databases the benchmark reads: one per memory size, all with the same sessions.

`base` is the database the ingest measurement wrote (100 sessions × 200 turns, not yet
dreamed over, so their notes are pending and their turns searchable). Each sized database
is a copy of it plus N seeded memories, loaded through the store layer. Databases are
closed (and so checkpointed) before they are copied, so a copy never misses WAL pages.
On PostgreSQL (`bench.backend`) the runner makes the copy (`CREATE DATABASE … TEMPLATE`)
and passes no `base`.
"""

from __future__ import annotations

import shutil
import time
from datetime import datetime
from pathlib import Path

from reverie.service import open_reverie

from bench.backend import Backend, settings
from bench.perf.data import generate_memories, load_memories


async def with_memories(base: Path | None, target: str | Path, n: int, seed: int, now: datetime, *,
                        duplicate_pairs: int = 0, stale_share: float = 0.01, backend: Backend | None = None) -> dict:
    """Copy the file `base` (or start from `target` as it is when None) to `target` and add `n`
    memories; how it went. `backend` measures the size of a database that is not a file."""
    if base is not None:
        shutil.copyfile(base, target)
    items = generate_memories(n, seed, now, duplicate_pairs=duplicate_pairs, stale_share=stale_share)
    start = time.perf_counter()
    async with open_reverie(settings(target)) as reverie:
        await load_memories(reverie.db, items)
    seconds = time.perf_counter() - start
    size = backend.size(str(target)) if backend else Path(target).stat().st_size
    return {"memories": n, "load_seconds": round(seconds, 2), "rows_per_second": round(n / seconds),
            "db_bytes": size, "method": "store.memories.insert_memory in db.transaction(), 10k rows each"}

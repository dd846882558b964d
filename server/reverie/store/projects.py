"""Project keys: which project root holds which key (see `reverie.projects`).

A row is written once and never changed, so a key always names the same root.
"""

from __future__ import annotations

from datetime import datetime

from reverie.clock import to_iso
from reverie.store.database import Database


async def key_of(db: Database, root: str) -> str | None:
    return await db.scalar("SELECT key FROM projects WHERE root = ?", (root,))


async def root_of(db: Database, key: str) -> str | None:
    return await db.scalar("SELECT root FROM projects WHERE key = ?", (key,))


async def register(db: Database, key: str, root: str, now: datetime) -> None:
    # Runs in the caller's write transaction, after it found neither row: no other writer
    # can claim the key or the root in between.
    await db.execute("INSERT INTO projects (key, root, created_at) VALUES (?, ?, ?)", (key, root, to_iso(now)))

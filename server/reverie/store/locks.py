"""Named leases in the database: mutual exclusion between processes that share one file.

A lock is a row (name, holder, acquired_at, expires_at). Taking it is one compare-and-set
statement: insert the row if absent, or overwrite it if it has expired (its holder
crashed or hung) or already belongs to the caller (a renewal). Only the holder can
release it. Nothing here waits: a caller that is refused decides what to do next.

Timestamps are ISO-8601 UTC strings of fixed width (`clock.to_iso`), so comparing them
as text compares the moments.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from reverie.clock import from_iso, to_iso
from reverie.store.database import Database


@dataclass(frozen=True)
class Lease:
    name: str
    holder: str
    acquired_at: datetime
    expires_at: datetime


async def acquire(db: Database, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
    """Take lock `name` for `holder` until `now + ttl`; False while someone else holds it.

    Call inside `db.transaction()`: BEGIN IMMEDIATE serialises this against every other
    writer, so the lease a refused caller reads next is the one that refused it.
    """
    changed = await db.execute(
        """INSERT INTO locks (name, holder, acquired_at, expires_at) VALUES (?, ?, ?, ?)
           ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, acquired_at = excluded.acquired_at,
               expires_at = excluded.expires_at
           WHERE locks.expires_at <= excluded.acquired_at OR locks.holder = excluded.holder""",
        (name, holder, to_iso(now), to_iso(now + ttl)),
    )
    return changed == 1


async def release(db: Database, name: str, holder: str) -> bool:
    """Drop the lock if `holder` still has it; False if it expired and was taken over."""
    return await db.execute("DELETE FROM locks WHERE name = ? AND holder = ?", (name, holder)) == 1


async def lease(db: Database, name: str) -> Lease | None:
    """Who holds lock `name` (possibly past its expiry), or None when it is free."""
    row = await db.fetchone("SELECT * FROM locks WHERE name = ?", (name,))
    if row is None:
        return None
    return Lease(name=row["name"], holder=row["holder"], acquired_at=from_iso(row["acquired_at"]),
                 expires_at=from_iso(row["expires_at"]))

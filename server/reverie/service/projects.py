"""The project key of a working directory, as the database knows it (`reverie.projects`).

Reading a key changes nothing: a directory no session was logged in yet gets the key it
would be given, which holds no memory. Logging a session claims the key for its root.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from reverie.projects import base_key, claimed_key, project_root
from reverie.store import Database
from reverie.store import projects as store


async def key_for(db: Database, cwd: str | Path) -> tuple[str, str]:
    """(key, root) of the project `cwd` is in: the root's own key, else the one it would claim."""
    root = str(project_root(cwd))
    if known := await store.key_of(db, root):
        return known, root
    return claimed_key(Path(root), await store.root_of(db, base_key(Path(root)))), root


async def claim(db: Database, cwd: str | Path, now: datetime) -> str:
    """The key of the project `cwd` is in, recorded for its root so it never changes."""
    async with db.transaction():
        key, root = await key_for(db, cwd)
        if await store.root_of(db, key) is None:
            await store.register(db, key, root, now)
    return key

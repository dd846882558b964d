"""Which project a working directory belongs to, and the key its memory is kept under.

A project is the git root above a directory — the nearest ancestor (or the directory
itself) holding a `.git` entry, a folder in a clone or a file in a worktree or submodule —
and the directory itself when there is none. It is found by looking at the file system
only: a hook must not wait on a `git` subprocess.

Its **key** names its scope, `project:<key>`. The key is the root folder's name, spelled
safely (lower case; letters, digits, `.`, `_` and `-`; at most KEY_CHARS): `~/src/Billing
API` is `billing-api`. Two different roots with the same name cannot share a key, so the
first root seen keeps the plain name and every later one gets `<name>-<6 hex digits of
its path>` (`claimed_key`). The database remembers which root has which key
(`store.projects`), so a key never changes once a session was logged under it.
"""

from __future__ import annotations

import re
from pathlib import Path

KEY_CHARS = 64
_UNSAFE = re.compile(r"[^a-z0-9._-]+")


def project_root(cwd: str | Path) -> Path:
    """The git root at or above `cwd`, else `cwd` itself (absolute, symlinks resolved)."""
    start = Path(cwd).expanduser().resolve()
    return next((folder for folder in (start, *start.parents) if (folder / ".git").exists()), start)


def base_key(root: Path) -> str:
    """The root folder's name, spelled safely; `project` for a name with nothing safe in it (`/`)."""
    return _UNSAFE.sub("-", root.name.lower()).strip("-._")[:KEY_CHARS].strip("-._") or "project"


def claimed_key(root: Path, holder: str | None) -> str:
    """The key for `root` given who holds its base key (None: nobody yet): the name itself
    when free or its own, else the name with a digest of the path that tells them apart."""
    base = base_key(root)
    if holder is None or holder == str(root):
        return base
    import hashlib  # OpenSSL's, ~3 ms to load: only a second root of one name needs it, not every hook

    digest = hashlib.sha256(str(root).encode()).hexdigest()[:6]
    return f"{base[:KEY_CHARS - 7]}-{digest}"

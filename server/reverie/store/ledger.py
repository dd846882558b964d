"""The ledger: one append-only list of digests of everything Reverie's history is made of.

Triggers (migration m008) append a row for every event, note, session (when opened and
when ended), proposal and each change of its status, operation (with its risk flags) and
each change of its outcome, revision, memory and memory change: `(kind, key, digest)`,
where the digest is sha256 over the row's columns. `reverie doctor` recomputes every
digest from the rows as they are now and compares: an edited, forged or deleted row shows.

Someone who can write the file can also rewrite the ledger, so it needs an anchor outside
the file: the *checkpoint*, `<seq>:<hash of the ledger up to seq>`. A user keeps it; later,
`doctor --since` recomputes that hash, which changes if anything logged up to then was
altered, removed or re-hashed. What was added after a checkpoint is checked for
consistency only: it proves the past, not what comes after it.

The digest is a SQL function (`reverie_digest`) so the triggers compute it inside the
very statement that writes the row; every connection that writes must `register` it.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

import aiosqlite

DIGEST_FUNCTION = "reverie_digest"
_CHECKPOINT = re.compile(r"(\d+):([0-9a-f]{32})")


def digest(*values: object) -> str:
    """sha256 over the values as JSON; a BLOB (which Reverie never writes) is spelled out so it still hashes."""
    plain = [{"blob": v.hex()} if isinstance(v, bytes) else v for v in values]
    return hashlib.sha256(json.dumps(plain, ensure_ascii=False, separators=(",", ":")).encode()).hexdigest()


async def register(connection: aiosqlite.Connection) -> None:
    """Make `reverie_digest(...)` callable from SQL on this connection (the triggers call it)."""
    await connection.create_function(DIGEST_FUNCTION, -1, digest, deterministic=True)


@dataclass(frozen=True)
class Checkpoint:
    """How far the ledger went (`seq`) and the hash of every entry up to there."""

    seq: int
    hash: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"

    @classmethod
    def parse(cls, text: str) -> Checkpoint | None:
        match = _CHECKPOINT.fullmatch(text.strip().lower())
        return cls(int(match.group(1)), match.group(2)) if match else None


class Head:
    """The running hash of ledger entries, fed in `seq` order."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.seq = 0

    def add(self, seq: int, kind: str, key: str, row_digest: str) -> None:
        self._hash.update(f"{seq}\x1f{kind}\x1f{key}\x1f{row_digest}\n".encode())
        self.seq = seq

    def checkpoint(self) -> Checkpoint:
        return Checkpoint(self.seq, self._hash.hexdigest()[:32])

"""Bringing a memory's schema up to date (`reverie migrate`), and moving a SQLite memory onto
PostgreSQL exactly (`reverie migrate --from FILE --to URL`).

The move is checked before and after, so it cannot carry damage over or lose anything on
the way: the SQLite file is migrated first (if it is older) and must pass the doctor; the
copy itself (`store.copy`) is one transaction that commits only if the target's ledger hashes
to the source's checkpoint; then the doctor checks the target against that checkpoint.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from reverie.config import is_server_url
from reverie.errors import Damaged, InvalidInput
from reverie.service.maintenance import DoctorReport, diagnose
from reverie.store import copy, integrity, open_database


class Upgrade(BaseModel):
    database: str
    applied: list[str] = Field(description="The migrations this run applied, in order.")
    migrations: list[str] = Field(description="Every migration the database now has.")

    def markdown(self) -> str:
        if not self.applied:
            return f"Nothing to apply: {self.database} is up to date ({_migrations(self.migrations)})."
        return (f"Applied {len(self.applied)} migration(s) to {self.database}: {', '.join(self.applied)}. "
                f"The schema is up to date ({_migrations(self.migrations)}).")


def _migrations(names: list[str]) -> str:
    return f"{len(names)} migration(s), the last {names[-1]}" if names else "no migrations"


class Move(BaseModel):
    source: str
    target: str
    source_applied: list[str] = Field(description="Migrations applied to the SQLite file before copying it.")
    target_applied: list[str] = Field(description="Migrations applied to the target (its schema, when new).")
    counts: dict[str, int] = Field(description="Rows copied, by table.")
    checkpoint: str = Field(description="The ledger checkpoint of what was copied: equal on both databases.")
    check: DoctorReport = Field(description="The doctor's report on the target, against `checkpoint`.")

    def markdown(self) -> str:
        upgraded = (f"Migrated {self.source} first: {', '.join(self.source_applied)}.\n"
                    if self.source_applied else "")
        created = f"Schema on {self.target}: {', '.join(self.target_applied)}.\n" if self.target_applied else ""
        width = max(len(table) for table in self.counts)
        rows = "\n".join(f"  {table.ljust(width)}  {n:>9,}" for table, n in self.counts.items())
        verdict = ("The target passes `reverie doctor` against that checkpoint." if self.check.healthy
                   else "The target FAILED `reverie doctor`:\n\n" + self.check.markdown())
        return (f"{upgraded}{created}Copied {self.source} to {self.target}:\n{rows}\n"
                f"Ledger checkpoint {self.checkpoint}, the same on both. {verdict}\n"
                f"Point every server at it: reverie --db {self.target} serve --http "
                "(locks were not copied: they are leases of the old machine's processes).")


async def upgrade(target: str | Path) -> Upgrade:
    """Create or migrate the memory's schema at `target`; say what was applied."""
    before = await _applied(target)
    async with open_database(target) as db:
        after = await integrity.applied_migrations(db) or []
        shown = db.name
    return Upgrade(database=shown, applied=[name for name in after if name not in before], migrations=after)


async def _applied(target: str | Path) -> list[str]:
    """The migrations `target` has now; none where there is no database yet."""
    if not is_server_url(target) and not Path(target).exists():
        return []
    async with integrity.open_existing(target) as db:
        return await integrity.applied_migrations(db) or []


async def move(source: str | Path, target: str) -> Move:
    """Copy the SQLite memory at `source` into the empty PostgreSQL database at `target`, exactly."""
    source = _sqlite_file(source, target)
    source_applied = (await upgrade(source)).applied
    before = await diagnose(source)
    if not before.healthy:
        raise Damaged(f"{source} fails `reverie doctor` ({before.problem_count} problem(s)), so it was not copied: "
                      f"the copy would carry the damage over. See them with `reverie --db {source} doctor`, and "
                      "copy the newest backup that passes instead.")
    async with open_database(source) as from_db:
        await copy.refuse_unstorable(from_db)  # before the target is touched at all
        target_before = await _applied(target)
        async with open_database(target) as to_db:
            target_after = await integrity.applied_migrations(to_db) or []
            copied = await copy.copy_memory(from_db, to_db)
            shown = to_db.name
    check = await diagnose(target, str(copied.checkpoint) if copied.entries else None)
    return Move(source=str(source), target=shown, source_applied=source_applied,
                target_applied=[name for name in target_after if name not in target_before],
                counts=copied.counts, checkpoint=str(copied.checkpoint), check=check)


def _sqlite_file(source: str | Path, target: str) -> Path:
    if is_server_url(source):
        raise InvalidInput("--from names a SQLite file; to copy one PostgreSQL database to another, use pg_dump "
                           "and pg_restore (docs/postgresql.md).")
    if not is_server_url(target):
        raise InvalidInput(f"--to names a PostgreSQL database (postgresql://user@host/database), not {target!r}; "
                           "to copy a SQLite file to another file, use `reverie backup FILE`.")
    path = Path(source).expanduser()
    if not path.is_file():
        raise InvalidInput(f"There is no SQLite file at {path}: name the memory file to copy with --from "
                           "(by default it is memory.db in Reverie's user data folder).")
    return path

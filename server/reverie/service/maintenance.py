"""Checking a memory's database (`reverie doctor`) and copying it safely (`reverie backup`).

The doctor answers one question: is this database still the history Reverie wrote? Six
checks, each independent, each listing what it found wrong; the first three are each
backend's own, the last three are the same SQL on both:

- sqlite: `PRAGMA integrity_check` and `foreign_key_check`. On PostgreSQL, `postgresql`:
  every migration applied (and none from a newer Reverie), every foreign key there,
  enforced (its triggers enabled) and holding, every index usable.
- guards: the append-only and ledger triggers the migrations created are all still there,
  as created. On PostgreSQL also enabled, with the functions they call unchanged, and no
  rewrite rule beside them.
- search index: every FTS5 index holds exactly the rows of its table, with their text. On
  PostgreSQL the search columns are generated from the text, so cannot drift: the check is
  that they are still generated, and their GIN indexes usable.
- revision log: replaying every memory change from nothing, in order, gives exactly the
  memories table (ids, text, category, scope, archive state), and each change started
  from the state the previous ones left. This is what makes `revert_dream` exact.
- transcripts: every session's stored content hash equals the chain recomputed from its
  events (`ingest.chain_hash`), with no event index missing: no turn was altered,
  removed or slipped in since it was logged.
- ledger: every event, note, session, proposal (and status), operation (with its risk
  flags, and its outcome), revision, memory and memory change still has the digest the
  ledger logged when it was written (`store.ledger`): nothing edited, forged or deleted,
  even with the transcript hashes recomputed. A healthy run prints a checkpoint (the
  ledger's head); `--since CHECKPOINT` proves nothing logged before it changed since,
  which the file alone cannot prove against someone able to rewrite all of it.

A check the database cannot carry out reports that as its problem and the others still
run, unless the file cannot be read at all (or, on PostgreSQL, holds no Reverie schema).

The backup is SQLite's `VACUUM INTO` (consistent while other processes keep writing), then
the same checks on the copy. On PostgreSQL it is `pg_dump` (custom format, for
`pg_restore`), reading at a snapshot the doctor's connection exports, so the ledger
checkpoint of exactly what the archive holds is known; then the doctor checks the database
it was taken from against that checkpoint. After a restore, `reverie doctor --since` that
checkpoint proves the restored history is the one backed up.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, Field

from reverie.config import is_server_url, safe_url
from reverie.errors import Damaged, InvalidInput
from reverie.service.ingest import chain_hash
from reverie.store import Database
from reverie.store import integrity as store
from reverie.store.database import Backend
from reverie.store.integrity import LoggedChange, MemoryState
from reverie.store.ledger import Checkpoint
from reverie.store.migrations import LEDGERED


class Check(BaseModel):
    name: str
    ok: bool
    summary: str = Field(description="What was checked, in a few words, with counts.")
    problems: list[str] = Field(default_factory=list)


class DoctorReport(BaseModel):
    database: str
    backend: Backend = "sqlite"
    healthy: bool
    checks: list[Check]
    checkpoint: str | None = Field(
        default=None, description="The ledger's head when healthy: keep it, and pass it to `doctor --since` later.")

    @property
    def problem_count(self) -> int:
        return sum(len(c.problems) for c in self.checks)

    def markdown(self) -> str:
        verdict = "healthy" if self.healthy else f"{self.problem_count} problem(s)"
        lines = [f"# Reverie doctor: {self.database} — {verdict}", ""]
        for check in self.checks:
            lines.append(f"- {'ok  ' if check.ok else 'FAIL'} {check.name}: {check.summary}")
            lines += [f"    - {problem}" for problem in check.problems]
        if self.checkpoint:
            lines += ["", f"Checkpoint: {self.checkpoint}", KEEP_CHECKPOINT.format(checkpoint=self.checkpoint)]
        if not self.healthy:
            lines += ["", NEXT_STEPS[self.backend]]
        return "\n".join(lines)


class BackupResult(BaseModel):
    source: str
    path: str
    bytes: int
    check: DoctorReport = Field(description="SQLite: the copy's check. PostgreSQL: the source's, against "
                                            "`checkpoint`, right after the dump.")
    checkpoint: str | None = Field(default=None, description="PostgreSQL: the ledger checkpoint the archive holds.")
    restore: str | None = Field(default=None, description="PostgreSQL: how to restore the archive, and check it.")

    def markdown(self) -> str:
        if self.restore is None:
            verdict = "and checked it: healthy" if self.check.healthy else "but the copy FAILED its check"
            return f"Backed up {self.source} to {self.path} ({self.bytes:,} bytes) {verdict}.\n\n{self.check.markdown()}"
        verdict = ("checked the database against it: healthy" if self.check.healthy
                   else "but the database FAILED its check against it")
        return (f"Backed up {self.source} to {self.path} ({self.bytes:,} bytes, pg_dump custom format) up to ledger "
                f"checkpoint {self.checkpoint}, and {verdict}.\n\nTo restore: {self.restore}\n\n{self.check.markdown()}")


NEXT_STEPS: dict[Backend, str] = {
    "sqlite": "What to do: keep this file as it is (copy it aside before anything else) and restore the newest "
              "backup that `reverie doctor` passes. A search index alone out of step can be rebuilt: "
              "`sqlite3 FILE \"INSERT INTO memories_fts (memories_fts) VALUES ('rebuild')\"` (likewise events_fts).",
    "postgresql": "What to do: keep this database as it is (stop the servers writing to it; `reverie backup FILE` "
                  "or pg_dump it aside before anything else) and restore the newest backup that `reverie doctor` "
                  "passes into a new database. A migration not applied: `reverie --db URL migrate`. A trigger "
                  "disabled with nothing else wrong: `ALTER TABLE … ENABLE TRIGGER …`, then run the doctor again.",
}

KEEP_CHECKPOINT = (
    "Keep it where those who can write this database cannot (a note, a ticket, another machine): "
    "`reverie doctor --since {checkpoint}` later proves that nothing logged up to now was changed."
)

Finding = tuple[str, list[str]]  # (what was checked, with counts; what is wrong)
CheckFn = Callable[[Database], Awaitable[Finding]]
UNREADABLE = "could not run"
UNREADABLE_WHOLE: dict[Backend, str] = {"sqlite": "the file cannot be read",
                                        "postgresql": "the database cannot be read (see the first check)"}
SHOWN = 10  # problems listed one by one per check; the rest are counted


async def diagnose(target: str | Path, since: str | None = None) -> DoctorReport:
    """Run every check on the memory at `target` — a SQLite file or a `postgresql://` URL, which
    must exist and is neither created nor migrated; `since` is a kept checkpoint."""
    ledger = LedgerCheck(_checkpoint(since))
    checks: list[Check] = []
    async with store.open_existing(target) as db:
        unreadable = UNREADABLE_WHOLE[db.backend]
        for name, check in [*CHECKS[db.backend], ("ledger", ledger)]:
            if checks and checks[0].summary == UNREADABLE:  # the database could not be read at all
                checks.append(Check(name=name, ok=False, summary="skipped", problems=[unreadable]))
            else:
                checks.append(await _run(name, check, db))
        shown = db.name if db.backend == "postgresql" else str(target)
    healthy = all(c.ok for c in checks)
    return DoctorReport(database=shown, backend=db.backend, healthy=healthy, checks=checks,
                        checkpoint=str(ledger.head) if healthy and ledger.head else None)


def _checkpoint(text: str | None) -> Checkpoint | None:
    if text is None:
        return None
    if (checkpoint := Checkpoint.parse(text)) is None:
        raise InvalidInput(f"{text!r} is not a checkpoint; use the `N:hash` line an earlier `reverie doctor` printed.")
    return checkpoint


async def back_up(source: str | Path, target: str | Path) -> BackupResult:
    """Copy `source` to the new file `target` — a SQLite file with VACUUM INTO, then diagnose the
    copy; a PostgreSQL database with pg_dump, then diagnose the source against the dump's checkpoint."""
    target = Path(target).expanduser()
    if target.exists():
        raise InvalidInput(f"{target} exists; a backup never overwrites a file. Name a new file.")
    if is_server_url(source):
        return await _dump(str(source), target)
    try:
        async with store.open_existing(source) as db:
            target.parent.mkdir(parents=True, exist_ok=True)
            await store.vacuum_into(db, target)
    except Damaged:
        target.unlink(missing_ok=True)  # a copy that stopped half-way is no backup
        raise
    report = await diagnose(target)
    return BackupResult(source=str(source), path=str(target), bytes=target.stat().st_size, check=report)


async def _dump(url: str, target: Path) -> BackupResult:
    try:
        async with store.open_existing(url) as db:
            target.parent.mkdir(parents=True, exist_ok=True)
            dumped = await store.pg_dump_into(db, url, target)
    except BaseException:
        target.unlink(missing_ok=True)  # an archive that stopped half-way is no backup
        raise
    report = await diagnose(url, str(dumped.checkpoint))
    restore = (f"createdb NEW && pg_restore --no-owner --dbname=postgresql://…/NEW {target}, then "
               f"reverie --db postgresql://…/NEW doctor --since {dumped.checkpoint}")
    return BackupResult(source=safe_url(url), path=str(target), bytes=target.stat().st_size, check=report,
                        checkpoint=str(dumped.checkpoint), restore=restore)


async def _run(name: str, check: CheckFn, db: Database) -> Check:
    try:
        summary, problems = await check(db)
    except Damaged as error:
        return Check(name=name, ok=False, summary=UNREADABLE, problems=[str(error)])
    return Check(name=name, ok=not problems, summary=summary, problems=_capped(problems))


def _capped(problems: list[str]) -> list[str]:
    if len(problems) <= SHOWN:
        return problems
    return problems[:SHOWN] + [f"… and {len(problems) - SHOWN:,} more"]


# --- the checks ------------------------------------------------------------------------------


async def sqlite_check(db: Database) -> Finding:
    return "integrity_check, foreign_key_check", await store.sqlite_problems(db)


async def postgres_check(db: Database) -> Finding:
    """PostgreSQL's counterpart of `sqlite_check`: the schema as the migrations made it, its keys holding."""
    applied = await store.applied_migrations(db)
    if applied is None:
        raise Damaged(f"{db.name} holds no Reverie schema (no _migrations table). Create it with "
                      "`reverie --db URL migrate`, or check that the URL names the memory's database.")
    problems = _migration_problems(applied, store.expected_migrations(db.backend))
    keys = await store.foreign_keys(db)
    problems += [f"the foreign key {table}.{column} → {parent}.{key} is missing, so rows can point at nothing"
                 for table, column, parent, key in sorted(store.expected_foreign_keys() - {k.shape for k in keys})]
    for key in keys:
        problems += await _key_problems(db, key)
    problems += [f"index {name} is not usable (a failed CREATE INDEX CONCURRENTLY or REINDEX): REINDEX INDEX {name}"
                 for name in await store.unusable_indexes(db)]
    return f"{len(applied)} migrations applied, {len(keys)} foreign keys held against their rows, indexes", problems


def _migration_problems(applied: list[str], expected: list[str]) -> list[str]:
    return ([f"migration {name} is not applied: run `reverie --db URL migrate`" for name in expected
             if name not in applied]
            + [f"migration {name} was applied by a newer Reverie; upgrade Reverie to check or serve this database"
               for name in applied if name not in expected])


async def _key_problems(db: Database, key: store.ForeignKey) -> list[str]:
    problems = []
    if not key.enforced:
        problems.append(f"the foreign key {key.name} is not enforced: its triggers on {key.table} or {key.parent} "
                        "are disabled (ALTER TABLE … DISABLE TRIGGER ALL)")
    if not key.validated:
        problems.append(f"the foreign key {key.name} was added NOT VALID: rows from before it were never checked")
    return problems + _listed(f"{key.table} rows point at a missing {key.parent} row ({key.column})",
                              await store.orphans(db, key))


async def guards_check(db: Database) -> Finding:
    drift = await store.trigger_drift(db)
    problems = [f"trigger {name} is missing, so what it guards could be rewritten" for name in drift.missing]
    problems += [f"trigger {name} is not the one the migrations created (its SQL differs), so it may guard nothing"
                 for name in drift.changed]
    problems += [f"trigger {name} was not created by Reverie; it may rewrite what is stored" for name in drift.unknown]
    problems += [f"trigger {name} is disabled (ALTER TABLE … DISABLE TRIGGER), so what it guards could be "
                 "rewritten" for name in drift.disabled]
    problems += [f"function {name} is missing or not the one the migrations created (its body differs), so the "
                 "triggers calling it may guard or log nothing" for name in drift.functions]
    problems += [f"rule {rule} was not created by Reverie; it may rewrite what is stored" for rule in drift.rules]
    if db.backend == "postgresql":
        return "append-only and ledger triggers and their functions, compared by their definitions", problems
    return "append-only and ledger triggers, compared by their SQL", problems


async def search_index_check(db: Database) -> Finding:
    tables = await store.fts_tables(db)
    if not tables:
        return "no full-text index found", ["the FTS5 tables are missing"]
    counts, problems = [], []
    for fts, (table, key) in sorted(tables.items()):
        drift = await store.index_drift(db, fts, table, key)
        counts.append(f"{fts} {drift.indexed:,} rows")
        problems += _listed(f"{table} rows missing from {fts}", drift.missing)
        problems += _listed(f"{fts} rows whose {table} row does not exist", drift.extra)
        if drift.mismatch:
            problems.append(f"{fts} does not match the text in {table} ({drift.mismatch})")
    return ", ".join(counts) + " against their tables", problems


async def postgres_search_check(db: Database) -> Finding:
    """The search columns are generated from the text, so cannot drift from it; unless they stopped being generated."""
    columns, problems = await store.search_columns(db), []
    for found in columns:
        where = f"{found.table}.{found.column}"
        if found.generated != store.search_expression():
            problems.append(f"{where} is no longer generated from {found.table}.content (found "
                            f"{found.generated or 'a plain column, or none'}), so search can drift from the text")
        if not found.indexed:
            problems.append(f"the GIN index {found.index} on {where} is missing or unusable, so searches scan "
                            f"every row: REINDEX INDEX {found.index} (or recreate it)")
    summary = ", ".join(f"{c.table}.{c.column}" for c in columns) + " generated from their text, GIN-indexed"
    if await store.has_table(db, "memory_words"):
        summary += "; memory_words recounted"
        problems += _word_count_problems(await store.memory_word_drift(db, SHOWN + 1))
    return summary, problems


def _word_count_problems(drift: list[tuple[str, int, str, int | None, int]]) -> list[str]:
    """memory_words is derived from the memories (how common a query's words are), so a
    difference skews ranking, never history; rebuilding it is safe."""
    if not drift:
        return []
    shown = ", ".join(f"{word!r} in {scope} slice {part}: {kept if kept is not None else 'none'} kept, {counted} "
                      "counted" for word, part, scope, kept, counted in drift[:SHOWN])
    more = " and more" if len(drift) > SHOWN else ""
    return [f"memory_words differs from the memories' words ({shown}{more}), which skews what read_memory ranks "
            "first: rebuild it in one transaction, DELETE FROM memory_words then the INSERT … SELECT of "
            "migration p005_memory_words (store/postgres_schema.py)"]


def _listed(what: str, keys: list[int] | list[str]) -> list[str]:
    if not keys:
        return []
    more = f" and {len(keys) - SHOWN:,} more" if len(keys) > SHOWN else ""
    return [f"{len(keys):,} {what}: {', '.join(map(str, keys[:SHOWN]))}{more}"]


async def revision_log_check(db: Database) -> Finding:
    async with store.consistent_read(db):  # the log and the table as of one moment, whoever is writing
        changes = await store.logged_changes(db)
        table = await store.memory_states(db)
    replayed, problems = replay(changes)
    active = sum(1 for m in table.values() if m.valid_to is None)
    revisions = len({c.revision_id for c in changes})
    summary = (f"{len(changes):,} changes in {revisions:,} revisions replayed against {len(table):,} memories "
               f"({active:,} active)")
    return summary, problems + compare(replayed, table)


def replay(changes: list[LoggedChange]) -> tuple[dict[str, MemoryState], list[str]]:
    """The memories the log describes, starting from none; and where the log contradicts itself."""
    state: dict[str, MemoryState] = {}
    problems = []
    for change in changes:
        known = state.get(change.memory_id)
        if change.change == "insert" and known is not None:
            problems.append(f"change {change.id} inserts {change.memory_id} a second time")
        elif change.change != "insert" and known is None:
            problems.append(f"change {change.id} {change.change}s {change.memory_id}, which no earlier change inserted")
        elif known is not None and change.before != known:
            problems.append(f"change {change.id} found {change.memory_id} {_describe(change.before)}, "
                            f"but the log before it left it {_describe(known)}")
        state[change.memory_id] = change.after
    return state, problems


def compare(replayed: dict[str, MemoryState], table: dict[str, MemoryState]) -> list[str]:
    """Where the memories table differs from what the log says it should hold."""
    problems = [f"memory {i} is in the table but no change in the log made it" for i in table if i not in replayed]
    problems += [f"the log made memory {i}, which is not in the table" for i in replayed if i not in table]
    problems += [
        f"memory {i} is {_describe(table[i])} in the table, but the log leaves it {_describe(replayed[i])}"
        for i in table if i in replayed and table[i] != replayed[i]
    ]
    return problems


def _describe(memory: MemoryState | None) -> str:
    if memory is None:
        return "absent"
    status = ("active" if memory.valid_to is None
              else f"archived ({memory.archived_reason}, {memory.valid_to:%Y-%m-%d %H:%M:%S})")
    return f"{status}, {memory.category}/{memory.scope}: {_short(memory.content)!r}"


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def transcripts_check(db: Database) -> Finding:
    sessions = events = 0
    problems = []
    async with store.consistent_read(db):  # a session being appended to changes its events and hash together
        async for chain in store.session_chains(db):
            sessions, events = sessions + 1, events + len(chain.turns)
            if chain.indexes != list(range(len(chain.indexes))):
                problems.append(f"session {chain.id} has gaps in its event indexes (an event was removed)")
            if chain_hash("", chain.turns) != chain.content_hash:
                problems.append(f"session {chain.id}: its events no longer hash to the stored content hash "
                                f"{chain.content_hash[:12]}… (a turn was altered, removed or added)")
    return f"{sessions:,} sessions, {events:,} events re-hashed", problems


CHECKS: dict[Backend, list[tuple[str, CheckFn]]] = {
    "sqlite": [
        ("sqlite", sqlite_check),
        ("guards", guards_check),
        ("search index", search_index_check),
        ("revision log", revision_log_check),
        ("transcripts", transcripts_check),
    ],
    "postgresql": [
        ("postgresql", postgres_check),
        ("guards", guards_check),
        ("search index", postgres_search_check),
        ("revision log", revision_log_check),
        ("transcripts", transcripts_check),
    ],
}


# --- the ledger ------------------------------------------------------------------------------

NO_LEDGER = ("this database has no ledger yet (it was written before migration m008): run any command that opens "
             "it, such as `reverie show`, to add one, then run the doctor again")


@dataclass
class LedgerCheck:
    """Every row against the digest the ledger logged for it, and the ledger against a kept checkpoint."""

    since: Checkpoint | None
    head: Checkpoint | None = None  # the checkpoint to print, once the check has run

    async def __call__(self, db: Database) -> Finding:
        if not await store.has_ledger(db):
            return "no ledger", [NO_LEDGER]
        async with store.consistent_read(db):  # rows and ledger as of one moment, whoever is writing
            drifts = [await store.ledger_drift(db, item) for item in LEDGERED]
            self.head, then, entries = await store.ledger_checkpoints(db, self.since and self.since.seq)
        problems = [problem for drift in drifts for problem in _drift_problems(drift)]
        problems += self._anchor_problems(then)
        anchored = f", matching checkpoint {self.since}" if self.since and not problems else ""
        return f"{entries:,} entries re-hashed against the rows they logged{anchored}", problems

    def _anchor_problems(self, then: Checkpoint | None) -> list[str]:
        if self.since is None:
            return []
        if then is None:
            return [f"checkpoint {self.since} names ledger entry {self.since.seq}, which is gone: the ledger was "
                    "cut or rewritten"]
        if then != self.since:
            return [f"the ledger up to entry {self.since.seq} hashes to {then}, not to the checkpoint "
                    f"{self.since}: something logged before it was altered, removed or re-hashed"]
        return []


def _drift_problems(drift: store.LedgerDrift) -> list[str]:
    kind = drift.kind.replace("_", " ")
    rewritten = f"{kind} rows logged more than once though they never change (the ledger was rewritten)"
    return [
        *_listed(f"{kind} rows the ledger never logged (added behind Reverie's back)", drift.unlogged),
        *_listed(f"{kind} rows that differ from what the ledger logged (edited)", drift.changed),
        *_listed(f"{kind} rows the ledger logged that are gone (deleted)", drift.gone),
        *_listed(rewritten, drift.repeated),
    ]

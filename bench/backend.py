"""Where a benchmark's databases live: SQLite files in a folder, or databases on a PostgreSQL server.

A benchmark names each database it needs (`new`, `copy`) and gets what `--db` takes: a
file's path or a `postgresql://` URL. It reads results straight from the database, not
through Reverie (`reading`), so what it checks is what is stored, whatever a server said.
A copy is a file copy on SQLite and `CREATE DATABASE … TEMPLATE` on PostgreSQL: both need
the source closed (no server, no open connection), which the benchmarks ensure by copying
only databases they built and closed.

`bench.reliability` and `bench.perf` take `--backend postgres` (with `--postgres-url`,
default `$REVERIE_TEST_POSTGRES`: a server whose role may create databases) and run the
same scenarios there; tests/test_reliability.py runs its scenarios on both.
"""

from __future__ import annotations

import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, Protocol

from reverie.config import Settings, default_db_path, is_server_url

POSTGRES_URL_VARIABLE = "REVERIE_TEST_POSTGRES"  # the default server, as for the tests' PostgreSQL leg


class Reading(Protocol):
    """A connection in autocommit whose statements use `?` parameters, on either backend."""

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> Any: ...


class Backend(Protocol):
    name: str  # "sqlite" or "postgresql"

    def new(self, name: str) -> str:
        """A database for a benchmark to create and fill (what `--db` takes), not yet made."""
        ...

    def copy(self, source: str, name: str) -> str:
        """A copy of the closed database `source`."""
        ...

    def reading(self, db: str) -> Any:
        """A context manager giving a `Reading` connection to `db`."""
        ...

    def size(self, db: str) -> int:
        """The database's size on disk, in bytes."""
        ...

    def remove(self, db: str) -> None:
        """Delete one database (unless the backend keeps what it made)."""
        ...

    def settle(self, db: str) -> None:
        """Bring a database just filled in bulk to the state it has in use before it is measured."""
        ...

    def close(self) -> None:
        """Remove what this backend made that does not go with its folder (unless it keeps it)."""
        ...


def settings(db: str | Path, agent: str = "default") -> Settings:
    """The settings a process opening `db` (a path or a URL) as `agent` uses: `--db` and `--agent` alone."""
    if is_server_url(db):
        return Settings(db_path=default_db_path(), db_url=str(db), agent_id=agent)
    return Settings(db_path=Path(db), agent_id=agent)


class SqliteFiles:
    """Each database a file in `folder`."""

    name = "sqlite"

    def __init__(self, folder: Path, keep: bool = False):
        self.folder = folder
        self.keep = keep

    def new(self, name: str) -> str:
        return str(self.folder / f"{name}.db")

    def copy(self, source: str, name: str) -> str:
        target = self.new(name)
        shutil.copyfile(source, target)  # the source was closed cleanly: no -wal file to carry along
        return target

    @contextmanager
    def reading(self, db: str) -> Iterator[Reading]:
        # Opened as a restarted server would open it, recovering the WAL of a killed one.
        with closing(sqlite3.connect(db, isolation_level=None)) as connection:
            yield connection

    def size(self, db: str) -> int:
        return Path(db).stat().st_size

    def remove(self, db: str) -> None:
        if not self.keep:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)

    def settle(self, db: str) -> None:
        pass  # Reverie's SQLite never gathers statistics: its queries name their indexes

    def close(self) -> None:
        pass  # the files go with the folder


class PostgresDatabases:
    """Each database a new one on the server at `url` (whose role may create databases), dropped on close.

    A `new` one is empty: the first Reverie process to open it migrates it, as on a team's server.
    """

    name = "postgresql"

    def __init__(self, url: str, keep: bool = False):
        import psycopg  # the optional extra: only for this backend

        self._psycopg = psycopg
        self.url = url
        self.keep = keep
        self._run = uuid.uuid4().hex[:8]
        self.made: list[str] = []

    def new(self, name: str) -> str:
        return self._create(name, "")

    def copy(self, source: str, name: str) -> str:
        return self._create(name, f" TEMPLATE {database_name(source)}")

    @contextmanager
    def reading(self, db: str) -> Iterator[Reading]:
        with self._psycopg.connect(db, autocommit=True) as connection:
            yield _Placeholders(connection)

    def size(self, db: str) -> int:
        with self._admin() as admin:
            return admin.execute("SELECT pg_database_size(%s)", (database_name(db),)).fetchone()[0]

    def remove(self, db: str) -> None:
        if not self.keep:
            self._drop([db])

    def settle(self, db: str) -> None:
        # The planner's statistics, which autovacuum gathers within a minute or so of a bulk
        # load; measured before, a query may be planned for empty tables half-way through.
        with self.reading(db) as connection:
            connection.execute("ANALYZE")

    def close(self) -> None:
        if not self.keep:
            self._drop(self.made)

    def _drop(self, databases: list[str]) -> None:
        with self._admin() as admin:
            for db in list(databases):
                admin.execute(f"DROP DATABASE IF EXISTS {database_name(db)} WITH (FORCE)")
                if db in self.made:
                    self.made.remove(db)

    def _create(self, name: str, template: str) -> str:
        database = f"reverie_bench_{self._run}_{name.replace('-', '_')}"[:63]
        with self._admin() as admin:
            admin.execute(f"CREATE DATABASE {database}{template}")
        db = server_url(self.url, database)
        self.made.append(db)
        return db

    def _admin(self) -> Any:
        return self._psycopg.connect(self.url, autocommit=True)


class _Placeholders:
    """A psycopg connection that takes the `?` parameters the benchmarks' SQL is written with."""

    def __init__(self, connection: Any):
        self._connection = connection

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        return self._connection.execute(sql.replace("%", "%%").replace("?", "%s"), params)


def database_name(url: str) -> str:
    return url.rpartition("/")[2].partition("?")[0]


def server_url(base: str, database: str) -> str:
    """`base` (a server URL) naming `database` instead."""
    head, _, tail = base.rpartition("/")
    query = tail.partition("?")[2]
    return f"{head}/{database}" + (f"?{query}" if query else "")


def backend_named(name: str, folder: Path, postgres_url: str | None, keep: bool = False) -> Backend:
    """`--backend NAME` (sqlite or postgres): files in `folder`, or databases on the server at `postgres_url`."""
    if name == "sqlite":
        return SqliteFiles(folder, keep)
    if not postgres_url:
        raise SystemExit(f"--backend postgres needs a server: --postgres-url postgresql://… or {POSTGRES_URL_VARIABLE} "
                         "(`.ci/postgres start` starts a throwaway one and prints its URL).")
    return PostgresDatabases(postgres_url, keep)

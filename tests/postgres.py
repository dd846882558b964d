"""A real PostgreSQL for the tests' second backend: one empty, migrated database per test.

The server is named by REVERIE_TEST_POSTGRES (a URL to a database the tests may create
others from; `.ci/postgres` starts a throwaway cluster and sets it). Each test gets a
fresh database cloned from a migrated template, dropped afterwards (never emptied and
reused: the history tables refuse DELETE and TRUNCATE). Outside CI, with no server, the
PostgreSQL leg is skipped with the reason; in CI it must run.

The helpers at the end do to a PostgreSQL database what tests do to a SQLite file with
`sqlite3`: hold the write lock from another connection, read as another process, look
for bytes that must not be stored.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import uuid
from collections.abc import Iterator

import pytest

SERVER = "REVERIE_TEST_POSTGRES"


def server_url() -> str | None:
    return os.environ.get(SERVER) or None


def _database_url(base: str, name: str) -> str:
    head, _, tail = base.rpartition("/")
    query = tail.partition("?")[2]
    return f"{head}/{name}" + (f"?{query}" if query else "")


def _missing(why: str) -> None:
    message = (f"The PostgreSQL leg needs a server: {why}. Run `.ci/postgres start` and export the "
               f"{SERVER} URL it prints, or run `.ci/run`.")
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


class Server:
    """Creates and drops databases on the server under test: one per test, cloned from a
    migrated template.

    A clone takes ~0.2 s of the server's time, longer than most tests. A thread clones
    AHEAD databases before they are asked for and drops the used ones (`release`), so
    the server does that work while the tests run Python. Each test session has a
    template of its own, so sessions sharing a server do not drop each other's.
    """

    AHEAD = 3

    def __init__(self, url: str):
        import psycopg

        self.url = url
        self._psycopg = psycopg
        self._prefix = f"reverie_test_{os.getpid()}_"
        self._template_ready = False
        self._ready: queue.Queue[str | BaseException] = queue.Queue()
        self._chores: queue.Queue[str | None] = queue.Queue()  # a name to drop; _CLONE; None stops
        self._worker: threading.Thread | None = None

    def _admin(self):
        return self._psycopg.connect(self.url, autocommit=True)

    @property
    def _template_name(self) -> str:
        return self._prefix + "template"

    def _template(self) -> None:
        if self._template_ready:
            return
        import anyio
        from reverie.store import open_database

        with self._admin() as admin:
            _drop_abandoned(admin)
            admin.execute(f"DROP DATABASE IF EXISTS {self._template_name}")
            admin.execute(f"CREATE DATABASE {self._template_name}")

        async def migrate() -> None:
            async with open_database(_database_url(self.url, self._template_name)):
                pass

        anyio.run(migrate)
        self._template_ready = True

    def create(self, migrated: bool = True) -> str:
        """A new database, migrated unless `migrated=False` (then empty, as `createdb` leaves one); its URL."""
        if not migrated:
            name = self._prefix + uuid.uuid4().hex[:12]
            with self._admin() as admin:
                admin.execute(f"CREATE DATABASE {name} TEMPLATE template0")
            return _database_url(self.url, name)
        if self._worker is None:
            self._template()
            self._worker = threading.Thread(target=self._work, name="postgres-clones", daemon=True)
            self._worker.start()
            for _ in range(self.AHEAD):
                self._chores.put(_CLONE)
        self._chores.put(_CLONE)  # to replace the one taken now
        try:
            made = self._ready.get(timeout=CLONE_TIMEOUT_S)
        except queue.Empty:
            raise RuntimeError(f"no database was cloned on {self.url} in {CLONE_TIMEOUT_S} s") from None
        if isinstance(made, BaseException):
            raise made
        return _database_url(self.url, made)

    def drop(self, url: str) -> None:
        """Drop the database now."""
        with self._admin() as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {_name(url)} WITH (FORCE)")

    def release(self, url: str) -> None:
        """Drop the database soon, on the thread that clones."""
        if self._worker is None:
            self.drop(url)
        else:
            self._chores.put(_name(url))

    def close(self) -> None:
        """Drop every database this session made, the template last."""
        if self._worker is not None:
            self._chores.put(None)
            self._worker.join()
        with self._admin() as admin:
            _drop_abandoned(admin, self._prefix)

    def _work(self) -> None:
        admin = None
        while (chore := self._chores.get()) is not None:
            name = self._prefix + uuid.uuid4().hex[:12] if chore == _CLONE else chore
            try:
                admin = admin if admin is not None and not admin.closed else self._admin()
                if chore == _CLONE:
                    admin.execute(f"CREATE DATABASE {name} TEMPLATE {self._template_name}")
                    self._ready.put(name)
                else:
                    admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            except Exception as error:  # noqa: BLE001 — a test waiting for a clone raises it; `close` drops the rest
                if chore == _CLONE:
                    self._ready.put(error)
        if admin is not None:
            admin.close()


_CLONE = ""
CLONE_TIMEOUT_S = 120


def _name(url: str) -> str:
    return url.rpartition("/")[2].partition("?")[0]


def _drop_abandoned(admin, prefix: str | None = None) -> None:
    """Drop the test databases of `prefix`'s session, or (None) of sessions whose process
    on this machine is gone (killed before it could drop them)."""
    names = [row[0] for row in admin.execute("SELECT datname FROM pg_database WHERE datname LIKE 'reverie\\_test\\_%'")]
    for name in sorted(names, key=lambda name: name.endswith("_template")):  # clones before their template
        pid = name.split("_")[2]
        if name.startswith(prefix) if prefix else (pid.isdigit() and not _running(int(pid))):
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def server() -> Server:
    """The server under test, or skip (fail in CI) saying why there is none."""
    url = server_url()
    if url is None:
        _missing(f"{SERVER} is not set")
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=5):
            pass
    except ImportError:
        _missing("psycopg is not installed (pip install -e '.[test]')")
    except Exception as error:  # noqa: BLE001 — any failure to connect means the leg cannot run
        _missing(f"connecting to {url} failed: {str(error).strip()}")
    return Server(url)


# --- what tests of a guarantee do on the PostgreSQL leg, where SQLite's do it to the file ------


@contextlib.contextmanager
def another_writer(url: str) -> Iterator[None]:
    """Another server's write transaction, open until the block ends: it holds the memory's
    write lock (as BEGIN IMMEDIATE holds a SQLite file's)."""
    import psycopg
    from reverie.store.postgres_schema import WRITE_LOCK

    with psycopg.connect(url, autocommit=True) as writer:
        writer.execute("BEGIN")
        writer.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
        try:
            yield
        finally:
            writer.execute("ROLLBACK")


def fetchall(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    """Rows read by a connection of its own, as another process would read them."""
    import psycopg

    with psycopg.connect(url) as connection:
        return connection.execute(sql, params).fetchall()


def tables_holding(url: str, needles: list[str]) -> list[str]:
    """Where in the database any of `needles` is stored: `table: needle…` for each found."""
    import psycopg

    found = []
    with psycopg.connect(url) as connection:
        tables = [row[0] for row in connection.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")]
        for table in tables:
            columns = [row[0] for row in connection.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' "
                "AND table_name = %s", (table,))]
            for column in columns:  # every column as text: the search vectors too
                found += [f"{table}.{column}: {needle[:12]}…" for needle in needles if connection.execute(
                    f"SELECT EXISTS (SELECT 1 FROM {table} WHERE strpos({column}::text, %s) > 0)",
                    (needle,)).fetchone()[0]]
    return found

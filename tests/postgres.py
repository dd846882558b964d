"""A real PostgreSQL for the tests' second backend: one empty, migrated database per test.

The server is named by REVERIE_TEST_POSTGRES (a URL to a database the tests may create
others from; `.ci/postgres` starts a throwaway cluster and sets it). Each test gets a
fresh database cloned from a migrated template, dropped afterwards. Outside CI, with no
server, the PostgreSQL leg is skipped with the reason; in CI it must run.
"""

from __future__ import annotations

import os
import uuid

import pytest

SERVER = "REVERIE_TEST_POSTGRES"
TEMPLATE = "reverie_test_template"


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
    """Creates and drops one database per test on the server under test."""

    def __init__(self, url: str):
        import psycopg

        self.url = url
        self._psycopg = psycopg
        self._template_ready = False

    def _admin(self):
        return self._psycopg.connect(self.url, autocommit=True)

    def _template(self) -> None:
        if self._template_ready:
            return
        import anyio
        from reverie.store import open_database

        with self._admin() as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {TEMPLATE}")
            admin.execute(f"CREATE DATABASE {TEMPLATE}")

        async def migrate() -> None:
            async with open_database(_database_url(self.url, TEMPLATE)):
                pass

        anyio.run(migrate)
        self._template_ready = True

    def create(self) -> str:
        """A new migrated database; its URL."""
        self._template()
        name = f"reverie_test_{uuid.uuid4().hex[:12]}"
        with self._admin() as admin:
            admin.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
        return _database_url(self.url, name)

    def drop(self, url: str) -> None:
        name = url.rpartition("/")[2].partition("?")[0]
        with self._admin() as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


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

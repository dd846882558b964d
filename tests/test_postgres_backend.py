"""Choosing and reaching the PostgreSQL backend: what `--db postgresql://…` does when things go wrong,
and how the store's SQL reads on PostgreSQL."""

from __future__ import annotations

import socket
import sys

import pytest
from reverie.config import Settings
from reverie.errors import InvalidInput, Unreachable
from reverie.models import Turn
from reverie.store import open_database
from reverie.store.postgres import translate

pytestmark = pytest.mark.anyio


def test_a_postgresql_url_names_a_server_and_a_path_names_a_file(tmp_path):
    on_server = Settings.resolve("postgresql://team:s3cret@db.internal:5432/reverie")
    assert on_server.db_url == "postgresql://team:s3cret@db.internal:5432/reverie"
    assert on_server.shown == "postgresql://team@db.internal:5432/reverie"  # never the password
    in_file = Settings.resolve(str(tmp_path / "memory.db"))
    assert in_file.db_url is None and in_file.database == tmp_path / "memory.db"


def test_the_store_sql_is_translated_without_touching_quoted_text():
    assert translate("SELECT * FROM t WHERE a = ? AND b = :name AND c = 'it?s :not %'") == (
        "SELECT * FROM t WHERE a = %s AND b = %(name)s AND c = 'it?s :not %%'")
    assert translate("SELECT x::json FROM t WHERE scope IS ? AND d IS NOT e.d AND v IS NULL") == (
        "SELECT x::json FROM t WHERE scope IS NOT DISTINCT FROM %s AND d IS DISTINCT FROM e.d AND v IS NULL")
    assert translate("SELECT 1 FROM m INDEXED BY m_idx CROSS JOIN s ON s.id = m.sid") == (
        "SELECT 1 FROM m  JOIN s ON s.id = m.sid")


async def test_a_server_that_is_not_there_is_reported_with_the_url_and_what_to_check():
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(Unreachable) as caught:
        async with open_database(f"postgresql://reverie:hunter2@127.0.0.1:{port}/reverie?connect_timeout=2"):
            pass
    message = str(caught.value)
    assert f"postgresql://reverie@127.0.0.1:{port}/reverie" in message and "hunter2" not in message
    assert "REVERIE_DB" in message


async def test_without_the_driver_a_postgresql_url_says_which_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if the [postgres] extra were not installed
    monkeypatch.delitem(sys.modules, "reverie.store.postgres", raising=False)
    with pytest.raises(InvalidInput, match=r"pip install 'reverie-mcp\[postgres\]'"):
        async with open_database("postgresql://reverie@127.0.0.1:1/reverie"):
            pass


@pytest.mark.both_backends
async def test_a_nul_character_is_kept_as_a_replacement_mark_on_either_backend(reverie):
    # PostgreSQL's text cannot hold U+0000; a transcript holding one must log all the same.
    logged = await reverie.log_session([Turn(role="user", content="binary\x00output: the build id is 7f3a")],
                                       notes=["build id\x00 7f3a"])
    stored = (await reverie.read_memory(query="build id")).notes
    assert logged.events_added == 1 and [n.content for n in stored] == ["build id\ufffd 7f3a"]

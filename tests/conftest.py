"""Shared fixtures: a real database per test, the service over it, MCP clients, and the CLI.

The database is a SQLite file; in a module marked `both_backends`, every test that uses it
runs twice, the second time on a fresh database on a real PostgreSQL server (`postgres.py`).
A test there marked `sqlite_only(reason=…)` (it opens the SQLite file itself, or reads its
query plans) shows its PostgreSQL leg as skipped for that reason; the PostgreSQL leg of a
test run in both MCP protocol versions runs in the modern one only.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import postgres
import pytest
from mcp import Client
from reverie.cli import main
from reverie.config import Settings
from reverie.mcp_server import build_server
from reverie.models import Turn
from reverie.service import open_reverie


@pytest.fixture(autouse=True)
def no_api_key(monkeypatch):
    """A key (or a local model server) in the developer's shell must not switch "auto" dreams to a model."""
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("REVERIE_OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("REVERIE_PROJECT", raising=False)  # nor scope every read to one project


@pytest.fixture
def anyio_backend():
    return "asyncio"  # aiosqlite runs on asyncio only


class Clock:
    """A clock tests can move; starts at a fixed moment so results are repeatable."""

    def __init__(self):
        self.now = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)  # every call is a distinct, later moment
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames and metafunc.definition.get_closest_marker("both_backends"):
        only = metafunc.definition.get_closest_marker("sqlite_only")
        postgresql = pytest.param("postgresql", marks=pytest.mark.skip(reason=f"SQLite only: {only.kwargs['reason']}")
                                  ) if only else "postgresql"
        metafunc.parametrize("backend", ["sqlite", postgresql], indirect=True)


def pytest_collection_modifyitems(config, items):
    """On the PostgreSQL leg, a test the protocol versions parametrize runs in the modern one
    only: which version frames a call does not depend on the database, and both run on SQLite."""
    legacy = [item for item in items if _on_postgresql(item) and "legacy" in _params(item)]
    if legacy:
        config.hook.pytest_deselected(items=legacy)
        deselected = set(legacy)
        items[:] = [item for item in items if item not in deselected]


def _params(item) -> list:
    callspec = getattr(item, "callspec", None)
    return [callspec.params.get(name) for name in ("client", "mode")] if callspec else []


def _on_postgresql(item) -> bool:
    callspec = getattr(item, "callspec", None)
    return bool(callspec) and callspec.params.get("backend") == "postgresql"


@pytest.fixture
def backend(request) -> str:
    """Which backend holds the test's memory: SQLite, unless the module runs on both."""
    return getattr(request, "param", "sqlite")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[postgres.Server]:
    server = postgres.server()
    yield server
    server.close()


@pytest.fixture
def database_url(backend, request):
    """A fresh PostgreSQL database's URL on the PostgreSQL leg; None on SQLite."""
    if backend == "sqlite":
        yield None
        return
    server = request.getfixturevalue("postgres_server")
    url = server.create()
    yield url
    server.release(url)


@pytest.fixture
def settings(tmp_path, database_url) -> Settings:
    return Settings(db_path=tmp_path / "memory.db", agent_id="tester", db_url=database_url)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def reverie(settings, clock):
    async with open_reverie(settings, clock) as service:
        yield service


@pytest.fixture(params=["legacy", "auto"], ids=["legacy-2025-11-25", "modern-2026-07-28"])
async def client(request, settings):
    async with Client(build_server(settings), mode=request.param) as connected:
        yield connected


@dataclass
class Ran:
    """What one `reverie …` command run in process did: its exit code and what it printed."""

    code: int
    out: str
    err: str

    def json(self, code: int = 0):
        assert self.code == code, self.err
        return json.loads(self.out)


Cli = Callable[..., Ran]


@pytest.fixture
def cli(tmp_path, capsys, monkeypatch, database_url) -> Cli:
    """Run `reverie --db <tmp>/m.db ARGS…` in process (on the PostgreSQL leg, `--db` is the test's
    database's URL); `db=` names another file, `stdin=` is its input."""
    for name in ("REVERIE_DB", "REVERIE_AGENT_ID", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "100")  # rich wraps at the terminal width; keep it fixed
    # With a server URL, what stays on this machine (the hooks' spool, tokens) goes in the
    # user's data folder (`config.default_db_path`): the test's own, not the developer's.
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data-home"))

    def run(*argv: str, db: Path | str = database_url or tmp_path / "m.db", stdin: str = "") -> Ran:
        capsys.readouterr()
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = main(["--db", str(db), *argv])
        out, err = capsys.readouterr()
        return Ran(code, out, err)

    return run


def chat(*lines: str, **extra) -> list[Turn]:
    """Alternating user / assistant turns from plain strings."""
    return [Turn(role="user" if i % 2 == 0 else "assistant", content=line, **extra) for i, line in enumerate(lines)]


def tool_call(name: str, arguments: str, output: str, *, error: bool = False) -> list[Turn]:
    return [
        Turn(role="assistant", content=arguments, tool_name=name),
        Turn(role="tool", content=output, tool_name=name, is_error=error),
    ]


async def call(client, tool: str, **arguments) -> dict:
    """A tool's structured result through a real MCP client; the test fails on a tool error."""
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content[0].text
    return result.structured_content


def memory_entry(mid: str, content: str, observed: datetime, confidence: float = 0.7) -> dict:
    """An entry as `reverie import` reads it: to place a curated memory at a known time."""
    at = observed.isoformat()
    return {"id": mid, "content": content, "category": "fact", "scope": "agent:tester", "confidence": confidence,
            "evidence": [], "created_at": at, "updated_at": at, "observed_at": at}


async def imported(reverie, document: dict) -> dict:
    """Import an export and approve all it proposes, as a person who trusts the file would."""
    counts = await reverie.import_(document)
    if counts["proposal_id"]:
        await reverie.apply_dream(counts["proposal_id"], approve="all")
    return counts


async def remember(reverie, *entries: dict) -> None:
    await imported(reverie, {"format": "reverie-export", "sessions": [], "memories": list(entries)})

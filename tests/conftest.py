"""Shared fixtures: a real SQLite file per test, the service over it, and MCP clients."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from mcp import Client
from reverie.config import Settings
from reverie.mcp_server import build_server
from reverie.models import Turn
from reverie.service import open_reverie


@pytest.fixture(autouse=True)
def no_api_key(monkeypatch):
    """A key in the developer's shell must not switch "auto" dreams to the network."""
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)


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


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(db_path=tmp_path / "memory.db", agent_id="tester")


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


def chat(*lines: str, **extra) -> list[Turn]:
    """Alternating user / assistant turns from plain strings."""
    return [Turn(role="user" if i % 2 == 0 else "assistant", content=line, **extra) for i, line in enumerate(lines)]


def tool_call(name: str, arguments: str, output: str, *, error: bool = False) -> list[Turn]:
    return [
        Turn(role="assistant", content=arguments, tool_name=name),
        Turn(role="tool", content=output, tool_name=name, is_error=error),
    ]

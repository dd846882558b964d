"""The HTTP load benchmark (`python -m bench.perf.http_load`) at a tiny size, so it cannot rot.

It starts real servers (the no-op one and `reverie serve --http`) and client processes;
no figure is asserted, only that every tool's row is there and no call failed. Also here:
the socket `reverie serve --http` listens on hands out connections with Nagle off, the
~40 ms per request the load benchmark found.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))  # bench/ sits beside tests/ at the repo root, not installed

from reverie.http_server import listening_socket

from bench.perf import http_load

TINY = ["--clients", "3", "--calls", "2", "--warmup", "1", "--memories", "50", "--sessions", "2", "--turns", "10"]


@pytest.mark.slow  # starts two servers and a client process
def test_a_tiny_load_run_prints_a_row_per_tool_with_no_failed_call(tmp_path, capsys):
    assert http_load.main([*TINY, "--processes", "2", "--json", str(tmp_path / "load.json")]) == 0

    table = capsys.readouterr().out
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| tool")]
    assert [row.split("|")[1].strip() for row in rows] == ["no-op (floor)", "`read_memory`", "`log_session`"]
    assert "throughput ÷ no-op throughput" in table
    figures = json.loads((tmp_path / "load.json").read_text())
    assert {tool: (row["calls"], row["errors"]) for tool, row in figures["rows"].items()} == {
        "noop": (6, 0), "read_memory": (6, 0), "log_session": (6, 0)}


def test_connections_to_the_http_listening_socket_have_nagle_off():
    async def accepted_nodelay() -> int:
        found = asyncio.get_running_loop().create_future()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            found.set_result(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(handle, sock=listening_socket("127.0.0.1", 0))
        async with server:
            _, writer = await asyncio.open_connection(*server.sockets[0].getsockname())
            nodelay = await asyncio.wait_for(found, 10)
            writer.close()
        return nodelay

    # Uvicorn serves on asyncio, which turns Nagle off only on sockets whose protocol says TCP.
    assert asyncio.run(accepted_nodelay()) != 0

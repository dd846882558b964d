"""Starting real `reverie` processes: the console script, its pid, and a free loopback port."""

from __future__ import annotations

import os
import shutil
import socket
import sys
from pathlib import Path

from mcp import StdioServerParameters

HOST = "127.0.0.1"  # every server these scenarios start listens on loopback only


def reverie_command() -> str:
    """The installed console script next to this interpreter, as a client config would name it."""
    found = shutil.which("reverie", path=os.path.dirname(sys.executable)) or shutil.which("reverie")
    if not found:
        raise RuntimeError("the reverie console script is not installed; run pip install -e '.[test]'")
    return found


def stdio_server(db: str | Path, agent: str, pid_file: Path | None = None, *extra: str) -> StdioServerParameters:
    """`reverie --db DB serve` over stdio; with `pid_file`, the server writes its pid there first.

    `sh` writes its own pid and then execs the server, which keeps that pid: so the pid
    is the server's own, which `kill -9` must hit (not a wrapper that would leave it running).
    """
    command = [reverie_command(), "--db", str(db), "--agent", agent, "serve", *extra]
    if pid_file is None:
        return StdioServerParameters(command=command[0], args=command[1:])
    return StdioServerParameters(command="/bin/sh", args=["-c", 'echo $$ > "$0"; exec "$@"', str(pid_file), *command])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]

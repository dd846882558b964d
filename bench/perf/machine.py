"""What the figures were measured on: cores, CPU, memory, OS, Python, SQLite (and the
PostgreSQL server, when measured there), mcp, Node, how busy the machine was, and a digest
of the Reverie source that was measured."""

from __future__ import annotations

import hashlib
import os
import platform
import sqlite3
import subprocess
from importlib import metadata
from pathlib import Path

import reverie


def describe() -> dict:
    return {
        "cores": os.cpu_count(), "cpu": _cpu(), "memory_gb": _memory_gb(), "os": platform.platform(terse=True),
        "python": platform.python_version(), "sqlite": sqlite3.sqlite_version, "mcp": metadata.version("mcp"),
        "pydantic": metadata.version("pydantic"), "node": _node(), "load_before": load(),
    }


def postgres(url: str) -> dict:
    """The server's version and the settings that move the figures most."""
    import psycopg

    names = ("shared_buffers", "work_mem", "fsync", "synchronous_commit", "jit")
    with psycopg.connect(url) as connection:
        version = connection.execute("SHOW server_version").fetchone()[0]
        settings = dict(connection.execute("SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY(%s)",
                                           (list(names),)).fetchall())
    return {"postgres": version.split()[0], "postgres_settings": settings}


def load() -> float:
    """The 1-minute load average: above the core count, other work competed for the CPU."""
    return round(os.getloadavg()[0], 2)


def _cpu() -> str:
    info = Path("/proc/cpuinfo")
    if info.exists():
        for line in info.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _memory_gb() -> str:
    info = Path("/proc/meminfo")
    if not info.exists():
        return "?"
    kib = int(info.read_text().split("MemTotal:", 1)[1].split()[0])
    return f"{kib / 2**20:.1f}"


def _node() -> str:
    try:
        return subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=10).stdout.strip() or "?"
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"


def source_digest(root: Path | None = None) -> str:
    """sha256 (first 12 hex digits) over the .py files of `reverie` as imported, or under `root`."""
    root = root or Path(reverie.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]

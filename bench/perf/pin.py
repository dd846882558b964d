"""Measure one version of Reverie: copy its source aside and run everything against the copy.

Reverie is installed editable, so a file saved during a run would reach some measurements
(a `reverie serve` spawned later, a dream subprocess) and not others (modules already
imported). Before anything imports `reverie`, `pin` copies the package to a temporary
directory and re-executes the benchmark with that directory first on PYTHONPATH; child
processes inherit it, and `environment()` hands it to `<venv>/bin/reverie serve` (MCP's
stdio client passes servers only a few variables). The copy is removed when the run ends.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path

ENV = "REVERIE_PERF_PINNED"


def pin(argv: list[str]) -> None:
    """Re-execute `python -m bench.perf argv` against a frozen copy of `reverie` (once)."""
    if os.environ.get(ENV):
        return
    spec = importlib.util.find_spec("reverie")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("`reverie` is not installed: run `pip install -e .` first.")
    copy = Path(tempfile.mkdtemp(prefix="reverie-perf-source-"))
    shutil.copytree(spec.submodule_search_locations[0], copy / "reverie", ignore=shutil.ignore_patterns("__pycache__"))
    path = os.pathsep.join(filter(None, [str(copy), os.environ.get("PYTHONPATH")]))
    os.execve(sys.executable, [sys.executable, "-m", "bench.perf", *argv], os.environ | {ENV: str(copy), "PYTHONPATH": path})


def environment() -> dict[str, str]:
    """What a spawned `reverie serve` needs to import the frozen copy too.

    MCP's stdio client passes a server only a few variables (HOME, PATH, …), not PYTHONPATH.
    """
    return {"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get(ENV) else {}


def release() -> None:
    """Remove the frozen copy this run measured."""
    if copy := os.environ.get(ENV):
        shutil.rmtree(copy, ignore_errors=True)

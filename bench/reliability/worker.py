"""A Reverie process the reliability scenarios drive: one JSON command per stdin line, one JSON answer per stdout line.

    {"action": "open", "db": PATH|URL, "agent": ID}   opens the database (closing any earlier one) → {"ready": true}
    {"action": "dream", "scope": S | null}        propose_dream("heuristic") → {"proposal": ID, "operations": N}
    {"action": "apply", "proposal": ID}           apply_dream(ID, "all") → {"status": …, "added": N, "archived": N}

A refused call answers {"refused": "<error class>", "message": …}. Every answer to dream and
apply carries "started" and "ended" (Unix time), so a scenario can tell whether two calls
in two processes overlapped. Opening is its own command so that the timed call that
follows starts at once: a scenario opens in every process, then sends the calls together.
Everything goes through `reverie.service.Reverie`, the same methods the MCP tools call.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import anyio
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream
from reverie.errors import ReverieError
from reverie.service import Reverie, open_reverie

from bench.backend import settings

REPO = Path(__file__).resolve().parents[2]


# --- the scenario's side ---------------------------------------------------------------------


class Driver:
    """One running worker: send it orders, read its answers."""

    def __init__(self, process: Process):
        self.process = process
        self._lines = BufferedByteReceiveStream(process.stdout)

    async def send(self, order: dict) -> None:
        await self.process.stdin.send((json.dumps(order) + "\n").encode())

    async def answer(self) -> dict:
        return json.loads(await self._lines.receive_until(b"\n", 1_000_000))

    async def ask(self, order: dict) -> dict:
        await self.send(order)
        return await self.answer()

    def kill(self) -> None:
        """SIGKILL, unless it already exited."""
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()


@asynccontextmanager
async def started() -> AsyncIterator[Driver]:
    """A worker process for the body; stopped (stdin closed, then killed if need be) after it."""
    command = [sys.executable, "-m", "bench.reliability.worker"]
    async with await anyio.open_process(command, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE) as process:
        driver = Driver(process)
        try:
            yield driver
        finally:
            with anyio.CancelScope(shield=True):
                await process.stdin.aclose()
                with anyio.move_on_after(10):
                    await process.wait()
                driver.kill()


# --- the worker's side -----------------------------------------------------------------------


async def main() -> None:
    async with AsyncExitStack() as stack:
        reverie: Reverie | None = None
        while line := await anyio.to_thread.run_sync(sys.stdin.readline):
            order = json.loads(line)
            if order["action"] == "open":
                await stack.aclose()
                reverie = await stack.enter_async_context(open_reverie(settings(order["db"], order.get("agent", "bench"))))
                answer = {"ready": True}
            else:
                answer = await _timed(reverie, order)
            print(json.dumps(answer), flush=True)


async def _timed(reverie: Reverie, order: dict) -> dict:
    started = time.time()
    try:
        answer = await ACTIONS[order["action"]](reverie, order)
    except ReverieError as error:
        answer = {"refused": type(error).__name__, "message": str(error)}
    return {**answer, "started": started, "ended": time.time()}


async def _dream(reverie: Reverie, order: dict) -> dict:
    proposal = await reverie.propose_dream("heuristic", scope=order.get("scope"))
    return {"proposal": proposal.id, "operations": len(proposal.operations), "status": proposal.status}


async def _apply(reverie: Reverie, order: dict) -> dict:
    result = await reverie.apply_dream(order["proposal"], "all")
    return {"status": result.status, "added": len(result.memories_added), "archived": len(result.memories_archived)}


ACTIONS = {"dream": _dream, "apply": _apply}

if __name__ == "__main__":
    anyio.run(main)

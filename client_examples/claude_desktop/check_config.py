"""Fill in claude_desktop_config.json for this machine and start the server exactly as it says.

    python client_examples/claude_desktop/check_config.py

Claude Desktop starts MCP servers with a minimal environment and PATH, so its config names
the `reverie` executable by absolute path and passes the database and agent id in `env`.
This check takes the example config next to this file, puts in this machine's absolute
path of `reverie` (the one installed beside this Python, else the first on PATH) and a
temporary database, writes the result to a temporary claude_desktop_config.json, reads it
back, and starts exactly the command, args and env it names with the MCP SDK's stdio
client, speaking the protocol version Claude Desktop speaks. It checks that the server
lists Reverie's tools, logs as the configured agent, and writes to the configured database.

Offline; exits 0 and prints the config it checked, or stops at the first check that fails.
Copy that config's "reverie" entry (with your own REVERIE_DB) into Claude Desktop:
Settings → Developer → Edit Config, then restart Claude Desktop.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters

HERE = Path(__file__).parent
CONTRACT_TOOLS = {"read_memory", "log_session", "propose_dream", "apply_dream", "revert_dream"}


def reverie_executable() -> str:
    found = shutil.which("reverie", path=os.path.dirname(sys.executable)) or shutil.which("reverie")
    assert found, "reverie is not installed: pip install -e . (from the repository root)"
    return str(Path(found).resolve())


def filled_config(folder: Path) -> Path:
    """The example config with this machine's paths, written where Claude Desktop would read it."""
    config = json.loads((HERE / "claude_desktop_config.json").read_text())
    server = config["mcpServers"]["reverie"]
    assert server["args"] == ["serve"] and set(server["env"]) == {"REVERIE_DB", "REVERIE_AGENT_ID"}, server
    server["command"] = reverie_executable()
    server["env"]["REVERIE_DB"] = str(folder / "reverie" / "memory.db")
    written = folder / "claude_desktop_config.json"
    written.write_text(json.dumps(config, indent=2) + "\n")
    return written


async def check(config_file: Path) -> None:
    server = json.loads(config_file.read_text())["mcpServers"]["reverie"]
    assert Path(server["command"]).is_absolute(), "Claude Desktop needs an absolute command path"
    started = StdioServerParameters(command=server["command"], args=server["args"], env=server["env"])
    with anyio.fail_after(60):
        async with Client(started, mode="legacy") as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            assert CONTRACT_TOOLS <= names, f"missing tools: {CONTRACT_TOOLS - names}"
            logged = await client.call_tool("log_session", {
                "transcript": "User: what's our staging URL?\nAssistant: staging.example.org",
                "notes": ["Staging lives at staging.example.org"],
            })
            memory = await client.call_tool("read_memory", {})
    assert not logged.is_error, logged.content
    assert logged.structured_content["agent_id"] == server["env"]["REVERIE_AGENT_ID"], logged.structured_content
    notes = [note["content"] for note in memory.structured_content["notes"]]
    assert notes == ["Staging lives at staging.example.org"], notes
    assert Path(server["env"]["REVERIE_DB"]).is_file(), "the server did not use the configured database"
    print(f"ok: the server lists {sorted(names)}")
    print(f"ok: it logs as {logged.structured_content['agent_id']!r} into {server['env']['REVERIE_DB']}")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="reverie-desktop-") as temporary:
        config_file = filled_config(Path(temporary))
        anyio.run(check, config_file)
        print(f"\n{config_file.name} as checked:\n{config_file.read_text()}")
    print("check_config.py: all checks passed")

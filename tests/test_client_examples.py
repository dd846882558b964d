"""Every file in client_examples/ is a program that checks itself; the offline ones run here.

Each runs as its own process, with this interpreter and the installed `reverie` first on
PATH (as in a user's activated environment), and must exit 0. `mcp-add.sh` needs the
`claude` CLI, so it runs against a stand-in `claude` that records what it was asked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# slow: runs each example program in its own process.
pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).parents[1] / "client_examples"
OFFLINE = {  # program → (arguments that keep it off the network, the last line it prints on success)
    "claude_code/check_hooks.py": ([], "check_hooks.py: all checks passed"),
    "claude_desktop/check_config.py": ([], "check_config.py: all checks passed"),
    "custom_agent/agent.py": (["--fake"], "agent.py: the memory loop works"),
}
CONFIGS = {"claude_code/settings.json", "claude_desktop/claude_desktop_config.json"}  # read by the checks above
SHELL = {"claude_code/mcp-add.sh"}
AGAINST_FAKE_API = {"anthropic_store/upload.py"}  # run by test_anthropic_store_upload.py against a local fake
LIMIT = 120  # seconds per example; each spawns a few short-lived `reverie` processes


def example_files() -> set[str]:
    return {str(path.relative_to(EXAMPLES)) for path in EXAMPLES.rglob("*")
            if path.is_file() and "__pycache__" not in path.parts}


def environment(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("REVERIE_", "ANTHROPIC_"))}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return {**env, **extra}


def test_every_example_file_is_run_or_read_by_this_module():
    assert example_files() == set(OFFLINE) | CONFIGS | SHELL | AGAINST_FAKE_API


@pytest.mark.parametrize("program", sorted(OFFLINE), ids=sorted(OFFLINE))
def test_an_offline_example_runs_and_its_own_checks_pass(program, tmp_path):
    arguments, success = OFFLINE[program]

    done = subprocess.run([sys.executable, str(EXAMPLES / program), *arguments], capture_output=True,
                          text=True, env=environment(), cwd=tmp_path, timeout=LIMIT, check=False)

    assert done.returncode == 0, f"{program} failed:\n{done.stdout}\n{done.stderr}"
    assert done.stdout.splitlines()[-1] == success


def test_the_claude_code_settings_wire_both_hooks_to_the_reverie_commands():
    hooks = json.loads((EXAMPLES / "claude_code" / "settings.json").read_text())["hooks"]

    commands = {event: [hook["command"] for group in groups for hook in group["hooks"]]
                for event, groups in hooks.items()}

    assert commands == {"SessionStart": ["reverie recall --claude-code-hook"],
                        "SessionEnd": ["reverie log --claude-code-hook"]}


def test_mcp_add_registers_the_server_with_the_claude_code_agent_id_and_checks_it(tmp_path):
    calls = tmp_path / "calls.txt"
    claude = tmp_path / "bin" / "claude"
    claude.parent.mkdir()
    claude.write_text(f'#!/bin/sh\necho "$*" >> "{calls}"\n')
    claude.chmod(0o755)
    env = environment()
    env["PATH"] = os.pathsep.join([str(claude.parent), env["PATH"]])

    done = subprocess.run(["sh", str(EXAMPLES / "claude_code" / "mcp-add.sh")], capture_output=True, text=True,
                          env=env, timeout=LIMIT, check=False)

    assert done.returncode == 0, done.stderr
    assert calls.read_text().splitlines() == [
        "mcp add reverie -e REVERIE_AGENT_ID=claude-code -- reverie serve",
        "mcp get reverie",
    ]


def test_mcp_add_stops_with_a_message_when_the_claude_cli_is_missing(tmp_path):
    env = environment()
    env["PATH"] = str(Path(sys.executable).parent)  # reverie, but no claude

    done = subprocess.run(["/bin/sh", str(EXAMPLES / "claude_code" / "mcp-add.sh")], capture_output=True,
                          text=True, env=env, timeout=LIMIT, check=False)

    assert done.returncode == 1
    assert "the claude CLI is not on PATH" in done.stderr

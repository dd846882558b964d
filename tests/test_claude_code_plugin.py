"""The Claude Code plugin at the repository root resolves: every path, command and tool it names exists.

Claude Code finds a plugin's parts by convention (`.claude-plugin/plugin.json`, `hooks/hooks.json`,
`.mcp.json`, `skills/<name>/SKILL.md`) and by the paths a manifest names; it substitutes
`${CLAUDE_PLUGIN_ROOT}` with the installed plugin's folder. These tests do the same
substitution and check that each path is there, that each `reverie` command line parses
with today's CLI, and that the dream skill names only tools the server has — so a renamed
flag, file or tool breaks a test rather than a user's install. `claude plugin validate` runs
too where the `claude` CLI is installed (`npm i @anthropic-ai/claude-code`).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from mcp import Client
from reverie import __version__, hooks
from reverie.cli import parser
from reverie.mcp_server import build_server

# slow: runs the plugin's commands, and the claude CLI where installed, in subprocesses.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).parents[1]
PLUGIN_ROOT = "${CLAUDE_PLUGIN_ROOT}"
# The manifest fields that hold paths (a string or a list of them), per Claude Code's plugin reference.
PATH_FIELDS = ("commands", "agents", "skills", "hooks", "mcpServers", "outputStyles", "lspServers")


def load(relative: str) -> dict:
    return json.loads((ROOT / relative).read_text())


def marketplace_plugins() -> list[dict]:
    return load(".claude-plugin/marketplace.json")["plugins"]


def resolved(path: str, plugin_root: Path) -> Path:
    return Path(path.replace(PLUGIN_ROOT, str(plugin_root))) if PLUGIN_ROOT in path else plugin_root / path


def hook_commands() -> list[str]:
    events = load("hooks/hooks.json")["hooks"]
    return [hook["command"] for groups in events.values() for group in groups for hook in group["hooks"]]


def reverie_argv(words: list[str]) -> list[str]:
    """The arguments after `reverie` in a command line that runs it (through uvx or directly)."""
    assert "reverie" in words, f"{words} does not run reverie"
    return words[words.index("reverie") + 1:]


def test_the_marketplace_lists_the_plugin_at_a_path_holding_its_manifest_with_the_packages_version():
    (entry,) = marketplace_plugins()
    manifest = json.loads((ROOT / entry["source"] / ".claude-plugin" / "plugin.json").read_text())

    assert manifest["name"] == entry["name"] == "reverie"
    assert manifest["version"] == entry["version"] == __version__


@pytest.mark.parametrize("field", PATH_FIELDS)
def test_every_path_the_manifest_names_exists(field):
    named = load(".claude-plugin/plugin.json").get(field, [])
    for path in [named] if isinstance(named, str) else named:
        assert resolved(path, ROOT).exists(), f"plugin.json {field}: {path} is not in the plugin"


def test_the_conventional_parts_are_where_claude_code_looks_and_parse():
    assert set(load("hooks/hooks.json")["hooks"]) == {"SessionStart", "SessionEnd"}
    assert set(load(".mcp.json")["mcpServers"]) == {"reverie"}
    skill = (ROOT / "skills" / "dream" / "SKILL.md").read_text()
    assert re.search(r"^---\nname: dream\ndescription: .+\n", skill)  # invoked as /reverie:dream


@pytest.mark.parametrize(
    "words",
    [shlex.split(command) for command in hook_commands()]
    + [[load(".mcp.json")["mcpServers"]["reverie"]["command"], *load(".mcp.json")["mcpServers"]["reverie"]["args"]]],
    ids=["SessionStart-hook", "SessionEnd-hook", "mcp-server"],
)
def test_every_command_installs_reverie_from_the_plugin_root_and_parses_with_todays_cli(words):
    source = words[words.index("--from") + 1]
    assert (resolved(source, ROOT) / "pyproject.toml").exists()  # uvx builds the plugin's own checkout

    arguments = parser().parse_args(reverie_argv(words))

    assert arguments.command in {"serve", "recall", "log"}


def test_the_server_and_the_hooks_share_one_agent_id_so_hooks_log_what_the_server_dreams_over():
    server = load(".mcp.json")["mcpServers"]["reverie"]
    assert server["env"]["REVERIE_AGENT_ID"] == hooks.DEFAULT_AGENT
    assert not any("--agent" in command for command in hook_commands())  # the hooks' own default applies


@pytest.mark.anyio
async def test_the_dream_skill_names_only_tools_the_server_has(settings):
    skill = (ROOT / "skills" / "dream" / "SKILL.md").read_text()
    async with Client(build_server(settings)) as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}

    named = set(re.findall(r"`([a-z]+_[a-z_]+)`", skill)) - {"brief_id", "proposal_id"}

    assert named and named <= tools, named - tools
    assert {"propose_dream", "apply_dream"} <= named


NO_CLAUDE = "the claude CLI is not installed (npm i @anthropic-ai/claude-code)"


@pytest.mark.skipif(shutil.which("claude") is None, reason=NO_CLAUDE)
@pytest.mark.parametrize("target", [".claude-plugin/plugin.json", "."], ids=["plugin", "marketplace"])
def test_claude_code_validates_the_plugin_and_the_marketplace(target, tmp_path):
    ran = subprocess.run(["claude", "plugin", "validate", str(ROOT / target)], capture_output=True, text=True,
                         timeout=60, env={"HOME": str(tmp_path), "PATH": os.environ["PATH"]})

    assert ran.returncode == 0 and "Validation passed" in ran.stdout, ran.stdout + ran.stderr

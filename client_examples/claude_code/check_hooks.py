"""Run the two Claude Code hooks of settings.json as Claude Code would, and check what they do.

    python client_examples/claude_code/check_hooks.py

Offline, against a temporary database (nothing touches your own memory). It reads the hook
commands from settings.json next to this file, runs each through the shell with the JSON
Claude Code sends on stdin, and checks that:

1. SessionEnd logs the session's transcript under Claude Code's session id, as the agent
   "claude-code", titled after the project directory and the first request;
2. after the session is resumed and ended again, only the new turns are logged (`<id>.2`);
3. SessionStart prints the memory, and a line for a dream proposal awaiting review, for
   Claude Code to add to the model's context.

Exits 0 and prints what it checked, or stops at the first check that fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
SESSION = "4b1f0c2e-8a6d-4c3b-9e7f-2d1a0b9c8e7f"
NOTE = "Use pnpm, not npm, in the shop-api repository"


def line(kind: str, content, number: int, **extra) -> str:
    """One line of a Claude Code transcript (the fields Claude Code writes, shortened)."""
    return json.dumps({
        "parentUuid": None if number == 1 else f"00000000-0000-4000-8000-{number - 1:012d}",
        "isSidechain": False, "userType": "external", "cwd": "/home/you/src/shop-api", "sessionId": SESSION,
        "version": "2.1.0", "gitBranch": "main", "type": kind, "uuid": f"00000000-0000-4000-8000-{number:012d}",
        "timestamp": f"2026-11-02T10:{number:02d}:00.000Z", "message": {"role": kind, "content": content}, **extra,
    }) + "\n"


FIRST = [
    line("user", "The CI build of shop-api fails at the install step. Can you look?", 1),
    line("assistant", [{"type": "text", "text": "I'll run the install the way CI does."}], 2),
    line("assistant", [{"type": "tool_use", "id": "toolu_01", "name": "Bash",
                        "input": {"command": "npm ci", "description": "Install dependencies"}}], 3),
    line("user", [{"type": "tool_result", "tool_use_id": "toolu_01", "is_error": True,
                   "content": "npm ERR! This project uses pnpm (packageManager: pnpm@9.12.0)."}], 4),
    line("assistant", [{"type": "text", "text": "The repository pins pnpm; CI calls npm. I'll switch CI to pnpm."}], 5),
    line("user", "Thanks. From now on, always use pnpm here.", 6),
    line("assistant", [{"type": "text", "text": "Will do: pnpm for everything in shop-api."}], 7),
]
RESUMED = [
    line("user", "Now bump the lockfile too, please.", 8),
    line("assistant", [{"type": "text", "text": "Done: pnpm-lock.yaml regenerated with pnpm install."}], 9),
]


def hook_commands() -> dict[str, str]:
    """Each hook event's command, from settings.json."""
    hooks = json.loads((HERE / "settings.json").read_text())["hooks"]
    commands = {}
    for event, groups in hooks.items():
        ((hook,),) = [group["hooks"] for group in groups]
        assert hook["type"] == "command" and isinstance(hook.get("timeout"), int), hook
        commands[event] = hook["command"]
    assert set(commands) == {"SessionStart", "SessionEnd"}, commands
    return commands


def run_hook(command: str, payload: dict, env: dict[str, str]) -> str:
    """Run a hook command through the shell, as Claude Code does; returns its stdout."""
    done = subprocess.run(["sh", "-c", command], input=json.dumps(payload), capture_output=True, text=True,
                          env=env, timeout=60, check=False)
    assert done.returncode == 0, f"{command!r} exited {done.returncode}: {done.stderr}"
    assert done.stderr == "", f"{command!r} complained: {done.stderr}"
    return done.stdout


def reverie(env: dict[str, str], *argv: str) -> str:
    done = subprocess.run(["reverie", *argv], check=False, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, f"reverie {' '.join(argv)}: {done.stderr}"
    return done.stdout


def stored_sessions(env: dict[str, str]) -> dict[str, dict]:
    return {s["id"]: s for s in json.loads(reverie(env, "export"))["sessions"]}


def check(folder: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("REVERIE_", "ANTHROPIC_"))}
    env["REVERIE_DB"] = str(folder / "memory.db")
    # `reverie` is installed next to the Python running this check; Claude Code finds it on the user's PATH.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    project, transcript = folder / "shop-api", folder / f"{SESSION}.jsonl"
    project.mkdir()
    commands = hook_commands()
    end = {"session_id": SESSION, "transcript_path": str(transcript), "cwd": str(project),
           "hook_event_name": "SessionEnd", "reason": "prompt_input_exit"}

    transcript.write_text("".join(FIRST))
    print(run_hook(commands["SessionEnd"], end, env), end="")
    session = stored_sessions(env)[SESSION]
    assert session["agent_id"] == "claude-code", session["agent_id"]
    assert session["title"].startswith("shop-api: The CI build of shop-api fails"), session["title"]
    assert [e["role"] for e in session["events"]] == ["user", "assistant", "assistant", "tool", "assistant", "user",
                                                      "assistant"]
    print("ok: SessionEnd logged the session as claude-code, titled", repr(session["title"]))

    transcript.write_text("".join(FIRST + RESUMED))
    print(run_hook(commands["SessionEnd"], end, env), end="")
    part = stored_sessions(env)[f"{SESSION}.2"]
    assert [e["content"] for e in part["events"]] == ["Now bump the lockfile too, please.",
                                                      "Done: pnpm-lock.yaml regenerated with pnpm install."]
    print("ok: the resumed session added only its two new turns, as", part["id"])

    remember_and_propose(env, folder)
    start = {"session_id": "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b", "transcript_path": str(folder / "new.jsonl"),
             "cwd": str(project), "hook_event_name": "SessionStart", "source": "startup"}
    context = run_hook(commands["SessionStart"], start, env)
    assert context.startswith("# Reverie memory (working in shop-api)\nReverie: dream proposal drm_"), context
    assert "awaits your review — ask me to show it." in context and NOTE in context, context
    print("ok: SessionStart printed the memory and the proposal awaiting review:\n")
    print(context)


def remember_and_propose(env: dict[str, str], folder: Path) -> None:
    """Give the agent something to remember: a note applied by a dream, and a proposal left pending."""
    chat = folder / "chat.txt"
    chat.write_text("User: which package manager?\nAssistant: pnpm.\n")
    for _ in range(2):
        reverie(env, "--agent", "claude-code", "log", str(chat), "--note", NOTE)
    reverie(env, "--agent", "claude-code", "dream", "--engine", "heuristic", "--auto")
    reverie(env, "--agent", "claude-code", "log", str(chat), "--note", "Deploys of shop-api go through Argo CD")
    reverie(env, "--agent", "claude-code", "dream", "--engine", "heuristic")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="reverie-hooks-") as temporary:
        check(Path(temporary))
    print("check_hooks.py: all checks passed")

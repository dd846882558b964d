"""Claude Code sessions in project folders, ended and started through the real hooks.

`Workspace` makes project folders (git clones or plain folders) in tmp_path, writes each
session's transcript as Claude Code's JSONL — the user's words, the assistant's text, its
tool calls and their results — and runs `reverie log|recall --claude-code-hook` with the
hook input Claude Code sends.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from conftest import Cli, Ran

# A step of a session: ("user", text), ("say", text), ("tool", (name, input)), ("result", (output, is_error)).
Step = tuple[str, object]


def deploy_steps(asked: str) -> list[Step]:
    """A session that asks for a deploy, hits the VPN error, plans with TodoWrite and concludes."""
    return [
        ("user", asked),
        ("tool", ("Bash", {"command": "make deploy"})),
        ("result", ("error: the VPN is not connected", True)),
        ("tool", ("TodoWrite", {"todos": [{"content": "connect the VPN first", "status": "pending"}]})),
        ("result", ("Todos have been modified successfully", False)),
        ("say", "Deploys need the VPN connected; once it was up the deploy went through."),
    ]


def _message(kind: str, payload: object, n: int) -> tuple[str, dict]:
    if kind == "user":
        return "user", {"role": "user", "content": payload}
    if kind == "say":
        return "assistant", {"role": "assistant", "content": [{"type": "text", "text": payload}]}
    if kind == "tool":
        name, arguments = payload
        return "assistant", {"role": "assistant",
                             "content": [{"type": "tool_use", "id": f"toolu_{n}", "name": name, "input": arguments}]}
    output, error = payload
    return "user", {"role": "user", "content": [{"type": "tool_result", "tool_use_id": f"toolu_{n - 1}",
                                                 "content": output, "is_error": error}]}


@dataclass
class Workspace:
    root: Path
    reverie: Cli
    db: Path
    ended: list[str] = field(default_factory=list)

    def project(self, relative: str, git: bool = True) -> Path:
        """A project folder; a git clone (a `.git` folder) unless `git` is False."""
        folder = self.root / relative
        folder.mkdir(parents=True, exist_ok=True)
        if git:
            (folder / ".git").mkdir(exist_ok=True)
        return folder

    def end(self, cwd: Path, steps: list[Step], day: int = 14) -> Ran:
        """Claude Code ending a session in `cwd` that went through `steps`."""
        session_id = f"5e55{len(self.ended):04d}-3b7d-4e25-9a4f-0c8d51e7b2a4"
        self.ended.append(session_id)
        lines = []
        for n, (kind, payload) in enumerate(steps):
            role, message = _message(kind, payload, n)
            lines.append(json.dumps({"type": role, "sessionId": session_id, "cwd": str(cwd), "uuid": f"{session_id}-{n}",
                                     "isSidechain": False, "timestamp": f"2026-10-{day:02d}T09:{n:02d}:00.000Z",
                                     "message": message}))
        transcript = self.root / "transcripts" / f"{session_id}.jsonl"
        transcript.parent.mkdir(exist_ok=True)
        transcript.write_text("\n".join(lines) + "\n", encoding="utf-8")
        hook = {"session_id": session_id, "transcript_path": str(transcript), "cwd": str(cwd),
                "hook_event_name": "SessionEnd", "reason": "prompt_input_exit"}
        ran = self.reverie("log", "--claude-code-hook", stdin=json.dumps(hook), db=self.db)
        assert ran.code == 0 and ran.err == "", ran.err
        return ran

    def start(self, cwd: Path, *options: str) -> Ran:
        """Claude Code's SessionStart hook in `cwd`; what it prints goes into the new session's context."""
        hook = {"session_id": "0d7a5b1e-9c4f-4a1b-8e2d-5f3c6a7b8c9d", "transcript_path": str(self.root / "new.jsonl"),
                "cwd": str(cwd), "hook_event_name": "SessionStart", "source": "startup"}
        ran = self.reverie("recall", "--claude-code-hook", *options, stdin=json.dumps(hook), db=self.db)
        assert ran.code == 0 and ran.err == "", ran.err
        return ran

    def dream(self, *options: str) -> dict:
        return self.reverie("--agent", "claude-code", "dream", "--engine", "heuristic", "--json", *options,
                            db=self.db).json()

"""A custom agent with a memory: the MCP SDK runs `reverie serve`, Claude does the work.

    python client_examples/custom_agent/agent.py           # Claude, with ANTHROPIC_API_KEY set
    python client_examples/custom_agent/agent.py --fake    # offline: a scripted stand-in for the Messages API

The loop every agent on Reverie runs, around each task:

1. `read_memory(query=task)` when the session starts; the markdown goes into the system prompt;
2. Claude works on the task with the server's read-only tools: the MCP tool list becomes
   Anthropic tool definitions, each `tool_use` block becomes `client.call_tool(...)`, and the
   result goes back as a `tool_result`;
3. `log_session` when it ends: the whole transcript, and the lines Claude marked `NOTE:` as
   the notes worth keeping. (Writing memory is the program's job, not the model's, so the
   model gets no tool that writes.)

The program checks itself. It runs two sessions, each with its own `reverie serve` over
stdio, on one database (a temporary one unless `--db PATH`), and asserts that the memory
loop closed: what the first session wrote down is in the memory the second one starts with.
With `--fake` it also asserts that the tool call reached the MCP server and came back to the
model, and that the model saw the first session's note in its system prompt. `--fake`
serves scripted replies from http://127.0.0.1 (stdlib only) and points the real `anthropic`
SDK at it with `base_url`, so no key and no network are needed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
from anthropic import AsyncAnthropic
from mcp import Client, StdioServerParameters

AGENT_ID = "custom-agent"
MODEL = os.environ.get("ANTHROPIC_MODEL", "claude-sonnet-5-5")
MAX_STEPS = 8  # model calls per task: a loop that never stops asking for tools is a bug
TASKS = [
    ("The billing service's tests fail with 'ModuleNotFoundError: billing'. What is the fix? "
     "End with a line 'NOTE: <what to remember>' for anything worth remembering next time."),
    "I'm setting up the billing service on a new laptop. What should I run first?",
]
FIRST_NOTE = "Run pip install -e . before the billing tests"


# --- the agent -------------------------------------------------------------------------


def anthropic_tools(tools: list[Any]) -> list[dict[str, Any]]:
    """The MCP server's read-only tools as Anthropic tool definitions."""
    return [{"name": tool.name, "description": tool.description or "", "input_schema": tool.input_schema}
            for tool in tools if tool.annotations is not None and tool.annotations.read_only_hint]


async def call_tool(client: Client, name: str, arguments: dict[str, Any]) -> tuple[str, bool]:
    """Run one tool_use block on the MCP server: (text for the model, whether it failed)."""
    result = await client.call_tool(name, arguments)
    return "\n".join(block.text for block in result.content if block.type == "text"), bool(result.is_error)


async def run_session(model: AsyncAnthropic, server: StdioServerParameters, task: str) -> dict[str, Any]:
    """One session: recall, work, log. Returns what it recalled, said and logged."""
    async with Client(server) as client:
        memory = await client.call_tool("read_memory", {"query": task, "budget_tokens": 1500})
        recalled = memory.structured_content["markdown"]
        tools = anthropic_tools((await client.list_tools()).tools)
        system = ("You are a coding assistant with a long-term memory. What you remember from earlier "
                  f"sessions:\n\n{recalled}\n\nUse the tools to look up more if you need to.")
        transcript, answer = await work(model, client, system, tools, task)
        notes = [line.removeprefix("NOTE:").strip() for line in answer.splitlines() if line.startswith("NOTE:")]
        logged = await client.call_tool("log_session", {"transcript": transcript, "notes": notes or None,
                                                       "title": task[:80], "outcome": "success"})
    assert not logged.is_error, logged.content
    return {"recalled": recalled, "answer": answer, "notes": notes, "logged": logged.structured_content}


async def work(model: AsyncAnthropic, client: Client, system: str, tools: list[dict[str, Any]],
               task: str) -> tuple[list[dict[str, Any]], str]:
    """The tool loop; returns the transcript as Reverie turns and Claude's final answer."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": task}]
    transcript = [{"role": "user", "content": task}]
    for _ in range(MAX_STEPS):
        reply = await model.messages.create(model=MODEL, max_tokens=1024, system=system, tools=tools,
                                            messages=messages)
        messages.append({"role": "assistant", "content": reply.content})
        said = "\n".join(block.text for block in reply.content if block.type == "text")
        if said:
            transcript.append({"role": "assistant", "content": said})
        if reply.stop_reason != "tool_use":
            return transcript, said
        results = []
        for block in (b for b in reply.content if b.type == "tool_use"):
            output, failed = await call_tool(client, block.name, block.input)
            transcript += [{"role": "assistant", "tool_name": block.name, "content": json.dumps(block.input)},
                           {"role": "tool", "tool_name": block.name, "content": output, "is_error": failed}]
            results.append({"type": "tool_result", "tool_use_id": block.id, "content": output, "is_error": failed})
        messages.append({"role": "user", "content": results})
    raise RuntimeError(f"Claude was still calling tools after {MAX_STEPS} steps")


# --- a stand-in for the Messages API (--fake) -----------------------------------------------


class FakeMessagesAPI:
    """Answers POST /v1/messages with the next scripted reply and records every request."""

    def __init__(self, replies: list[dict[str, Any]]):
        self.replies = deque(replies)
        self.requests: list[dict[str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                fake.requests.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
                status, body = (200, fake.replies.popleft()) if fake.replies else (500, {
                    "type": "error", "error": {"type": "api_error", "message": "the fake's script is exhausted"}})
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def reply(content: list[dict[str, Any]], stop_reason: str) -> dict[str, Any]:
    return {"id": "msg_fake", "type": "message", "role": "assistant", "model": MODEL, "content": content,
            "stop_reason": stop_reason, "stop_sequence": None, "usage": {"input_tokens": 50, "output_tokens": 20}}


SCRIPT = [
    # Session 1: look in memory, then answer and write down the lesson.
    reply([{"type": "text", "text": "Let me check what I remember about billing."},
           {"type": "tool_use", "id": "toolu_1", "name": "read_memory", "input": {"query": "billing tests"}}],
          "tool_use"),
    reply([{"type": "text", "text": "The package is not installed in the environment. Run `pip install -e .` "
                                    f"and the imports resolve.\nNOTE: {FIRST_NOTE}"}], "end_turn"),
    # Session 2: the lesson is already in the system prompt.
    reply([{"type": "text", "text": "First run `pip install -e .` in the repository, then the tests."}], "end_turn"),
]


# --- the self-check ----------------------------------------------------------------------


async def main(fake: bool, db: Path) -> None:
    reverie = shutil.which("reverie", path=os.path.dirname(sys.executable)) or shutil.which("reverie")
    assert reverie, "reverie is not installed: pip install -e . (from the repository root)"
    server = StdioServerParameters(command=reverie, args=["serve"],
                                   env={"REVERIE_DB": str(db), "REVERIE_AGENT_ID": AGENT_ID})
    api = FakeMessagesAPI(SCRIPT) if fake else None
    model = AsyncAnthropic(api_key="fake", base_url=api.url, max_retries=0) if api else AsyncAnthropic()
    try:
        with anyio.fail_after(300):
            first = await run_session(model, server, TASKS[0])
            second = await run_session(model, server, TASKS[1])
    finally:
        if api:
            api.close()
    check(first, second, api)


def check(first: dict[str, Any], second: dict[str, Any], api: FakeMessagesAPI | None) -> None:
    print(f"session 1 answered: {first['answer']}\n  logged: {first['logged']['events_added']} turns, "
          f"notes {first['notes']}")
    assert first["logged"]["events_added"] >= 2 and first["logged"]["agent_id"] == AGENT_ID, first["logged"]
    assert first["notes"], "session 1 wrote nothing down, so there is no memory loop to check"
    for note in first["notes"]:
        assert note in second["recalled"], f"session 2 did not start with {note!r}:\n{second['recalled']}"
    print(f"session 2 started with that memory and answered: {second['answer']}")
    if api is not None:
        tool_result = api.requests[1]["messages"][2]["content"][0]
        assert tool_result["type"] == "tool_result" and "## Memory" in tool_result["content"], tool_result
        offered = {tool["name"] for tool in api.requests[0]["tools"]}
        assert "read_memory" in offered and not offered & {"log_session", "apply_dream", "revert_dream"}, offered
        assert FIRST_NOTE in api.requests[2]["system"], api.requests[2]["system"]
        print("the model's tool call went through the MCP server, and session 2's prompt carried the note")
    print("agent.py: the memory loop works")


if __name__ == "__main__":
    options = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    options.add_argument("--fake", action="store_true", help="offline: scripted replies from a local fake API")
    options.add_argument("--db", type=Path, help="database file (default: a temporary one)")
    args = options.parse_args()
    if not args.fake and not os.environ.get("ANTHROPIC_API_KEY"):
        sys.exit("agent.py: set ANTHROPIC_API_KEY, or run with --fake to use the offline stand-in")
    if args.db:
        anyio.run(main, args.fake, args.db)
    else:
        with tempfile.TemporaryDirectory(prefix="reverie-agent-") as temporary:
            anyio.run(main, args.fake, Path(temporary) / "memory.db")

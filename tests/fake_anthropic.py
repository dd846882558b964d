"""A stand-in for the Anthropic Messages API on 127.0.0.1, so tests drive the real SDK.

`FakeAnthropic` answers each request with the next entry of its script (status, JSON body,
headers) and records every request body. Map calls run concurrently, so a test that logs
several sessions either gives them interchangeable answers, sets REVERIE_MAP_CONCURRENCY=1,
or scripts each answer for the request it belongs to: `answer(body, tool=…, containing=…)`
is served to the first request that asks for that tool and whose messages hold that text
(a session's title, a turn), in the order scripted — so a test can play a model that
answers each session rightly, subtly wrongly or adversarially, and its retry after the
feedback (`containing="was not valid"`). Scripted answers go first; the plain script
serves the rest. An exhausted script answers 500 with `x-should-retry: false`: the test
fails at once instead of hanging or retrying.

`hold_until_concurrent(n)` makes the first n requests wait for one another, which proves
calls overlap, and then linger for LINGER seconds, so that a request a concurrency limit
should have held back has time to arrive: `max_in_flight` counts how many ever overlapped.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from local_server import LocalServer

Reply = tuple[int, dict[str, Any], dict[str, str]]
LINGER = 0.1  # seconds; the client sends its calls at once, so an extra one would arrive within this


@dataclass(frozen=True)
class Answer:
    """A reply meant for one kind of request: the tool it asks for, and text its messages hold."""

    body: dict[str, Any]
    tool: str | None = None
    containing: str | None = None

    def fits(self, request: dict[str, Any]) -> bool:
        tools = [t.get("name") for t in request.get("tools", [])]
        said = json.dumps(request.get("messages", []), ensure_ascii=False)
        return (self.tool is None or self.tool in tools) and (self.containing is None or self.containing in said)


class FakeAnthropic(LocalServer):
    def __init__(self) -> None:
        self.script: deque[Reply] = deque()
        self.answers: list[Answer] = []
        self.requests: list[dict[str, Any]] = []
        self.in_flight = self.max_in_flight = self._arrivals = 0
        self._barrier: threading.Barrier | None = None
        self._lock = threading.Lock()
        super().__init__(_handler_for(self))

    @property
    def url(self) -> str:
        return self.address

    def reply(self, body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.script.append((status, body, headers or {}))

    def answer(self, body: dict[str, Any], *, tool: str | None = None, containing: str | None = None) -> None:
        """Serve `body` to the first request for `tool` whose messages contain `containing`."""
        self.answers.append(Answer(body, tool, containing))

    def hold_until_concurrent(self, parties: int) -> None:
        self._barrier = threading.Barrier(parties, timeout=5)


    def serve(self, request: dict[str, Any]) -> Reply:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            held = self._barrier is not None and self._arrivals < self._barrier.parties
            self._arrivals += 1
        try:
            if held:
                self._barrier.wait()
                time.sleep(LINGER)
            return self._next(request)
        except threading.BrokenBarrierError:
            return 500, error("api_error", "requests never overlapped"), {"x-should-retry": "false"}
        finally:
            with self._lock:
                self.in_flight -= 1

    def _next(self, request: dict[str, Any]) -> Reply:
        with self._lock:
            self.requests.append(request)
            if fitting := next((a for a in self.answers if a.fits(request)), None):
                self.answers.remove(fitting)
                return 200, fitting.body, {}
            if not self.script:
                return 500, error("api_error", "the fake's script is exhausted"), {"x-should-retry": "false"}
            return self.script.popleft()


def _handler_for(fake: FakeAnthropic) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            request = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
            status, body, headers = fake.serve(request)
            data = json.dumps(body).encode()
            self.send_response(status)
            sent = {"content-type": "application/json", "content-length": str(len(data)), **headers}
            for name, value in sent.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass  # keeps test output free of access logs

    return Handler


# --- response bodies -----------------------------------------------------------------------------


def tool_use(name: str, arguments: dict[str, Any], *, model: str = "claude-test", input_tokens: int = 100,
             output_tokens: int = 20, cache_read: int = 0, cache_write: int = 0) -> dict[str, Any]:
    """A Messages API reply that calls tool `name` with `arguments`."""
    content = [{"type": "tool_use", "id": f"toolu_{name}", "name": name, "input": arguments}]
    return message(content, "tool_use", model, input_tokens, output_tokens, cache_read, cache_write)


def text_only(words: str, *, model: str = "claude-test", input_tokens: int = 100,
              output_tokens: int = 20) -> dict[str, Any]:
    """A reply that only talks, calling no tool."""
    return message([{"type": "text", "text": words}], "end_turn", model, input_tokens, output_tokens, 0, 0)


def message(content: list[dict[str, Any]], stop_reason: str, model: str, input_tokens: int, output_tokens: int,
            cache_read: int, cache_write: int) -> dict[str, Any]:
    return {
        "id": "msg_fake", "type": "message", "role": "assistant", "model": model, "content": content,
        "stop_reason": stop_reason, "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens,
                  "cache_read_input_tokens": cache_read, "cache_creation_input_tokens": cache_write},
    }


def error(kind: str, words: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": words}}


def overloaded() -> tuple[dict[str, Any], int, dict[str, str]]:
    """(body, status, headers) of a 529 that asks the client to come back in a millisecond."""
    return error("overloaded_error", "Overloaded"), 529, {"retry-after-ms": "1"}

"""A stand-in for an OpenAI-compatible Chat Completions server (Ollama, LM Studio, vLLM…) on 127.0.0.1.

It answers from the request's schema: a request names its answer's shape either as
`response_format.json_schema` or as a function in `tools`, and the fake replies the way that
request asked — JSON in the message's content, or a call of that function. `answer(arguments,
schema=…, containing=…)` serves a scripted answer to the first request for that schema whose
messages hold that text (a session's title, or "was not valid" for the repair turn); a string
instead of a dict is sent as it is, to play a model that writes malformed JSON. `reply(body,
status)` scripts a raw response (an error, a busy server). With nothing scripted, the fake
answers the least instance the schema allows (empty lists), like a model that found nothing.

`hang()` makes every request wait, answering nothing, until the fake shuts down: a server
stuck loading a model. `requests` and `headers` record what arrived.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from local_server import LocalServer

Reply = tuple[int, dict[str, Any] | str]
HANG_LIMIT = 60  # seconds; a hung request is released at shutdown long before this


@dataclass(frozen=True)
class Answer:
    arguments: dict[str, Any] | str
    schema: str | None = None
    containing: str | None = None
    usage: dict[str, Any] | None = None

    def fits(self, request: dict[str, Any]) -> bool:
        said = json.dumps(request.get("messages", []), ensure_ascii=False)
        asked = schema_of(request)[0]
        return (self.schema is None or self.schema == asked) and (self.containing is None or self.containing in said)


class FakeOpenAI(LocalServer):
    def __init__(self) -> None:
        self.answers: list[Answer] = []
        self.script: deque[Reply] = deque()
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._hanging = False
        self._released = threading.Event()
        self._lock = threading.Lock()
        super().__init__(_handler_for(self))

    @property
    def url(self) -> str:
        return f"{self.address}/v1"

    def answer(self, arguments: dict[str, Any] | str, *, schema: str | None = None, containing: str | None = None,
               usage: dict[str, Any] | None = None) -> None:
        self.answers.append(Answer(arguments, schema, containing, usage))

    def reply(self, body: dict[str, Any] | str, status: int = 200) -> None:
        self.script.append((status, body))

    def hang(self) -> None:
        self._hanging = True

    def __exit__(self, *exc_info: object) -> None:
        self._released.set()  # a hung handler thread must end, or closing the server waits for it
        super().__exit__(*exc_info)

    def serve(self, request: dict[str, Any], headers: dict[str, str]) -> Reply:
        with self._lock:
            self.requests.append(request)
            self.headers.append(headers)
        if self._hanging:
            self._released.wait(HANG_LIMIT)
            return 500, {"error": {"message": "the fake was hanging"}}
        with self._lock:
            if fitting := next((a for a in self.answers if a.fits(request)), None):
                self.answers.remove(fitting)
                return 200, completion(request, fitting.arguments, fitting.usage)
            if self.script:
                return self.script.popleft()
        return 200, completion(request, least(schema_of(request)[1]))


def _handler_for(fake: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            request = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
            status, body = fake.serve(request, {k.lower(): v for k, v in self.headers.items()})
            data = (body if isinstance(body, str) else json.dumps(body)).encode()
            try:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (a timeout under test): nobody reads the answer

        def log_message(self, *args: object) -> None:
            pass  # keeps test output free of access logs

    return Handler


# --- reading the request, writing the reply -------------------------------------------------------


def schema_of(request: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """The answer's (name, JSON schema) as the request asks for it: response_format or a function."""
    if shape := (request.get("response_format") or {}).get("json_schema"):
        return shape.get("name"), shape.get("schema", {})
    for tool in request.get("tools") or []:
        function = tool.get("function", {})
        return function.get("name"), function.get("parameters", {})
    return None, {}


def completion(request: dict[str, Any], arguments: dict[str, Any] | str,
               usage: dict[str, Any] | None = None) -> dict[str, Any]:
    """A Chat Completions reply carrying `arguments` the way `request` asked for its answer."""
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    if request.get("tools"):
        call = {"id": "call_1", "type": "function", "function": {"name": schema_of(request)[0], "arguments": text}}
        message, finish = {"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls"
    else:
        message, finish = {"role": "assistant", "content": text}, "stop"
    return {"id": "chatcmpl-fake", "object": "chat.completion", "model": request.get("model"),
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120} if usage is None else usage}


def least(schema: dict[str, Any], defs: dict[str, Any] | None = None) -> Any:
    """The smallest value `schema` accepts: required properties only, empty lists, first choices."""
    defs = schema.get("$defs", {}) if defs is None else defs
    if ref := schema.get("$ref"):
        return least(defs[ref.rsplit("/", 1)[-1]], defs)
    if choices := schema.get("anyOf") or schema.get("oneOf"):
        return least(choices[0], defs)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type", "object")
    if kind == "object":
        properties = schema.get("properties", {})
        return {name: least(properties[name], defs) for name in schema.get("required", [])}
    return {"array": [], "string": "", "integer": 0, "number": 0, "boolean": False, "null": None}[kind]

"""The local-model dream: the Claude dream's map–reduce, asked of an OpenAI-compatible server.

Ollama, LM Studio, llama.cpp's `llama-server`, vLLM (and OpenAI itself) serve the Chat
Completions API. This engine runs `claude.map_sessions` and `claude.reduce_candidates`
unchanged — the same prompts, answer schemas, citation checks (`Judge`) and retry of a
refused answer — with `ChatCompletions` in place of `claude.Claude` as the transport. The
service then redacts and flags as for any engine.

Invariants:
- The answer's shape is asked for the way the server understands (REVERIE_OPENAI_STRUCTURED):
  `json_schema` (the default) sends the pydantic schema as `response_format`, which local
  servers turn into constrained decoding; `tools` sends it as a forced function call. Either
  way the schema is also written into the system prompt, for servers that ignore both.
- An answer that does not validate goes back once with the problem (a "repair" turn); a
  second invalid one raises EngineFailed, so a dream yields a whole proposal or none.
- Every call is bounded by REVERIE_OPENAI_TIMEOUT as a whole, not per read, so a server that
  hangs or trickles fails the dream with a message naming the setting. Only "busy" answers
  (429, 503: a model still loading) are retried, a few times, briefly.
- Tokens come from each response's `usage`; a server that reports none still counts calls.
- The key, when set, is sent as a bearer token and never appears in a message.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
from pydantic import ValidationError

from reverie.config import OpenAISettings
from reverie.engines.claude import (
    Ask,
    InvalidAnswer,
    Meter,
    Tool,
    map_sessions,
    reduce_candidates,
    with_one_retry,
)
from reverie.errors import EngineFailed
from reverie.models import DreamInput, EngineResult
from reverie.text import shorten

if TYPE_CHECKING:
    from httpx2 import AsyncClient, Response

BUSY = (429, 502, 503, 504)   # a server still loading its model, or a proxy in front of it
BUSY_PAUSES = (1.0, 2.0, 4.0)  # seconds before each retry of a busy answer
CONNECT_SECONDS = 10.0        # a server that is up accepts a connection at once
# The model's own reasoning, which some local models (DeepSeek-R1, Qwen3) print before the answer.
THINKING = re.compile(r"<think>.*?</think>", re.DOTALL)
FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


class OpenAIEngine:
    name = "openai"

    async def propose(self, dream: DreamInput) -> EngineResult:
        settings = OpenAISettings.from_env()
        # Loaded only when a dream runs: the CLI, which hooks call after every session, starts quicker.
        import httpx2

        timeout = httpx2.Timeout(settings.timeout, connect=min(CONNECT_SECONDS, settings.timeout))
        async with httpx2.AsyncClient(timeout=timeout, headers=_headers(settings)) as client:
            chat = ChatCompletions(client, settings)
            found = await map_sessions(chat, settings, dream.sessions)
            drafts, dropped = await reduce_candidates(chat, settings.model, dream, found)
        return EngineResult(operations=drafts, dropped=dropped, usage=chat.meter.usage)


def _headers(settings: OpenAISettings) -> dict[str, str]:
    return {"Authorization": f"Bearer {settings.api_key}"} if settings.api_key else {}


# --- asking for a structured answer ---------------------------------------------------------------


@dataclass
class ChatCompletions:
    """One dream's client, speaking `claude.Claude`'s part: `answer(ask)` and a `meter`."""

    client: AsyncClient
    settings: OpenAISettings
    meter: Meter = field(default_factory=Meter)

    async def answer(self, ask: Ask) -> Any:
        messages = [{"role": "system", "content": self._system(ask)}, {"role": "user", "content": ask.prompt}]
        return await with_one_retry(ask, messages, lambda sent: self._create(ask, sent), parsed, feedback,
                                    lambda problem: self._invalid_twice(ask, problem))

    def _system(self, ask: Ask) -> str:
        schema = json.dumps(ask.tool.schema.model_json_schema(), ensure_ascii=False)
        how = (f"Here, calling {ask.tool.name} means answering with one JSON object, its input, and nothing else."
               if self.settings.structured == "json_schema" else f"Call the function {ask.tool.name}.")
        return "\n\n".join([*(block["text"] for block in ask.system),
                            f"{how} The input's JSON Schema:\n{schema}"])

    def _invalid_twice(self, ask: Ask, problem: InvalidAnswer) -> EngineFailed:
        failed = f"{ask.model} answered {ask.tool.name} invalidly twice, so nothing was proposed ({problem})."
        return EngineFailed(f"{failed} Dream again, try a larger model, or use engine='heuristic'.", terminal=(
            f"{failed} Dream again, try a larger model, or run `reverie dream --engine heuristic`."))

    async def _create(self, ask: Ask, messages: list[dict[str, Any]]) -> dict[str, Any]:
        body = {"model": ask.model, "messages": messages, "max_tokens": ask.max_tokens, "temperature": 0,
                **shape_request(ask.tool, self.settings.structured)}
        reply = await self._post(body)
        self.meter.add(ask.model, _Used.of(reply.get("usage")))
        return reply

    async def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        for pause in BUSY_PAUSES:
            response = await self._send(body)
            if response.status_code not in BUSY:
                return self._read(response, body["model"])
            await anyio.sleep(pause)
        return self._read(await self._send(body), body["model"])

    async def _send(self, body: dict[str, Any]) -> Response:
        import httpx2  # already loaded by OpenAIEngine.propose

        url = f"{self.settings.base_url}/chat/completions"
        try:
            # The whole call, not each read: a server that trickles bytes never trips a read timeout.
            with anyio.fail_after(self.settings.timeout):
                return await self.client.post(url, json=body)
        except (TimeoutError, httpx2.TimeoutException) as error:
            raise EngineFailed(self._too_slow(body["model"])) from error
        except httpx2.HTTPError as error:
            raise EngineFailed(f"Could not reach the model server at {url} ({type(error).__name__}: {error}). "
                               "Is it running? Check REVERIE_OPENAI_BASE_URL.") from error

    def _too_slow(self, model: str) -> str:
        return (f"The model server at {self.settings.base_url} did not answer {model} within "
                f"{self.settings.timeout:g} seconds (REVERIE_OPENAI_TIMEOUT). Check that it is running and not "
                "stuck; a large local model may need a longer timeout, a smaller model or fewer sessions "
                "(max_sessions).")

    def _read(self, response: Response, model: str) -> dict[str, Any]:
        if response.status_code != 200:
            raise EngineFailed(server_refusal(response, model, self.settings))
        try:
            reply = response.json()
        except ValueError as error:
            raise EngineFailed(f"The model server at {self.settings.base_url} answered with something other "
                               "than JSON: is REVERIE_OPENAI_BASE_URL the API root (often ending in /v1)?") from error
        if not isinstance(reply, dict) or not reply.get("choices"):
            raise EngineFailed(f"The model server's answer holds no choices: {shorten(str(reply), 300)}")
        return reply


def shape_request(tool: Tool, structured: str) -> dict[str, Any]:
    """The request fields that ask for an answer shaped like `tool`'s schema."""
    schema = tool.schema.model_json_schema()
    if structured == "tools":
        function = {"name": tool.name, "description": tool.description, "parameters": schema}
        return {"tools": [{"type": "function", "function": function}],
                "tool_choice": {"type": "function", "function": {"name": tool.name}}}
    # Not "strict": OpenAI's strict mode refuses optional fields, which these schemas have.
    return {"response_format": {"type": "json_schema", "json_schema": {"name": tool.name, "schema": schema}}}


def server_refusal(response: Response, model: str, settings: OpenAISettings) -> str:
    status, said = response.status_code, shorten(response.text, 300)
    if status in (401, 403):
        return f"The model server refused the request ({status}): check REVERIE_OPENAI_API_KEY. It said: {said}"
    if status == 404:
        return (f"The model server at {settings.base_url} answered 404 for model {model!r}: check "
                f"REVERIE_OPENAI_MODEL / REVERIE_OPENAI_MAP_MODEL and that the URL is the API root (often ending in "
                f"/v1). It said: {said}")
    if status in BUSY:
        return f"The model server is busy ({status}) even after {len(BUSY_PAUSES)} retries. Dream again later."
    hint = " If it cannot do JSON-schema output, set REVERIE_OPENAI_STRUCTURED=tools." if status in (400, 422) else ""
    return f"The model server refused the request to {model} ({status}): {said}.{hint}"


@dataclass(frozen=True)
class _Used:
    """A response's token counts, in the names `claude.Meter` reads."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0

    @classmethod
    def of(cls, usage: Any) -> _Used:
        if not isinstance(usage, dict):
            return cls()  # some servers report no usage; the call still counts
        details = usage.get("prompt_tokens_details") or {}
        return cls(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0),
                   int(details.get("cached_tokens") or 0) if isinstance(details, dict) else 0)


# --- reading the answer ---------------------------------------------------------------------------


def parsed(reply: dict[str, Any], tool: Tool) -> Any:
    """The answer validated by `tool`'s schema, from a function call or from the message's text."""
    choice = reply["choices"][0]
    cut_off = "; the reply was cut off at max_tokens, so answer more briefly" if choice.get("finish_reason") == \
        "length" else ""
    text = answer_text(choice.get("message") or {}, tool)
    if text is None:
        raise InvalidAnswer(f"the reply held no answer for {tool.name}{cut_off}")
    try:
        return tool.schema.model_validate_json(text)
    except ValidationError as error:
        raise InvalidAnswer(f"{shorten(str(error), 2_000)}{cut_off}") from error


def answer_text(message: dict[str, Any], tool: Tool) -> str | None:
    """The JSON the model answered with: its call of `tool`, else its text less any reasoning or fence."""
    calls = [c.get("function") or {} for c in message.get("tool_calls") or []]
    if call := next((c for c in calls if c.get("name") == tool.name), None):
        arguments = call.get("arguments")
        return arguments if isinstance(arguments, str) else json.dumps(arguments)
    text = THINKING.sub("", message.get("content") or "").strip()
    if fenced := FENCE.match(text):
        text = fenced.group(1)
    return text or None


def feedback(reply: dict[str, Any], problem: InvalidAnswer, tool: Tool) -> list[dict[str, Any]]:
    """The turns that show the model its answer and what was wrong with it (the repair turn)."""
    text = f"That answer was not valid: {problem}. {problem.retry.format(tool=tool.name)}"
    said = reply["choices"][0].get("message") or {}
    calls = said.get("tool_calls") or []
    answered = {"role": "assistant", "content": said.get("content") or ""}
    if calls:
        results = [{"role": "tool", "tool_call_id": c.get("id", ""), "content": text} for c in calls]
        return [{**answered, "tool_calls": calls}, *results]
    return [answered, {"role": "user", "content": text}]

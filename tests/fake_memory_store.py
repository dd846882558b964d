"""A stand-in for the Managed Agents memory store API on 127.0.0.1, so tests drive the real SDK.

It serves only what client_examples/anthropic_store/upload.py calls — list and create
stores, list, create and update memories — at the routes and with the responses the
`anthropic` SDK expects, and keeps the stores in a dict. Like the real API, a path is
unique in a store (creating it twice is 409), an update whose `content_sha256`
precondition no longer holds is 409, and each update makes a new memory version. Lists
come in pages of PAGE items, so a client that reads only the first page misses memories.
`requests` records (method, path, query, anthropic-beta header, body) of every request.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from local_server import LocalServer

PAGE = 2
AT = "2026-12-01T00:00:00Z"


class FakeMemoryStores(LocalServer):
    def __init__(self) -> None:
        self.stores: dict[str, dict[str, Any]] = {}
        self.memories: dict[str, dict[str, dict[str, Any]]] = {}  # store id → memory id → memory
        self.requests: list[tuple[str, str, dict[str, str], str, dict[str, Any]]] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        super().__init__(_handler_for(self))

    @property
    def url(self) -> str:
        return self.address

    def paths(self, store: str) -> dict[str, dict[str, Any]]:
        return {m["path"]: m for m in self.memories[store].values()}

    def serve(self, method: str, path: str, query: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        with self._lock:
            parts = path.strip("/").split("/")
            match method, parts:
                case "GET", ["v1", "memory_stores"]:
                    return 200, page(list(self.stores.values()), query)
                case "POST", ["v1", "memory_stores"]:
                    return 200, self.create_store(body)
                case "GET", ["v1", "memory_stores", store, "memories"] if store in self.stores:
                    listed = [{**m, "content": None} for m in self.memories[store].values()]
                    return 200, page(sorted(listed, key=lambda m: m["path"]), query)
                case "POST", ["v1", "memory_stores", store, "memories"] if store in self.stores:
                    return self.create_memory(store, body)
                case "POST", ["v1", "memory_stores", store, "memories", memory] if memory in self.memories.get(store, {}):
                    return self._update_memory(self.memories[store][memory], body)
            return 404, error("not_found_error", f"{method} {path} is not a route of this fake")

    def create_store(self, body: dict[str, Any]) -> dict[str, Any]:
        store = {"type": "memory_store", "id": f"memstore_{next(self._ids)}", "name": body["name"],
                 "description": body.get("description", ""), "metadata": body.get("metadata", {}),
                 "created_at": AT, "updated_at": AT, "archived_at": None}
        self.stores[store["id"]], self.memories[store["id"]] = store, {}
        return store

    def create_memory(self, store: str, body: dict[str, Any]) -> tuple[int, Any]:
        if body["path"] in self.paths(store):
            return 409, error("conflict_error", f"a memory exists at {body['path']}")
        memory = {"type": "memory", "id": f"mem_{next(self._ids)}", "memory_store_id": store, "path": body["path"],
                  "created_at": AT, "updated_at": AT}
        self.memories[store][memory["id"]] = memory
        return 200, versioned(memory, body["content"])

    def _update_memory(self, memory: dict[str, Any], body: dict[str, Any]) -> tuple[int, Any]:
        expected = (body.get("precondition") or {}).get("content_sha256", memory["content_sha256"])
        if expected != memory["content_sha256"]:
            return 409, error("conflict_error", "the memory's content_sha256 does not match the precondition")
        return 200, versioned(memory, body.get("content", memory["content"]), next(self._ids))


def versioned(memory: dict[str, Any], content: str, version: int = 0) -> dict[str, Any]:
    memory.update(content=content, content_sha256=hashlib.sha256(content.encode()).hexdigest(),
                  content_size_bytes=len(content.encode()), memory_version_id=f"memver_{memory['id']}_{version}")
    return {**memory, "content": None}  # create and update answer with view=basic


def page(items: list[dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
    start = int(query.get("page", 0))
    rest = start + PAGE < len(items)
    return {"data": items[start:start + PAGE], "next_page": str(start + PAGE) if rest else None}


def error(kind: str, words: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": words}}


def _handler_for(fake: FakeMemoryStores) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._answer("GET")

        def do_POST(self) -> None:
            self._answer("POST")

        def _answer(self, method: str) -> None:
            url = urlsplit(self.path)
            query = dict(parse_qsl(url.query))
            body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
            fake.requests.append((method, url.path, query, self.headers.get("anthropic-beta", ""), body))
            status, answer = fake.serve(method, url.path, query, body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.send_header("x-should-retry", "false")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass  # keeps test output free of access logs

    return Handler

"""client_examples/anthropic_store/upload.py, run against a local stand-in for the memory store API.

The example drives the real `anthropic` SDK with a dummy key and ANTHROPIC_BASE_URL on
127.0.0.1 (tests/fake_memory_store.py), on the folder `reverie export --anthropic-store`
wrote. The requests must be the SDK's routes for memory stores, and a second upload
must update the memories at the same paths, not add copies.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from conftest import memory_entry
from fake_memory_store import FakeMemoryStores
from test_client_examples import EXAMPLES, LIMIT, environment

# slow: runs the example in its own process.
pytestmark = pytest.mark.slow

UPLOAD = EXAMPLES / "anthropic_store" / "upload.py"
BETA = "agent-memory-2026-07-22"
PATHS = {"/shared/facts.md", "/user/preferences.md", "/projects/shop/workflows.md"}
# The routes in anthropic/resources/beta/memory_stores/: stores list and create; memories list, create, update.
UPDATE = ("POST", "/v1/memory_stores/{id}/memories/{memory_id}")
FIRST_UPLOAD_ROUTES = {("GET", "/v1/memory_stores"), ("POST", "/v1/memory_stores"),
                       ("GET", "/v1/memory_stores/{id}/memories"), ("POST", "/v1/memory_stores/{id}/memories")}


def remember(cli, tmp_path, *entries: tuple[str, str, str]) -> None:
    """Curate (text, scope, category) entries, as a person approving an import would."""
    at = datetime(2026, 3, 1, tzinfo=UTC)
    made = [{**memory_entry(f"mem_{hashlib.sha256(text.encode()).hexdigest()[:12]}", text, at), "scope": scope, "category": category}
            for text, scope, category in entries]
    path = tmp_path / "export.json"
    path.write_text(json.dumps({"format": "reverie-export", "version": 1, "memories": made, "sessions": []}))
    proposal = cli("import", str(path)).out.split("proposal ")[1].split(":")[0]
    assert cli("apply", proposal, "--approve", "all").code == 0


def export_and_upload(cli, folder, fake: FakeMemoryStores, store: str) -> list[str]:
    assert cli("export", "--anthropic-store", str(folder)).code == 0
    done = subprocess.run([sys.executable, str(UPLOAD), str(folder), store], capture_output=True, text=True,
                          env=environment(ANTHROPIC_BASE_URL=fake.url, ANTHROPIC_API_KEY="sk-ant-dummy"),
                          timeout=LIMIT, check=False)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    return done.stdout.splitlines()


def route(method: str, path: str) -> tuple[str, str]:
    """The SDK's route template a request was sent to."""
    return method, re.sub(r"/mem_\w+", "/{memory_id}", re.sub(r"/memstore_\w+", "/{id}", path))


@pytest.fixture
def fake():
    with FakeMemoryStores() as running:
        yield running


def test_an_export_uploads_as_one_memory_per_document_at_its_store_path(cli, tmp_path, fake):
    remember(cli, tmp_path, ("Deploys happen on Tuesdays", "shared", "fact"),
             ("Answer in British English", "user", "preference"),
             ("Run make check before pushing", "project:shop", "workflow"))

    said = export_and_upload(cli, tmp_path / "store", fake, "team-memory")

    [(store, created)] = fake.stores.items()
    assert created["name"] == "team-memory"
    stored = fake.paths(store)
    assert set(stored) == PATHS
    assert all(stored[p]["content"] == (tmp_path / "store" / p[1:]).read_text(encoding="utf-8") for p in PATHS)
    assert said[-1] == f"upload.py: 3 documents in memory store {store} match the export"
    assert {route(method, path) for method, path, *_ in fake.requests} == FIRST_UPLOAD_ROUTES
    assert all(beta == BETA for _, _, _, beta, _ in fake.requests)


def test_a_second_upload_updates_the_same_paths_instead_of_adding_copies(cli, tmp_path, fake):
    remember(cli, tmp_path, ("Deploys happen on Tuesdays", "shared", "fact"),
             ("Answer in British English", "user", "preference"),
             ("Run make check before pushing", "project:shop", "workflow"))
    export_and_upload(cli, tmp_path / "store", fake, "team-memory")
    [store] = fake.stores
    before = {path: memory["id"] for path, memory in fake.paths(store).items()}
    old_sha = fake.paths(store)["/shared/facts.md"]["content_sha256"]
    fake.requests.clear()

    remember(cli, tmp_path, ("The API listens on port 8080", "shared", "fact"))
    said = export_and_upload(cli, tmp_path / "store", fake, "team-memory")

    assert list(fake.stores) == [store]  # found by name, not created again
    assert {path: memory["id"] for path, memory in fake.paths(store).items()} == before
    assert "port 8080" in fake.paths(store)["/shared/facts.md"]["content"]
    assert said[:3] == ["unchanged /projects/shop/workflows.md", "updated /shared/facts.md",
                        "unchanged /user/preferences.md"]
    writes = [(route(method, path), body) for method, path, _, _, body in fake.requests if method == "POST"]
    assert writes == [(UPDATE, {"content": fake.paths(store)["/shared/facts.md"]["content"],
                                           "precondition": {"type": "content_sha256", "content_sha256": old_sha}})]


def test_a_store_named_by_id_keeps_the_memories_agents_wrote_there(cli, tmp_path, fake):
    store = fake.create_store({"name": "agents-and-reverie"})["id"]
    fake.create_memory(store, {"path": "/shared/agent-notes.md", "content": "- the agent's own note\n"})
    remember(cli, tmp_path, ("Deploys happen on Tuesdays", "shared", "fact"))

    export_and_upload(cli, tmp_path / "store", fake, store)

    assert set(fake.paths(store)) == {"/shared/agent-notes.md", "/shared/facts.md"}
    assert fake.paths(store)["/shared/agent-notes.md"]["content"] == "- the agent's own note\n"
    assert ("GET", "/v1/memory_stores") not in {(method, path) for method, path, *_ in fake.requests}

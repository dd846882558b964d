"""Upload `reverie export --anthropic-store DIR` to a Managed Agents memory store.

    reverie export --anthropic-store ./store
    python client_examples/anthropic_store/upload.py ./store my-memory     # a store name, or its memstore_… id

Every `.md` file in the folder becomes the memory at its relative path with a leading `/`
(`shared/facts.md` → `/shared/facts.md`). The export writes each topic at the same path
every time, so uploading again updates those memories (the store keeps the old content as
a version) instead of adding copies. A store given by name is created if no store has
that name. Memories the folder doesn't have are left alone: agents write to the store too.
An upload replaces what agents changed in the documents it updates, so bring their
changes in first: download the store and `reverie import --anthropic-store` it.

Uses the official `anthropic` SDK, with ANTHROPIC_API_KEY (and ANTHROPIC_BASE_URL, if
set) from the environment. It checks itself: after uploading, the store's list of
memories must hold every document with the content's SHA-256.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

from anthropic import Anthropic


def store_id(client: Anthropic, name_or_id: str) -> str:
    """The id of the store with this id or name; a store by a new name is created."""
    if name_or_id.startswith("memstore_"):
        return name_or_id
    found = next((s for s in client.beta.memory_stores.list() if s.name == name_or_id), None)
    if found is None:
        found = client.beta.memory_stores.create(name=name_or_id, description="Curated memory exported by Reverie")
    return found.id


def stored(client: Anthropic, store: str) -> dict[str, tuple[str, str]]:
    """Path → (memory id, content SHA-256) of every memory in the store (the SDK fetches every page)."""
    return {m.path: (m.id, m.content_sha256) for m in client.beta.memory_stores.memories.list(store)
            if m.type == "memory"}


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def documents(folder: Path) -> dict[str, str]:
    """Store path → content of every document in the export folder."""
    return {"/" + file.relative_to(folder).as_posix(): file.read_text(encoding="utf-8")
            for file in sorted(folder.rglob("*.md"))}


def upload(client: Anthropic, store: str, docs: dict[str, str]) -> dict[str, str]:
    """Create or update one memory per document; path → what happened to it."""
    memories = client.beta.memory_stores.memories
    existing, done = stored(client, store), {}
    for path, content in docs.items():
        if path not in existing:
            memories.create(store, path=path, content=content)
            done[path] = "created"
        elif existing[path][1] == sha256(content):
            done[path] = "unchanged"
        else:  # the precondition makes the API refuse (409) if the memory changed after it was listed
            memory_id, sha = existing[path]
            memories.update(memory_id, memory_store_id=store, content=content,
                            precondition={"type": "content_sha256", "content_sha256": sha})
            done[path] = "updated"
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="the folder `reverie export --anthropic-store` wrote")
    parser.add_argument("store", help="a memory store's name (created if new) or id (memstore_…)")
    args = parser.parse_args()
    if not args.folder.is_dir():
        parser.error(f"no folder at {args.folder}: write one with `reverie export --anthropic-store {args.folder}`")

    client = Anthropic()
    store = store_id(client, args.store)
    docs = documents(args.folder)
    for path, action in upload(client, store, docs).items():
        print(f"{action} {path}")

    after = stored(client, store)
    for path, content in docs.items():
        assert after.get(path, ("", ""))[1] == sha256(content), f"{path} in the store differs from the export"
    print(f"upload.py: {len(docs)} documents in memory store {store} match the export")


if __name__ == "__main__":
    main()

"""Managed Agents memory stores: memory exported as path-addressed documents, and read back.

A store document is at most 100 kB and lives at a path; the export must give each
scope and category the same path every time, so an upload makes a new version of a
document rather than a second document.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from conftest import imported, memory_entry
from reverie.config import Settings
from reverie.formats import anthropic_store, written
from reverie.formats.document import digest
from reverie.service import open_reverie
from reverie.store import memories

pytestmark = [pytest.mark.anyio, pytest.mark.both_backends]

OBSERVED = datetime(2026, 3, 1, tzinfo=UTC)


def entries(*texts: str, scope: str = "shared", category: str = "fact") -> dict:
    made = [{**memory_entry(f"mem_{digest(scope, text)}", text, OBSERVED - timedelta(minutes=i)), "scope": scope,
             "category": category} for i, text in enumerate(texts)]
    return {"format": "reverie-export", "version": 1, "memories": made, "sessions": []}


async def export_to(reverie, folder) -> list[written.Change]:
    return written.write_owned(folder, anthropic_store.render(await reverie.curated()), "*")


async def test_each_scope_and_category_is_one_document_at_a_stable_path(reverie, tmp_path):
    await imported(reverie, entries("Deploys happen on Tuesdays"))
    await imported(reverie, entries("Answer in British English", scope="user", category="preference"))
    await imported(reverie, entries("Run make check before pushing", scope="project:shop", category="workflow"))

    first = {c.path for c in await export_to(reverie, tmp_path / "store")}
    await imported(reverie, entries("The API listens on port 8080"))
    second = {c.path: c.action for c in await export_to(reverie, tmp_path / "store")}

    assert first == {"shared/facts.md", "user/preferences.md", "projects/shop/workflows.md"}
    assert second == {"shared/facts.md": "updated", "user/preferences.md": "unchanged",
                      "projects/shop/workflows.md": "unchanged"}
    assert anthropic_store.store_path("projects/shop/workflows.md") == "/projects/shop/workflows.md"


@pytest.mark.slow
async def test_a_topic_larger_than_a_document_continues_in_numbered_documents(reverie, tmp_path):
    await imported(reverie, entries(*(f"Fact {i:04d}: " + "y" * 1500 for i in range(150))))
    await export_to(reverie, tmp_path / "store")
    documents = sorted((tmp_path / "store" / "shared").iterdir())
    assert [d.name for d in documents] == ["facts-2.md", "facts-3.md", "facts.md"]
    assert all(d.stat().st_size <= 102_400 for d in documents)


async def test_the_documents_read_into_another_memory_as_one_proposal_that_restores_it(reverie, tmp_path):
    await imported(reverie, entries("Deploys happen on Tuesdays", "The API listens on port 8080"))
    await imported(reverie, entries("Answer in British English", scope="user", category="preference"))
    await export_to(reverie, tmp_path / "store")

    async with open_reverie(Settings(db_path=tmp_path / "other.db", agent_id="tester")) as other:
        document = anthropic_store.read(tmp_path / "store", scope="shared", agent_id="tester")
        counts = await other.import_(document, anthropic_store.LABEL)
        assert await memories.active_memories(other.db) == []  # nothing lands before a person approves
        await other.apply_dream(counts["proposal_id"], approve="all")
        restored = {(m.content, m.scope, m.category) for m in await memories.active_memories(other.db)}
    assert restored == {("Deploys happen on Tuesdays", "shared", "fact"),
                        ("The API listens on port 8080", "shared", "fact"),
                        ("Answer in British English", "user", "preference")}


async def test_what_an_agent_added_in_the_store_comes_back_alone(reverie, tmp_path):
    await imported(reverie, entries("Deploys happen on Tuesdays"))
    await export_to(reverie, tmp_path / "store")
    document = tmp_path / "store" / "shared" / "facts.md"
    document.write_text(document.read_text(encoding="utf-8") + "- The staging cluster is eu-west-1\n", encoding="utf-8")
    (tmp_path / "store" / "notes").mkdir()
    (tmp_path / "store" / "notes" / "gotchas.md").write_text("Retry flaky DNS once in CI.\n", encoding="utf-8")

    document = anthropic_store.read(tmp_path / "store", scope="agent:tester", agent_id="tester")
    counts = await reverie.import_(document, anthropic_store.LABEL)
    found = {op.content: (op.scope, op.category, op.rationale)
             for op in (await reverie.proposal(counts["proposal_id"])).operations}
    assert found == {
        "The staging cluster is eu-west-1": ("shared", "fact", "Imported from the memory store: /shared/facts.md."),
        "Retry flaky DNS once in CI.": ("agent:tester", "pitfall", "Imported from the memory store: /notes/gotchas.md."),
    }


def test_the_cli_exports_says_what_changed_and_imports_back(cli, tmp_path):
    path = tmp_path / "export.json"
    path.write_text(json.dumps(entries("Deploys happen on Tuesdays")), encoding="utf-8")
    cli("apply", cli("import", str(path)).out.split("proposal ")[1].split(":")[0], "--approve", "all")
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "README.md").write_text("the team's own notes\n", encoding="utf-8")

    ran = cli("export", "--anthropic-store", str(tmp_path / "store"))
    assert ran.code == 0 and "created shared/facts.md" in ran.out
    assert (tmp_path / "store" / "README.md").read_text(encoding="utf-8") == "the team's own notes\n"
    again = cli("import", "--anthropic-store", str(tmp_path / "store"))
    assert again.code == 0 and "1 memory entries await review" in again.out  # the team's note, not Reverie's own

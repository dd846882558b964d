"""Claude Code's auto memory comes in as a proposal to review and goes out as files it loads.

The folders here are written the way Claude Code writes them: a `MEMORY.md` index of
links and one-line memories, typed topic files with frontmatter, an older untyped topic
file of bullets under headings.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import imported, memory_entry
from reverie.formats import claude_code, written
from reverie.formats.document import digest
from reverie.store import memories
from test_stdio import reverie_command

pytestmark = [pytest.mark.anyio, pytest.mark.both_backends]

OBSERVED = datetime(2026, 3, 1, tzinfo=UTC)
INDEX = """# Memory Index

- [Testing policy](feedback_testing.md) — no mocks in integration tests
- [User role](user_role.md) — data scientist, new to Go
- The staging database listens on port 5433

## Gotchas
- pytest -x hides the flaky test in test_sync.py
"""
FEEDBACK = """---
name: Testing policy
description: integration tests must hit a real database
type: feedback
---

Integration tests must hit a real database, not mocks.

**Why:** a mocked test passed while the migration failed.
**How to apply:** use the compose database under tests/integration.
"""
USER = """---
name: User role
description: data scientist
type: user
---
The user is a data scientist, new to Go, fluent in Python.
"""
DEBUGGING = """# Debugging

## Build
- The release build needs NODE_OPTIONS=--max-old-space-size=4096
"""


def claude_memory(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in {"MEMORY.md": INDEX, "feedback_testing.md": FEEDBACK, "user_role.md": USER,
                       "debugging.md": DEBUGGING}.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


async def import_folder(reverie, folder: Path, scope: str = "project:shop") -> dict:
    document = claude_code.read(folder, scope=scope, agent_id="tester")
    return await reverie.import_(document, claude_code.LABEL)


def entries(*texts: str, scope: str = "project:shop", category: str = "fact") -> dict:
    made = [{**memory_entry(f"mem_{digest(text)}", text, OBSERVED - timedelta(minutes=i)), "scope": scope,
             "category": category} for i, text in enumerate(texts)]
    return {"format": "reverie-export", "version": 1, "memories": made, "sessions": []}


async def test_each_claude_code_memory_is_a_pending_add_citing_its_file(reverie, tmp_path):
    counts = await import_folder(reverie, claude_memory(tmp_path / "memory"))

    assert await memories.active_memories(reverie.db) == []
    proposal = await reverie.proposal(counts["proposal_id"])
    assert (proposal.status, proposal.engine) == ("pending", "import")
    found = {op.content: (op.category, op.scope, op.rationale) for op in proposal.operations}
    assert found == {
        "The staging database listens on port 5433": ("fact", "project:shop", "Imported from Claude Code memory: MEMORY.md."),
        "pytest -x hides the flaky test in test_sync.py": ("pitfall", "project:shop",
                                                           "Imported from Claude Code memory: MEMORY.md."),
        "Integration tests must hit a real database, not mocks. **Why:** a mocked test passed while the migration "
        "failed. **How to apply:** use the compose database under tests/integration.": (
            "preference", "project:shop", "Imported from Claude Code memory: feedback_testing.md."),
        "The user is a data scientist, new to Go, fluent in Python.": (
            "preference", "user", "Imported from Claude Code memory: user_role.md."),
        "The release build needs NODE_OPTIONS=--max-old-space-size=4096": (
            "workflow", "project:shop", "Imported from Claude Code memory: debugging.md."),
    }
    assert all(len(op.evidence) == 1 and op.evidence[0].note_index is not None for op in proposal.operations)


async def test_an_imported_rule_waits_flagged_for_a_person_and_a_plain_fact_does_not(reverie, tmp_path):
    counts = await import_folder(reverie, claude_memory(tmp_path / "memory"))
    risks = {op.content[:20]: op.risk for op in (await reverie.proposal(counts["proposal_id"])).operations}
    assert risks["The staging database"] == []
    assert "imperative" in risks["Integration tests mu"]


async def test_importing_the_same_folder_again_adds_nothing_twice(reverie, tmp_path):
    folder = claude_memory(tmp_path / "memory")
    first = await import_folder(reverie, folder)
    assert (await import_folder(reverie, folder))["proposal_id"] is None  # the first still waits for review
    await reverie.apply_dream(first["proposal_id"], approve="all")
    assert (await import_folder(reverie, folder)) == {"sessions": 0, "memories": 0, "proposal_id": None}
    assert len(await memories.active_memories(reverie.db)) == 5


async def test_an_edited_file_brings_only_its_new_memory(reverie, tmp_path):
    folder = claude_memory(tmp_path / "memory")
    await reverie.apply_dream((await import_folder(reverie, folder))["proposal_id"], approve="all")
    (folder / "debugging.md").write_text(DEBUGGING + "- Flaky DNS in CI: retry the job once\n", encoding="utf-8")

    counts = await import_folder(reverie, folder)
    (op,) = (await reverie.proposal(counts["proposal_id"])).operations
    assert (counts["sessions"], op.content) == (1, "Flaky DNS in CI: retry the job once")


async def test_one_memory_in_two_files_is_one_entry_citing_both(reverie, tmp_path):
    folder = tmp_path / "memory"
    folder.mkdir()
    (folder / "MEMORY.md").write_text("- Deploys happen on Tuesdays\n", encoding="utf-8")
    (folder / "release.md").write_text("- deploys  happen on tuesdays\n", encoding="utf-8")
    (op,) = (await reverie.proposal((await import_folder(reverie, folder))["proposal_id"])).operations
    assert len(op.evidence) == 2


@pytest.mark.slow
async def test_an_export_shows_every_topic_in_an_index_claude_code_loads_whole(reverie, tmp_path):
    many = [f"Service {i:03d} is owned by team {i % 7} and pages its on-call through the shared rota " + "x" * 80
            for i in range(600)]
    await imported(reverie, entries(*many))
    await imported(reverie, entries("The user prefers short answers", scope="user", category="preference"))

    folder = tmp_path / "memory"
    written.write_owned(folder, claude_code.render(await reverie.curated(project="shop")))
    index = (folder / "MEMORY.md").read_text(encoding="utf-8")

    assert len(index.splitlines()) <= claude_code.LINE_LIMIT and len(index.encode()) <= claude_code.BYTE_LIMIT
    assert "(reverie_user_preference.md)" in index and "(reverie_project-shop_fact.md)" in index
    topic = (folder / "reverie_project-shop_fact.md").read_text(encoding="utf-8")
    assert all(f"- {text}\n" in topic for text in many)
    assert "type: project" in topic and written.ownership(topic) == "ours"


def test_an_export_never_overwrites_a_file_it_did_not_write_and_says_so(cli, tmp_path):
    folder = claude_memory(tmp_path / "memory")
    path = tmp_path / "export.json"
    path.write_text(json.dumps(entries("Deploys happen on Tuesdays", scope="user")), encoding="utf-8")
    proposal = cli("import", str(path)).out.split("proposal ")[1].split(":")[0]
    cli("apply", proposal, "--approve", "all")

    ran = cli("export", "--claude-code", str(folder))

    assert ran.code == 0, ran.err
    assert (folder / "MEMORY.md").read_text(encoding="utf-8") == INDEX
    assert "kept MEMORY.md (not written by Reverie: left as it is)" in ran.out
    assert "created reverie_user_fact.md" in ran.out and "reverie import --claude-code" in ran.out
    assert (folder / "feedback_testing.md").read_text(encoding="utf-8") == FEEDBACK


async def test_a_second_export_updates_its_files_keeps_edited_ones_and_removes_emptied_ones(reverie, tmp_path):
    counts = await imported(reverie, entries("Deploys happen on Tuesdays", "The API runs on port 8080"))
    await imported(reverie, entries("Use ruff for linting", category="workflow"))
    folder = tmp_path / "memory"
    written.write_owned(folder, claude_code.render(await reverie.curated(project="shop")))
    edited = folder / "reverie_project-shop_workflow.md"
    edited.write_text(edited.read_text(encoding="utf-8") + "- my own note\n", encoding="utf-8")
    await reverie.revert_dream(counts["proposal_id"])

    changes = {c.path: c.action for c in written.write_owned(
        folder, claude_code.render(await reverie.curated(project="shop")))}

    assert changes == {"MEMORY.md": "updated", "reverie_project-shop_workflow.md": "kept",
                       "reverie_project-shop_fact.md": "removed"}
    assert edited.read_text(encoding="utf-8").endswith("- my own note\n")


async def test_reverie_s_own_export_read_back_adds_nothing_but_an_edit_to_it_does(reverie, tmp_path):
    await imported(reverie, entries("Deploys happen on Tuesdays"))
    folder = tmp_path / "memory"
    written.write_owned(folder, claude_code.render(await reverie.curated(project="shop")))
    assert (await import_folder(reverie, folder))["proposal_id"] is None

    topic = folder / "reverie_project-shop_fact.md"
    topic.write_text(topic.read_text(encoding="utf-8") + "- Freeze deploys in December\n", encoding="utf-8")
    (op,) = (await reverie.proposal((await import_folder(reverie, folder))["proposal_id"])).operations
    assert (op.content, op.category) == ("Freeze deploys in December", "fact")


def test_the_default_folder_is_the_one_claude_code_keeps_for_the_git_root(tmp_path):
    root = tmp_path / "src" / "my_app.v2"
    (root / ".git").mkdir(parents=True)
    (root / "pkg").mkdir()
    found = claude_code.memory_dir(root / "pkg", {"CLAUDE_CONFIG_DIR": str(tmp_path / "claude")})
    expected = str(root.resolve()).replace("/", "-").replace("_", "-").replace(".", "-")
    assert found == tmp_path / "claude" / "projects" / expected / "memory"


@pytest.mark.slow
def test_the_installed_cli_imports_this_projects_claude_code_memory_by_default(tmp_path):
    project = tmp_path / "shop"
    (project / ".git").mkdir(parents=True)
    environment = {**os.environ, "CLAUDE_CONFIG_DIR": str(tmp_path / "claude"), "REVERIE_DB": str(tmp_path / "m.db")}
    claude_memory(claude_code.memory_dir(project, environment))

    def run(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([reverie_command(), *argv], cwd=project, env=environment, capture_output=True,
                              text=True, timeout=60)

    first = run("import", "--claude-code")
    assert first.returncode == 0, first.stderr
    assert "5 memory entries await review in proposal imp_" in first.stdout
    again = run("import", "--claude-code")
    assert "No new memory entries" in again.stdout
    shown = run("show", first.stdout.split("proposal ")[1].split(":")[0])
    assert "project:shop" in shown.stdout and "feedback_testing.md" in shown.stdout


def test_a_missing_folder_is_refused_with_what_to_name(cli, tmp_path):
    ran = cli("import", "--claude-code", str(tmp_path / "nowhere"))
    assert ran.code == 1 and "No Claude Code memory folder" in ran.err and "Traceback" not in ran.err

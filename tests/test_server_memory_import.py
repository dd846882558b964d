"""The reference memory server's knowledge graph comes in as one proposal to review.

The fixture is the JSONL `@modelcontextprotocol/server-memory` saves: one entity or
relation per line, `{"type": "entity", ...}` first, then `{"type": "relation", ...}`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from reverie.errors import InvalidInput
from reverie.formats import server_memory
from reverie.store import memories

pytestmark = [pytest.mark.anyio, pytest.mark.both_backends]

GRAPH = [
    {"type": "entity", "name": "John_Smith", "entityType": "person",
     "observations": ["Speaks fluent Spanish", "Prefers morning meetings"]},
    {"type": "entity", "name": "Acme", "entityType": "organization", "observations": ["Ships from Rotterdam"]},
    {"type": "entity", "name": "John_Smith", "entityType": "person", "observations": ["speaks  fluent spanish"]},
    {"type": "relation", "from": "John_Smith", "to": "Acme", "relationType": "works_at"},
    {"type": "relation", "from": "John_Smith", "to": "Acme", "relationType": "works_at"},
]


def graph_file(folder: Path, records: list[dict] = GRAPH) -> Path:
    path = folder / "memory.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records), encoding="utf-8")  # no final newline, as it saves
    return path


async def import_graph(reverie, path: Path) -> dict:
    return await reverie.import_(server_memory.read(path, scope="user", agent_id="tester"), server_memory.LABEL)


async def test_observations_become_entries_under_their_entity_and_relations_facts(reverie, tmp_path):
    counts = await import_graph(reverie, graph_file(tmp_path))

    proposal = await reverie.proposal(counts["proposal_id"])
    assert {op.content: (op.kind, op.category, op.scope) for op in proposal.operations} == {
        "John_Smith (person): Speaks fluent Spanish": ("add", "fact", "user"),
        "John_Smith (person): Prefers morning meetings": ("add", "preference", "user"),
        "Acme (organization): Ships from Rotterdam": ("add", "fact", "user"),
        "John_Smith works at Acme": ("add", "fact", "user"),
    }
    assert await memories.active_memories(reverie.db) == []


async def test_a_duplicate_observation_or_relation_is_one_entry_citing_each_line(reverie, tmp_path):
    counts = await import_graph(reverie, graph_file(tmp_path))
    cited = {op.content: len(op.evidence) for op in (await reverie.proposal(counts["proposal_id"])).operations}
    assert cited["John_Smith (person): Speaks fluent Spanish"] == 2
    assert cited["John_Smith works at Acme"] == 2


async def test_importing_the_graph_again_adds_only_what_it_gained(reverie, tmp_path):
    path = graph_file(tmp_path)
    await reverie.apply_dream((await import_graph(reverie, path))["proposal_id"], approve="all")
    assert (await import_graph(reverie, path))["proposal_id"] is None

    graph_file(tmp_path, [*GRAPH, {"type": "relation", "from": "Acme", "to": "Rotterdam", "relationType": "based_in"}])
    (op,) = (await reverie.proposal((await import_graph(reverie, path))["proposal_id"])).operations
    assert op.content == "Acme based in Rotterdam"


async def test_a_graph_saved_as_one_json_object_reads_too(reverie, tmp_path):
    path = tmp_path / "memory.json"
    path.write_text(json.dumps({"entities": [GRAPH[1]], "relations": [GRAPH[3]]}), encoding="utf-8")
    counts = await import_graph(reverie, path)
    assert counts["memories"] == 2


@pytest.mark.parametrize(("text", "named"), [
    ('{"type": "entity", "name": "A"}\nnot json', "memory.jsonl line 2 is not JSON"),
    ('{"type": "relation", "from": "A", "to": ""}', "memory.jsonl line 1 is not an entity"),
    ('{"type": "entity", "name": "A", "observations": "one"}', "observations must be a list"),
    ('{"type": "node", "name": "A"}', "line 1 is not an entity"),
], ids=["bad-line", "relation-without-target", "observations-not-a-list", "unknown-type"])
async def test_a_malformed_graph_is_refused_naming_the_line_and_nothing_is_written(reverie, tmp_path, text, named):
    path = tmp_path / "memory.jsonl"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidInput, match=named):
        await import_graph(reverie, path)
    assert await reverie.db.scalar("SELECT count(*) FROM proposals") == 0


def test_the_cli_imports_a_graph_into_the_scope_it_is_given(cli, tmp_path):
    path = graph_file(tmp_path)
    ran = cli("import", "--server-memory", str(path), "--scope", "shared")
    assert ran.code == 0, ran.err
    proposal = ran.out.split("proposal ")[1].split(":")[0]
    shown = cli("show", proposal, "--json").json()
    assert {op["scope"] for op in shown["operations"]} == {"shared"}
    assert "Imported from the server-memory graph: memory.jsonl." in {op["rationale"] for op in shown["operations"]}


def test_the_cli_refuses_a_scope_that_does_not_exist(cli, tmp_path):
    ran = cli("import", "--server-memory", str(graph_file(tmp_path)), "--scope", "everyone")
    assert ran.code == 1 and "scope 'everyone' is not valid" in ran.err

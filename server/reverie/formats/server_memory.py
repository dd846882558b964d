"""The reference MCP memory server's knowledge graph (`@modelcontextprotocol/server-memory`).

It stores one JSON object per line in `memory.jsonl` (`MEMORY_FILE_PATH`; older versions
`memory.json`): `{"type": "entity", "name", "entityType", "observations": [...]}` and
`{"type": "relation", "from", "to", "relationType"}` (active voice, e.g. `works_at`).
Some forks save the graph as one object `{"entities": [...], "relations": [...]}`; that
reads too.

Each observation becomes an entry under its entity — "Alice (person): Speaks fluent
Spanish" — and each relation a fact, "Alice works at Acme". An entity or relation listed
twice, or one text said twice, is one entry (`formats.document` merges duplicates). The
graph is about the user by default (what the reference server's prompt asks it to keep),
so its entries go to the `user` scope unless the caller names another.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from reverie.errors import InvalidInput
from reverie.formats.document import Found, Source, build
from reverie.formats.markdown import flat
from reverie.models import Category

PREFIX, LABEL = "sm", "the server-memory graph"
_PREFERENCE = ("prefer", "likes ", "dislike", "favorite", "favourite", "wants ", "always ", "never ")


def read(path: Path, *, scope: str, agent_id: str) -> dict:
    """The graph in `path` as an export document (see `formats.document`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise InvalidInput(f"Cannot read {path}: {error.strerror or error}. Name the server's memory.jsonl "
                           "(its MEMORY_FILE_PATH).") from None
    found = list(_memories(records(text, path.name), scope))
    modified = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    return build([Source(path.name, text, modified, found)], prefix=PREFIX, label=LABEL, agent_id=agent_id)


def records(text: str, name: str) -> list[dict]:
    """The graph's entity and relation records, in file order."""
    whole = _whole_graph(text)
    if whole is not None:
        return whole
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise InvalidInput(f"{name} line {number} is not JSON ({error.msg}); expected the JSONL "
                               "that @modelcontextprotocol/server-memory writes.") from None
        found.append(_checked(record, f"{name} line {number}"))
    return found


def _whole_graph(text: str) -> list[dict] | None:
    try:
        graph = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(graph, dict) or "type" in graph:
        return None if isinstance(graph, dict) else [_checked(graph, "the file")]
    entities = [{**e, "type": "entity"} for e in graph.get("entities", []) if isinstance(e, dict)]
    relations = [{**r, "type": "relation"} for r in graph.get("relations", []) if isinstance(r, dict)]
    return [_checked(r, "the graph") for r in entities + relations]


def _checked(record: object, where: str) -> dict:
    """A record with the fields its type needs, all strings; else a message naming where it is."""
    needs = {"entity": ("name",), "relation": ("from", "to", "relationType")}
    kind = record.get("type") if isinstance(record, dict) else None
    if kind not in needs or not all(isinstance(record.get(f), str) and record[f].strip() for f in needs[kind]):
        raise InvalidInput(f"{where} is not an entity (type, name, entityType, observations) or a relation "
                           "(type, from, to, relationType).")
    observations = record.get("observations", []) if kind == "entity" else []
    if not isinstance(observations, list) or not all(isinstance(o, str) for o in observations):
        raise InvalidInput(f"{where}: observations must be a list of strings.")
    return record


def _memories(graph: list[dict], scope: str) -> Iterable[Found]:
    for record in graph:
        if record["type"] == "entity":
            kind = flat(str(record.get("entityType") or ""))
            subject = f"{flat(record['name'])} ({kind})" if kind else flat(record["name"])
            for observation in record.get("observations", []):
                if flat(observation):
                    yield Found(f"{subject}: {flat(observation)}", _category(observation), scope)
        else:
            relation = flat(record["relationType"].replace("_", " "))
            yield Found(f"{flat(record['from'])} {relation} {flat(record['to'])}", "fact", scope)


def _category(observation: str) -> Category:
    lowered = f" {observation.lower()} "
    return "preference" if any(word in lowered for word in _PREFERENCE) else "fact"

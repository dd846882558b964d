"""The five tools, the resources and the prompt through a real MCP client.

Every test runs twice: over a legacy (2025-11-25, initialize handshake) connection, which
is what Claude Desktop and Claude Code speak, and over the stateless 2026-07-28 protocol.
"""

from __future__ import annotations

import pytest
from conftest import call
from mcp import MCPError
from mcp_types import INVALID_PARAMS
from reverie.models import Episode, MemoryEntry, MemoryView, NoteEntry, PendingNotice

pytestmark = [pytest.mark.anyio, pytest.mark.both_backends]

TOOLS = {
    "read_memory": {"query", "scope", "categories", "budget_tokens", "include_notes"},
    "log_session": {"transcript", "session_id", "agent_id", "title", "notes", "outcome", "outcome_summary", "ended"},
    "propose_dream": {"engine", "max_sessions", "scope", "instructions", "operations", "brief_id"},
    "apply_dream": {"proposal_id", "approve", "edits"},
    "revert_dream": {"proposal_id"},
}


def turns(*lines: str) -> list[dict]:
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": line} for i, line in enumerate(lines)]


async def error_of(client, tool: str, **arguments) -> str:
    result = await client.call_tool(tool, arguments)
    assert result.is_error, result.structured_content
    return result.content[0].text


async def test_the_tools_have_the_contracted_names_arguments_and_output_schemas(client):
    listed = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert {name: set(tool.input_schema["properties"]) for name, tool in listed.items()} == TOOLS
    assert all(tool.output_schema for tool in listed.values())
    assert listed["read_memory"].annotations.read_only_hint is True
    assert listed["apply_dream"].annotations.destructive_hint is True
    assert listed["revert_dream"].annotations.destructive_hint is True
    assert "ask" in listed["propose_dream"].description.lower()


async def test_no_description_line_carries_the_docstrings_indentation(client):
    listed = [*(await client.list_tools()).tools, *(await client.list_resources()).resources,
              *(await client.list_resource_templates()).resource_templates, *(await client.list_prompts()).prompts]
    described = {item.name: item.description for item in listed if item.description}
    assert {"read_memory", "log_session", "propose_dream", "apply_dream", "revert_dream"} <= set(described)
    indented = {name: line for name, text in described.items() for line in text.splitlines() if line[:1].isspace()}
    assert indented == {}


async def test_the_whole_loop_log_read_propose_apply_read_revert_read(client):
    for _ in range(2):
        logged = await call(client, "log_session", transcript=turns("Which database?", "PostgreSQL 16."),
                            notes=["Team database: PostgreSQL 16"], outcome="success")
    assert logged["sessions_awaiting_dream"] == 2
    first = await call(client, "read_memory")
    assert first["entries"] == [] and [n["content"] for n in first["notes"]] == ["Team database: PostgreSQL 16"] * 2

    proposal = await call(client, "propose_dream", engine="heuristic")
    assert proposal["status"] == "pending" and len(proposal["operations"]) == 1
    assert (await call(client, "read_memory"))["pending_proposals"][0]["proposal_id"] == proposal["id"]

    applied = await call(client, "apply_dream", proposal_id=proposal["id"], approve="all")
    assert applied["status"] == "applied"
    after = await call(client, "read_memory", query="database")
    assert [e["content"] for e in after["entries"]] == ["Team database: PostgreSQL 16"]
    assert len(after["entries"][0]["sources"]) == 2 and after["notes"] == [] and after["pending_proposals"] == []

    await call(client, "revert_dream", proposal_id=proposal["id"])
    reverted = await call(client, "read_memory")
    assert reverted["entries"] == [] and len(reverted["notes"]) == 2


READ_ROWS = {"entries": MemoryEntry, "notes": NoteEntry, "episodes": Episode, "pending_proposals": PendingNotice}


async def test_read_memorys_output_schema_names_its_items_fields_instead_of_typing_each(client):
    # The python client checks every result against it with jsonschema, which descends into
    # each field of each item: typed field by field, a read's checking outlasted a no-op's round trip.
    (tool,) = [tool for tool in (await client.list_tools()).tools if tool.name == "read_memory"]
    schema = tool.output_schema
    assert "$defs" not in schema and set(READ_ROWS) <= set(schema["required"])
    for name, row in READ_ROWS.items():
        item = schema["properties"][name]["items"]
        assert item.keys() == {"type", "required", "description"} and item["type"] == "object"
        assert item["required"] == list(row.model_fields)
        assert all(f"{field} (" in item["description"] for field in row.model_fields)


async def test_read_memorys_structured_result_still_holds_every_field_of_every_item(client):
    await call(client, "log_session", transcript=turns("Which database?", "PostgreSQL 16."),
               notes=["Team database: PostgreSQL 16"])
    applied = await call(client, "propose_dream", engine="heuristic")
    await call(client, "apply_dream", proposal_id=applied["id"], approve="all")
    await call(client, "log_session", transcript=turns("The database backup runs at 02:00", "Noted."),
               notes=["Database backups run nightly at 02:00"])
    await call(client, "propose_dream", engine="heuristic")

    view = await call(client, "read_memory", query="database backup")

    assert all(view[name] for name in READ_ROWS), view  # one of each, at least
    for name, row in READ_ROWS.items():
        assert all(item.keys() == row.model_fields.keys() for item in view[name])
    assert MemoryView.model_validate(view).model_dump(mode="json") == view  # every value typed as the model says


async def test_text_content_is_markdown_for_the_model_not_a_json_dump(client):
    await call(client, "log_session", transcript=turns("hi", "hello"), notes=["Lunch is at noon"])
    result = await client.call_tool("propose_dream", {"engine": "heuristic"})
    text = result.content[0].text
    assert text.startswith("# Dream proposal") and "How to answer" in text and "Lunch is at noon" in text


async def test_read_memory_with_a_query_returns_matching_excerpts_of_past_sessions(client):
    await call(client, "log_session", transcript=turns("The invoice PDF renderer crashes on Arabic names", "I'll look."))
    await call(client, "log_session", transcript=turns("What time is lunch?", "Noon."))
    view = await call(client, "read_memory", query="invoice renderer")
    assert [(e["event_index"], e["role"]) for e in view["episodes"]] == [(0, "user")]
    assert "raw excerpts" in view["markdown"]


async def test_read_memory_stays_within_its_token_budget(client):
    notes = [f"Customer {n} prefers invoices in {n % 7 + 1} copies, delivered to office {n}" for n in range(40)]
    await call(client, "log_session", transcript=turns("bulk", "ok"), notes=notes)
    proposal = await call(client, "propose_dream", engine="heuristic")
    await call(client, "apply_dream", proposal_id=proposal["id"], approve="all")
    view = await call(client, "read_memory", budget_tokens=200)
    assert view["tokens_used"] <= 200 and view["truncated"] and 0 < len(view["entries"]) < 40


async def test_a_transcript_can_be_appended_to_an_open_session(client):
    opened = await call(client, "log_session", transcript=turns("part one", "ok"), session_id="call-7", ended=False)
    closed = await call(client, "log_session", transcript=turns("part two", "ok"), session_id="call-7")
    assert (opened["event_count"], closed["event_count"]) == (2, 4)
    assert closed["content_hash"] != opened["content_hash"]
    message = await error_of(client, "log_session", transcript=turns("late", "ok"), session_id="call-7")
    assert "has ended" in message


async def test_plain_text_transcripts_are_accepted(client):
    logged = await call(client, "log_session", transcript="User: where are the logs?\nAssistant: In /var/log/app.")
    assert logged["event_count"] == 2


@pytest.mark.parametrize(
    ("tool", "arguments", "message"),
    [
        ("log_session", {"transcript": [{"role": "robot", "content": "beep"}]}, "role"),
        ("log_session", {"transcript": []}, "empty"),
        ("log_session", {"transcript": ""}, "empty"),
        ("log_session", {"transcript": [{"role": "user", "content": "x" * 2_000_001}]}, "limit"),
        ("log_session", {"transcript": turns("a", "b"), "session_id": "no spaces allowed"}, "session_id"),
        ("read_memory", {"budget_tokens": -5}, "budget_tokens"),
        ("read_memory", {"budget_tokens": 10**9}, "budget_tokens"),
        ("read_memory", {"scope": "everyone"}, "scope"),
        ("apply_dream", {"proposal_id": "drm_missing", "approve": "all"}, "No dream proposal"),
        ("revert_dream", {"proposal_id": "drm_missing"}, "No dream proposal"),
        ("propose_dream", {"engine": "oracle"}, "Unknown engine"),
    ],
    ids=["unknown-role", "empty-list", "empty-text", "oversized", "bad-session-id", "negative-budget",
         "absurd-budget", "bad-scope", "unknown-proposal", "revert-unknown", "unknown-engine"],
)
async def test_bad_input_gets_a_tool_error_that_says_what_to_fix_and_the_server_keeps_serving(
    client, tool, arguments, message
):
    text = await error_of(client, tool, **arguments)
    assert message in text and "Traceback" not in text
    assert (await call(client, "read_memory"))["entries"] == []


async def test_unknown_op_ids_and_a_second_apply_are_tool_errors(client):
    await call(client, "log_session", transcript=turns("hi", "hello"), notes=["Lunch is at noon"])
    proposal = await call(client, "propose_dream", engine="heuristic")
    assert "op7" in await error_of(client, "apply_dream", proposal_id=proposal["id"], approve=["op7"])
    assert "approve" in await error_of(client, "apply_dream", proposal_id=proposal["id"])
    await call(client, "apply_dream", proposal_id=proposal["id"], approve=["op1"])
    assert "applied" in await error_of(client, "apply_dream", proposal_id=proposal["id"], approve="all")


async def test_resources_show_current_memory_and_a_proposal_report(client):
    await call(client, "log_session", transcript=turns("hi", "hello"), notes=["Lunch is at noon"])
    proposal = await call(client, "propose_dream", engine="heuristic")
    report = await client.read_resource(f"memory://proposals/{proposal['id']}")
    assert "Lunch is at noon" in report.contents[0].text
    await call(client, "apply_dream", proposal_id=proposal["id"], approve="all")
    current = await client.read_resource("memory://current")
    assert "- [fact] Lunch is at noon" in current.contents[0].text


async def test_the_review_dream_prompt_asks_for_the_users_decisions(client):
    prompt = await client.get_prompt("review-dream", {"proposal_id": "drm_123"})
    text = prompt.messages[0].content.text
    assert "drm_123" in text and "apply_dream" in text and "my decisions" in text


async def test_an_unknown_prompt_is_invalid_params_naming_the_prompts_there_are(client):
    with pytest.raises(MCPError) as raised:
        await client.get_prompt("dreem")
    assert raised.value.error.code == INVALID_PARAMS
    assert raised.value.error.message == "Unknown prompt: dreem. Prompts: dream, review-dream."


async def test_propose_dream_links_the_review_app_and_still_returns_the_full_text_report(client):
    listed = {tool.name: tool for tool in (await client.list_tools()).tools}
    uri = listed["propose_dream"].meta["ui"]["resourceUri"]
    page = (await client.read_resource(uri)).contents[0]
    assert uri == "ui://reverie/review.html" and page.mime_type == "text/html;profile=mcp-app"
    assert "apply_dream" in page.text
    await call(client, "log_session", transcript=turns("hi", "hello"), notes=["Lunch is at noon"])
    result = await client.call_tool("propose_dream", {"engine": "heuristic"})
    assert "Lunch is at noon" in result.content[0].text and "How to answer" in result.content[0].text

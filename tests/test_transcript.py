import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from reverie.models import Turn
from reverie.transcript import TranscriptError, parse_transcript

CLAUDE_CODE_SESSION = Path(__file__).parent / "data" / "claude_code_session.jsonl"


def shape(turns: list[Turn]) -> list[tuple[str, str | None, bool]]:
    return [(turn.role, turn.tool_name, turn.is_error) for turn in turns]


def jsonl(*records: dict) -> str:
    return "\n".join(json.dumps(record) for record in records)


def claude_line(kind: str, content, timestamp: str = "2026-10-14T09:00:00Z") -> dict:
    return {"type": kind, "message": {"role": kind, "content": content}, "timestamp": timestamp}


# --- JSON -----------------------------------------------------------------------------

JSON_TURNS = [
    {"role": "user", "content": "Deploy the billing service", "timestamp": "2026-10-01T09:00:00Z"},
    {"role": "assistant", "content": '{"branch": "main"}', "tool_name": "deploy"},
    {"role": "tool", "content": "permission denied", "tool_name": "deploy", "is_error": True},
]


@pytest.mark.parametrize(
    "text",
    [json.dumps(JSON_TURNS), json.dumps({"turns": JSON_TURNS}, indent=2)],
    ids=["array", "turns-object"],
)
def test_json_turns_keep_every_field(text):
    turns = parse_transcript(text)

    assert shape(turns) == [("user", None, False), ("assistant", "deploy", False), ("tool", "deploy", True)]
    assert turns[0].content == "Deploy the billing service"
    assert turns[0].timestamp == datetime(2026, 10, 1, 9, tzinfo=UTC)


def test_a_tool_turn_may_have_empty_output():
    turns = parse_transcript(json.dumps([{"role": "tool", "tool_name": "mkdir", "content": ""}]))

    assert turns == [Turn(role="tool", tool_name="mkdir", content="")]


# --- Claude Code JSONL ----------------------------------------------------------------


def test_a_claude_code_session_becomes_its_conversation_and_tool_calls():
    turns = parse_transcript(CLAUDE_CODE_SESSION.read_text())

    assert shape(turns) == [
        ("user", None, False),
        ("assistant", None, False),
        ("assistant", "Bash", False),
        ("tool", "Bash", True),
        ("assistant", None, False),
        ("assistant", "Bash", False),
        ("tool", "Bash", False),
        ("assistant", "Bash", False),
        ("tool", "Bash", False),
        ("assistant", None, False),
        ("user", None, False),
        ("assistant", None, False),
    ]


def test_claude_code_tool_calls_carry_their_input_as_json():
    turns = parse_transcript(CLAUDE_CODE_SESSION.read_text())

    calls = [json.loads(turn.content)["command"] for turn in turns if turn.role == "assistant" and turn.tool_name]
    assert calls == ["pytest", "pip install -e .", "pytest"]


def test_claude_code_tool_results_keep_their_text_and_errors():
    turns = parse_transcript(CLAUDE_CODE_SESSION.read_text())
    results = [turn for turn in turns if turn.role == "tool"]

    assert "ModuleNotFoundError: No module named 'billing'" in results[0].content
    assert results[1].content.endswith("Successfully installed billing-0.3.1")  # a list of text blocks
    assert "42 passed" in results[2].content


def test_claude_code_turns_take_the_timestamp_of_their_line():
    turns = parse_transcript(CLAUDE_CODE_SESSION.read_text())

    assert turns[0].timestamp == datetime(2026, 10, 14, 9, 12, 3, 418000, tzinfo=UTC)
    assert all(turn.timestamp is not None for turn in turns)


def test_claude_code_thinking_summaries_and_system_lines_are_left_out():
    text = CLAUDE_CODE_SESSION.read_text()
    turns = parse_transcript(text)

    assert "thinking" in text and "summary" in text and '"type":"system"' in text
    assert not any("Probably an environment problem" in turn.content for turn in turns)
    assert not any("Conversation compacted" in turn.content for turn in turns)


def test_a_tool_result_for_an_unseen_call_has_no_tool_name():
    result = {"type": "tool_result", "tool_use_id": "toolu_missing", "content": "ok"}

    turns = parse_transcript(jsonl(claude_line("user", [result])))

    assert shape(turns) == [("tool", None, False)]


def test_a_single_claude_code_line_is_read_as_jsonl():
    turns = parse_transcript(jsonl(claude_line("user", "hello")))

    assert [(turn.role, turn.content) for turn in turns] == [("user", "hello")]


# --- plain text -----------------------------------------------------------------------


def test_plain_text_prefixes_start_turns_and_other_lines_continue_them():
    text = """
user: The deploy failed.
It says permission denied.
ASSISTANT: Let me check the logs.
Tool(read_logs): line 1
  line 2
System: Session paused.
Tool: done
"""
    turns = parse_transcript(text)

    assert shape(turns) == [
        ("user", None, False),
        ("assistant", None, False),
        ("tool", "read_logs", False),
        ("system", None, False),
        ("tool", None, False),
    ]
    assert turns[0].content == "The deploy failed.\nIt says permission denied."
    assert turns[2].content == "line 1\n  line 2"


@pytest.mark.parametrize(
    "text",
    ["Remember that the staging box is called kiwi.\nIt reboots at 03:00.", "[10:02] kiwi rebooted"],
    ids=["no-prefixes", "starts-with-bracket"],
)
def test_plain_text_without_prefixes_is_one_user_turn(text):
    assert parse_transcript(text) == [Turn(role="user", content=text)]


def test_plain_text_before_the_first_prefix_is_the_user_speaking():
    turns = parse_transcript("Context: moving to eu-west-2\nAssistant: Noted.")

    assert [(turn.role, turn.content) for turn in turns] == [
        ("user", "Context: moving to eu-west-2"),
        ("assistant", "Noted."),
    ]


def test_an_indented_prefix_does_not_start_a_turn():
    turns = parse_transcript("User: the bot printed\n  Assistant: hi\ntwice")

    assert turns == [Turn(role="user", content="the bot printed\n  Assistant: hi\ntwice")]


# --- errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("", ["empty", "JSON array"], id="empty"),
        pytest.param(" \n\t\n", ["empty"], id="whitespace-only"),
        pytest.param("[]", ["no user, assistant, tool or system turns"], id="empty-array"),
        pytest.param(
            json.dumps([{"role": "user", "content": "hi"}, {"role": "bot", "content": "hello"}]),
            ["Turn 2", "'bot'", "user, assistant, tool, system"],
            id="unknown-role",
        ),
        pytest.param(json.dumps([{"content": "hi"}]), ["Turn 1", "no role", "user, assistant"], id="missing-role"),
        pytest.param(json.dumps([{"role": "user"}]), ["Turn 1", "no content"], id="missing-content"),
        pytest.param(
            json.dumps({"turns": [{"role": "assistant", "content": " "}]}), ["Turn 1", "no content"], id="blank-content"
        ),
        pytest.param(json.dumps([{"role": "user", "content": 42}]), ["Turn 1", "no content"], id="content-not-text"),
        pytest.param(json.dumps(["hello"]), ["Turn 1", "JSON string", '"role"'], id="turn-not-object"),
        pytest.param(
            json.dumps([{"role": "user", "content": "hi", "timestamp": "yesterday"}]),
            ["Turn 1", "timestamp", "optional: tool_name"],
            id="bad-timestamp",
        ),
        pytest.param(
            json.dumps([{"role": "user", "content": "hi", "text": "hi"}]), ["Turn 1", "text"], id="unknown-field"
        ),
        pytest.param(json.dumps({"turns": "hi"}), ['"turns" list'], id="turns-not-a-list"),
        pytest.param('[{"role": "user", "content": "hi"},]', ["JSON array", "line 1, column"], id="broken-json-array"),
        pytest.param(
            '{"type": "assistant", "message": \n[1, 2]',
            ["no user, assistant", "2 line(s) could not be read", "Line 1 is not valid JSON"],
            id="jsonl-with-no-readable-line",
        ),
        pytest.param(
            jsonl({"type": "user", "timestamp": "2026-10-14T09:00:00Z"}),
            ["Line 1", "message.content"],
            id="jsonl-without-message",
        ),
        pytest.param(
            jsonl({"type": "summary", "summary": "Nothing happened"}), ["no user, assistant"], id="jsonl-without-turns"
        ),
        pytest.param(
            "User: hi\nAssistant:\nUser: hello?", ["Line 2", "no content", "assistant"], id="plain-text-empty-turn"
        ),
    ],
)
def test_unreadable_transcripts_say_where_and_what_to_fix(text, expected):
    with pytest.raises(TranscriptError) as caught:
        parse_transcript(text)

    for fragment in expected:
        assert fragment in str(caught.value)


def test_transcript_errors_are_value_errors():
    with pytest.raises(ValueError):
        parse_transcript("")

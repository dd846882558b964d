"""The fast paths of `log_session` do exactly what the plain ones did.

Redaction skips a pattern whose literals are missing from the text, so it is held to
running every pattern; a turn's line in the content hash is written out by hand, so it is
held to `model_dump` + `json.dumps`; events are inserted many rows per statement, so a
transcript longer than one statement lands whole, in order and searchable, or not at all.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import chat
from hypothesis import given, settings
from hypothesis import strategies as st
from reverie import safety
from reverie.models import Turn
from reverie.safety import SECRET_PATTERNS, redact
from reverie.service.ingest import _chain_line, chain_hash, redacted_turns
from reverie.store import Refused, sessions
from reverie.store.integrity import index_drift

CORPUS = Path(__file__).parent / "corpora" / "secrets.json"

pytestmark = pytest.mark.both_backends


def redacted_by_every_pattern(text: str) -> tuple[str, int]:
    """What redact did before it skipped anything: every pattern, in order, over the text."""
    total = 0
    for kind, pattern in SECRET_PATTERNS:
        text, count = pattern.subn(safety._replacer(kind), text)
        total += count
    return text, total


def corpus_frames() -> list[tuple[str, str]]:
    frames = []
    for item in json.loads(CORPUS.read_text(encoding="utf-8"))["items"]:
        value = "".join(p if isinstance(p, str) else p["repeat"] * p["times"] for p in item["parts"])
        frames.append((item["id"], item["frame"].replace("{secret}", value)))
    return frames


FRAMES = corpus_frames()
PEM = "-----BEGIN " + "RSA PRIVATE KEY-----\n" + "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" * 3 + "\n-----END " + "RSA PRIVATE KEY-----"
HEX = "0123456789abcdef" * 3
TRICKY = [
    ("literal-starting-inside-another", "sk" + PEM),
    ("long-s-in-password", "pa\u017fsword: hunter22"),
    ("long-s-in-prose-password", "the pa\u017fsword is hunter22 ok"),
    ("dotted-capital-i-in-api-key", "ap\u0130_key=abc123def"),
    ("dotless-i-in-credentials", "credent\u0131als: " + HEX),
    ("kelvin-sign-in-key", "\u212aEY: " + HEX),
    ("bare-value-after-prefixed-key", "oauth client_secret cs9x8y7z6w rotated"),
    ("tabs-and-quotes", "token\t=\t'abc12345xyz'"),
    ("marker-then-assignment", "[REDACTED:github_token]=abc123456"),
    ("two-kinds-in-one-text", "ghp_" + "a1B2c3D4e5F6" * 3 + " and password: hunter2 and AKIA" + "Q3T7" * 4),
    ("prose-with-every-word", "the auth token expired; the password policy requires 12 characters; secret plans"),
    ("signature-upper-case", "SIGNATURE = " + HEX.upper()),
    ("url-with-password", "postgres://app:Pa55w0rd!@db.internal:5432/app"),
    ("empty", ""),
]


@pytest.mark.parametrize("text", [t for _, t in FRAMES + TRICKY], ids=[i for i, _ in FRAMES + TRICKY])
def test_redaction_matches_running_every_pattern(text):
    assert redact(text) == redacted_by_every_pattern(text)
    assert redact(text.upper()) == redacted_by_every_pattern(text.upper())
    long_text = "Some notes from the deploy. " * 40 + text + " and more text after it." * 40
    assert redact(long_text) == redacted_by_every_pattern(long_text)


FRAGMENTS = [
    "sk-", "ant-", "sk_live_", "rk_test_", "AKIA", "ASIA", "aws_secret_access_key", "ghp_", "github_pat_", "glpat-",
    "xoxb-", "AIza", "npm_", "rvt_", "hf_", "pypi-AgE", "dop_v1_", "AccountKey=", "SG.", "SK", "eyJ", "Bearer ",
    "://", "user:", "@host", "-----BEGIN ", "RSA PRIVATE KEY-----", "-----END ", "password", "pa\u017fsword", "passwd",
    "PWD", "secret", "api_key", "API-KEY", "apikey", "access_key", "token", "Tokens", "auth", "credentials",
    "signature", "client_", "is", " ", "\t", "\n", "=", ":", '"', "'", ".", "_", "-", "hunter22", "abc123", HEX,
    "0123456789abcdef", "A1b2C3d4" * 3, "[REDACTED:github_token]", "\u0130", "\u0131", "\u212a", "the ", "x", "9",
    "$VAR", "<password>",
]


@settings(max_examples=500, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=40).map("".join))
def test_redaction_of_drawn_text_matches_running_every_pattern(text):
    assert redact(text) == redacted_by_every_pattern(text)


def test_every_secret_kind_names_the_literals_it_needs_in_lower_case():
    assert set(safety._LITERALS) == {kind for kind, _ in SECRET_PATTERNS}
    for literals in safety._LITERALS.values():
        assert literals and all(literal and literal == literal.lower() for literal in literals)


def test_a_password_spelled_with_a_long_s_is_redacted():
    # re.IGNORECASE matches "ſ" with "s"; the old lower() prefilter let this through.
    assert redact("pa\u017fsword: hunter22") == ("pa\u017fsword: [REDACTED:secret_assignment]", 1)


TURNS = [
    pytest.param(Turn(role="user", content="plain words"), id="plain"),
    pytest.param(Turn(role="tool", content='say "hi"\\ \n\t\x00 done', tool_name="run_shell", is_error=True),
                 id="escapes-and-error"),
    pytest.param(Turn(role="assistant", content="caf\u00e9 \u2028 \U0001f600 \ud800", tool_name="na\u00efve"),
                 id="non-ascii-and-lone-surrogate"),
    pytest.param(Turn(role="system", content="", tool_name=""), id="empty-strings"),
]


@pytest.mark.parametrize("turn", TURNS)
def test_a_turns_hash_line_is_the_json_dump_of_the_turn_without_its_timestamp(turn):
    assert _chain_line(turn) == json.dumps(turn.model_dump(mode="json", exclude={"timestamp"}), sort_keys=True)


def test_the_hash_line_covers_every_field_of_a_turn_but_its_timestamp():
    # A new Turn field must join _chain_line (changing every hash from then on) or be left out on purpose.
    assert set(Turn.model_fields) == {"role", "content", "tool_name", "is_error", "timestamp"}


def test_turns_without_secrets_are_kept_and_turns_with_one_are_copied():
    clean = Turn(role="user", content="nothing to hide")
    leaky = Turn(role="user", content="my password: hunter2", tool_name="token=abc123xyz")

    redacted, count = redacted_turns([clean, leaky])

    assert redacted[0] is clean
    assert redacted[1].content == "my password: [REDACTED:secret_assignment]"
    assert redacted[1].tool_name == "token=[REDACTED:secret_assignment]"
    assert leaky.content == "my password: hunter2"
    assert count == 2


LONG = sessions._EVENTS_PER_INSERT * 2 + 17  # three INSERT statements


def numbered(count: int, start: int = 0) -> list[Turn]:
    return chat(*(f"turn {i} mentions zebra{i:04d}" for i in range(start, start + count)))


@pytest.mark.anyio
async def test_a_transcript_longer_than_one_insert_is_stored_in_order_and_fully_indexed(reverie):
    result = await reverie.log_session(numbered(LONG), session_id="long")

    rows = await reverie.db.fetchall("SELECT idx, content FROM events WHERE session_id = 'long' ORDER BY id")
    assert [r["idx"] for r in rows] == list(range(LONG))
    assert [r["content"] for r in rows] == [t.content for t in numbered(LONG)]
    if reverie.db.backend == "sqlite":  # PostgreSQL's index is a generated column: it cannot drift
        drift = await index_drift(reverie.db, "events_fts", "events", "id")
        assert (drift.indexed, drift.missing, drift.extra, drift.mismatch) == (LONG, [], [], None)
    found = await sessions.search_events(reverie.db, [f"zebra{LONG - 1:04d}"], "tester")
    assert [e.event_index for e in found] == [LONG - 1]
    assert result.content_hash == chain_hash("", numbered(LONG))


@pytest.mark.anyio
async def test_appending_across_insert_batches_continues_the_indexes_and_the_hash(reverie):
    await reverie.log_session(numbered(100), session_id="parts", ended=False)
    result = await reverie.log_session(numbered(LONG, start=100), session_id="parts")

    idx = [r[0] for r in await reverie.db.fetchall("SELECT idx FROM events WHERE session_id = 'parts' ORDER BY idx")]
    assert idx == list(range(100 + LONG))
    assert result.event_count == 100 + LONG
    assert result.content_hash == chain_hash("", numbered(100 + LONG))


@pytest.mark.anyio
async def test_a_transcript_whose_last_insert_fails_leaves_no_event_index_entry_or_session(reverie):
    bad = Turn.model_construct(role="narrator", content="zebra9999", tool_name=None, is_error=False, timestamp=None)

    with pytest.raises(Refused):
        await reverie.log_session([*numbered(LONG - 1), bad], session_id="broken")

    assert await reverie.db.scalar("SELECT count(*) FROM events") == 0
    assert await reverie.db.scalar("SELECT count(*) FROM sessions") == 0
    if reverie.db.backend == "sqlite":
        assert await reverie.db.scalar("SELECT count(*) FROM events_fts_docsize") == 0
